//! Given/when/then for every coupon command, accepted and refused.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::pricing::Discount;
use crate::testing::{given, given_no_history};
use crate::{Currency, Money};

pub(super) fn at(day: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap() + Duration::days(day)
}

pub(super) fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

pub(super) fn code() -> CouponCode {
    CouponCode::parse("summer-10").unwrap()
}

const ALICE: Uuid = Uuid::from_u128(0xA);
const BOB: Uuid = Uuid::from_u128(0xB);

fn redemption(n: u128) -> Uuid {
    Uuid::from_u128(0x100 + n)
}

fn order(n: u128) -> Uuid {
    Uuid::from_u128(0x200 + n)
}

/// 10 % off from 20.00, valid days 0 to 30, 3 uses, 2 per customer.
pub(super) fn create() -> CouponCommand {
    CouponCommand::CreateCoupon {
        code: code(),
        discount: Discount::percentage(1_000).unwrap(),
        minimum_subtotal: Some(eur(2_000)),
        valid_from: at(0),
        valid_until: Some(at(30)),
        usage_limit: Some(3),
        per_customer_limit: Some(2),
        at: at(-1),
    }
}

fn created() -> CouponEvent {
    CouponEvent::CouponCreated {
        code: code(),
        discount: Discount::percentage(1_000).unwrap(),
        minimum_subtotal: Some(eur(2_000)),
        valid_from: at(0),
        valid_until: Some(at(30)),
        usage_limit: Some(3),
        per_customer_limit: Some(2),
        at: at(-1),
    }
}

fn redeem(n: u128, customer: Uuid, subtotal: i64) -> CouponCommand {
    CouponCommand::RedeemCoupon {
        redemption_id: redemption(n),
        customer_id: customer,
        order_id: order(n),
        subtotal: eur(subtotal),
        at: at(1),
    }
}

fn redeemed(n: u128, customer: Uuid, subtotal: i64, uses: u32) -> CouponEvent {
    CouponEvent::CouponRedeemed {
        code: code(),
        redemption_id: redemption(n),
        customer_id: customer,
        order_id: order(n),
        subtotal: eur(subtotal),
        discount: eur(subtotal / 10),
        uses,
        at: at(1),
    }
}

fn released(n: u128, customer: Uuid, uses: u32) -> CouponEvent {
    CouponEvent::CouponRedemptionReleased {
        code: code(),
        redemption_id: redemption(n),
        customer_id: customer,
        order_id: order(n),
        uses,
        at: at(2),
    }
}

fn release(n: u128) -> CouponCommand {
    CouponCommand::ReleaseRedemption {
        redemption_id: redemption(n),
        at: at(2),
    }
}

#[test]
fn create_records_the_terms_and_repeats_are_no_ops() {
    given_no_history::<Coupon>()
        .when(create())
        .then_expect_events([created()]);
    given::<Coupon>([created()])
        .when(create())
        .then_expect_events([]);
    let other = CouponCommand::CreateCoupon {
        code: code(),
        discount: Discount::fixed(eur(500)).unwrap(),
        minimum_subtotal: None,
        valid_from: at(0),
        valid_until: None,
        usage_limit: None,
        per_customer_limit: None,
        at: at(0),
    };
    assert_eq!(
        given::<Coupon>([created()]).when(other).then_expect_error(),
        CouponError::AlreadyCreated { code: code() }
    );
    let (_, state) = given_no_history::<Coupon>().when(create()).then_state();
    assert!(state.is_active());
    assert_eq!(state.terms().unwrap().code, code());
    assert_eq!(state.uses(), 0);
}

