//! The `checkouts` table: the process manager's own durable state (see the
//! migrations, `commands/migrations/` and `commands/migrations-sqlite/`), and the one
//! read of the event store it needs beyond aggregates (the priced cart snapshot).
//!
//! Every statement goes through [`Db`], on the event store's own database: one text
//! for both backends, except where the dialects part (interval arithmetic, the
//! median, a UUID compared with an event's aggregate id).

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use emporium_domain::cart::CartEvent;
use emporium_domain::coupon::CouponCode;
use emporium_domain::pricing::ShippingMethodCode;
use emporium_domain::user::UserEvent;
use emporium_domain::{Address, Currency, Money};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use super::CheckoutFailure;
use crate::args;
use crate::payments::{CardNumber, PaymentMethod};
use crate::sql::{Backend, Db, Value};
use emporium_domain::cart::CheckedOutLine;

/// The customer's checkout choices, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Choices {
    pub(super) shipping_address: Address,
    pub(super) billing_address: Address,
    pub(super) shipping_method: ShippingMethodCode,
    pub(super) coupon: Option<CouponCode>,
}

/// A payment method as stored until the provider has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum StoredMethod {
    Provider(String),
    Card(String),
}

impl StoredMethod {
    pub(super) fn from_method(m: &PaymentMethod) -> Self {
        match m {
            PaymentMethod::Provider(id) => Self::Provider(id.clone()),
            PaymentMethod::Card(card) => Self::Card(card.digits().to_owned()),
        }
    }

    pub(super) fn to_method(&self) -> anyhow::Result<PaymentMethod> {
        Ok(match self {
            Self::Provider(id) => PaymentMethod::Provider(id.clone()),
            Self::Card(digits) => PaymentMethod::Card(
                CardNumber::parse(digits).map_err(|e| anyhow::anyhow!("stored card: {e}"))?,
            ),
        })
    }
}

/// One checkout row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct CheckoutRow {
    pub(super) order_id: Uuid,
    pub(super) cart_id: Uuid,
    pub(super) customer_id: Uuid,
    pub(super) email: Option<String>,
    pub(super) client_ip: Option<String>,
    pub(super) request: Json<Choices>,
    pub(super) payment_method: Option<Json<StoredMethod>>,
    pub(super) failure: Option<Json<CheckoutFailure>>,
    pub(super) expires_at: DateTime<Utc>,
}

const COLUMNS: &str = "order_id, cart_id, customer_id, email, client_ip, request, payment_method, failure, expires_at";

/// A new row.
pub(super) struct NewCheckout<'a> {
    pub(super) order_id: Uuid,
    pub(super) cart_id: Uuid,
    pub(super) customer_id: Uuid,
    pub(super) email: Option<&'a str>,
    pub(super) client_ip: Option<&'a str>,
    pub(super) choices: &'a Choices,
    pub(super) method: &'a StoredMethod,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) next_attempt_at: DateTime<Utc>,
    pub(super) now: DateTime<Utc>,
}

/// Inserts the row unless this order or this cart already has one; returns the row
/// that stands (the first submission's, for a duplicate).
/// Records a new checkout; `true` with the row when this call created it, else the
/// row already recorded for the order or the cart.
pub(super) async fn insert(db: &Db, new: NewCheckout<'_>) -> anyhow::Result<(CheckoutRow, bool)> {
    let inserted: Option<CheckoutRow> = db
        .fetch_optional(
            &format!(
                "INSERT INTO checkouts (order_id, cart_id, customer_id, email, client_ip, request,
                     payment_method, expires_at, next_attempt_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
                 ON CONFLICT DO NOTHING
                 RETURNING {COLUMNS}"
            ),
            args![
                new.order_id,
                new.cart_id,
                new.customer_id,
                new.email,
                new.client_ip,
                Value::json(new.choices)?,
                Value::json(new.method)?,
                new.expires_at,
                new.next_attempt_at,
                new.now,
            ],
        )
        .await
        .map_err(|e| anyhow::Error::from(e).context("insert checkout"))?;
    if let Some(row) = inserted {
        return Ok((row, true));
    }
    let row: Option<CheckoutRow> = db
        .fetch_optional(
            &format!(
                "SELECT {COLUMNS} FROM checkouts WHERE order_id = $1 OR cart_id = $2
                 ORDER BY (order_id = $1) DESC LIMIT 1"
            ),
            args![new.order_id, new.cart_id],
        )
        .await
        .map_err(|e| anyhow::Error::from(e).context("read checkout"))?;
    row.map(|row| (row, false))
        .ok_or_else(|| anyhow::anyhow!("checkout {} vanished after insert", new.order_id))
}

