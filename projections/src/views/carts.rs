//! `carts`: one row per cart with its lines as JSONB, found by owner (a user's open
//! cart, a guest's open cart) with one indexed lookup.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, SubsecRound as _, Utc};
use emporium_domain::cart::{CartEvent, CartOwner};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use super::{aggregate_uuid, one_changed};
use crate::args;
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::{Backend, Conn, Value};

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
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// A batch in a fixed number of statements for its line changes: the touched
    /// carts' lines are read in one query, changed in memory event by event, and
    /// written once per cart at the end (one statement on PostgreSQL). Opening,
    /// merging and checking out a cart keep their own statement, in event order: a
    /// cart with pending line changes is written before it is closed.
    async fn apply_batch(
        &self,
        conn: &mut Conn<'_>,
        events: &[EventEnvelope],
    ) -> anyhow::Result<()> {
        use CartEvent as E;
        let mut decoded = Vec::with_capacity(events.len());
        for event in events {
            decoded.push((aggregate_uuid(event)?, decode::<CartEvent>(event)?));
        }
        let touched: Vec<Uuid> = decoded
            .iter()
            .filter(|(_, e)| changes_lines(e))
            .map(|(id, _)| *id)
            .collect();
        let mut open = prefetch(conn, &touched).await?;
        for (cart_id, event) in decoded {
            match event {
                E::CartOpened {
                    cart_id,
                    owner,
                    currency,
                    opened_at,
                } => {
                    let (user_id, guest_key) = match owner {
                        CartOwner::User { user_id } => (Some(user_id), None),
                        CartOwner::Guest { guest_key } => {
                            (None, Some(guest_key.as_str().to_owned()))
                        }
                    };
                    conn.execute(
                        "INSERT INTO carts (cart_id, user_id, guest_key, currency, opened_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $5)",
                        args![cart_id, user_id, guest_key, currency.code(), opened_at],
                    )
                    .await?;
                    open.insert(cart_id, Pending::clean(Vec::new(), opened_at));
                }
                E::ItemAddedToCart {
                    sku,
                    product_id,
                    line_quantity,
                    added_at,
                    ..
                } => {
                    let cart = pending(conn, &mut open, cart_id).await?;
                    set_line(
                        &mut cart.lines,
                        sku.as_str(),
                        product_id,
                        i64::from(line_quantity.get()),
                    );
                    cart.touch(added_at);
                }
                E::ItemQuantityChanged {
                    sku,
                    product_id,
                    quantity,
                    changed_at,
                    ..
                } => {
                    let cart = pending(conn, &mut open, cart_id).await?;
                    set_line(
                        &mut cart.lines,
                        sku.as_str(),
                        product_id,
                        i64::from(quantity.get()),
                    );
                    cart.touch(changed_at);
                }
                E::ItemRemovedFromCart {
                    sku, removed_at, ..
                } => {
                    let cart = pending(conn, &mut open, cart_id).await?;
                    cart.lines.retain(|l| l.sku != sku.as_str());
                    cart.touch(removed_at);
                }
                E::CartCleared { cleared_at } => {
                    let cart = pending(conn, &mut open, cart_id).await?;
                    cart.lines.clear();
                    cart.touch(cleared_at);
                }
                E::GuestCartMerged {
                    lines: merged,
                    merged_at,
                    ..
                } => {
                    let cart = pending(conn, &mut open, cart_id).await?;
                    for line in merged {
                        set_line(
                            &mut cart.lines,
                            line.sku.as_str(),
                            line.product_id,
                            i64::from(line.quantity.get()),
                        );
                    }
                    cart.touch(merged_at);
                }
                E::CartMergedInto {
                    into_cart_id,
                    merged_at,
                } => {
                    flush_one(conn, &mut open, cart_id).await?;
                    let changed = conn
                        .execute(
                            "UPDATE carts SET status = 'merged', merged_into = $2, updated_at = $3,
                                              closed_at = $3
                             WHERE cart_id = $1",
                            args![cart_id, into_cart_id, merged_at],
                        )
                        .await?;
                    one_changed(changed, "cart")?;
                }
                E::CartCheckedOut {
                    lines,
                    subtotal,
                    checked_out_at,
                    ..
                } => {
                    flush_one(conn, &mut open, cart_id).await?;
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
                    one_changed(changed, "cart")?;
                }
            }
        }
        save_all(conn, open).await
    }
}

/// Whether the event changes an open cart's lines (and so needs them read).
fn changes_lines(event: &CartEvent) -> bool {
    use CartEvent as E;
    matches!(
        event,
        E::ItemAddedToCart { .. }
            | E::ItemQuantityChanged { .. }
            | E::ItemRemovedFromCart { .. }
            | E::CartCleared { .. }
            | E::GuestCartMerged { .. }
    )
}