#[test]
fn create_refuses_inconsistent_terms() {
    let with = |f: &dyn Fn(&mut CouponCommand)| {
        let mut c = create();
        f(&mut c);
        given_no_history::<Coupon>().when(c).then_expect_error()
    };
    assert_eq!(
        with(
            &|c| if let CouponCommand::CreateCoupon { valid_until, .. } = c {
                *valid_until = Some(at(0));
            }
        ),
        CouponError::InvalidValidityWindow
    );
    assert_eq!(
        with(
            &|c| if let CouponCommand::CreateCoupon { usage_limit, .. } = c {
                *usage_limit = Some(0);
            }
        ),
        CouponError::ZeroUsageLimit
    );
    assert_eq!(
        with(&|c| if let CouponCommand::CreateCoupon {
            per_customer_limit, ..
        } = c
        {
            *per_customer_limit = Some(0);
        }),
        CouponError::ZeroUsageLimit
    );
    assert_eq!(
        with(&|c| if let CouponCommand::CreateCoupon {
            minimum_subtotal, ..
        } = c
        {
            *minimum_subtotal = Some(eur(-1));
        }),
        CouponError::NegativeMinimum
    );
    assert_eq!(
        with(
            &|c| if let CouponCommand::CreateCoupon { discount, .. } = c {
                *discount = Discount::fixed(Money::new(500, Currency::USD)).unwrap();
            }
        ),
        CouponError::CurrencyMismatch {
            expected: Currency::USD,
            got: Currency::EUR
        }
    );
}

#[test]
fn redeem_grants_the_discount_on_the_subtotal() {
    given::<Coupon>([created()])
        .when(redeem(1, ALICE, 4_999))
        .then_expect_events([CouponEvent::CouponRedeemed {
            code: code(),
            redemption_id: redemption(1),
            customer_id: ALICE,
            order_id: order(1),
            subtotal: eur(4_999),
            // 10 % of 49.99 = 4.999 -> 5.00.
            discount: eur(500),
            uses: 1,
            at: at(1),
        }]);
    let (_, state) = given::<Coupon>([created()])
        .when(redeem(1, ALICE, 5_000))
        .then_state();
    assert_eq!(state.uses(), 1);
    assert_eq!(state.uses_by(ALICE), 1);
    assert_eq!(state.uses_by(BOB), 0);
}

#[test]
fn a_fixed_coupon_never_takes_more_than_the_subtotal() {
    let fixed = CouponEvent::CouponCreated {
        code: code(),
        discount: Discount::fixed(eur(5_000)).unwrap(),
        minimum_subtotal: None,
        valid_from: at(0),
        valid_until: None,
        usage_limit: None,
        per_customer_limit: None,
        at: at(0),
    };
    let (events, _) = given::<Coupon>([fixed.clone()])
        .when(redeem(1, ALICE, 1_234))
        .then_state();
    assert!(matches!(
        events.as_slice(),
        [CouponEvent::CouponRedeemed { discount, .. }] if *discount == eur(1_234)
    ));
    assert_eq!(
        given::<Coupon>([fixed])
            .when(CouponCommand::RedeemCoupon {
                redemption_id: redemption(1),
                customer_id: ALICE,
                order_id: order(1),
                subtotal: Money::new(10_000, Currency::USD),
                at: at(1),
            })
            .then_expect_error(),
        CouponError::CurrencyMismatch {
            expected: Currency::EUR,
            got: Currency::USD
        }
    );
}

#[test]
fn redeem_refuses_outside_the_validity_window() {
    let at_time = |t| CouponCommand::RedeemCoupon {
        redemption_id: redemption(1),
        customer_id: ALICE,
        order_id: order(1),
        subtotal: eur(5_000),
        at: t,
    };
    assert_eq!(
        given::<Coupon>([created()])
            .when(at_time(at(0) - Duration::seconds(1)))
            .then_expect_error(),
        CouponError::NotYetValid { valid_from: at(0) }
    );
    // The window is [valid_from, valid_until).
    given::<Coupon>([created()])
        .when(at_time(at(0)))
        .then_state();
    given::<Coupon>([created()])
        .when(at_time(at(30) - Duration::seconds(1)))
        .then_state();
    assert_eq!(
        given::<Coupon>([created()])
            .when(at_time(at(30)))
            .then_expect_error(),
        CouponError::Expired {
            valid_until: at(30)
        }
    );
}

