//! The embedded mode in one process, as the gateway runs it: a burst of commands
//! against an embedded (SQLite) store with every embedded projection running beside
//! it into `read.db`, woken after each commit. One acknowledgement line per committed
//! command on stdout, flushed before the writer's next command starts:
//!
//! ```text
//! product <product id> <position>        CreateProduct
//! stock <sku> <units received so far> <position>   TrackInventory (0), ReceiveStock
//! cart <cart id> <sku> <position>        OpenCart (sku `-`), AddItem
//! ```
//!
//! Configured by environment variables: `EVENTS_DB` and `READ_DB` (the two files,
//! required), `WRITERS` (concurrent writers, default 4) and `BATCH_SIZE` (events per
//! projection batch, default 16: small, so a kill is likely to land mid-batch). It
//! runs until killed: the kill -9 test kills it mid-burst and checks, after a
//! restart on the same files, that every acknowledged command's effect reaches the
//! read models exactly once.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use emporium_commands::catalog::Products;
use emporium_commands::store::SqliteStore;
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::cart::{Cart, CartCommand, CartOwner};
use emporium_domain::catalog::{Attributes, Description, ProductCommand, ProductName, Slug};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::metadata::Actor;
use emporium_domain::{Currency, EventMetadata, Money, Quantity, Sku};
use emporium_projections::projection::embedded::{EmbeddedConfig, EmbeddedProjections, ReadDb};
use emporium_projections::projection::{self, Projection};
use uuid::Uuid;

fn meta() -> EventMetadata {
    EventMetadata::new(Uuid::new_v4(), Actor::System("burst".into()), Utc::now())
}

/// Writes one acknowledgement line and flushes it: what the parent reads was
/// acknowledged.
fn ack(line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    std::env::var(name)
        .ok()
        .map(|v| v.parse::<T>())
        .transpose()
        .with_context(|| name.to_owned())
        .map(|v| v.unwrap_or(default))
}

struct Writer {
    products: Products<SqliteStore>,
    inventory: Dispatcher<Inventory, SqliteStore>,
    carts: Dispatcher<Cart, SqliteStore>,
    wake: emporium_projections::projection::embedded::WakeHandle,
}

impl Writer {
    fn position(committed: &emporium_commands::Committed) -> anyhow::Result<i64> {
        committed.position.context("a command that recorded")
    }

    /// Runs until an error (or the kill): each round creates a product, tracks and
    /// receives its stock twice, and adds it to this writer's cart.
    async fn run(&self, burst: &str, writer: usize) -> anyhow::Result<()> {
        let cart_id = Uuid::new_v4();
        let cart = cart_id.to_string();
        let opened = self
            .carts
            .execute(
                &cart,
                CartCommand::OpenCart {
                    cart_id,
                    owner: CartOwner::User {
                        user_id: Uuid::new_v4(),
                    },
                    currency: Currency::EUR,
                    at: Utc::now(),
                },
                &meta(),
            )
            .await?;
        self.wake.wake();
        ack(format_args!("cart {cart} - {}", Self::position(&opened)?))?;
        for round in 0_u64.. {
            let sku = Sku::parse(&format!("{burst}-{writer}-{round}"))?;
            let product_id = Uuid::new_v4();
            let created = self
                .products
                .execute(
                    product_id,
                    ProductCommand::CreateProduct {
                        product_id,
                        sku: sku.clone(),
                        slug: Slug::parse(&sku.as_str().to_ascii_lowercase())?,
                        name: ProductName::parse(&format!("Burst {sku}"))?,
                        description: Description::parse("Made in a hurry.")?,
                        category_id: Uuid::from_u128(1),
                        tags: BTreeSet::new(),
                        attributes: Attributes::default(),
                        price: Money::new(1_000 + i64::try_from(round % 50)?, Currency::EUR),
                        at: Utc::now(),
                    },
                    &meta(),
                )
                .await?;
            self.wake.wake();
            ack(format_args!(
                "product {product_id} {}",
                Self::position(&created)?
            ))?;
            let tracked = self
                .inventory
                .execute(
                    sku.as_str(),
                    InventoryCommand::TrackInventory {
                        sku: sku.clone(),
                        low_stock_threshold: 2,
                        at: Utc::now(),
                    },
                    &meta(),
                )
                .await?;
            self.wake.wake();
            ack(format_args!("stock {sku} 0 {}", Self::position(&tracked)?))?;
            let mut received = 0;
            for units in [3, 4] {
                let committed = self
                    .inventory
                    .execute(
                        sku.as_str(),
                        InventoryCommand::ReceiveStock {
                            quantity: Quantity::new(units)?,
                            at: Utc::now(),
                        },
                        &meta(),
                    )
                    .await?;
                self.wake.wake();
                received += units;
                ack(format_args!(
                    "stock {sku} {received} {}",
                    Self::position(&committed)?
                ))?;
            }
            let added = self
                .carts
                .execute(
                    &cart,
                    CartCommand::AddItem {
                        sku: sku.clone(),
                        product_id,
                        quantity: Quantity::new(1)?,
                        at: Utc::now(),
                    },
                    &meta(),
                )
                .await?;
            self.wake.wake();
            ack(format_args!(
                "cart {cart} {sku} {}",
                Self::position(&added)?
            ))?;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events = PathBuf::from(std::env::var("EVENTS_DB").context("EVENTS_DB is required")?);
    let read = PathBuf::from(std::env::var("READ_DB").context("READ_DB is required")?);
    let writers: usize = env_or("WRITERS", 4)?;
    let batch_size: usize = env_or("BATCH_SIZE", 16)?;
    let store = SqliteStore::open(&events).await?;
    let read = ReadDb::open(&read).await?;
    let projections: Vec<Arc<dyn Projection>> = projection::all()
        .into_iter()
        .filter(|p| p.sqlite_schema().is_some())
        .collect();
    let running = EmbeddedProjections::start(
        store.pool().clone(),
        read,
        projections,
        EmbeddedConfig {
            batch_size,
            poll: Duration::from_millis(50),
            error_backoff: Duration::from_millis(50),
            ..EmbeddedConfig::default()
        },
    )
    .await?;
    // Each burst has SKUs of its own, so bursts on the same files never collide.
    let burst = format!("B{}", &Uuid::new_v4().simple().to_string()[..8]).to_ascii_uppercase();
    let writer = Arc::new(Writer {
        products: Products::over(store.clone()),
        inventory: Dispatcher::over(store.clone(), Loading::Replay),
        carts: Dispatcher::over(store.clone(), Loading::Replay),
        wake: running.wake_handle(),
    });
    let tasks: Vec<_> = (0..writers)
        .map(|n| {
            let writer = Arc::clone(&writer);
            let burst = burst.clone();
            tokio::spawn(async move { writer.run(&burst, n).await })
        })
        .collect();
    for task in tasks {
        task.await.context("writer task")??;
    }
    running.shutdown().await;
    Ok(())
}
