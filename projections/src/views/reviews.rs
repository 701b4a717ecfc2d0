//! `product_reviews`: one row per review, indexed for a product's approved reviews
//! (newest first), an author's reviews and the moderation queue.
//!
//! A review's aggregate id is `"<product_id>:<user_id>"` (`Review::id_for`), not a
//! UUID; its `review_id` here is the UUID v8 of that string's SHA-256
//! ([`review_uuid`]), so a rebuild gives the same ids. An aggregate id that already is
//! a UUID is taken as it is.

use emporium_domain::catalog::ReviewEvent;
use sqlx::PgConnection;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::one_row;
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

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["review"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        let conn = conn.postgres("the reviews read model")?;
        use ReviewEvent as E;
        let review_id = review_uuid(&event.aggregate_id);
        let r = match decode::<ReviewEvent>(event)? {
            E::ReviewWritten {
                product_id,
                author_id,
                rating,
                title,
                body,
                verified_purchase,
                at,
            } => {
                sqlx::query(
                    "INSERT INTO product_reviews (review_id, product_id, author_id, rating, title, body,
                                                  verified_purchase, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                )
                .bind(review_id)
                .bind(product_id)
                .bind(author_id)
                .bind(i32::from(rating.stars()))
                .bind(title.as_str())
                .bind(body.as_str())
                .bind(verified_purchase)
                .bind(at)
                .execute(conn)
                .await?
            }
            E::ReviewEdited {
                rating,
                title,
                body,
                at,
                ..
            } => {
                sqlx::query(
                    "UPDATE product_reviews
                     SET rating = $2, title = $3, body = $4, status = 'pending',
                         moderation_reason = NULL, updated_at = $5
                     WHERE review_id = $1",
                )
                .bind(review_id)
                .bind(i32::from(rating.stars()))
                .bind(title.as_str())
                .bind(body.as_str())
                .bind(at)
                .execute(conn)
                .await?
            }
            E::ReviewMarkedHelpful {
                helpful_votes, at, ..
            } => {
                sqlx::query(
                    "UPDATE product_reviews SET helpful_votes = $2, updated_at = $3 WHERE review_id = $1",
                )
                .bind(review_id)
                .bind(i64::from(helpful_votes))
                .bind(at)
                .execute(conn)
                .await?
            }
            E::ReviewApproved { at, .. } => {
                sqlx::query(
                    "UPDATE product_reviews SET status = 'approved', moderation_reason = NULL,
                                                updated_at = $2
                     WHERE review_id = $1",
                )
                .bind(review_id)
                .bind(at)
                .execute(conn)
                .await?
            }
            E::ReviewRejected { reason, at, .. } => {
                moderate(conn, review_id, "rejected", reason.as_str(), at).await?
            }
            E::ReviewHidden { reason, at, .. } => {
                moderate(conn, review_id, "hidden", reason.as_str(), at).await?
            }
        };
        one_row(r, "review")
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
    conn: &mut PgConnection,
    review_id: Uuid,
    status: &str,
    reason: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<sqlx::postgres::PgQueryResult> {
    Ok(sqlx::query(
        "UPDATE product_reviews SET status = $2, moderation_reason = $3, updated_at = $4
         WHERE review_id = $1",
    )
    .bind(review_id)
    .bind(status)
    .bind(reason)
    .bind(at)
    .execute(conn)
    .await?)
}