#[test]
fn redeem_refuses_below_the_minimum_and_negative_subtotals() {
    assert_eq!(
        given::<Coupon>([created()])
            .when(redeem(1, ALICE, 1_999))
            .then_expect_error(),
        CouponError::BelowMinimumSubtotal {
            minimum: eur(2_000),
            subtotal: eur(1_999)
        }
    );
    given::<Coupon>([created()])
        .when(redeem(1, ALICE, 2_000))
        .then_expect_events([redeemed(1, ALICE, 2_000, 1)]);
    assert_eq!(
        given::<Coupon>([created()])
            .when(redeem(1, ALICE, -1))
            .then_expect_error(),
        CouponError::NegativeSubtotal
    );
    assert!(matches!(
        given::<Coupon>([created()])
            .when(CouponCommand::RedeemCoupon {
                redemption_id: redemption(1),
                customer_id: ALICE,
                order_id: order(1),
                subtotal: Money::new(5_000, Currency::GBP),
                at: at(1),
            })
            .then_expect_error(),
        CouponError::CurrencyMismatch { .. }
    ));
}

#[test]
fn redeem_enforces_the_global_and_per_customer_limits() {
    // Alice twice: her limit.
    let history = [
        created(),
        redeemed(1, ALICE, 3_000, 1),
        redeemed(2, ALICE, 3_000, 2),
    ];
    assert_eq!(
        given::<Coupon>(history.clone())
            .when(redeem(3, ALICE, 3_000))
            .then_expect_error(),
        CouponError::CustomerLimitReached { limit: 2 }
    );
    // Bob takes the third and last use; nobody gets a fourth.
    let mut history = history.to_vec();
    history.push(redeemed(3, BOB, 3_000, 3));
    assert_eq!(
        given::<Coupon>(history.clone())
            .when(redeem(4, Uuid::from_u128(0xC), 3_000))
            .then_expect_error(),
        CouponError::UsageLimitReached { limit: 3 }
    );
    // A release gives a use back, to anyone.
    history.push(released(1, ALICE, 2));
    given::<Coupon>(history.clone())
        .when(redeem(4, Uuid::from_u128(0xC), 3_000))
        .then_expect_events([redeemed(4, Uuid::from_u128(0xC), 3_000, 3)]);
    // Alice has one outstanding use again, so she may redeem once more.
    let (_, state) = given::<Coupon>(history)
        .when(redeem(5, ALICE, 3_000))
        .then_state();
    assert_eq!(state.uses_by(ALICE), 2);
    assert_eq!(state.uses(), 3);
}

#[test]
fn redeem_is_idempotent_by_redemption_id() {
    let history = [created(), redeemed(1, ALICE, 3_000, 1)];
    given::<Coupon>(history.clone())
        .when(redeem(1, ALICE, 3_000))
        .then_expect_events([]);
    // Even after the coupon expired, ran out or was deactivated, a retry keeps its use.
    let mut exhausted = history.to_vec();
    exhausted.extend([
        redeemed(2, BOB, 3_000, 2),
        redeemed(3, BOB, 3_000, 3),
        CouponEvent::CouponDeactivated {
            code: code(),
            at: at(3),
        },
    ]);
    given::<Coupon>(exhausted)
        .when(CouponCommand::RedeemCoupon {
            redemption_id: redemption(1),
            customer_id: ALICE,
            order_id: order(1),
            subtotal: eur(3_000),
            at: at(99),
        })
        .then_expect_events([]);
    // The same id with other details is a conflict.
    assert_eq!(
        given::<Coupon>(history.clone())
            .when(redeem(1, ALICE, 3_001))
            .then_expect_error(),
        CouponError::RedemptionConflict {
            redemption_id: redemption(1)
        }
    );
    assert_eq!(
        given::<Coupon>(history)
            .when(redeem(1, BOB, 3_000))
            .then_expect_error(),
        CouponError::RedemptionConflict {
            redemption_id: redemption(1)
        }
    );
}

#[test]
fn one_order_gets_one_outstanding_redemption() {
    let history = [created(), redeemed(1, ALICE, 3_000, 1)];
    let same_order_new_id = CouponCommand::RedeemCoupon {
        redemption_id: redemption(9),
        customer_id: ALICE,
        order_id: order(1),
        subtotal: eur(3_000),
        at: at(1),
    };
    assert_eq!(
        given::<Coupon>(history.clone())
            .when(same_order_new_id.clone())
            .then_expect_error(),
        CouponError::AlreadyAppliedToOrder { order_id: order(1) }
    );
    let mut released_history = history.to_vec();
    released_history.push(released(1, ALICE, 0));
    given::<Coupon>(released_history)
        .when(same_order_new_id)
        .then_state();
}