/// The row of an order's checkout.
pub(super) async fn find(db: &Db, order_id: Uuid) -> anyhow::Result<Option<CheckoutRow>> {
    db.fetch_optional(
        &format!("SELECT {COLUMNS} FROM checkouts WHERE order_id = $1"),
        args![order_id],
    )
    .await
    .map_err(|e| anyhow::Error::from(e).context("read checkout"))
}

/// When the checkout of a cart was started.
pub(super) async fn created_at(db: &Db, cart_id: Uuid) -> anyhow::Result<Option<DateTime<Utc>>> {
    db.scalar_optional(
        "SELECT created_at FROM checkouts WHERE cart_id = $1",
        args![cart_id],
    )
    .await
    .map_err(|e| anyhow::Error::from(e).context("read checkout"))
}

/// The row of a cart's checkout.
pub(super) async fn find_by_cart(db: &Db, cart_id: Uuid) -> anyhow::Result<Option<CheckoutRow>> {
    db.fetch_optional(
        &format!("SELECT {COLUMNS} FROM checkouts WHERE cart_id = $1"),
        args![cart_id],
    )
    .await
    .map_err(|e| anyhow::Error::from(e).context("read checkout"))
}

/// Records why the checkout ended without (or before) payment.
pub(super) async fn set_failure(
    db: &Db,
    order_id: Uuid,
    failure: &CheckoutFailure,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    db.execute(
        "UPDATE checkouts SET failure = COALESCE(failure, $2), updated_at = $3 WHERE order_id = $1",
        args![order_id, Value::json(failure)?, now],
    )
    .await
    .map_err(|e| anyhow::Error::from(e).context("record checkout failure"))?;
    Ok(())
}

/// Deletes a checkout that ended before its order was placed.
pub(super) async fn forget(db: &Db, order_id: Uuid) -> anyhow::Result<()> {
    db.execute("DELETE FROM checkouts WHERE order_id = $1", args![order_id])
        .await
        .map_err(|e| anyhow::Error::from(e).context("forget checkout"))?;
    Ok(())
}

/// Schedules the next attempt (open) or closes the checkout, at the end of a run:
/// also records the order total (for the customer's history in fraud checks) and,
/// once the provider has the payment method, forgets it. One row write per run.
pub(super) async fn schedule(
    db: &Db,
    order_id: Uuid,
    end: RunEnd,
    next_attempt_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    db.execute(
        "UPDATE checkouts SET state = $2, paid = paid OR $3, next_attempt_at = $4, updated_at = $5,
             grand_total_minor = COALESCE($6, grand_total_minor),
             payment_method = CASE WHEN $7 THEN NULL ELSE payment_method END
         WHERE order_id = $1",
        args![
            order_id,
            if end.open { "open" } else { "closed" },
            end.paid,
            next_attempt_at,
            now,
            end.total.map(Money::amount_minor),
            end.clear_method,
        ],
    )
    .await
    .map_err(|e| anyhow::Error::from(e).context("schedule checkout"))?;
    Ok(())
}

/// How a run ends, for [`schedule`].
#[derive(Debug, Clone, Copy)]
pub(super) struct RunEnd {
    pub(super) open: bool,
    pub(super) paid: bool,
    pub(super) total: Option<Money>,
    pub(super) clear_method: bool,
}

