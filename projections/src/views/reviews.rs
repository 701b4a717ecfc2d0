//! `product_reviews`: one row per review, indexed for a product's approved reviews
//! (newest first), an author's reviews and the moderation queue.
//!
//! A review's aggregate id is `"<product_id>:<user_id>"` (`Review::id_for`), not a
//! UUID; its `review_id` here is the UUID v8 of that string's SHA-256
//! ([`review_uuid`]), so a rebuild gives the same ids. An aggregate id that already is
//! a UUID is taken as it is.

use emporium_domain::catalog::ReviewEvent;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::one_changed;
use crate::args;
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::Conn;

/// Builds `product_reviews`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReviewsProjection;

const SCHEMA: &str = "
CREATE TABLE product_reviews (
    review_id         uuid        PRIMARY KEY,
    product_id        uuid        NOT NULL,
    author_id         uuid        NOT NULL,
    rating            integer     NOT NULL,
    title             text        NOT NULL,
    body              text        NOT NULL,
    verified_purchase boolean     NOT NULL,
    -- pending | approved | rejected | hidden
    status            text        NOT NULL DEFAULT 'pending',
    helpful_votes     bigint      NOT NULL DEFAULT 0,
    moderation_reason text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX product_reviews_product ON product_reviews (product_id, created_at DESC) WHERE status = 'approved';
CREATE INDEX product_reviews_author ON product_reviews (author_id, created_at DESC);
CREATE INDEX product_reviews_pending ON product_reviews (created_at) WHERE status = 'pending';
";

/// SQLite takes the same DDL (type names are affinities; partial indexes exist).
const SQLITE_SCHEMA: &str = SCHEMA;

#[async_trait::async_trait]
impl Projection for ReviewsProjection {
    fn name(&self) -> &'static str {
        "reviews"
    }

    fn version(&self) -> u32 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["product_reviews"]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn sqlite_schema(&self) -> Option<&'static str> {
        Some(SQLITE_SCHEMA)
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["review"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        use ReviewEvent as E;
        let review_id = review_uuid(&event.aggregate_id);
        let changed = match decode::<ReviewEvent>(event)? {
            E::ReviewWritten {
                product_id,
                author_id,
                rating,
                title,
                body,
                verified_purchase,
                at,
            } => {
                conn.execute(
                    "INSERT INTO product_reviews (review_id, product_id, author_id, rating, title, body,
                                                  verified_purchase, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                    args![
                        review_id,
                        product_id,
                        author_id,
                        i32::from(rating.stars()),
                        title.as_str(),
                        body.as_str(),
                        verified_purchase,
                        at
                    ],
                )
                .await?
            }
            E::ReviewEdited {
                rating,
                title,
                body,
                at,
                ..
            } => {
                conn.execute(
                    "UPDATE product_reviews
                     SET rating = $2, title = $3, body = $4, status = 'pending',
                         moderation_reason = NULL, updated_at = $5
                     WHERE review_id = $1",
                    args![
                        review_id,
                        i32::from(rating.stars()),
                        title.as_str(),
                        body.as_str(),
                        at
                    ],
                )
                .await?
            }
            E::ReviewMarkedHelpful {
                helpful_votes, at, ..
            } => {
                conn.execute(
                    "UPDATE product_reviews SET helpful_votes = $2, updated_at = $3 WHERE review_id = $1",
                    args![review_id, i64::from(helpful_votes), at],
                )
                .await?
            }
            E::ReviewApproved { at, .. } => {
                conn.execute(
                    "UPDATE product_reviews SET status = 'approved', moderation_reason = NULL,
                                                updated_at = $2
                     WHERE review_id = $1",
                    args![review_id, at],
                )
                .await?
            }
            E::ReviewRejected { reason, at, .. } => {
                moderate(conn, review_id, "rejected", reason.as_str(), at).await?
            }
            E::ReviewHidden { reason, at, .. } => {
                moderate(conn, review_id, "hidden", reason.as_str(), at).await?
            }
        };
        one_changed(changed, "review")
    }
}

/// The `review_id` of the review with aggregate id `aggregate_id`.
fn review_uuid(aggregate_id: &str) -> Uuid {
    if let Ok(id) = aggregate_id.parse() {
        return id;
    }
    let digest = Sha256::digest(aggregate_id.as_bytes());
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

async fn moderate(
    conn: &mut Conn<'_>,
    review_id: Uuid,
    status: &str,
    reason: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<u64> {
    Ok(conn
        .execute(
            "UPDATE product_reviews SET status = $2, moderation_reason = $3, updated_at = $4
             WHERE review_id = $1",
            args![review_id, status, reason, at],
        )
        .await?)
}
