//! Black-box tests of the whole platform over HTTP: each test starts it in-process on
//! port 0 with its own database and JetStream stream prefix.

mod attacks;
mod auth;
mod checkout;
mod helpers;
mod inbox;
mod rate_limits;
mod shop;
mod smoke;
mod smtp;