/// Counts a failed attempt and backs off: the next attempt `base` x 2^attempts
/// (at most 2^10) after `now`.
pub(super) async fn backoff(
    db: &Db,
    order_id: Uuid,
    now: DateTime<Utc>,
    base: chrono::Duration,
    clear_method: bool,
) -> anyhow::Result<()> {
    let base_ms = i32::try_from(base.num_milliseconds()).unwrap_or(i32::MAX);
    let (sql, args) = match db.backend() {
        Backend::Postgres => (
            "UPDATE checkouts SET attempts = attempts + 1,
                 next_attempt_at = $2 + $3 * power(2, LEAST(attempts, 10))::int * interval '1 millisecond',
                 updated_at = $2,
                 payment_method = CASE WHEN $4 THEN NULL ELSE payment_method END
             WHERE order_id = $1",
            args![order_id, now, base_ms, clear_method],
        ),
        // No interval arithmetic on text times: the eleven possible next attempts are
        // computed here and the row's attempt count picks one.
        Backend::Sqlite => (
            "UPDATE checkouts SET attempts = attempts + 1,
                 next_attempt_at = json_extract($3, '$[' || min(attempts, 10) || ']'),
                 updated_at = $2,
                 payment_method = CASE WHEN $4 THEN NULL ELSE payment_method END
             WHERE order_id = $1",
            args![order_id, now, sqlite_backoffs(now, base_ms), clear_method],
        ),
    };
    db.execute(sql, args)
        .await
        .map_err(|e| anyhow::Error::from(e).context("back off checkout"))?;
    Ok(())
}

/// `now + base_ms x 2^n` for n in 0..=10, as SQLite stores times (as
/// [`crate::sql`]'s `sqlite_time`).
fn sqlite_backoffs(now: DateTime<Utc>, base_ms: i32) -> Vec<String> {
    (0..=10)
        .map(|n| {
            (now + chrono::Duration::milliseconds(i64::from(base_ms) << n))
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        })
        .collect()
}

/// Open checkouts whose reservation expired by `now`.
pub(super) async fn expired(db: &Db, now: DateTime<Utc>, limit: i64) -> anyhow::Result<Vec<Uuid>> {
    db.scalar_all(
        "SELECT order_id FROM checkouts WHERE state = 'open' AND expires_at <= $1
         ORDER BY expires_at LIMIT $2",
        args![now, limit],
    )
    .await
    .map_err(|e| anyhow::Error::from(e).context("find expired checkouts"))
}

/// Paid checkouts whose order shipped (or was delivered) and whose reservations are
/// not committed yet: the event store says so, the row remembers the commit.
pub(super) async fn shipped(db: &Db, limit: i64) -> anyhow::Result<Vec<Uuid>> {
    // The events name the order by its hyphenated id; SQLite keeps the row's as a blob.
    let order_key = match db.backend() {
        Backend::Postgres => "c.order_id::text",
        Backend::Sqlite => {
            "lower(substr(hex(c.order_id), 1, 8) || '-' || substr(hex(c.order_id), 9, 4) || '-'
                || substr(hex(c.order_id), 13, 4) || '-' || substr(hex(c.order_id), 17, 4) || '-'
                || substr(hex(c.order_id), 21))"
        }
    };
    db.scalar_all(
        &format!(
            "SELECT c.order_id FROM checkouts c
             WHERE c.paid AND NOT c.stock_committed
               AND EXISTS (SELECT 1 FROM events e
                           WHERE e.aggregate_type = 'order' AND e.aggregate_id = {order_key}
                             AND e.event_type IN ('OrderShipped', 'OrderDelivered'))
             LIMIT $1"
        ),
        args![limit],
    )
    .await
    .map_err(|e| anyhow::Error::from(e).context("find shipped checkouts"))
}

/// Records that the order's reservations are committed.
pub(super) async fn mark_committed(db: &Db, order_id: Uuid) -> anyhow::Result<()> {
    db.execute(
        "UPDATE checkouts SET stock_committed = true WHERE order_id = $1",
        args![order_id],
    )
    .await
    .map_err(|e| anyhow::Error::from(e).context("mark stock committed"))?;
    Ok(())
}

