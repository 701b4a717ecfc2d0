//! Emporium's business rules, and nothing else.
//!
//! This crate owns the aggregates (user, catalog, inventory, cart, order, payment), the
//! commands they accept, the events they emit, their typed errors and the value objects
//! they are built from ([`Money`], [`Quantity`], ...).
//!
//! It deliberately does **not** perform I/O: no tokio, no sqlx, no async-nats, no HTTP.
//! An aggregate decides (`handle`) and evolves (`apply`); time, identifiers, password
//! hashes and prices looked up elsewhere come in through the command. Persistence,
//! publication and transport live in the outer crates (`commands`, `projections`,
//! `gateway`), which depend on this one and never the other way round.

pub mod activity;
pub mod address;
pub mod aggregate;
pub mod cart;
pub mod catalog;
pub mod coupon;
pub mod fraud;
pub mod inbox;
pub mod inventory;
pub mod metadata;
pub mod money;
pub mod order;
pub mod payment;
pub mod pricing;
pub mod quantity;
pub mod schema;
pub mod sealed;
pub mod sku;
pub mod user;

#[cfg(test)]
pub(crate) mod testing;

pub use address::{Address, AddressError, AddressInput, CountryCode};
pub use aggregate::{Aggregate, DomainEvent};
pub use metadata::EventMetadata;
pub use money::{Currency, Money, MoneyError};
pub use quantity::{Quantity, QuantityError};
pub use sealed::Sealed;
pub use sku::{Sku, SkuError};
