//! Coupon limits under concurrency: one coupon is one aggregate, so concurrent
//! redemptions race on one stream and optimistic concurrency lets the limits hold.

use std::sync::Arc;

use chrono::{Duration, Utc};
use emporium_commands::{CommandError, Dispatcher, Loading, RetryPolicy};
use emporium_domain::coupon::{Coupon, CouponCode, CouponCommand, CouponError};
use emporium_domain::pricing::Discount;
use emporium_domain::{Currency, Money};
use uuid::Uuid;

use crate::helpers::{count_events, event_store, meta};

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn dispatcher(db: &emporium_tests::TestDatabase) -> Arc<Dispatcher<Coupon>> {
    Arc::new(
        Dispatcher::<Coupon>::new(db.pool().clone(), Loading::Replay).with_retry(RetryPolicy {
            attempts: 64,
            ..RetryPolicy::default()
        }),
    )
}

async fn created(coupons: &Dispatcher<Coupon>, code: &str, usage: u32, per_customer: u32) {
    let now = Utc::now();
    coupons
        .execute(
            code,
            CouponCommand::CreateCoupon {
                code: CouponCode::parse(code).unwrap(),
                discount: Discount::percentage(1_000).unwrap(),
                minimum_subtotal: None,
                valid_from: now - Duration::days(1),
                valid_until: Some(now + Duration::days(1)),
                usage_limit: Some(usage),
                per_customer_limit: Some(per_customer),
                at: now,
            },
            &meta(),
        )
        .await
        .expect("create coupon");
}

fn redeem(redemption_id: Uuid, customer_id: Uuid, order_id: Uuid) -> CouponCommand {
    CouponCommand::RedeemCoupon {
        redemption_id,
        customer_id,
        order_id,
        subtotal: eur(10_000),
        at: Utc::now(),
    }
}

/// Runs the commands concurrently; returns (accepted, refusals).
async fn race(
    coupons: &Arc<Dispatcher<Coupon>>,
    code: &str,
    commands: Vec<CouponCommand>,
) -> (usize, Vec<CouponError>) {
    let outcomes = futures::future::join_all(commands.into_iter().map(|command| {
        let coupons = Arc::clone(coupons);
        let code = code.to_owned();
        tokio::spawn(async move { coupons.execute_retrying(&code, command, &meta()).await })
    }))
    .await;
    let mut accepted = 0;
    let mut refused = Vec::new();
    for outcome in outcomes {
        match outcome.expect("task") {
            Ok(_) => accepted += 1,
            Err(CommandError::Rejected(e)) => refused.push(e),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    (accepted, refused)
}

#[tokio::test]
async fn a_single_use_coupon_is_redeemed_once_by_fifty_concurrent_checkouts() {
    let db = event_store().await;
    let coupons = dispatcher(&db);
    created(&coupons, "ONCE", 1, 1).await;

    let commands = (0..50)
        .map(|_| redeem(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()))
        .collect();
    let (accepted, refused) = race(&coupons, "ONCE", commands).await;
    assert_eq!(accepted, 1);
    assert_eq!(refused.len(), 49);
    assert!(
        refused
            .iter()
            .all(|e| *e == CouponError::UsageLimitReached { limit: 1 })
    );
    assert_eq!(coupons.load("ONCE").await.unwrap().uses(), 1);
    assert_eq!(count_events(&db, "coupon", "ONCE").await, 2);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn the_per_customer_limit_holds_under_concurrency() {
    let db = event_store().await;
    let coupons = dispatcher(&db);
    created(&coupons, "TWICE", 100, 2).await;
    let customer = Uuid::new_v4();

    let commands = (0..20)
        .map(|_| redeem(Uuid::new_v4(), customer, Uuid::new_v4()))
        .collect();
    let (accepted, refused) = race(&coupons, "TWICE", commands).await;
    assert_eq!(accepted, 2);
    assert!(
        refused
            .iter()
            .all(|e| *e == CouponError::CustomerLimitReached { limit: 2 })
    );
    assert_eq!(coupons.load("TWICE").await.unwrap().uses_by(customer), 2);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_redemption_submitted_ten_times_at_once_is_recorded_once() {
    let db = event_store().await;
    let coupons = dispatcher(&db);
    created(&coupons, "RETRY", 1, 1).await;
    let (id, customer, order) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let at = Utc::now();
    let same = CouponCommand::RedeemCoupon {
        redemption_id: id,
        customer_id: customer,
        order_id: order,
        subtotal: eur(10_000),
        at,
    };

    let (accepted, refused) = race(&coupons, "RETRY", vec![same; 10]).await;
    // Every submission succeeds (the repeats are no-ops), one event is recorded.
    assert_eq!((accepted, refused), (10, vec![]));
    assert_eq!(count_events(&db, "coupon", "RETRY").await, 2);

    // A release gives the single use back, once.
    let release = CouponCommand::ReleaseRedemption {
        redemption_id: id,
        at: Utc::now(),
    };
    let (accepted, _) = race(&coupons, "RETRY", vec![release; 5]).await;
    assert_eq!(accepted, 5);
    assert_eq!(count_events(&db, "coupon", "RETRY").await, 3);
    assert_eq!(coupons.load("RETRY").await.unwrap().uses(), 0);
    db.drop_database().await.unwrap();
}