/// Open checkouts due for an attempt by `now`.
pub(super) async fn due(db: &Db, now: DateTime<Utc>, limit: i64) -> anyhow::Result<Vec<Uuid>> {
    db.scalar_all(
        "SELECT order_id FROM checkouts WHERE state = 'open' AND next_attempt_at <= $1
         ORDER BY next_attempt_at LIMIT $2",
        args![now, limit],
    )
    .await
    .map_err(|e| anyhow::Error::from(e).context("find due checkouts"))
}

/// What the fraud rules need from the checkouts, in one query: for the customer, the
/// e-mail and the client address, the checkouts in the hour and the day before `now`
/// (not counting `order_id`; `None` for an absent e-mail or address), and the
/// customer's paid orders (how many, the median total in minor units).
pub(super) struct FraudCounts {
    pub(super) customer: (i64, i64),
    pub(super) email: Option<(i64, i64)>,
    pub(super) ip: Option<(i64, i64)>,
    pub(super) completed: i64,
    pub(super) median: Option<f64>,
    /// When the customer registered, from their account's first event (read in the
    /// same statement); `None` without an account.
    pub(super) registered_at: Option<DateTime<Utc>>,
}

/// The customer's first event, `UserRegistered`, as two scalar columns (version,
/// payload) of the fraud counts' statement, `$user` naming the user id as text.
fn registration_columns(user: &str) -> String {
    format!(
        "(SELECT event_version FROM events
           WHERE aggregate_type = 'user' AND aggregate_id = {user} AND sequence = 1),
         (SELECT payload FROM events
           WHERE aggregate_type = 'user' AND aggregate_id = {user} AND sequence = 1)"
    )
}

/// `registered_at` of a stored `UserRegistered` (upcast as a load would).
fn registered_at(
    version: Option<String>,
    payload: Option<Json<serde_json::Value>>,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let (Some(version), Some(Json(payload))) = (version, payload) else {
        return Ok(None);
    };
    let payload = crate::es::upcast_stored("user", "UserRegistered", &version, payload);
    match serde_json::from_value::<UserEvent>(payload)
        .context("decode the customer's first event")?
    {
        UserEvent::UserRegistered { registered_at, .. } => Ok(Some(registered_at)),
        _ => anyhow::bail!("the customer's first event is not UserRegistered"),
    }
}

