//! `user_activity`: what visitors did (viewed, clicked, added to cart, searched,
//! bought), one row per activity, for analytics: a visitor's recent trail
//! (`user_activity_subject`) and a product's activity over time
//! (`user_activity_product`). The subject is the activity stream's aggregate id: a user
//! id or a guest's session key, hence text.

use chrono::{DateTime, Utc};
use emporium_domain::activity::ActivityEvent;
use uuid::Uuid;

use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::{Args, Backend, Conn, Value};

/// Builds `user_activity`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActivityProjection;

const SCHEMA: &str = "
CREATE TABLE user_activity (
    activity_id uuid        PRIMARY KEY,
    subject     text        NOT NULL,
    kind        text        NOT NULL,
    product_id  uuid,
    query       text,
    at          timestamptz NOT NULL
);
CREATE INDEX user_activity_subject ON user_activity (subject, at DESC);
CREATE INDEX user_activity_product ON user_activity (product_id, at) WHERE product_id IS NOT NULL;
";

/// SQLite takes the same DDL: its column types are affinities, and it has partial
/// indexes.
const SQLITE_SCHEMA: &str = SCHEMA;

/// Rows folded from a batch, inserted with one statement (on SQLite, one per
/// [`SQLITE_CHUNK`] rows).
#[derive(Default)]
struct Rows {
    activity_id: Vec<Uuid>,
    subject: Vec<String>,
    kind: Vec<&'static str>,
    product_id: Vec<Option<Uuid>>,
    query: Vec<Option<String>>,
    at: Vec<DateTime<Utc>>,
}

impl Rows {
    fn push(&mut self, event: &EventEnvelope) -> anyhow::Result<()> {
        let ActivityEvent::ActivityRecorded {
            activity_id,
            kind,
            product_id,
            query,
            at,
        } = decode::<ActivityEvent>(event)?;
        self.activity_id.push(activity_id);
        self.subject.push(event.aggregate_id.clone());
        self.kind.push(kind.as_str());
        self.product_id.push(product_id);
        self.query.push(query);
        self.at.push(at);
        Ok(())
    }

    async fn insert(self, conn: &mut Conn<'_>) -> anyhow::Result<()> {
        if self.activity_id.is_empty() {
            return Ok(());
        }
        match conn.backend() {
            Backend::Postgres => {
                // The aggregate records an activity id once (within its remembered
                // window); an older retry's duplicate keeps the first row.
                sqlx::query(
                    "INSERT INTO user_activity (activity_id, subject, kind, product_id, query, at)
                     SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[],
                                          $6::timestamptz[])
                     ON CONFLICT (activity_id) DO NOTHING",
                )
                .bind(self.activity_id)
                .bind(self.subject)
                .bind(self.kind)
                .bind(self.product_id)
                .bind(self.query)
                .bind(self.at)
                .execute(conn.postgres("the activity read model")?)
                .await?;
            }
            // SQLite has no arrays to unnest: multi-row VALUES, in chunks well inside
            // its limit on arguments, with the same conflict rule.
            Backend::Sqlite => {
                let rows: Vec<[Value; 6]> = self
                    .activity_id
                    .into_iter()
                    .zip(self.subject)
                    .zip(self.kind)
                    .zip(self.product_id)
                    .zip(self.query)
                    .zip(self.at)
                    .map(|(((((id, subject), kind), product_id), query), at)| {
                        [
                            id.into(),
                            subject.into(),
                            kind.into(),
                            product_id.into(),
                            query.into(),
                            at.into(),
                        ]
                    })
                    .collect();
                for chunk in rows.chunks(SQLITE_CHUNK) {
                    let values = Args(chunk.iter().flatten().cloned().collect());
                    conn.execute(&sqlite_insert(chunk.len()), values).await?;
                }
            }
        }
        Ok(())
    }
}

/// Rows per SQLite `INSERT` (six arguments each).
const SQLITE_CHUNK: usize = 500;

/// `INSERT … VALUES ($1, …, $6), ($7, …), … ON CONFLICT (activity_id) DO NOTHING` for
/// `rows` rows.
fn sqlite_insert(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let n = row * 6;
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6
            )
        })
        .collect();
    format!(
        "INSERT INTO user_activity (activity_id, subject, kind, product_id, query, at)
         VALUES {}
         ON CONFLICT (activity_id) DO NOTHING",
        values.join(", ")
    )
}

#[async_trait::async_trait]
impl Projection for ActivityProjection {
    fn name(&self) -> &'static str {
        "activity"
    }

    fn version(&self) -> u32 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["user_activity"]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn sqlite_schema(&self) -> Option<&'static str> {
        Some(SQLITE_SCHEMA)
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["activity"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    async fn apply_batch(
        &self,
        conn: &mut Conn<'_>,
        events: &[EventEnvelope],
    ) -> anyhow::Result<()> {
        let mut rows = Rows::default();
        for event in events.iter().filter(|e| e.aggregate_type == "activity") {
            rows.push(event)?;
        }
        rows.insert(conn).await
    }
}
