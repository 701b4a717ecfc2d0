//! `carts`: one row per cart with its lines as JSONB, found by owner (a user's open
//! cart, a guest's open cart) with one indexed lookup.

use chrono::{DateTime, Utc};
use emporium_domain::cart::{CartEvent, CartOwner};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use super::{aggregate_uuid, one_changed};
use crate::args;
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::{Conn, Value};

/// Builds `carts`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CartsProjection;

const SCHEMA: &str = "
CREATE TABLE carts (
    cart_id        uuid        PRIMARY KEY,
    user_id        uuid,
    guest_key      text,
    currency       text        NOT NULL,
    -- open | checked_out | merged
    status         text        NOT NULL DEFAULT 'open',
    -- [{sku, product_id, quantity}] while open; priced lines once checked out.
    lines          jsonb       NOT NULL DEFAULT '[]',
    item_count     bigint      NOT NULL DEFAULT 0,
    subtotal_minor bigint,
    merged_into    uuid,
    opened_at      timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    closed_at      timestamptz
);
CREATE INDEX carts_user ON carts (user_id, updated_at DESC) WHERE status = 'open';
CREATE INDEX carts_guest ON carts (guest_key) WHERE status = 'open';
";

/// SQLite takes the same DDL: its column types are affinities (`uuid`, `jsonb` and
/// `timestamptz` hold blobs and text as the sql module stores them), and it has
/// partial indexes.
const SQLITE_SCHEMA: &str = SCHEMA;

/// A line of an open cart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LineView {
    sku: String,
    product_id: Uuid,
    quantity: i64,
}

#[async_trait::async_trait]
impl Projection for CartsProjection {
    fn name(&self) -> &'static str {
        "carts"
    }

    fn version(&self) -> u32 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["carts"]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn sqlite_schema(&self) -> Option<&'static str> {
        Some(SQLITE_SCHEMA)
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["cart"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        use CartEvent as E;
        let cart_id = aggregate_uuid(event)?;
        match decode::<CartEvent>(event)? {
            E::CartOpened {
                cart_id,
                owner,
                currency,
                opened_at,
            } => {
                let (user_id, guest_key) = match owner {
                    CartOwner::User { user_id } => (Some(user_id), None),
                    CartOwner::Guest { guest_key } => (None, Some(guest_key.as_str().to_owned())),
                };
                conn.execute(
                    "INSERT INTO carts (cart_id, user_id, guest_key, currency, opened_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $5)",
                    args![cart_id, user_id, guest_key, currency.code(), opened_at],
                )
                .await?;
                Ok(())
            }
            E::ItemAddedToCart {
                sku,
                product_id,
                line_quantity,
                added_at,
                ..
            } => {
                let mut lines = load(conn, cart_id).await?;
                set_line(
                    &mut lines,
                    sku.as_str(),
                    product_id,
                    i64::from(line_quantity.get()),
                );
                save(conn, cart_id, &lines, added_at).await
            }
            E::ItemQuantityChanged {
                sku,
                product_id,
                quantity,
                changed_at,
                ..
            } => {
                let mut lines = load(conn, cart_id).await?;
                set_line(
                    &mut lines,
                    sku.as_str(),
                    product_id,
                    i64::from(quantity.get()),
                );
                save(conn, cart_id, &lines, changed_at).await
            }
            E::ItemRemovedFromCart {
                sku, removed_at, ..
            } => {
                let mut lines = load(conn, cart_id).await?;
                lines.retain(|l| l.sku != sku.as_str());
                save(conn, cart_id, &lines, removed_at).await
            }
            E::CartCleared { cleared_at } => save(conn, cart_id, &[], cleared_at).await,
            E::GuestCartMerged {
                lines: merged,
                merged_at,
                ..
            } => {
                let mut lines = load(conn, cart_id).await?;
                for line in merged {
                    set_line(
                        &mut lines,
                        line.sku.as_str(),
                        line.product_id,
                        i64::from(line.quantity.get()),
                    );
                }
                save(conn, cart_id, &lines, merged_at).await
            }
            E::CartMergedInto {
                into_cart_id,
                merged_at,
            } => {
                let changed = conn
                    .execute(
                        "UPDATE carts SET status = 'merged', merged_into = $2, updated_at = $3,
                                          closed_at = $3
                         WHERE cart_id = $1",
                        args![cart_id, into_cart_id, merged_at],
                    )
                    .await?;
                one_changed(changed, "cart")
            }
            E::CartCheckedOut {
                lines,
                subtotal,
                checked_out_at,
                ..
            } => {
                let items: i64 = lines.iter().map(|l| i64::from(l.quantity.get())).sum();
                let changed = conn
                    .execute(
                        "UPDATE carts SET status = 'checked_out', lines = $2, item_count = $3,
                                          subtotal_minor = $4, updated_at = $5, closed_at = $5
                         WHERE cart_id = $1",
                        args![
                            cart_id,
                            Value::json(&lines)?,
                            items,
                            subtotal.amount_minor(),
                            checked_out_at
                        ],
                    )
                    .await?;
                one_changed(changed, "cart")
            }
        }
    }
}

fn set_line(lines: &mut Vec<LineView>, sku: &str, product_id: Uuid, quantity: i64) {
    match lines.iter_mut().find(|l| l.sku == sku) {
        Some(line) => line.quantity = quantity,
        None => lines.push(LineView {
            sku: sku.to_owned(),
            product_id,
            quantity,
        }),
    }
}

async fn load(conn: &mut Conn<'_>, cart_id: Uuid) -> anyhow::Result<Vec<LineView>> {
    let lines: Option<Json<Vec<LineView>>> = conn
        .scalar_optional("SELECT lines FROM carts WHERE cart_id = $1", args![cart_id])
        .await?;
    Ok(lines
        .ok_or_else(|| anyhow::anyhow!("cart {cart_id} was never opened"))?
        .0)
}

async fn save(
    conn: &mut Conn<'_>,
    cart_id: Uuid,
    lines: &[LineView],
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let items: i64 = lines.iter().map(|l| l.quantity).sum();
    let changed = conn
        .execute(
            "UPDATE carts SET lines = $2, item_count = $3, updated_at = $4 WHERE cart_id = $1",
            args![cart_id, Value::json(lines)?, items, at],
        )
        .await?;
    one_changed(changed, "cart")
}