pub(super) async fn fraud_counts(
    db: &Db,
    customer_id: Uuid,
    email: Option<&str>,
    client_ip: Option<&str>,
    order_id: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<FraudCounts> {
    type Counts = (i64, i64, i64, i64, i64, i64);
    type Registration = (Option<String>, Option<Json<serde_json::Value>>);
    let (counts, completed, median, registration): (Counts, i64, Option<f64>, Registration) =
        match db.backend() {
            Backend::Postgres => {
                let window = |column: &str, param: &str| {
                    format!(
                        "(SELECT count(*) FILTER (WHERE created_at > $4 - interval '1 hour')
                       FROM checkouts WHERE {column} = {param} AND order_id <> $5
                        AND created_at > $4 - interval '1 day' AND created_at <= $4),
                     (SELECT count(*)
                       FROM checkouts WHERE {column} = {param} AND order_id <> $5
                        AND created_at > $4 - interval '1 day' AND created_at <= $4)"
                    )
                };
                // The column names are constants, never input.
                let sql = format!(
                "SELECT {cust}, {mail}, {ip}, h.n, h.median, {registration}
                   FROM (SELECT count(*) AS n,
                                percentile_cont(0.5) WITHIN GROUP (ORDER BY grand_total_minor) AS median
                           FROM checkouts
                          WHERE customer_id = $1 AND paid AND grand_total_minor IS NOT NULL) h",
                cust = window("customer_id", "$1"),
                mail = window("email", "$2"),
                ip = window("client_ip", "$3"),
                registration = registration_columns("$6"),
            );
                #[allow(clippy::type_complexity, reason = "one row of the statement above")]
                let (a, b, c, d, e, f, n, median, version, payload): (
                    i64,
                    i64,
                    i64,
                    i64,
                    i64,
                    i64,
                    i64,
                    Option<f64>,
                    Option<String>,
                    Option<Json<serde_json::Value>>,
                ) = db
                    .fetch_one(
                        &sql,
                        args![
                            customer_id,
                            email,
                            client_ip,
                            now,
                            order_id,
                            customer_id.to_string()
                        ],
                    )
                    .await
                    .map_err(|e| anyhow::Error::from(e).context("count recent checkouts"))?;
                ((a, b, c, d, e, f), n, median, (version, payload))
            }
            // No interval arithmetic on text times (the window's bounds come as
            // arguments) and no percentile_cont (the median of the customer's few paid
            // totals is taken here).
            Backend::Sqlite => {
                let window = |column: &str, param: &str| {
                    format!(
                        "(SELECT count(*) FILTER (WHERE created_at > $6)
                       FROM checkouts WHERE {column} = {param} AND order_id <> $5
                        AND created_at > $7 AND created_at <= $4),
                     (SELECT count(*)
                       FROM checkouts WHERE {column} = {param} AND order_id <> $5
                        AND created_at > $7 AND created_at <= $4)"
                    )
                };
                let sql = format!(
                    "SELECT {cust}, {mail}, {ip}, {registration}",
                    cust = window("customer_id", "$1"),
                    mail = window("email", "$2"),
                    ip = window("client_ip", "$3"),
                    registration = registration_columns("$8"),
                );
                #[allow(clippy::type_complexity, reason = "one row of the statement above")]
                let (a, b, c, d, e, f, version, payload): (
                    i64,
                    i64,
                    i64,
                    i64,
                    i64,
                    i64,
                    Option<String>,
                    Option<Json<serde_json::Value>>,
                ) = db
                    .fetch_one(
                        &sql,
                        args![
                            customer_id,
                            email,
                            client_ip,
                            now,
                            order_id,
                            now - chrono::Duration::hours(1),
                            now - chrono::Duration::days(1),
                            customer_id.to_string(),
                        ],
                    )
                    .await
                    .map_err(|e| anyhow::Error::from(e).context("count recent checkouts"))?;
                let counts: Counts = (a, b, c, d, e, f);
                let totals: Vec<i64> = db
                    .scalar_all(
                        "SELECT grand_total_minor FROM checkouts
                      WHERE customer_id = $1 AND paid AND grand_total_minor IS NOT NULL
                      ORDER BY grand_total_minor",
                        args![customer_id],
                    )
                    .await
                    .map_err(|e| anyhow::Error::from(e).context("read paid checkout totals"))?;
                let n = i64::try_from(totals.len()).unwrap_or(i64::MAX);
                (counts, n, median(&totals), (version, payload))
            }
        };
    let (c_hour, c_day, m_hour, m_day, i_hour, i_day) = counts;
    Ok(FraudCounts {
        customer: (c_hour, c_day),
        email: email.map(|_| (m_hour, m_day)),
        ip: client_ip.map(|_| (i_hour, i_day)),
        completed,
        median,
        registered_at: registered_at(registration.0, registration.1)?,
    })
}

/// The median of sorted values as PostgreSQL's `percentile_cont(0.5)` takes it: the
/// middle one, or the mean of the middle two.
#[allow(clippy::cast_precision_loss, reason = "order totals in minor units")]
fn median(sorted: &[i64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0
    })
}

/// The priced snapshot of a checked-out cart, from its `CartCheckedOut` event.
pub(super) struct CartSnapshot {
    pub(super) lines: Vec<CheckedOutLine>,
    pub(super) subtotal: Money,
    pub(super) currency: Currency,
}

