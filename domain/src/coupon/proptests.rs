//! Invariants of a coupon over random command sequences: limits always hold, and the
//! counts always match the outstanding redemptions.

use std::collections::BTreeMap;

use proptest::prelude::*;
use uuid::Uuid;

use super::tests::{at, create, eur};
use super::*;
use crate::aggregate::Aggregate;

fn command() -> impl Strategy<Value = CouponCommand> {
    let customer = (0u128..3).prop_map(Uuid::from_u128);
    let id = (0u128..8).prop_map(|n| Uuid::from_u128(0x100 + n));
    let order = (0u128..6).prop_map(|n| Uuid::from_u128(0x200 + n));
    let day = (-2i64..35).prop_map(at);
    prop_oneof![
        1 => Just(create()),
        1 => day.clone().prop_map(|at| CouponCommand::DeactivateCoupon { at }),
        12 => (id.clone(), customer, order, 1_000i64..6_000, day.clone()).prop_map(
            |(redemption_id, customer_id, order_id, subtotal, at)| CouponCommand::RedeemCoupon {
                redemption_id,
                customer_id,
                order_id,
                subtotal: eur(subtotal),
                at,
            }
        ),
        5 => (id, day).prop_map(|(redemption_id, at)| CouponCommand::ReleaseRedemption {
            redemption_id,
            at
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn limits_hold_and_counts_match(commands in prop::collection::vec(command(), 0..60)) {
        let mut coupon = Coupon::default();
        // Deactivation comes rarely first; start from a created coupon most of the time.
        coupon.apply(&coupon.handle(create()).unwrap()[0]);
        for command in commands {
            let Ok(events) = coupon.handle(command) else { continue };
            for e in &events {
                coupon.apply(e);
            }
            let terms = coupon.terms().unwrap().clone();
            let outstanding: Vec<_> = coupon.outstanding().collect();
            prop_assert_eq!(coupon.uses() as usize, outstanding.len());
            prop_assert!(coupon.uses() <= terms.usage_limit.unwrap());
            let mut by_customer: BTreeMap<Uuid, u32> = BTreeMap::new();
            let mut orders = std::collections::BTreeSet::new();
            for (customer, order, subtotal, discount) in &outstanding {
                *by_customer.entry(*customer).or_default() += 1;
                // One outstanding redemption per order.
                prop_assert!(orders.insert(*order));
                prop_assert!(subtotal.amount_minor() >= terms.minimum_subtotal.unwrap().amount_minor());
                prop_assert!(!discount.is_negative());
                prop_assert!(discount.amount_minor() <= subtotal.amount_minor());
                prop_assert_eq!(*discount, terms.discount.amount_for(*subtotal).unwrap());
            }
            for (customer, n) in by_customer {
                prop_assert_eq!(coupon.uses_by(customer), n);
                prop_assert!(n <= terms.per_customer_limit.unwrap());
            }
            // Every event reports the count it leaves behind.
            for e in &events {
                if let CouponEvent::CouponRedeemed { uses, .. }
                | CouponEvent::CouponRedemptionReleased { uses, .. } = e
                {
                    prop_assert_eq!(*uses, coupon.uses());
                }
            }
        }
    }
}
