//! Every test card, the intent's life cycle, and idempotency: each test runs in
//! memory and durable (a fresh PostgreSQL database, and a fresh SQLite store's file).

use std::sync::Arc;

use emporium_domain::payment::{CardBrand, DeclineCode, NextAction};
use emporium_domain::{Currency, Money};
use uuid::Uuid;

use super::*;
use crate::payments::events::StripeEvent;

/// Runs each named test on the in-memory provider and on a durable one over a fresh,
/// migrated database.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::OfflineProvider::new()).await;
                }
            )*
        }
        mod durable {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = emporium_tests::TestDatabase::create(8).await.unwrap();
                    crate::db::migrate(db.pool()).await.unwrap();
                    let p = super::OfflineProvider::durable(db.pool().clone());
                    super::$name(p).await;
                    db.drop_database().await.unwrap();
                }
            )*
        }
        #[cfg(feature = "sqlite")]
        mod durable_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = crate::store::SqliteStore::open(&dir.path().join("events.db"))
                        .await
                        .unwrap();
                    let p = super::OfflineProvider::durable(store.pool().clone());
                    super::$name(p).await;
                    store.close().await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_new_intent_waits_for_a_payment_method_with_manual_capture,
    card_4242_authorises_then_captures_and_refunds,
    every_declining_test_card_declines_with_its_code,
    card_3184_requires_3d_secure_then_complete_action_authorises,
    a_failed_3d_secure_declines,
    other_valid_cards_authorise_and_provider_methods_are_refused,
    partial_capture_releases_the_rest_and_cancel_voids_before_capture,
    the_same_key_gives_the_same_result_and_acts_once,
    concurrent_duplicates_create_one_intent_and_capture_once,
    no_full_card_number_is_kept_and_fingerprints_identify_cards,
    invalid_requests_are_refused,
    simulations_act_as_stripe_and_yield_its_events,
);

/// Everything the provider holds, as text.
async fn everything(p: &OfflineProvider) -> String {
    match &p.backend {
        Backend::Memory(_) => format!("{p:?}"),
        Backend::Postgres(pool) => sqlx::query_scalar::<_, String>(
            "SELECT concat_ws('|',
                 (SELECT string_agg(state::text, ',') FROM offline_payment_intents),
                 (SELECT string_agg(refund::text, ',') FROM offline_payment_refunds),
                 (SELECT string_agg(request::text || response::text, ',') FROM offline_payment_idempotency))",
        )
        .fetch_one(pool)
        .await
        .unwrap(),
        #[cfg(feature = "sqlite")]
        Backend::Sqlite(db) => db
            .scalar_optional::<String>(
                "SELECT coalesce((SELECT group_concat(state, ',') FROM offline_payment_intents), '')
                     || '|' || coalesce((SELECT group_concat(refund, ',') FROM offline_payment_refunds), '')
                     || '|' || coalesce((SELECT group_concat(request || response, ',')
                                           FROM offline_payment_idempotency), '')",
                crate::args![],
            )
            .await
            .unwrap()
            .unwrap(),
    }
}

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

