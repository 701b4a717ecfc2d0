//! The command layer against a real PostgreSQL, a fresh database per test.

mod checkout;
mod coupons;
mod durability;
mod helpers;
mod inventory;
mod log;
mod products;
#[cfg(feature = "stripe")]
mod stripe;
mod units;
mod users;