/// A cart's lines during a batch, and whether they changed since they were read.
#[derive(Debug)]
struct Pending {
    lines: Vec<LineView>,
    at: DateTime<Utc>,
    dirty: bool,
}

impl Pending {
    fn clean(lines: Vec<LineView>, at: DateTime<Utc>) -> Self {
        Self {
            lines,
            at,
            dirty: false,
        }
    }

    fn touch(&mut self, at: DateTime<Utc>) {
        self.at = at;
        self.dirty = true;
    }
}

/// The lines of `ids` (those that exist), in one query.
async fn prefetch(conn: &mut Conn<'_>, ids: &[Uuid]) -> anyhow::Result<HashMap<Uuid, Pending>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    // SQLite gets the ids as a JSON array of hyphenated text; its keys are blobs.
    let sql = match conn.backend() {
        Backend::Postgres => "SELECT cart_id, lines, updated_at FROM carts WHERE cart_id = ANY($1)",
        Backend::Sqlite => {
            "SELECT cart_id, lines, updated_at FROM carts
             WHERE cart_id IN (SELECT unhex(replace(value, '-', '')) FROM json_each($1))"
        }
    };
    let rows: Vec<(Uuid, Json<Vec<LineView>>, DateTime<Utc>)> =
        conn.fetch_all(sql, args![ids.to_vec()]).await?;
    Ok(rows
        .into_iter()
        .map(|(id, Json(lines), at)| (id, Pending::clean(lines, at)))
        .collect())
}

/// The batch's copy of `cart_id`'s lines, read now if the batch has none.
async fn pending<'a>(
    conn: &mut Conn<'_>,
    open: &'a mut HashMap<Uuid, Pending>,
    cart_id: Uuid,
) -> anyhow::Result<&'a mut Pending> {
    Ok(match open.entry(cart_id) {
        Entry::Occupied(cart) => cart.into_mut(),
        Entry::Vacant(slot) => {
            let (lines, at) = load(conn, cart_id).await?;
            slot.insert(Pending::clean(lines, at))
        }
    })
}

/// Writes `cart_id`'s pending lines (if changed) and forgets them, before a
/// statement that closes the cart.
async fn flush_one(
    conn: &mut Conn<'_>,
    open: &mut HashMap<Uuid, Pending>,
    cart_id: Uuid,
) -> anyhow::Result<()> {
    match open.remove(&cart_id) {
        Some(cart) if cart.dirty => save(conn, cart_id, &cart.lines, cart.at).await,
        _ => Ok(()),
    }
}

/// Writes every changed cart: one statement on PostgreSQL, one per cart on SQLite
/// (no round trips there).
async fn save_all(conn: &mut Conn<'_>, open: HashMap<Uuid, Pending>) -> anyhow::Result<()> {
    let dirty: Vec<(Uuid, Pending)> = open.into_iter().filter(|(_, c)| c.dirty).collect();
    match (conn.backend(), dirty.as_slice()) {
        (_, []) => Ok(()),
        (Backend::Postgres, [_, _, ..]) => {
            let rows: Vec<serde_json::Value> = dirty
                .iter()
                .map(|(id, c)| {
                    serde_json::json!({
                        "cart_id": id,
                        "lines": c.lines,
                        "item_count": c.lines.iter().map(|l| l.quantity).sum::<i64>(),
                        // PostgreSQL rounds text to microseconds; a bound time
                        // is truncated to them, as `save` writes it.
                        "updated_at": c.at.trunc_subsecs(6),
                    })
                })
                .collect();
            let changed = conn
                .execute(
                    "UPDATE carts c SET lines = u.lines, item_count = u.item_count,
                                        updated_at = u.updated_at
                     FROM jsonb_to_recordset($1) AS u(cart_id uuid, lines jsonb,
                                                      item_count bigint, updated_at timestamptz)
                     WHERE c.cart_id = u.cart_id",
                    args![Value::Json(Some(serde_json::Value::Array(rows)))],
                )
                .await?;
            anyhow::ensure!(
                usize::try_from(changed).ok() == Some(dirty.len()),
                "carts: expected {} rows, changed {changed}",
                dirty.len()
            );
            Ok(())
        }
        _ => {
            for (id, cart) in &dirty {
                save(conn, *id, &cart.lines, cart.at).await?;
            }
            Ok(())
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

async fn load(
    conn: &mut Conn<'_>,
    cart_id: Uuid,
) -> anyhow::Result<(Vec<LineView>, DateTime<Utc>)> {
    let row: Option<(Json<Vec<LineView>>, DateTime<Utc>)> = conn
        .fetch_optional(
            "SELECT lines, updated_at FROM carts WHERE cart_id = $1",
            args![cart_id],
        )
        .await?;
    let (Json(lines), at) =
        row.ok_or_else(|| anyhow::anyhow!("cart {cart_id} was never opened"))?;
    Ok((lines, at))
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