#[test]
fn release_gives_the_use_back_once() {
    let history = [created(), redeemed(1, ALICE, 3_000, 1)];
    given::<Coupon>(history.clone())
        .when(release(1))
        .then_expect_events([released(1, ALICE, 0)]);
    let (_, state) = given::<Coupon>(history.clone())
        .when(release(1))
        .then_state();
    assert_eq!(state.uses(), 0);
    assert_eq!(state.uses_by(ALICE), 0);
    let mut twice = history.to_vec();
    twice.push(released(1, ALICE, 0));
    given::<Coupon>(twice.clone())
        .when(release(1))
        .then_expect_events([]);
    // A released redemption id cannot be redeemed again.
    assert_eq!(
        given::<Coupon>(twice)
            .when(redeem(1, ALICE, 3_000))
            .then_expect_error(),
        CouponError::RedemptionReleased {
            redemption_id: redemption(1)
        }
    );
    assert_eq!(
        given::<Coupon>(history)
            .when(release(7))
            .then_expect_error(),
        CouponError::UnknownRedemption {
            redemption_id: redemption(7)
        }
    );
}

#[test]
fn deactivation_stops_redemptions_but_not_releases() {
    let deactivated = CouponEvent::CouponDeactivated {
        code: code(),
        at: at(3),
    };
    given::<Coupon>([created()])
        .when(CouponCommand::DeactivateCoupon { at: at(3) })
        .then_expect_events([deactivated.clone()]);
    given::<Coupon>([created(), deactivated.clone()])
        .when(CouponCommand::DeactivateCoupon { at: at(4) })
        .then_expect_events([]);
    assert_eq!(
        given::<Coupon>([created(), deactivated.clone()])
            .when(redeem(1, ALICE, 3_000))
            .then_expect_error(),
        CouponError::Inactive
    );
    given::<Coupon>([created(), redeemed(1, ALICE, 3_000, 1), deactivated])
        .when(release(1))
        .then_expect_events([released(1, ALICE, 0)]);
}

#[test]
fn nothing_happens_to_a_coupon_that_does_not_exist() {
    for command in [
        CouponCommand::DeactivateCoupon { at: at(0) },
        redeem(1, ALICE, 3_000),
        release(1),
    ] {
        assert_eq!(
            given_no_history::<Coupon>()
                .when(command)
                .then_expect_error(),
            CouponError::NotCreated
        );
    }
    assert_eq!(
        Coupon::default().preview(ALICE, eur(1), at(1)),
        Err(CouponError::NotCreated)
    );
}

#[test]
fn preview_answers_like_redeem_without_recording() {
    let coupon = Coupon::from_events(&[created(), redeemed(1, ALICE, 3_000, 1)]);
    assert_eq!(coupon.preview(BOB, eur(4_000), at(1)), Ok(eur(400)));
    assert_eq!(
        coupon.preview(BOB, eur(100), at(1)),
        Err(CouponError::BelowMinimumSubtotal {
            minimum: eur(2_000),
            subtotal: eur(100)
        })
    );
    assert_eq!(coupon.uses(), 1);
}

#[test]
fn events_have_stable_names_and_round_trip() {
    use crate::aggregate::DomainEvent;
    let events = [
        created(),
        CouponEvent::CouponDeactivated {
            code: code(),
            at: at(3),
        },
        redeemed(1, ALICE, 3_000, 1),
        released(1, ALICE, 0),
    ];
    let names: Vec<&str> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(
        names,
        [
            "CouponCreated",
            "CouponDeactivated",
            "CouponRedeemed",
            "CouponRedemptionReleased"
        ]
    );
    for e in &events {
        assert_eq!(e.event_version(), "1.0");
        let json = serde_json::to_string(e).unwrap();
        assert_eq!(&serde_json::from_str::<CouponEvent>(&json).unwrap(), e);
    }
    // The state round-trips too (snapshots).
    let state = Coupon::from_events(&events);
    let json = serde_json::to_string(&state).unwrap();
    let back: Coupon = serde_json::from_str(&json).unwrap();
    assert_eq!(back.uses(), state.uses());
    assert_eq!(back.terms(), state.terms());
}
