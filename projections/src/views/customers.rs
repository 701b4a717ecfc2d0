//! `customers`: one row per user with profile, preferences and the address book
//! (JSONB). Credentials never reach it: password and reset-token hashes are dropped.

use chrono::{DateTime, Utc};
use emporium_domain::Address;
use emporium_domain::user::UserEvent;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use super::{aggregate_uuid, enum_text, json, one_changed};
use crate::args;
use crate::envelope::EventEnvelope;
use crate::projection::{Projection, decode};
use crate::sql::{Conn, Value};

/// Builds `customers`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomersProjection;

const SCHEMA: &str = "
CREATE TABLE customers (
    user_id                     uuid        PRIMARY KEY,
    email                       text        NOT NULL,
    email_verified              boolean     NOT NULL DEFAULT false,
    first_name                  text        NOT NULL,
    last_name                   text,
    phone                       text,
    role                        text        NOT NULL,
    active                      boolean     NOT NULL DEFAULT true,
    preferences                 jsonb       NOT NULL,
    -- [{address_id, address: {...}}] in the order they were added.
    addresses                   jsonb       NOT NULL DEFAULT '[]',
    default_shipping_address_id uuid,
    default_billing_address_id  uuid,
    registered_at               timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL
);
CREATE INDEX customers_email ON customers (email);
CREATE INDEX customers_registered ON customers (registered_at DESC);
CREATE INDEX customers_role ON customers (role, registered_at DESC);
";

/// SQLite takes the same DDL: `uuid`, `jsonb`, `timestamptz` and `boolean` are
/// affinities there (blobs, JSON text, RFC 3339 text, 0/1), and `false`/`true` are
/// its keywords too.
const SQLITE_SCHEMA: &str = SCHEMA;

/// An address-book entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AddressView {
    address_id: Uuid,
    address: serde_json::Value,
}

