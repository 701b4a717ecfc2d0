//! A burst of add-to-cart commands against an embedded (SQLite) store, printing one
//! acknowledgement line per committed command on stdout, flushed before the next
//! command starts: `ack <cart id> <sequence> <position>`. Configured by environment
//! variables: `STORE` (the database file, required), `WRITERS` (concurrent carts,
//! default 4) and `DURABILITY` (`full`, the default, or `normal`). It runs until
//! killed: the kill -9 durability test kills it mid-burst and checks that every
//! acknowledged command's event is in the store.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use chrono::Utc;
use emporium_commands::store::{Durability, SqliteStore};
use emporium_commands::{Dispatcher, Loading};
use emporium_domain::cart::{Cart, CartCommand, CartOwner};
use emporium_domain::metadata::Actor;
use emporium_domain::{Currency, EventMetadata, Quantity, Sku};
use uuid::Uuid;

fn meta() -> EventMetadata {
    EventMetadata::new(Uuid::new_v4(), Actor::System("burst".into()), Utc::now())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = PathBuf::from(std::env::var("STORE").context("STORE is required")?);
    let writers: usize = std::env::var("WRITERS")
        .ok()
        .map(|w| w.parse())
        .transpose()
        .context("WRITERS")?
        .unwrap_or(4);
    let durability = match std::env::var("DURABILITY").as_deref() {
        Ok("normal") => Durability::Normal,
        Ok("full") | Err(_) => Durability::Full,
        Ok(other) => anyhow::bail!("DURABILITY `{other}`: full or normal"),
    };
    let store = SqliteStore::open_with(&path, durability).await?;
    let carts = std::sync::Arc::new(Dispatcher::<Cart, SqliteStore>::over(
        store,
        Loading::Replay,
    ));
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let carts = std::sync::Arc::clone(&carts);
            tokio::spawn(async move {
                let cart_id = Uuid::new_v4();
                let id = cart_id.to_string();
                let open = CartCommand::OpenCart {
                    cart_id,
                    owner: CartOwner::User {
                        user_id: Uuid::new_v4(),
                    },
                    currency: Currency::EUR,
                    at: Utc::now(),
                };
                let mut command = open;
                for i in 0_u128.. {
                    let committed = carts.execute(&id, command, &meta()).await?;
                    let position = committed.position.context("a command that recorded")?;
                    // One line per acknowledgement, flushed before the next command:
                    // what the parent reads was acknowledged.
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {id} {} {position}", committed.last_sequence)?;
                    out.flush()?;
                    drop(out);
                    command = CartCommand::AddItem {
                        sku: Sku::parse(&format!("SKU-{}", i % 50))?,
                        product_id: Uuid::from_u128(i % 50),
                        quantity: Quantity::new(1)?,
                        at: Utc::now(),
                    };
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await.context("writer task")??;
    }
    Ok(())
}
