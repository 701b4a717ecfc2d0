//! Staff stock operations (receive, adjust with a reason, low-stock threshold) and
//! the inventory listings, over `inventory_levels`.
//!
//! Only a SKU the catalogue has claimed (a product's or a variant's, from
//! `unique_keys`, which never lags) has stock; one not tracked yet starts being
//! tracked by the first staff operation on it.

use chrono::{DateTime, Utc};
use emporium_commands::CommandError;
use emporium_commands::EventStore as _;
use emporium_commands::catalog::SKU_SCOPE;
use emporium_domain::inventory::{AdjustmentReason, InventoryCommand, InventoryError};
use emporium_domain::{Quantity, Sku};
use emporium_projections::args;
use emporium_projections::sql::Backend;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Staff, cursor, page_size, read_error};
use crate::error::ApiError;

/// The projection an inventory answer waits for.
const PROJECTION: &str = "inventory";

/// Why stock was adjusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StockReason {
    Damaged,
    Lost,
    Found,
    Recount,
    Other,
}

impl From<StockReason> for AdjustmentReason {
    fn from(r: StockReason) -> Self {
        match r {
            StockReason::Damaged => Self::Damaged,
            StockReason::Lost => Self::Lost,
            StockReason::Found => Self::Found,
            StockReason::Recount => Self::Recount,
            StockReason::Other => Self::Other,
        }
    }
}

/// A SKU's stock as `inventory_levels` has it, with its product.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct LevelRow {
    pub(crate) sku: String,
    pub(crate) product_id: Option<Uuid>,
    pub(crate) on_hand: i64,
    pub(crate) reserved: i64,
    pub(crate) available: i64,
    pub(crate) low_stock_threshold: i64,
    pub(crate) low_stock: bool,
    pub(crate) updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "l.sku, s.product_id, l.on_hand, l.reserved, l.available, \
     l.low_stock_threshold, l.low_stock, l.updated_at";

/// Which levels a listing shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct InventoryFilter {
    /// SKUs starting with this (case-sensitive, as SKUs are).
    pub(crate) sku_prefix: Option<String>,
    /// Only SKUs below their threshold.
    pub(crate) low_stock_only: bool,
}

