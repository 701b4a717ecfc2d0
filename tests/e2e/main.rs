//! Black-box tests of the whole platform over HTTP: each test starts it in-process on
//! port 0 with its own database and JetStream stream prefix.

mod addresses;
mod attacks;
mod auth;
mod bola;
mod catalog_cache;
mod checkout;
mod emails;
mod guest_carts;
mod helpers;
mod inbox;
mod payments;
mod plumbing;
mod rate_limits;
mod shop;
mod smoke;
mod smtp;
mod staff;
mod subscriptions;