/// Reads the cart's `CartCheckedOut` event (the cart state keeps no prices).
pub(super) async fn checked_out_cart(
    db: &Db,
    cart_id: Uuid,
) -> anyhow::Result<Option<CartSnapshot>> {
    let payload: Option<Json<serde_json::Value>> = db
        .scalar_optional(
            "SELECT payload FROM events
             WHERE aggregate_type = 'cart' AND aggregate_id = $1 AND event_type = 'CartCheckedOut'
             ORDER BY sequence DESC LIMIT 1",
            args![cart_id.to_string()],
        )
        .await
        .map_err(|e| anyhow::Error::from(e).context("read cart checkout"))?;
    let Some(Json(payload)) = payload else {
        return Ok(None);
    };
    match serde_json::from_value::<CartEvent>(payload)? {
        CartEvent::CartCheckedOut {
            lines,
            subtotal,
            currency,
            ..
        } => Ok(Some(CartSnapshot {
            lines,
            subtotal,
            currency,
        })),
        other => anyhow::bail!("expected CartCheckedOut, found {}", other_name(&other)),
    }
}

fn other_name(e: &CartEvent) -> &'static str {
    e.into()
}

#[cfg(test)]
mod tests {
    use emporium_domain::AddressInput;

    use super::*;

    fn address() -> Address {
        Address::parse(AddressInput {
            full_name: "Ada Lovelace".into(),
            line1: "Unter den Linden 1".into(),
            city: "Berlin".into(),
            postal_code: "10117".into(),
            country: "DE".into(),
            ..AddressInput::default()
        })
        .unwrap()
    }

    /// A row's attempts back off 100 ms x 2^n from each failure, and `due` finds it
    /// only once that time has come: on `db`, whose tables are migrated.
    async fn backoff_doubles_and_due_waits_for_it(db: &Db) {
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let order_id = Uuid::new_v4();
        let choices = Choices {
            shipping_address: address(),
            billing_address: address(),
            shipping_method: ShippingMethodCode::parse("standard").unwrap(),
            coupon: None,
        };
        let method = StoredMethod::Card("4242424242424242".into());
        let (row, inserted) = insert(
            db,
            NewCheckout {
                order_id,
                cart_id: Uuid::new_v4(),
                customer_id: Uuid::new_v4(),
                email: Some("ada@example.com"),
                client_ip: None,
                choices: &choices,
                method: &method,
                expires_at: now + chrono::Duration::minutes(15),
                next_attempt_at: now,
                now,
            },
        )
        .await
        .unwrap();
        assert!(inserted, "the first insert creates the row");
        assert_eq!(row.order_id, order_id);
        assert_eq!(row.request.0, choices);
        assert_eq!(due(db, now, 10).await.unwrap(), vec![order_id]);

        let ms = chrono::Duration::milliseconds;
        backoff(db, order_id, now, ms(100), false).await.unwrap();
        assert!(due(db, now + ms(99), 10).await.unwrap().is_empty());
        assert_eq!(due(db, now + ms(100), 10).await.unwrap(), vec![order_id]);
        backoff(db, order_id, now, ms(100), true).await.unwrap();
        assert!(due(db, now + ms(199), 10).await.unwrap().is_empty());
        assert_eq!(due(db, now + ms(200), 10).await.unwrap(), vec![order_id]);
        let row = find(db, order_id).await.unwrap().unwrap();
        assert!(row.payment_method.is_none(), "the method is forgotten");
        assert_eq!(
            expired(db, now + ms(900_000), 10).await.unwrap(),
            vec![order_id]
        );
    }