async fn a_new_intent_waits_for_a_payment_method_with_manual_capture(p: OfflineProvider) {
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

async fn card_4242_authorises_then_captures_and_refunds(p: OfflineProvider) {
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

async fn every_declining_test_card_declines_with_its_code(p: OfflineProvider) {
    for (number, code) in [
        ("4000000000000002", DeclineCode::CardDeclined),
        ("4000000000009995", DeclineCode::InsufficientFunds),
        ("4000000000000069", DeclineCode::ExpiredCard),
        ("4000000000000127", DeclineCode::IncorrectCvc),
        ("4000000000000119", DeclineCode::ProcessingError),
    ] {
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

async fn card_3184_requires_3d_secure_then_complete_action_authorises(p: OfflineProvider) {
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
    let authorised = p.complete_action(&i.id).await.unwrap();
    assert_eq!(authorised.status, IntentStatus::RequiresCapture);
    assert_eq!(authorised.amount_capturable, eur(9_900));
    assert_eq!(authorised.next_action, None);
    // A repeated completion changes nothing.
    assert_eq!(p.complete_action(&i.id).await.unwrap(), authorised);
    let captured = p.capture(&i.id, None, &fresh()).await.unwrap();
    assert_eq!(captured.status, IntentStatus::Succeeded);
}

async fn a_failed_3d_secure_declines(p: OfflineProvider) {
    let i = intent(&p, 9_900).await;
    confirm(&p, &i.id, "4000002760003184").await;
    let failed = p.fail_action(&i.id).await.unwrap();
    assert_eq!(failed.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(failed.last_decline, Some(DeclineCode::Other));
    assert!(matches!(
        p.complete_action(&i.id).await,
        Err(ProviderError::UnexpectedState { .. })
    ));
    assert!(matches!(
        p.complete_action(&IntentId("pi_nope".into())).await,
        Err(ProviderError::NotFound(_))
    ));
}

async fn other_valid_cards_authorise_and_provider_methods_are_refused(p: OfflineProvider) {
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

async fn partial_capture_releases_the_rest_and_cancel_voids_before_capture(p: OfflineProvider) {
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

async fn the_same_key_gives_the_same_result_and_acts_once(p: OfflineProvider) {
    let request = CreateIntent {
        amount: eur(5_000),
        order_id: ORDER,
    };
    let k = key("checkout-1-create");
    let first = p.create_intent(request.clone(), &k).await.unwrap();
    let again = p.create_intent(request.clone(), &k).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(p.intent_count().await.unwrap(), 1);
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
    assert_eq!(p.refunds().await.unwrap(), vec![refund]);
    assert_eq!(
        p.retrieve(&first.id).await.unwrap().amount_refunded,
        eur(500)
    );
}

async fn concurrent_duplicates_create_one_intent_and_capture_once(p: OfflineProvider) {
    let p = Arc::new(p);
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
    assert_eq!(p.intent_count().await.unwrap(), 1);

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

async fn no_full_card_number_is_kept_and_fingerprints_identify_cards(p: OfflineProvider) {
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
    let everything = everything(&p).await;
    assert!(everything.contains("4242"), "last four are kept");
    for number in ["4242424242424242", "5555555555554444"] {
        assert!(!everything.contains(number), "the full number leaked");
    }
}

async fn invalid_requests_are_refused(p: OfflineProvider) {
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

async fn simulations_act_as_stripe_and_yield_its_events(p: OfflineProvider) {
    let i = intent(&p, 4_000).await;
    confirm(&p, &i.id, "4000002760003184").await;
    let done = p
        .simulate(Simulation::CompleteAction(i.id.clone()))
        .await
        .unwrap();
    assert_eq!(done.intent.status, IntentStatus::RequiresCapture);
    let body: serde_json::Value = serde_json::from_slice(&done.event.payload).unwrap();
    assert_eq!(body["type"], "payment_intent.amount_capturable_updated");
    assert_eq!(body["data"]["object"]["id"], i.id.0.as_str());
    assert_eq!(body["data"]["object"]["status"], "requires_capture");
    assert_eq!(
        body["data"]["object"]["metadata"]["order_id"],
        ORDER.to_string()
    );
    assert!(done.event.id.starts_with("evt_"));
    assert_eq!(body["id"], done.event.id.as_str());

    let j = intent(&p, 4_000).await;
    confirm(&p, &j.id, "4000002760003184").await;
    let failed = p
        .simulate(Simulation::FailAction(j.id.clone()))
        .await
        .unwrap();
    assert_eq!(failed.event.event_type, "payment_intent.payment_failed");
    assert_eq!(failed.intent.last_decline, Some(DeclineCode::Other));

    p.capture(&i.id, None, &fresh()).await.unwrap();
    let refunded = p
        .simulate(Simulation::DashboardRefund {
            intent: i.id.clone(),
            amount: Some(eur(1_500)),
        })
        .await
        .unwrap();
    assert_eq!(refunded.intent.amount_refunded, eur(1_500));
    let body: serde_json::Value = serde_json::from_slice(&refunded.event.payload).unwrap();
    assert_eq!(body["type"], "charge.refunded");
    assert_eq!(body["data"]["object"]["object"], "charge");
    assert_eq!(body["data"]["object"]["payment_intent"], i.id.0.as_str());
    assert_eq!(body["data"]["object"]["amount_refunded"], 1_500);
    assert_eq!(p.refunds().await.unwrap().len(), 1);
    let parsed = StripeEvent::parse(&refunded.event.payload).unwrap();
    assert_eq!(parsed.intent, Some(i.id.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_durable_provider_sees_the_same_intent_for_the_same_key() {
    let db = emporium_tests::TestDatabase::create(4).await.unwrap();
    crate::db::migrate(db.pool()).await.unwrap();
    let request = CreateIntent {
        amount: eur(1_200),
        order_id: ORDER,
    };
    let k = key("create_intent-restart");
    let first = OfflineProvider::durable(db.pool().clone());
    let created = first.create_intent(request.clone(), &k).await.unwrap();
    let summary = first
        .confirm(
            &created.id,
            card("4242424242424242"),
            &key("confirm-restart"),
        )
        .await
        .unwrap();
    drop(first);
    // "Restarted": a new provider over the same database.
    let second = OfflineProvider::durable(db.pool().clone());
    assert_eq!(second.create_intent(request, &k).await.unwrap(), created);
    assert_eq!(second.intent_count().await.unwrap(), 1);
    let retrieved = second.retrieve(&created.id).await.unwrap();
    assert_eq!(retrieved.status, IntentStatus::RequiresCapture);
    // The fingerprint key is the database's, so the same card keeps its fingerprint.
    let other = second
        .create_intent(
            CreateIntent {
                amount: eur(50),
                order_id: ORDER,
            },
            &fresh(),
        )
        .await
        .unwrap();
    let again = second
        .confirm(&other.id, card("4242424242424242"), &fresh())
        .await
        .unwrap();
    assert_eq!(
        again.intent().card.as_ref().unwrap().fingerprint,
        summary.intent().card.as_ref().unwrap().fingerprint
    );
    db.drop_database().await.unwrap();
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_provider_on_a_reopened_sqlite_store_sees_the_same_intent_and_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let request = CreateIntent {
        amount: eur(1_200),
        order_id: ORDER,
    };
    let k = key("create_intent-restart");
    let store = crate::store::SqliteStore::open(&path).await.unwrap();
    let first = OfflineProvider::durable(store.pool().clone());
    let created = first.create_intent(request.clone(), &k).await.unwrap();
    let summary = first
        .confirm(
            &created.id,
            card("4242424242424242"),
            &key("confirm-restart"),
        )
        .await
        .unwrap();
    drop(first);
    store.close().await;
    drop(store);
    // "Restarted": the file opened again, a new provider over it.
    let store = crate::store::SqliteStore::open(&path).await.unwrap();
    let second = OfflineProvider::durable(store.pool().clone());
    assert_eq!(second.create_intent(request, &k).await.unwrap(), created);
    assert_eq!(second.intent_count().await.unwrap(), 1);
    let retrieved = second.retrieve(&created.id).await.unwrap();
    assert_eq!(retrieved.status, IntentStatus::RequiresCapture);
    let other = intent(&second, 50).await;
    let again = second
        .confirm(&other.id, card("4242424242424242"), &fresh())
        .await
        .unwrap();
    assert_eq!(
        again.intent().card.as_ref().unwrap().fingerprint,
        summary.intent().card.as_ref().unwrap().fingerprint
    );
    store.close().await;
}

/// Two processes on one database: each decides its next call on the state it last
/// wrote, without a read. When the other moved the intent meanwhile, the guess loses
/// the compare-and-set and the call is decided again on what is stored, answering
/// exactly what a provider with no guess answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guess_made_stale_by_another_process_is_decided_again_on_the_stored_intent() {
    let db = emporium_tests::TestDatabase::create(4).await.unwrap();
    crate::db::migrate(db.pool()).await.unwrap();
    let (a, b) = (
        OfflineProvider::durable(db.pool().clone()),
        OfflineProvider::durable(db.pool().clone()),
    );
    let created = intent(&a, 1_000).await;
    let confirmed = confirm(&a, &created.id, "4242424242424242").await;
    assert_eq!(confirmed.intent().status, IntentStatus::RequiresCapture);
    // `a` remembers the intent awaiting capture; `b` voids it.
    let voided = b.cancel(&created.id, &fresh()).await.unwrap();
    assert_eq!(voided.status, IntentStatus::Canceled);
    // Decided on the guess, `a`'s capture would succeed; on the stored intent it is
    // refused, as by a provider that never saw the intent.
    let by_a = a.capture(&created.id, None, &fresh()).await;
    let by_fresh = OfflineProvider::durable(db.pool().clone())
        .capture(&created.id, None, &fresh())
        .await;
    assert!(
        matches!(by_a, Err(ProviderError::UnexpectedState { .. })),
        "{by_a:?}"
    );
    assert_eq!(format!("{by_a:?}"), format!("{by_fresh:?}"));
    assert_eq!(
        a.retrieve(&created.id).await.unwrap().status,
        IntentStatus::Canceled
    );
    // And a repeat of `b`'s own call through `a` replays `b`'s answer.
    let key = fresh();
    let again = b.cancel(&created.id, &key).await;
    assert_eq!(
        format!("{:?}", a.cancel(&created.id, &key).await),
        format!("{again:?}")
    );
    // A refusal decided on a stale guess is decided again too: `a` last saw this
    // intent waiting for a method, `b` confirmed it, so `a` can capture it.
    let second = intent(&a, 500).await;
    confirm(&b, &second.id, "4242424242424242").await;
    let captured = a.capture(&second.id, None, &fresh()).await.unwrap();
    assert_eq!(captured.status, IntentStatus::Succeeded);
    db.drop_database().await.unwrap();
}
