//! The coupon aggregate: one discount code, its terms and every use of it.
//!
//! **Aggregate id: the normalised code** ([`CouponCode::as_str`]: trimmed, upper case),
//! so looking a code up is loading its stream, and two coupons cannot share a code.
//!
//! A coupon grants a [`Discount`](crate::pricing::Discount) (a percentage in basis
//! points or a fixed amount, never more than the subtotal) on a merchandise subtotal of
//! at least its minimum, inside its validity window `[valid_from, valid_until)`, while
//! active, at most `usage_limit` times in all and `per_customer_limit` times per
//! customer (and once per order).
//!
//! **Limits under concurrency.** Every redemption is a command to this one aggregate,
//! so two checkouts racing for the last use are two writers of one stream: optimistic
//! concurrency lets exactly one commit, and the other is decided again on the fresh
//! state (`Dispatcher::execute_retrying`), where the limit refuses it. No counter lives
//! outside the aggregate.
//!
//! **Idempotency.** `RedeemCoupon` carries a `redemption_id` chosen deterministically by
//! the checkout (from its order): repeating it with the same details is a no-op even
//! after the coupon expired or ran out, so a retried checkout keeps its discount;
//! reusing the id with other details is refused. `ReleaseRedemption` (the order was
//! cancelled before payment) gives the use back once; repeating it is a no-op.
//! `CreateCoupon` repeated with the same terms and `DeactivateCoupon` repeated are
//! no-ops too.
//!
//! The state keeps every redemption (to answer repeats), so a heavily used coupon is a
//! long stream: load it with snapshots.

mod aggregate;
mod command;
mod error;
mod event;
mod values;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use aggregate::{Coupon, CouponTerms};
pub use command::CouponCommand;
pub use error::CouponError;
pub use event::CouponEvent;
pub use values::{CouponCode, CouponCodeError};

use crate::aggregate::Aggregate;
use crate::schema::Upcaster;

/// The JSON Schema of [`CouponEvent`], for `schemas/events/coupon.json`.
pub(crate) fn event_schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![(Coupon::TYPE, schemars::schema_for!(CouponEvent))]
}

/// No coupon event has an older version yet.
pub(crate) fn upcasters() -> Vec<Upcaster> {
    Vec::new()
}
