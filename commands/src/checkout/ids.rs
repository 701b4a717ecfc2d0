//! Deterministic ids: every id the checkout creates is a UUID v5 of the order id (or,
//! for the order id itself, of the cart or of the client's idempotency key), so a
//! retried step, a resumed checkout and a duplicate submission all name the same
//! things and the aggregates' idempotency turns the repeat into a no-op.

use emporium_domain::Sku;
use uuid::Uuid;

/// The order a cart is checked out into: one cart, one order.
#[must_use]
pub fn order_for_cart(cart_id: Uuid) -> Uuid {
    Uuid::new_v5(&cart_id, b"order")
}

/// The order of a checkout the client named with its own idempotency key.
#[must_use]
pub fn order_for_key(customer_id: Uuid, key: &str) -> Uuid {
    Uuid::new_v5(&customer_id, format!("checkout:{key}").as_bytes())
}

/// The order's one payment (the session-wide convention shared with the webhook).
#[must_use]
pub fn payment(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&order_id, b"payment")
}

/// The stock reservation of one SKU of the order (lines sharing a SKU share it).
#[must_use]
pub fn reservation(order_id: Uuid, sku: &Sku) -> Uuid {
    Uuid::new_v5(
        &order_id,
        format!("reservation:{}", sku.as_str()).as_bytes(),
    )
}

/// The coupon redemption of the order.
#[must_use]
pub fn redemption(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&order_id, b"coupon")
}

/// The refund that compensates a cancellation after capture.
#[must_use]
pub fn cancellation_refund(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&order_id, b"refund:cancellation")
}

/// The id of the command the process manager sends at `step` (its causation id).
#[must_use]
pub fn command(order_id: Uuid, step: &str) -> Uuid {
    Uuid::new_v5(&order_id, format!("command:{step}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let cart = Uuid::new_v4();
        let order = order_for_cart(cart);
        assert_eq!(order, order_for_cart(cart));
        assert_eq!(payment(order), Uuid::new_v5(&order, b"payment"));
        let a = Sku::parse("A-1").unwrap();
        let b = Sku::parse("B-1").unwrap();
        let ids = [
            order,
            payment(order),
            reservation(order, &a),
            reservation(order, &b),
            redemption(order),
            cancellation_refund(order),
            command(order, "place"),
        ];
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert_ne!(order_for_key(cart, "k1"), order_for_key(cart, "k2"));
    }
}
