//! `carts`: one row per cart with its lines as JSONB, found by owner (a user's open
//! cart, a guest's open cart) with one indexed lookup.

use chrono::{DateTime, Utc};
use emporium_domain::cart::{CartEvent, CartOwner};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::{aggregate_uuid, json, one_row};
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};

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

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["cart"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &EventEnvelope) -> anyhow::Result<()> {
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
                sqlx::query(
                    "INSERT INTO carts (cart_id, user_id, guest_key, currency, opened_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(cart_id)
                .bind(user_id)
                .bind(guest_key)
                .bind(currency.code())
                .bind(opened_at)
                .execute(conn)
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
                let r = sqlx::query(
                    "UPDATE carts SET status = 'merged', merged_into = $2, updated_at = $3,
                                      closed_at = $3
                     WHERE cart_id = $1",
                )
                .bind(cart_id)
                .bind(into_cart_id)
                .bind(merged_at)
                .execute(conn)
                .await?;
                one_row(r, "cart")
            }
            E::CartCheckedOut {
                lines,
                subtotal,
                checked_out_at,
                ..
            } => {
                let items: i64 = lines.iter().map(|l| i64::from(l.quantity.get())).sum();
                let r = sqlx::query(
                    "UPDATE carts SET status = 'checked_out', lines = $2, item_count = $3,
                                      subtotal_minor = $4, updated_at = $5, closed_at = $5
                     WHERE cart_id = $1",
                )
                .bind(cart_id)
                .bind(json(&lines)?)
                .bind(items)
                .bind(subtotal.amount_minor())
                .bind(checked_out_at)
                .execute(conn)
                .await?;
                one_row(r, "cart")
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

async fn load(conn: &mut PgConnection, cart_id: Uuid) -> anyhow::Result<Vec<LineView>> {
    let lines: Option<Json<Vec<LineView>>> =
        sqlx::query_scalar("SELECT lines FROM carts WHERE cart_id = $1")
            .bind(cart_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(lines
        .ok_or_else(|| anyhow::anyhow!("cart {cart_id} was never opened"))?
        .0)
}

async fn save(
    conn: &mut PgConnection,
    cart_id: Uuid,
    lines: &[LineView],
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let items: i64 = lines.iter().map(|l| l.quantity).sum();
    let r = sqlx::query(
        "UPDATE carts SET lines = $2, item_count = $3, updated_at = $4 WHERE cart_id = $1",
    )
    .bind(cart_id)
    .bind(Json(lines))
    .bind(items)
    .bind(at)
    .execute(conn)
    .await?;
    one_row(r, "cart")
}
