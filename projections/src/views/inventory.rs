//! `inventory_levels`: stock per SKU (on hand, reserved, available) and the low-stock
//! flag. Inventory events carry the levels after the change, so each is one update.

use emporium_domain::inventory::InventoryEvent;
use sqlx::PgConnection;

use super::one_row;
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};

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

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["inventory"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &EventEnvelope) -> anyhow::Result<()> {
        use InventoryEvent as E;
        let sku = event.aggregate_id.as_str();
        // (on hand when the event says, available, when)
        let (on_hand, available, at) = match decode::<InventoryEvent>(event)? {
            E::InventoryTracked {
                sku: tracked,
                low_stock_threshold,
                at,
            } => {
                sqlx::query(
                    "INSERT INTO inventory_levels (sku, low_stock_threshold, tracked_at, updated_at)
                     VALUES ($1, $2, $3, $3)",
                )
                .bind(tracked.as_str())
                .bind(i64::from(low_stock_threshold))
                .bind(at)
                .execute(conn)
                .await?;
                return Ok(());
            }
            E::LowStockThresholdChanged {
                low_stock_threshold,
                at,
            } => {
                let r = sqlx::query(
                    "UPDATE inventory_levels SET low_stock_threshold = $2, updated_at = $3
                     WHERE sku = $1",
                )
                .bind(sku)
                .bind(i64::from(low_stock_threshold))
                .bind(at)
                .execute(conn)
                .await?;
                return one_row(r, "inventory threshold");
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
        let r = sqlx::query(
            "UPDATE inventory_levels
             SET on_hand = coalesce($2, on_hand), available = $3,
                 reserved = coalesce($2, on_hand) - $3, updated_at = $4
             WHERE sku = $1",
        )
        .bind(sku)
        .bind(on_hand.map(i64::from))
        .bind(i64::from(available))
        .bind(at)
        .execute(conn)
        .await?;
        one_row(r, "inventory levels")
    }
}