#[async_trait::async_trait]
impl Projection for CustomersProjection {
    fn name(&self) -> &'static str {
        "customers"
    }

    fn version(&self) -> u32 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["customers"]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn sqlite_schema(&self) -> Option<&'static str> {
        Some(SQLITE_SCHEMA)
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["user"]
    }

    async fn apply(&self, conn: &mut Conn<'_>, event: &EventEnvelope) -> anyhow::Result<()> {
        use UserEvent as E;
        let user_id = aggregate_uuid(event)?;
        // (assignments after `SET`, when, the value bound as `$3` if they use one)
        let (set, at, value): (&str, DateTime<Utc>, Option<Value>) = match decode::<UserEvent>(
            event,
        )? {
            E::UserRegistered {
                user_id,
                email,
                first_name,
                last_name,
                role,
                preferences,
                registered_at,
                // Credentials stay in the event log.
                password_hash: _,
            } => {
                conn.execute(
                        "INSERT INTO customers (user_id, email, first_name, last_name, role, preferences,
                                                registered_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                        args![
                            user_id,
                            email.as_str(),
                            first_name.as_str(),
                            last_name.as_ref().map(|n| n.as_str().to_owned()),
                            enum_text(&role)?,
                            json(&preferences)?,
                            registered_at
                        ],
                    )
                    .await?;
                return Ok(());
            }
            E::EmailVerified { email, verified_at } => (
                "email = $3, email_verified = true",
                verified_at,
                Some(Value::from(email.as_str())),
            ),
            E::PasswordChanged { changed_at: at, .. }
            | E::PasswordResetRequested {
                requested_at: at, ..
            }
            | E::PasswordResetConfirmed { reset_at: at, .. } => ("", at, None),
            E::ProfileUpdated {
                first_name,
                last_name,
                phone,
                updated_at,
            } => {
                let changed = conn
                        .execute(
                            "UPDATE customers SET first_name = $2, last_name = $3, phone = $4, updated_at = $5
                             WHERE user_id = $1",
                            args![
                                user_id,
                                first_name.as_str(),
                                last_name.as_ref().map(|n| n.as_str().to_owned()),
                                phone.as_ref().map(|p| p.as_str().to_owned()),
                                updated_at
                            ],
                        )
                        .await?;
                return one_changed(changed, "customer");
            }
            E::PreferencesUpdated {
                preferences,
                updated_at,
            } => (
                "preferences = $3",
                updated_at,
                Some(Value::from(json(&preferences)?)),
            ),
            E::AddressAdded {
                address_id,
                address,
                added_at,
            } => {
                let mut book = load(conn, user_id).await?;
                book.push(entry(address_id, &address)?);
                return save(conn, user_id, &book, added_at).await;
            }
            E::AddressUpdated {
                address_id,
                address,
                updated_at,
            } => {
                let mut book = load(conn, user_id).await?;
                let slot = book
                    .iter_mut()
                    .find(|a| a.address_id == address_id)
                    .ok_or_else(|| anyhow::anyhow!("address {address_id} is not in the book"))?;
                *slot = entry(address_id, &address)?;
                return save(conn, user_id, &book, updated_at).await;
            }
            E::AddressRemoved {
                address_id,
                was_default_shipping,
                was_default_billing,
                removed_at,
            } => {
                let mut book = load(conn, user_id).await?;
                book.retain(|a| a.address_id != address_id);
                save(conn, user_id, &book, removed_at).await?;
                let changed = conn
                        .execute(
                            "UPDATE customers
                             SET default_shipping_address_id = CASE WHEN $2 THEN NULL ELSE default_shipping_address_id END,
                                 default_billing_address_id = CASE WHEN $3 THEN NULL ELSE default_billing_address_id END
                             WHERE user_id = $1",
                            args![user_id, was_default_shipping, was_default_billing],
                        )
                        .await?;
                return one_changed(changed, "customer");
            }
            // A typed uuid argument: no `::uuid` cast, which SQLite lacks.
            E::DefaultShippingAddressSet { address_id, set_at } => (
                "default_shipping_address_id = $3",
                set_at,
                Some(Value::from(address_id)),
            ),
            E::DefaultBillingAddressSet { address_id, set_at } => (
                "default_billing_address_id = $3",
                set_at,
                Some(Value::from(address_id)),
            ),
            E::RoleChanged {
                role, changed_at, ..
            } => (
                "role = $3",
                changed_at,
                Some(Value::from(enum_text(&role)?)),
            ),
            E::UserDeactivated { deactivated_at } => ("active = false", deactivated_at, None),
            E::UserReactivated { reactivated_at } => ("active = true", reactivated_at, None),
        };
        let sql = if set.is_empty() {
            "UPDATE customers SET updated_at = $2 WHERE user_id = $1".to_owned()
        } else {
            format!("UPDATE customers SET {set}, updated_at = $2 WHERE user_id = $1")
        };
        let mut values = args![user_id, at];
        values.0.extend(value);
        one_changed(conn.execute(&sql, values).await?, "customer")
    }
}

fn entry(address_id: Uuid, address: &Address) -> anyhow::Result<AddressView> {
    Ok(AddressView {
        address_id,
        address: json(address)?,
    })
}

async fn load(conn: &mut Conn<'_>, user_id: Uuid) -> anyhow::Result<Vec<AddressView>> {
    let book: Option<Json<Vec<AddressView>>> = conn
        .scalar_optional(
            "SELECT addresses FROM customers WHERE user_id = $1",
            args![user_id],
        )
        .await?;
    Ok(book
        .ok_or_else(|| anyhow::anyhow!("customer {user_id} never registered"))?
        .0)
}

async fn save(
    conn: &mut Conn<'_>,
    user_id: Uuid,
    book: &[AddressView],
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let changed = conn
        .execute(
            "UPDATE customers SET addresses = $2, updated_at = $3 WHERE user_id = $1",
            args![user_id, Value::json(book)?, at],
        )
        .await?;
    one_changed(changed, "customer")
}