    /// The fraud windows count the customer's and the e-mail's other checkouts of
    /// the last hour and day, and the median of the paid totals, alike on `db`.
    async fn fraud_counts_see_the_windows_and_the_paid_median(db: &Db) {
        let now = Utc::now();
        let customer_id = Uuid::new_v4();
        let choices = Choices {
            shipping_address: address(),
            billing_address: address(),
            shipping_method: ShippingMethodCode::parse("standard").unwrap(),
            coupon: None,
        };
        let method = StoredMethod::Card("4242424242424242".into());
        let mut orders = Vec::new();
        for ago in [
            chrono::Duration::minutes(30),
            chrono::Duration::hours(5),
            chrono::Duration::days(2),
            chrono::Duration::zero(),
        ] {
            let order_id = Uuid::new_v4();
            insert(
                db,
                NewCheckout {
                    order_id,
                    cart_id: Uuid::new_v4(),
                    customer_id,
                    email: Some("ada@example.com"),
                    client_ip: None,
                    choices: &choices,
                    method: &method,
                    expires_at: now,
                    next_attempt_at: now,
                    now: now - ago,
                },
            )
            .await
            .unwrap();
            orders.push(order_id);
        }
        for (order_id, total) in [(orders[0], 1_000), (orders[1], 3_000), (orders[2], 2_500)] {
            let end = RunEnd {
                open: false,
                paid: true,
                total: Some(Money::new(total, Currency::EUR)),
                clear_method: true,
            };
            schedule(db, order_id, end, now, now).await.unwrap();
        }
        let counts = fraud_counts(
            db,
            customer_id,
            Some("ada@example.com"),
            None,
            orders[3],
            now,
        )
        .await
        .unwrap();
        assert_eq!(counts.customer, (1, 2));
        assert_eq!(counts.email, Some((1, 2)));
        assert_eq!(counts.ip, None);
        assert_eq!(counts.completed, 3);
        assert_eq!(counts.median, Some(2_500.0));
        assert_eq!(counts.registered_at, None, "no account, no registration");

        // The account's first event, stored at version 1.0: read in the same
        // statement and upcast as a load would.
        let payload = serde_json::json!({"UserRegistered": {
            "user_id": customer_id,
            "email": "ada@example.com",
            "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdDE$aGFzaA",
            "name": "Ada Lovelace",
            "role": "customer",
            "registered_at": "2025-06-15T15:06:40Z",
        }});
        let (sql, extra) = match db.backend() {
            Backend::Postgres => (
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                     event_version, payload, metadata)
                 VALUES ('user', $1, 1, 'UserRegistered', '1.0', $2, '{}')",
                args![],
            ),
            Backend::Sqlite => (
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                     event_version, payload, metadata, event_id, recorded_at)
                 VALUES ('user', $1, 1, 'UserRegistered', '1.0', $2, '{}', $3, $4)",
                args![Uuid::new_v4().to_string(), now],
            ),
        };
        let mut all = args![customer_id.to_string(), Value::json(&payload).unwrap()];
        all.0.extend(extra.0);
        db.execute(sql, all).await.unwrap();
        let counts = fraud_counts(db, customer_id, None, None, orders[3], now)
            .await
            .unwrap();
        assert_eq!(
            counts.registered_at,
            Some("2025-06-15T15:06:40Z".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn fraud_counts_on_postgres() {
        let test_db = emporium_tests::TestDatabase::create(4).await.unwrap();
        crate::db::migrate(test_db.pool()).await.unwrap();
        fraud_counts_see_the_windows_and_the_paid_median(&Db::Postgres(test_db.pool().clone()))
            .await;
        test_db.drop_database().await.unwrap();
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn fraud_counts_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(&dir.path().join("events.db"))
            .await
            .unwrap();
        fraud_counts_see_the_windows_and_the_paid_median(&Db::Sqlite(store.pool().clone())).await;
        store.close().await;
    }

    #[tokio::test]
    async fn backoff_on_postgres() {
        let test_db = emporium_tests::TestDatabase::create(4).await.unwrap();
        crate::db::migrate(test_db.pool()).await.unwrap();
        backoff_doubles_and_due_waits_for_it(&Db::Postgres(test_db.pool().clone())).await;
        test_db.drop_database().await.unwrap();
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn backoff_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(&dir.path().join("events.db"))
            .await
            .unwrap();
        backoff_doubles_and_due_waits_for_it(&Db::Sqlite(store.pool().clone())).await;
        store.close().await;
    }

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7]), Some(7.0));
        assert_eq!(median(&[1, 2, 10]), Some(2.0));
        assert_eq!(median(&[1, 2, 3, 10]), Some(2.5));
    }
}