/// One page of levels, by SKU.
#[derive(Debug)]
pub(crate) struct InventoryPage {
    pub(crate) items: Vec<(String, LevelRow)>,
    pub(crate) has_next_page: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct SkuCursor {
    s: String,
}

fn inventory_error(e: CommandError<InventoryError>) -> ApiError {
    match e {
        CommandError::Rejected(e) => {
            let message = e.to_string();
            match e {
                InventoryError::NegativeStock { .. } => {
                    ApiError::bad_input("delta", "stock_negative", message)
                }
                InventoryError::BelowReserved { .. } => {
                    ApiError::bad_input("delta", "stock_below_reserved", message)
                }
                InventoryError::ZeroAdjustment => {
                    ApiError::bad_input("delta", "adjustment_zero", message)
                }
                InventoryError::StockOverflow { .. } => {
                    ApiError::bad_input("quantity", "stock_max", message)
                }
                InventoryError::NotTracked => ApiError::NotFound { what: "sku" },
                other => ApiError::internal(anyhow::anyhow!("inventory refused: {other}")),
            }
        }
        CommandError::Conflict { .. } => ApiError::Conflict,
        CommandError::Unexpected(e) => ApiError::Internal(e),
    }
}

fn escape_like_prefix(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A case-sensitive prefix match of `l.sku` against `$1` and the pattern to bind:
/// `LIKE` on PostgreSQL, `GLOB` on SQLite (whose `LIKE` ignores ASCII case).
fn sku_prefix(backend: Backend, prefix: &str) -> (&'static str, String) {
    match backend {
        Backend::Postgres => ("l.sku LIKE $1", escape_like_prefix(prefix)),
        Backend::Sqlite => ("l.sku GLOB $1", escape_glob_prefix(prefix)),
    }
}

fn escape_glob_prefix(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out.push('*');
    out
}

impl Staff {
    /// The SKU, which the catalogue must have claimed (`NOT_FOUND` otherwise).
    async fn catalogue_sku(&self, raw: &str) -> Result<Sku, ApiError> {
        let sku = Sku::parse(raw).map_err(|_| ApiError::NotFound { what: "sku" })?;
        let holder = self
            .store
            .holder(SKU_SCOPE, sku.as_str())
            .await
            .map_err(ApiError::Internal)?;
        if holder.is_some() {
            Ok(sku)
        } else {
            Err(ApiError::NotFound { what: "sku" })
        }
    }

    /// Runs an inventory command, first tracking the SKU when it is not tracked
    /// yet (with `threshold`).
    async fn run_inventory(
        &self,
        staff_id: Uuid,
        sku: &Sku,
        threshold: u32,
        command: InventoryCommand,
    ) -> Result<Option<i64>, ApiError> {
        let metadata = self.metadata(staff_id);
        let current = self
            .inventory
            .load(sku.as_str())
            .await
            .map_err(inventory_error)?;
        let mut position = None;
        if current.sku().is_none() {
            match self
                .inventory
                .execute(
                    sku.as_str(),
                    InventoryCommand::TrackInventory {
                        sku: sku.clone(),
                        low_stock_threshold: threshold,
                        at: self.clock.now(),
                    },
                    &metadata,
                )
                .await
            {
                Ok(c) => position = c.position,
                // Tracked concurrently: carry on.
                Err(CommandError::Rejected(InventoryError::AlreadyTracked)) => {}
                Err(e) => return Err(inventory_error(e)),
            }
        }
        let committed = self
            .inventory
            .execute(sku.as_str(), command, &metadata)
            .await
            .map_err(inventory_error)?;
        Ok(committed.position.or(position))
    }

    async fn level_answer(&self, sku: &Sku, position: Option<i64>) -> Result<LevelRow, ApiError> {
        self.shop.read_your_writes(PROJECTION, position).await?;
        // The storefront shows stock from the catalogue: once this answers, listings
        // (and the catalogue cache) show the new level too.
        self.shop.read_your_writes("catalog", position).await?;
        self.level(sku.as_str()).await?.ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("sku {sku} is not in the read model yet"))
        })
    }

    /// One SKU's level.
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn level(&self, sku: &str) -> Result<Option<LevelRow>, ApiError> {
        self.read
            .fetch_optional(
                &format!(
                    "SELECT {COLUMNS} FROM inventory_levels l
                     LEFT JOIN catalog_stock s ON s.sku = l.sku WHERE l.sku = $1"
                ),
                args![sku],
            )
            .await
            .map_err(|e| read_error(e, "read inventory level"))
    }

    /// Books units received into the warehouse.
    ///
    /// # Errors
    /// `NOT_FOUND` for a SKU the catalogue does not know, `BAD_USER_INPUT` for a
    /// quantity outside 1..=100,000.
    pub(crate) async fn receive_stock(
        &self,
        staff_id: Uuid,
        sku: &str,
        quantity: i64,
    ) -> Result<LevelRow, ApiError> {
        let quantity = crate::shop::parse_quantity(quantity)?;
        let sku = self.catalogue_sku(sku).await?;
        let position = self
            .run_inventory(
                staff_id,
                &sku,
                0,
                InventoryCommand::ReceiveStock {
                    quantity,
                    at: self.clock.now(),
                },
            )
            .await?;
        self.level_answer(&sku, position).await
    }

    /// Corrects units on hand by `delta` (never below zero or below what is
    /// reserved).
    ///
    /// # Errors
    /// `BAD_USER_INPUT` (`stock_negative`, `stock_below_reserved`, `adjustment_zero`),
    /// `NOT_FOUND`.
    pub(crate) async fn adjust_stock(
        &self,
        staff_id: Uuid,
        sku: &str,
        delta: i64,
        reason: StockReason,
    ) -> Result<LevelRow, ApiError> {
        if delta == 0 {
            return Err(ApiError::bad_input(
                "delta",
                "adjustment_zero",
                "an adjustment must change stock by at least one unit",
            ));
        }
        if delta.unsigned_abs() > u64::from(Quantity::MAX) {
            return Err(ApiError::bad_input(
                "delta",
                "adjustment_max",
                format!("an adjustment moves at most {} units", Quantity::MAX),
            ));
        }
        let sku = self.catalogue_sku(sku).await?;
        // Refused before tracking starts, so a refused adjustment records nothing.
        let current = self
            .inventory
            .load(sku.as_str())
            .await
            .map_err(inventory_error)?;
        if delta < 0 && i64::from(current.on_hand()) + delta < 0 {
            return Err(ApiError::bad_input(
                "delta",
                "stock_negative",
                format!(
                    "stock on hand cannot go negative: {} on hand, adjustment {delta}",
                    current.on_hand()
                ),
            ));
        }
        let position = self
            .run_inventory(
                staff_id,
                &sku,
                0,
                InventoryCommand::AdjustStock {
                    delta,
                    reason: reason.into(),
                    at: self.clock.now(),
                },
            )
            .await?;
        self.level_answer(&sku, position).await
    }

    /// Sets the low-stock threshold (0 turns alerts off).
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a negative or too large threshold, `NOT_FOUND`.
    pub(crate) async fn set_low_stock_threshold(
        &self,
        staff_id: Uuid,
        sku: &str,
        threshold: i64,
    ) -> Result<LevelRow, ApiError> {
        let threshold = u32::try_from(threshold)
            .ok()
            .filter(|t| *t <= Quantity::MAX)
            .ok_or_else(|| {
                ApiError::bad_input(
                    "threshold",
                    "threshold_range",
                    format!("must be between 0 and {}", Quantity::MAX),
                )
            })?;
        let sku = self.catalogue_sku(sku).await?;
        let current = self
            .inventory
            .load(sku.as_str())
            .await
            .map_err(inventory_error)?;
        let position = if current.sku().is_none() {
            self.inventory
                .execute(
                    sku.as_str(),
                    InventoryCommand::TrackInventory {
                        sku: sku.clone(),
                        low_stock_threshold: threshold,
                        at: self.clock.now(),
                    },
                    &self.metadata(staff_id),
                )
                .await
                .map_err(inventory_error)?
                .position
        } else if current.low_stock_threshold() == threshold {
            None
        } else {
            self.inventory
                .execute(
                    sku.as_str(),
                    InventoryCommand::ChangeLowStockThreshold {
                        low_stock_threshold: threshold,
                        at: self.clock.now(),
                    },
                    &self.metadata(staff_id),
                )
                .await
                .map_err(inventory_error)?
                .position
        };
        self.level_answer(&sku, position).await
    }

    /// Levels by SKU, a page at a time (keyset on the SKU).
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a page size outside 1..=100 or a foreign cursor.
    pub(crate) async fn inventory_levels(
        &self,
        filter: &InventoryFilter,
        first: i64,
        after: Option<&str>,
    ) -> Result<InventoryPage, ApiError> {
        let first = page_size(first)?;
        let after: Option<SkuCursor> = after.map(cursor::decode).transpose()?;
        let (prefix_match, prefix) = match filter.sku_prefix.as_deref() {
            Some(prefix) => {
                let (condition, pattern) = sku_prefix(self.read.backend(), prefix);
                (condition, Some(pattern))
            }
            None => ("true", None),
        };
        let mut rows: Vec<LevelRow> = self
            .read
            .fetch_all(
                &format!(
                    "SELECT {COLUMNS} FROM inventory_levels l
                     LEFT JOIN catalog_stock s ON s.sku = l.sku
                     WHERE ($1 IS NULL OR {prefix_match})
                       AND (NOT $2 OR l.low_stock)
                       AND ($3 IS NULL OR l.sku > $3)
                     ORDER BY l.sku LIMIT $4"
                ),
                args![prefix, filter.low_stock_only, after.map(|c| c.s), first + 1],
            )
            .await
            .map_err(|e| read_error(e, "list inventory levels"))?;
        let has_next_page = i64::try_from(rows.len()).unwrap_or(i64::MAX) > first;
        rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
        Ok(InventoryPage {
            items: rows
                .into_iter()
                .map(|r| (cursor::encode(&SkuCursor { s: r.sku.clone() }), r))
                .collect(),
            has_next_page,
        })
    }

    /// SKUs below their threshold, least available first.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a size outside 1..=100.
    pub(crate) async fn low_stock(&self, first: i64) -> Result<Vec<LevelRow>, ApiError> {
        let first = page_size(first)?;
        self.read
            .fetch_all(
                &format!(
                    "SELECT {COLUMNS} FROM inventory_levels l
                     LEFT JOIN catalog_stock s ON s.sku = l.sku
                     WHERE l.low_stock ORDER BY l.available, l.sku LIMIT $1"
                ),
                args![first],
            )
            .await
            .map_err(|e| read_error(e, "list low stock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_prefixes_are_literal() {
        assert_eq!(escape_like_prefix("A_%"), "A\\_\\%%");
        assert_eq!(escape_glob_prefix("A*?[b"), "A[*][?][[]b*");
    }
}
