//! `inventory_levels`: stock per SKU (on hand, reserved, available) and the low-stock
//! flag. Inventory events carry the levels after the change, so each is one update.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use emporium_domain::inventory::InventoryEvent;

use super::one_changed;
use crate::args;
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::{Backend, Conn};

/// Builds `inventory_levels`.
#[derive(Debug, Clone, Copy, Default)]
pub struct InventoryProjection;

const SCHEMA: &str = "
CREATE TABLE inventory_levels (
    sku                 text        PRIMARY KEY,
    on_hand             bigint      NOT NULL DEFAULT 0,
    reserved            bigint      NOT NULL DEFAULT 0,
    available           bigint      NOT NULL DEFAULT 0,
    low_stock_threshold bigint      NOT NULL DEFAULT 0,
    low_stock           boolean     GENERATED ALWAYS AS (available < low_stock_threshold) STORED,
    tracked_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX inventory_levels_low_stock ON inventory_levels (available, sku) WHERE low_stock;
";

/// SQLite takes the same DDL: generated columns and partial indexes exist there, and
/// `low_stock` holds 0 or 1.
const SQLITE_SCHEMA: &str = SCHEMA;

/// Starts tracking `$1` with threshold `$2` at `$3`.
const TRACK: &str =
    "INSERT INTO inventory_levels (sku, low_stock_threshold, tracked_at, updated_at)
     VALUES ($1, $2, $3, $3)";

/// One SKU's folded levels (`$2` on hand, `$3` available, `$4` threshold, each kept
/// when null) at `$5`: what the batch's `unnest` update does per row, for SQLite.
const SET_LEVELS: &str = "UPDATE inventory_levels
     SET on_hand = coalesce($2, on_hand),
         available = coalesce($3, available),
         reserved = coalesce($2, on_hand) - coalesce($3, available),
         low_stock_threshold = coalesce($4, low_stock_threshold),
         updated_at = $5
     WHERE sku = $1";

#[async_trait::async_trait]
impl Projection for InventoryProjection {
    fn name(&self) -> &'static str {
        "inventory"
    }

    fn version(&self) -> u32 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["inventory_levels"]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn sqlite_schema(&self) -> Option<&'static str> {
        Some(SQLITE_SCHEMA)
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["inventory"]
    }

    /// Every event carries the levels after it, so a batch folds into the last
    /// levels per SKU: on PostgreSQL one insert for the newly tracked SKUs and one
    /// update for all, over `unnest`ed arrays; on SQLite (no arrays, and no round
    /// trip to save) one prepared insert per new SKU and one update per SKU.
    async fn apply_batch(
        &self,
        conn: &mut Conn<'_>,
        events: &[EventEnvelope],
    ) -> anyhow::Result<()> {
        use InventoryEvent as E;
        #[derive(Default)]
        struct Fold {
            on_hand: Option<i64>,
            available: Option<i64>,
            threshold: Option<i64>,
            at: Option<DateTime<Utc>>,
        }
        let mut tracked: Vec<(String, i64, DateTime<Utc>)> = Vec::new();
        let mut order: Vec<String> = Vec::new();
        let mut folds: HashMap<String, Fold> = HashMap::new();
        for event in events {
            let sku = event.aggregate_id.clone();
            let (on_hand, available, threshold, at) = match decode::<InventoryEvent>(event)? {
                E::InventoryTracked {
                    low_stock_threshold,
                    at,
                    ..
                } => {
                    anyhow::ensure!(!folds.contains_key(&sku), "sku {sku} tracked twice");
                    tracked.push((sku, i64::from(low_stock_threshold), at));
                    continue;
                }
                E::LowStockThresholdChanged {
                    low_stock_threshold,
                    at,
                } => (None, None, Some(i64::from(low_stock_threshold)), at),
                E::LowStockDetected { .. } => continue,
                E::StockReceived {
                    on_hand,
                    available,
                    at,
                    ..
                }
                | E::StockAdjusted {
                    on_hand,
                    available,
                    at,
                    ..
                }
                | E::ReservationCommitted {
                    on_hand,
                    available,
                    at,
                    ..
                } => (
                    Some(i64::from(on_hand)),
                    Some(i64::from(available)),
                    None,
                    at,
                ),
                E::StockReserved { available, at, .. }
                | E::ReservationReleased { available, at, .. }
                | E::ReservationExpired { available, at, .. } => {
                    (None, Some(i64::from(available)), None, at)
                }
            };
            let fold = folds.entry(sku.clone()).or_insert_with(|| {
                order.push(sku);
                Fold::default()
            });
            fold.on_hand = on_hand.or(fold.on_hand);
            fold.available = available.or(fold.available);
            fold.threshold = threshold.or(fold.threshold);
            fold.at = Some(at);
        }
        if conn.backend() == Backend::Sqlite {
            for (sku, threshold, at) in tracked {
                conn.execute(TRACK, args![sku, threshold, at]).await?;
            }
            for sku in &order {
                let fold = &folds[sku];
                let changed = conn
                    .execute(
                        SET_LEVELS,
                        args![sku, fold.on_hand, fold.available, fold.threshold, fold.at],
                    )
                    .await?;
                anyhow::ensure!(changed == 1, "inventory levels: sku {sku} is not tracked");
            }
            return Ok(());
        }
        let conn = conn.postgres("the inventory batch")?;
        if !tracked.is_empty() {
            let (skus, rest): (Vec<String>, Vec<(i64, DateTime<Utc>)>) =
                tracked.into_iter().map(|(s, t, a)| (s, (t, a))).unzip();
            let (thresholds, ats): (Vec<i64>, Vec<DateTime<Utc>>) = rest.into_iter().unzip();
            sqlx::query(
                "INSERT INTO inventory_levels (sku, low_stock_threshold, tracked_at, updated_at)
                 SELECT sku, threshold, at, at
                 FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS t(sku, threshold, at)",
            )
            .bind(&skus)
            .bind(&thresholds)
            .bind(&ats)
            .execute(&mut *conn)
            .await?;
        }
        if order.is_empty() {
            return Ok(());
        }
        let mut on_hand = Vec::with_capacity(order.len());
        let mut available = Vec::with_capacity(order.len());
        let mut threshold = Vec::with_capacity(order.len());
        let mut at = Vec::with_capacity(order.len());
        for sku in &order {
            let fold = &folds[sku];
            on_hand.push(fold.on_hand);
            available.push(fold.available);
            threshold.push(fold.threshold);
            at.push(fold.at);
        }
        let r = sqlx::query(
            "UPDATE inventory_levels l
             SET on_hand = coalesce(u.on_hand, l.on_hand),
                 available = coalesce(u.available, l.available),
                 reserved = coalesce(u.on_hand, l.on_hand) - coalesce(u.available, l.available),
                 low_stock_threshold = coalesce(u.threshold, l.low_stock_threshold),
                 updated_at = u.at
             FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::timestamptz[])
                  AS u(sku, on_hand, available, threshold, at)
             WHERE l.sku = u.sku",
        )
        .bind(&order)
        .bind(&on_hand)
        .bind(&available)
        .bind(&threshold)
        .bind(&at)
        .execute(conn)
        .await?;
        anyhow::ensure!(
            r.rows_affected() == order.len() as u64,
            "inventory levels: {} of {} skus are tracked",
            r.rows_affected(),
            order.len()
        );
        Ok(())
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        use InventoryEvent as E;
        let sku = event.aggregate_id.as_str();
        // (on hand when the event says, available, when)
        let (on_hand, available, at) = match decode::<InventoryEvent>(event)? {
            E::InventoryTracked {
                sku: tracked,
                low_stock_threshold,
                at,
            } => {
                conn.execute(
                    TRACK,
                    args![tracked.as_str(), i64::from(low_stock_threshold), at],
                )
                .await?;
                return Ok(());
            }
            E::LowStockThresholdChanged {
                low_stock_threshold,
                at,
            } => {
                let changed = conn
                    .execute(
                        "UPDATE inventory_levels SET low_stock_threshold = $2, updated_at = $3
                         WHERE sku = $1",
                        args![sku, i64::from(low_stock_threshold), at],
                    )
                    .await?;
                return one_changed(changed, "inventory threshold");
            }
            // The flag is derived from the levels; the crossing itself is for alerts.
            E::LowStockDetected { .. } => return Ok(()),
            E::StockReceived {
                on_hand,
                available,
                at,
                ..
            }
            | E::StockAdjusted {
                on_hand,
                available,
                at,
                ..
            }
            | E::ReservationCommitted {
                on_hand,
                available,
                at,
                ..
            } => (Some(on_hand), available, at),
            E::StockReserved { available, at, .. }
            | E::ReservationReleased { available, at, .. }
            | E::ReservationExpired { available, at, .. } => (None, available, at),
        };
        let changed = conn
            .execute(
                "UPDATE inventory_levels
                 SET on_hand = coalesce($2, on_hand), available = $3,
                     reserved = coalesce($2, on_hand) - $3, updated_at = $4
                 WHERE sku = $1",
                args![sku, on_hand.map(i64::from), i64::from(available), at],
            )
            .await?;
        one_changed(changed, "inventory levels")
    }
}
