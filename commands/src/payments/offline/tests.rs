//! Every test card, the intent's life cycle, and idempotency.

use std::sync::Arc;

use emporium_domain::payment::{CardBrand, DeclineCode, NextAction};
use emporium_domain::{Currency, Money};
use uuid::Uuid;

use super::*;

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

fn card(number: &str) -> PaymentMethod {
    PaymentMethod::Card(CardNumber::parse(number).unwrap())
}

const ORDER: Uuid = Uuid::from_u128(42);

async fn intent(p: &OfflineProvider, amount: i64) -> PaymentIntent {
    p.create_intent(
        CreateIntent {
            amount: eur(amount),
            order_id: ORDER,
        },
        &key(&format!("create-{}", Uuid::new_v4())),
    )
    .await
    .unwrap()
}

async fn confirm(p: &OfflineProvider, id: &IntentId, number: &str) -> Confirmation {
    p.confirm(
        id,
        card(number),
        &key(&format!("confirm-{}", Uuid::new_v4())),
    )
    .await
    .unwrap()
}

fn fresh() -> IdempotencyKey {
    key(&format!("k-{}", Uuid::new_v4()))
}

#[tokio::test]
async fn a_new_intent_waits_for_a_payment_method_with_manual_capture() {
    let p = OfflineProvider::new();
    let i = intent(&p, 5_000).await;
    assert!(i.id.0.starts_with("pi_offline_"));
    assert!(i.client_secret.starts_with(&format!("{}_secret_", i.id)));
    assert_eq!(i.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(i.amount, eur(5_000));
    assert_eq!(i.amount_capturable, eur(0));
    assert_eq!(i.order_id, ORDER);
    assert_eq!(p.retrieve(&i.id).await.unwrap(), i);
    assert_eq!(p.name(), "offline");
}

#[tokio::test]
async fn card_4242_authorises_then_captures_and_refunds() {
    let p = OfflineProvider::new();
    let i = intent(&p, 5_000).await;
    let Confirmation::Authorised(authorised) = confirm(&p, &i.id, "4242424242424242").await else {
        panic!("4242 authorises");
    };
    assert_eq!(authorised.status, IntentStatus::RequiresCapture);
    assert_eq!(authorised.amount_capturable, eur(5_000));
    let summary = authorised.card.clone().unwrap();
    assert_eq!(summary.brand, CardBrand::Visa);
    assert_eq!(summary.last4.as_str(), "4242");

    let captured = p.capture(&i.id, None, &fresh()).await.unwrap();
    assert_eq!(captured.status, IntentStatus::Succeeded);
    assert_eq!(captured.amount_received, eur(5_000));
    assert_eq!(captured.amount_capturable, eur(0));

    let partial = p.refund(&i.id, Some(eur(1_000)), &fresh()).await.unwrap();
    assert_eq!(partial.amount, eur(1_000));
    assert_eq!(partial.status, RefundStatus::Succeeded);
    assert!(partial.id.0.starts_with("re_offline_"));
    assert!(matches!(
        p.refund(&i.id, Some(eur(4_001)), &fresh()).await,
        Err(ProviderError::InvalidAmount(_))
    ));
    let rest = p.refund(&i.id, None, &fresh()).await.unwrap();
    assert_eq!(rest.amount, eur(4_000));
    assert_eq!(p.retrieve(&i.id).await.unwrap().amount_refunded, eur(5_000));
    assert!(matches!(
        p.refund(&i.id, None, &fresh()).await,
        Err(ProviderError::InvalidAmount("already fully refunded"))
    ));
}

#[tokio::test]
async fn every_declining_test_card_declines_with_its_code() {
    for (number, code) in [
        ("4000000000000002", DeclineCode::CardDeclined),
        ("4000000000009995", DeclineCode::InsufficientFunds),
        ("4000000000000069", DeclineCode::ExpiredCard),
        ("4000000000000127", DeclineCode::IncorrectCvc),
        ("4000000000000119", DeclineCode::ProcessingError),
    ] {
        let p = OfflineProvider::new();
        let i = intent(&p, 2_500).await;
        let Confirmation::Declined { code: got, intent } = confirm(&p, &i.id, number).await else {
            panic!("{number} declines");
        };
        assert_eq!(got, code, "{number}");
        assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
        assert_eq!(intent.last_decline, Some(code));
        assert_eq!(intent.amount_capturable, eur(0));
        // Nothing to capture; and the customer may try another card, as at Stripe.
        assert!(matches!(
            p.capture(&i.id, None, &fresh()).await,
            Err(ProviderError::UnexpectedState { .. })
        ));
        let retried = confirm(&p, &i.id, "4242424242424242").await;
        assert!(matches!(retried, Confirmation::Authorised(ref i) if i.last_decline.is_none()));
    }
}

#[tokio::test]
async fn card_3184_requires_3d_secure_then_complete_action_authorises() {
    let p = OfflineProvider::new();
    let i = intent(&p, 9_900).await;
    let Confirmation::RequiresAction {
        next_action,
        intent,
    } = confirm(&p, &i.id, "4000002760003184").await
    else {
        panic!("3184 requires action");
    };
    assert_eq!(
        next_action,
        NextAction::UseSdk {
            client_secret: i.client_secret.clone()
        }
    );
    assert_eq!(intent.status, IntentStatus::RequiresAction);
    assert_eq!(intent.next_action, Some(next_action));
    assert!(matches!(
        p.capture(&i.id, None, &fresh()).await,
        Err(ProviderError::UnexpectedState {
            status: IntentStatus::RequiresAction,
            ..
        })
    ));
    let authorised = p.complete_action(&i.id).unwrap();
    assert_eq!(authorised.status, IntentStatus::RequiresCapture);
    assert_eq!(authorised.amount_capturable, eur(9_900));
    assert_eq!(authorised.next_action, None);
    // A repeated completion changes nothing.
    assert_eq!(p.complete_action(&i.id).unwrap(), authorised);
    let captured = p.capture(&i.id, None, &fresh()).await.unwrap();
    assert_eq!(captured.status, IntentStatus::Succeeded);
}

#[tokio::test]
async fn a_failed_3d_secure_declines() {
    let p = OfflineProvider::new();
    let i = intent(&p, 9_900).await;
    confirm(&p, &i.id, "4000002760003184").await;
    let failed = p.fail_action(&i.id).unwrap();
    assert_eq!(failed.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(failed.last_decline, Some(DeclineCode::Other));
    assert!(matches!(
        p.complete_action(&i.id),
        Err(ProviderError::UnexpectedState { .. })
    ));
    assert!(matches!(
        p.complete_action(&IntentId("pi_nope".into())),
        Err(ProviderError::NotFound(_))
    ));
}

#[tokio::test]
async fn other_valid_cards_authorise_and_provider_methods_are_refused() {
    let p = OfflineProvider::new();
    let i = intent(&p, 100).await;
    let c = confirm(&p, &i.id, "5555 5555 5555 4444").await;
    assert_eq!(
        c.intent().card.as_ref().unwrap().brand,
        CardBrand::Mastercard
    );
    assert!(matches!(c, Confirmation::Authorised(_)));
    let j = intent(&p, 100).await;
    assert!(matches!(
        p.confirm(
            &j.id,
            PaymentMethod::Provider("pm_card_visa".into()),
            &fresh()
        )
        .await,
        Err(ProviderError::InvalidPaymentMethod(_))
    ));
}

#[tokio::test]
async fn partial_capture_releases_the_rest_and_cancel_voids_before_capture() {
    let p = OfflineProvider::new();
    let i = intent(&p, 5_000).await;
    confirm(&p, &i.id, "4242424242424242").await;
    assert!(matches!(
        p.capture(&i.id, Some(eur(5_001)), &fresh()).await,
        Err(ProviderError::InvalidAmount(_))
    ));
    assert!(matches!(
        p.capture(&i.id, Some(Money::new(100, Currency::USD)), &fresh())
            .await,
        Err(ProviderError::InvalidAmount(_))
    ));
    let captured = p.capture(&i.id, Some(eur(3_000)), &fresh()).await.unwrap();
    assert_eq!(captured.amount_received, eur(3_000));
    assert_eq!(captured.amount_capturable, eur(0));
    // Captured: cancel is refused (refund instead).
    assert!(matches!(
        p.cancel(&i.id, &fresh()).await,
        Err(ProviderError::UnexpectedState {
            status: IntentStatus::Succeeded,
            ..
        })
    ));

    for status_before in ["new", "authorised", "action"] {
        let j = intent(&p, 5_000).await;
        match status_before {
            "authorised" => {
                confirm(&p, &j.id, "4242424242424242").await;
            }
            "action" => {
                confirm(&p, &j.id, "4000002760003184").await;
            }
            _ => {}
        }
        let cancelled = p.cancel(&j.id, &fresh()).await.unwrap();
        assert_eq!(cancelled.status, IntentStatus::Canceled, "{status_before}");
        assert_eq!(cancelled.amount_capturable, eur(0));
        assert!(matches!(
            p.capture(&j.id, None, &fresh()).await,
            Err(ProviderError::UnexpectedState { .. })
        ));
        assert!(matches!(
            p.refund(&j.id, None, &fresh()).await,
            Err(ProviderError::UnexpectedState { .. })
        ));
    }
}

#[tokio::test]
async fn the_same_key_gives_the_same_result_and_acts_once() {
    let p = OfflineProvider::new();
    let request = CreateIntent {
        amount: eur(5_000),
        order_id: ORDER,
    };
    let k = key("checkout-1-create");
    let first = p.create_intent(request.clone(), &k).await.unwrap();
    let again = p.create_intent(request.clone(), &k).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(p.intent_count(), 1);
    // The same key for another request is refused.
    let other = CreateIntent {
        amount: eur(5_001),
        ..request
    };
    assert!(matches!(
        p.create_intent(other, &k).await,
        Err(ProviderError::IdempotencyKeyReused(_))
    ));
    assert!(matches!(
        p.cancel(&first.id, &k).await,
        Err(ProviderError::IdempotencyKeyReused(_))
    ));

    // Confirm: a replayed decline is the same decline.
    let ck = key("checkout-1-confirm");
    let declined = p
        .confirm(&first.id, card("4000000000000002"), &ck)
        .await
        .unwrap();
    assert_eq!(
        p.confirm(&first.id, card("4000000000000002"), &ck)
            .await
            .unwrap(),
        declined
    );
    assert!(matches!(
        p.confirm(&first.id, card("4242424242424242"), &ck).await,
        Err(ProviderError::IdempotencyKeyReused(_))
    ));
    confirm(&p, &first.id, "4242424242424242").await;

    // Capture twice with one key: one capture, the same answer.
    let cap = key("checkout-1-capture");
    let captured = p.capture(&first.id, None, &cap).await.unwrap();
    assert_eq!(p.capture(&first.id, None, &cap).await.unwrap(), captured);
    // A new key is a new request, refused on a captured intent.
    assert!(matches!(
        p.capture(&first.id, None, &fresh()).await,
        Err(ProviderError::UnexpectedState { .. })
    ));

    // Refund twice with one key: one refund.
    let rk = key("refund-1");
    let refund = p.refund(&first.id, Some(eur(500)), &rk).await.unwrap();
    assert_eq!(
        p.refund(&first.id, Some(eur(500)), &rk).await.unwrap(),
        refund
    );
    assert_eq!(p.refunds(), vec![refund]);
    assert_eq!(
        p.retrieve(&first.id).await.unwrap().amount_refunded,
        eur(500)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_create_one_intent_and_capture_once() {
    let p = Arc::new(OfflineProvider::new());
    let k = key("order-7-create");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let p = Arc::clone(&p);
            let k = k.clone();
            tokio::spawn(async move {
                p.create_intent(
                    CreateIntent {
                        amount: eur(1_000),
                        order_id: ORDER,
                    },
                    &k,
                )
                .await
                .unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(p.intent_count(), 1);

    let id = ids.remove(0);
    confirm(&p, &id, "4242424242424242").await;
    let ck = key("order-7-capture");
    let captures: Vec<_> = (0..20)
        .map(|_| {
            let p = Arc::clone(&p);
            let (id, ck) = (id.clone(), ck.clone());
            tokio::spawn(async move { p.capture(&id, None, &ck).await.unwrap() })
        })
        .collect();
    for c in captures {
        assert_eq!(c.await.unwrap().amount_received, eur(1_000));
    }
}

#[tokio::test]
async fn no_full_card_number_is_kept_and_fingerprints_identify_cards() {
    let p = OfflineProvider::new();
    let a = intent(&p, 100).await;
    let b = intent(&p, 100).await;
    let c = intent(&p, 100).await;
    let fa = confirm(&p, &a.id, "4242424242424242").await;
    let fb = confirm(&p, &b.id, "4242 4242 4242 4242").await;
    let fc = confirm(&p, &c.id, "5555555555554444").await;
    let print = |c: &Confirmation| c.intent().card.clone().unwrap().fingerprint;
    assert_eq!(print(&fa), print(&fb));
    assert_ne!(print(&fa), print(&fc));
    assert!(!print(&fa).contains("4242"));
    let everything = format!("{p:?}");
    assert!(everything.contains("4242"), "last four are kept");
    for number in ["4242424242424242", "5555555555554444"] {
        assert!(!everything.contains(number), "the full number leaked");
    }
}

#[tokio::test]
async fn invalid_requests_are_refused() {
    let p = OfflineProvider::new();
    assert!(matches!(
        p.create_intent(
            CreateIntent {
                amount: eur(0),
                order_id: ORDER
            },
            &fresh()
        )
        .await,
        Err(ProviderError::InvalidAmount(_))
    ));
    assert!(matches!(
        p.retrieve(&IntentId("pi_nope".into())).await,
        Err(ProviderError::NotFound(_))
    ));
    assert!(matches!(
        p.capture(&IntentId("pi_nope".into()), None, &fresh()).await,
        Err(ProviderError::NotFound(_))
    ));
    assert!(IdempotencyKey::parse("").is_err());
    assert!(IdempotencyKey::parse("has space").is_err());
    assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    let id = Uuid::from_u128(1);
    assert_eq!(
        IdempotencyKey::for_command("capture", id).as_str(),
        "capture-00000000-0000-0000-0000-000000000001"
    );
    assert_eq!(
        IdempotencyKey::for_command("capture", id),
        IdempotencyKey::for_command("capture", id)
    );
}
