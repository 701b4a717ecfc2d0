//! The Stripe adapter's requests, against a real HTTP server on loopback that records
//! every request (method, path, headers, form body) and answers with canned
//! Stripe-shaped JSON; and, when `STRIPE_SECRET_KEY` is set, against Stripe's test
//! mode.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use emporium_commands::payments::{
    CardNumber, Confirmation, CreateIntent, IdempotencyKey, IntentId, IntentStatus, PaymentMethod,
    PaymentProvider, ProviderError, RefundStatus, StripeConfig, StripeProvider,
};
use emporium_domain::payment::{CardBrand, DeclineCode, NextAction};
use emporium_domain::{Currency, Money};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use uuid::Uuid;

const SECRET: &str = "sk_test_emporium_stub";
const ORDER: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0042);
const PI: &str = "pi_3StubIntent";

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    headers: HeaderMap,
    /// The form body's pairs, or the query's for a GET; percent-decoded.
    params: Vec<(String, String)>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Stub {
    requests: Mutex<Vec<Recorded>>,
    /// Answers in order: status and body.
    answers: Mutex<VecDeque<(u16, String)>>,
}

/// A fake Stripe on 127.0.0.1, port 0.
struct FakeStripe {
    addr: SocketAddr,
    stub: Arc<Stub>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(
    State(stub): State<Arc<Stub>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = if method == Method::GET {
        uri.query().unwrap_or_default().as_bytes().to_vec()
    } else {
        body.to_vec()
    };
    let params = form_urlencoded::parse(&raw).into_owned().collect();
    stub.requests.lock().unwrap().push(Recorded {
        method,
        path: uri.path().to_owned(),
        headers,
        params,
    });
    let answer = stub.answers.lock().unwrap().pop_front();
    let (status, body) = answer.unwrap_or((599, "no canned answer left".to_owned()));
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

impl FakeStripe {
    async fn start() -> Self {
        let stub = Arc::new(Stub::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(record).with_state(Arc::clone(&stub));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, stub, server }
    }

    fn provider(&self) -> StripeProvider {
        StripeProvider::new(
            StripeConfig::new(SECRET).with_api_base(format!("http://{}", self.addr)),
        )
        .unwrap()
    }

    fn answer(&self, status: u16, body: &Value) -> &Self {
        self.answer_raw(status, &body.to_string())
    }

    fn answer_raw(&self, status: u16, body: &str) -> &Self {
        self.stub
            .answers
            .lock()
            .unwrap()
            .push_back((status, body.to_owned()));
        self
    }

    fn requests(&self) -> Vec<Recorded> {
        self.stub.requests.lock().unwrap().clone()
    }

    fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "exactly one request: {requests:#?}");
        requests.into_iter().next().unwrap()
    }
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn new_key(operation: &str) -> IdempotencyKey {
    IdempotencyKey::for_command(operation, Uuid::new_v4())
}

fn pi() -> IntentId {
    IntentId(PI.to_owned())
}

/// A charge as `latest_charge` expands it, paid by a Visa ending 4242.
fn charge(amount: i64, captured: i64, refunded: i64) -> Value {
    json!({
        "id": "ch_3StubCharge",
        "object": "charge",
        "amount": amount,
        "amount_captured": captured,
        "amount_refunded": refunded,
        "billing_details": {"address": null, "email": null, "name": null, "phone": null},
        "captured": captured > 0,
        "created": 1_767_225_600,
        "currency": "eur",
        "disputed": false,
        "livemode": false,
        "metadata": {},
        "paid": true,
        "refunded": refunded == amount,
        "status": "succeeded",
        "payment_method_details": {
            "type": "card",
            "card": {
                "brand": "visa",
                "last4": "4242",
                "fingerprint": "Xt5EWLLDS7FJjR1c",
                "exp_month": 12,
                "exp_year": 2034
            }
        }
    })
}

/// A PaymentIntent as Stripe renders it (the fields async-stripe requires, plus
/// `extra`).
fn intent_json(status: &str, amount: i64, extra: &Value) -> Value {
    let mut body = json!({
        "id": PI,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": if status == "requires_capture" { amount } else { 0 },
        "amount_received": if status == "succeeded" { amount } else { 0 },
        "capture_method": "manual",
        "client_secret": format!("{PI}_secret_stub"),
        "confirmation_method": "automatic",
        "created": 1_767_225_600,
        "currency": "eur",
        "livemode": false,
        "metadata": {"order_id": ORDER.to_string()},
        "payment_method_types": ["card"],
        "status": status,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// A card decline as Stripe answers a confirm: HTTP 402, the intent back to
/// `requires_payment_method` with the same error as `last_payment_error`.
fn decline(code: &str, decline_code: Option<&str>) -> Value {
    let mut error = json!({
        "type": "card_error",
        "code": code,
        "message": "Your card was declined.",
        "param": "",
    });
    if let Some(d) = decline_code {
        error["decline_code"] = json!(d);
    }
    let mut error_with_intent = error.clone();
    error_with_intent["payment_intent"] = intent_json(
        "requires_payment_method",
        1_999,
        &json!({"last_payment_error": error}),
    );
    json!({ "error": error_with_intent })
}

fn api_error(kind: &str, code: Option<&str>, extra: &Value) -> Value {
    let mut error = json!({"type": kind, "message": "refused"});
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    for (k, v) in extra.as_object().unwrap() {
        error[k] = v.clone();
    }
    json!({ "error": error })
}

fn assert_mutating(request: &Recorded, method: &Method, path: &str, key: &IdempotencyKey) {
    assert_eq!(request.method, *method);
    assert_eq!(request.path, path);
    assert_eq!(
        request.header("idempotency-key"),
        Some(key.as_str()),
        "the command's key rides on {path}"
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn create_sends_the_orders_amount_and_currency_with_manual_capture_under_the_key() {
    let stripe = FakeStripe::start().await;
    stripe.answer(
        200,
        &intent_json("requires_payment_method", 1_999, &json!({})),
    );
    let key = new_key("create-intent");

    let created = stripe
        .provider()
        .create_intent(
            CreateIntent {
                amount: eur(1_999),
                order_id: ORDER,
            },
            &key,
        )
        .await
        .unwrap();

    let request = stripe.only_request();
    assert_mutating(&request, &Method::POST, "/v1/payment_intents", &key);
    assert_eq!(request.param("amount"), Some("1999"));
    assert_eq!(request.param("currency"), Some("eur"));
    assert_eq!(request.param("capture_method"), Some("manual"));
    assert_eq!(
        request.param("metadata[order_id]"),
        Some(ORDER.to_string().as_str())
    );
    assert!(
        request
            .params
            .iter()
            .any(|(k, v)| k.starts_with("allowed_payment_method_types[") && v == "card"),
        "card payments only: {:?}",
        request.params
    );
    assert!(
        request
            .params
            .iter()
            .any(|(k, v)| k.starts_with("expand[") && v == "latest_charge"),
        "{:?}",
        request.params
    );
    assert!(
        request.header("stripe-version").is_some(),
        "async-stripe pins the API version"
    );

    assert_eq!(created.id, pi());
    assert_eq!(created.order_id, ORDER);
    assert_eq!(created.amount, eur(1_999));
    assert_eq!(created.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(created.client_secret, format!("{PI}_secret_stub"));
    assert_eq!(created.card, None);
}

#[tokio::test]
async fn currencies_without_minor_units_go_out_as_they_are() {
    let stripe = FakeStripe::start().await;
    let mut yen = intent_json("requires_payment_method", 500, &json!({}));
    yen["currency"] = json!("jpy");
    stripe.answer(200, &yen);

    let created = stripe
        .provider()
        .create_intent(
            CreateIntent {
                amount: Money::new(500, Currency::JPY),
                order_id: ORDER,
            },
            &new_key("create-intent"),
        )
        .await
        .unwrap();

    let request = stripe.only_request();
    assert_eq!(request.param("amount"), Some("500"));
    assert_eq!(request.param("currency"), Some("jpy"));
    assert_eq!(created.amount, Money::new(500, Currency::JPY));
}

#[tokio::test]
async fn a_non_positive_amount_is_refused_before_any_request() {
    let stripe = FakeStripe::start().await;
    for minor in [0, -1] {
        let refused = stripe
            .provider()
            .create_intent(
                CreateIntent {
                    amount: eur(minor),
                    order_id: ORDER,
                },
                &new_key("create-intent"),
            )
            .await;
        assert!(
            matches!(refused, Err(ProviderError::InvalidAmount(_))),
            "{refused:?}"
        );
    }
    assert!(stripe.requests().is_empty());
}

#[tokio::test]
async fn confirm_sends_the_payment_method_and_requires_capture_is_authorised() {
    let stripe = FakeStripe::start().await;
    stripe.answer(
        200,
        &intent_json(
            "requires_capture",
            1_999,
            &json!({"latest_charge": charge(1_999, 0, 0), "payment_method": "pm_1Stub"}),
        ),
    );
    let key = new_key("confirm-payment");

    let confirmation = stripe
        .provider()
        .confirm(&pi(), PaymentMethod::Provider("pm_card_visa".into()), &key)
        .await
        .unwrap();

    let request = stripe.only_request();
    assert_mutating(
        &request,
        &Method::POST,
        &format!("/v1/payment_intents/{PI}/confirm"),
        &key,
    );
    assert_eq!(request.param("payment_method"), Some("pm_card_visa"));
    let Confirmation::Authorised(authorised) = confirmation else {
        panic!("requires_capture is authorised: {confirmation:?}");
    };
    assert_eq!(authorised.status, IntentStatus::RequiresCapture);
    assert_eq!(authorised.amount_capturable, eur(1_999));
    let card = authorised.card.unwrap();
    assert_eq!(card.brand, CardBrand::Visa);
    assert_eq!(card.last4.as_str(), "4242");
    assert_eq!(card.fingerprint, "Xt5EWLLDS7FJjR1c");
}

#[tokio::test]
async fn card_numbers_never_leave_the_process() {
    let stripe = FakeStripe::start().await;
    let card = CardNumber::parse("4242 4242 4242 4242").unwrap();

    let refused = stripe
        .provider()
        .confirm(
            &pi(),
            PaymentMethod::Card(card),
            &new_key("confirm-payment"),
        )
        .await;

    assert!(
        matches!(refused, Err(ProviderError::InvalidPaymentMethod(_))),
        "{refused:?}"
    );
    assert!(stripe.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn declines_map_to_their_decline_codes() {
    let cases = [
        (
            "card_declined",
            Some("generic_decline"),
            DeclineCode::CardDeclined,
        ),
        (
            "card_declined",
            Some("insufficient_funds"),
            DeclineCode::InsufficientFunds,
        ),
        (
            "expired_card",
            Some("expired_card"),
            DeclineCode::ExpiredCard,
        ),
        ("incorrect_cvc", None, DeclineCode::IncorrectCvc),
        ("processing_error", None, DeclineCode::ProcessingError),
        // An issuer's code the port does not name falls back to the general one.
        (
            "card_declined",
            Some("do_not_honor"),
            DeclineCode::CardDeclined,
        ),
        (
            "payment_intent_authentication_failure",
            None,
            DeclineCode::Other,
        ),
    ];
    for (code, decline_code, expected) in cases {
        let stripe = FakeStripe::start().await;
        stripe.answer(402, &decline(code, decline_code));
        let key = new_key("confirm-payment");

        let confirmation = stripe
            .provider()
            .confirm(&pi(), PaymentMethod::Provider("pm_card_visa".into()), &key)
            .await
            .unwrap();

        assert_mutating(
            &stripe.only_request(),
            &Method::POST,
            &format!("/v1/payment_intents/{PI}/confirm"),
            &key,
        );
        let Confirmation::Declined { code: got, intent } = confirmation else {
            panic!("{code}/{decline_code:?} is a decline: {confirmation:?}");
        };
        assert_eq!(got, expected, "{code}/{decline_code:?}");
        assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
        assert_eq!(intent.last_decline, Some(expected));
    }
}

#[tokio::test]
async fn a_decline_without_the_intent_in_the_error_reads_the_intent_back() {
    let stripe = FakeStripe::start().await;
    let mut bare = decline("card_declined", Some("insufficient_funds"));
    bare["error"]
        .as_object_mut()
        .unwrap()
        .remove("payment_intent");
    stripe.answer(402, &bare);
    stripe.answer(
        200,
        &intent_json(
            "requires_payment_method",
            1_999,
            &json!({"last_payment_error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"}}),
        ),
    );

    let confirmation = stripe
        .provider()
        .confirm(
            &pi(),
            PaymentMethod::Provider("pm_card_visa".into()),
            &new_key("confirm-payment"),
        )
        .await
        .unwrap();

    let requests = stripe.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].method, Method::GET);
    assert_eq!(requests[1].path, format!("/v1/payment_intents/{PI}"));
    assert!(matches!(
        confirmation,
        Confirmation::Declined {
            code: DeclineCode::InsufficientFunds,
            ..
        }
    ));
}

#[tokio::test]
async fn three_d_secure_requires_action_with_the_next_action() {
    // Confirmed server-side without a return URL, Stripe asks the client's SDK.
    let stripe = FakeStripe::start().await;
    stripe.answer(
        200,
        &intent_json(
            "requires_action",
            1_999,
            &json!({"next_action": {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": "https://hooks.stripe.com/3d_secure_2/hosted"}
            }}),
        ),
    );
    let confirmation = stripe
        .provider()
        .confirm(
            &pi(),
            PaymentMethod::Provider("pm_card_threeDSecure2Required".into()),
            &new_key("confirm-payment"),
        )
        .await
        .unwrap();
    let Confirmation::RequiresAction {
        next_action,
        intent,
    } = confirmation
    else {
        panic!("3-D Secure requires action: {confirmation:?}");
    };
    assert_eq!(
        next_action,
        NextAction::UseSdk {
            client_secret: format!("{PI}_secret_stub")
        }
    );
    assert_eq!(intent.status, IntentStatus::RequiresAction);
    assert_eq!(intent.next_action, Some(next_action));

    // With a redirect, the client goes to the issuer's page.
    let stripe = FakeStripe::start().await;
    stripe.answer(
        200,
        &intent_json(
            "requires_action",
            1_999,
            &json!({"next_action": {
                "type": "redirect_to_url",
                "redirect_to_url": {"url": "https://hooks.stripe.com/3d_secure/authenticate", "return_url": null}
            }}),
        ),
    );
    let confirmation = stripe
        .provider()
        .confirm(
            &pi(),
            PaymentMethod::Provider("pm_card_threeDSecure2Required".into()),
            &new_key("confirm-payment"),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            &confirmation,
            Confirmation::RequiresAction { next_action: NextAction::RedirectToUrl { url }, .. }
                if url == "https://hooks.stripe.com/3d_secure/authenticate"
        ),
        "{confirmation:?}"
    );
}

#[tokio::test]
async fn capture_cancel_and_refund_each_carry_their_key() {
    let stripe = FakeStripe::start().await;
    let provider = stripe.provider();

    stripe.answer(
        200,
        &intent_json(
            "succeeded",
            1_999,
            &json!({"latest_charge": charge(1_999, 1_999, 0)}),
        ),
    );
    let capture_key = new_key("capture-payment");
    let captured = provider.capture(&pi(), None, &capture_key).await.unwrap();
    assert_eq!(captured.status, IntentStatus::Succeeded);
    assert_eq!(captured.amount_received, eur(1_999));

    // A partial refund first reads the intent's currency, then refunds.
    stripe
        .answer(
            200,
            &intent_json(
                "succeeded",
                1_999,
                &json!({"latest_charge": charge(1_999, 1_999, 0)}),
            ),
        )
        .answer(
            200,
            &json!({
                "id": "re_3StubRefund",
                "object": "refund",
                "amount": 500,
                "created": 1_767_225_600,
                "currency": "eur",
                "payment_intent": PI,
                "status": "succeeded",
            }),
        );
    let refund_key = new_key("refund-payment");
    let refund = provider
        .refund(&pi(), Some(eur(500)), &refund_key)
        .await
        .unwrap();
    assert_eq!(refund.amount, eur(500));
    assert_eq!(refund.status, RefundStatus::Succeeded);
    assert_eq!(refund.intent, pi());
    assert_eq!(refund.id.0, "re_3StubRefund");

    stripe.answer(200, &intent_json("canceled", 1_999, &json!({})));
    let cancel_key = new_key("cancel-payment");
    let canceled = provider.cancel(&pi(), &cancel_key).await.unwrap();
    assert_eq!(canceled.status, IntentStatus::Canceled);

    let requests = stripe.requests();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    assert_mutating(
        &requests[0],
        &Method::POST,
        &format!("/v1/payment_intents/{PI}/capture"),
        &capture_key,
    );
    assert_eq!(
        requests[0].param("amount_to_capture"),
        None,
        "a full capture names no amount"
    );
    assert_eq!(requests[1].method, Method::GET);
    assert_eq!(
        requests[1].header("idempotency-key"),
        None,
        "reads carry no key"
    );
    assert_mutating(&requests[2], &Method::POST, "/v1/refunds", &refund_key);
    assert_eq!(requests[2].param("payment_intent"), Some(PI));
    assert_eq!(requests[2].param("amount"), Some("500"));
    assert_mutating(
        &requests[3],
        &Method::POST,
        &format!("/v1/payment_intents/{PI}/cancel"),
        &cancel_key,
    );
}

#[tokio::test]
async fn a_partial_capture_sends_the_amount_in_the_intents_currency_only() {
    let stripe = FakeStripe::start().await;
    let provider = stripe.provider();
    let authorised = intent_json("requires_capture", 1_999, &json!({}));
    let mut captured = intent_json("succeeded", 1_999, &json!({}));
    captured["amount_received"] = json!(1_500);
    stripe.answer(200, &authorised).answer(200, &captured);

    let key = new_key("capture-payment");
    let got = provider
        .capture(&pi(), Some(eur(1_500)), &key)
        .await
        .unwrap();
    assert_eq!(got.amount_received, eur(1_500));
    let requests = stripe.requests();
    assert_eq!(requests.len(), 2);
    assert_mutating(
        &requests[1],
        &Method::POST,
        &format!("/v1/payment_intents/{PI}/capture"),
        &key,
    );
    assert_eq!(requests[1].param("amount_to_capture"), Some("1500"));

    // Another currency than the intent's is refused before the capture is sent.
    stripe.answer(200, &authorised);
    let refused = provider
        .capture(
            &pi(),
            Some(Money::new(1_500, Currency::USD)),
            &new_key("capture-payment"),
        )
        .await;
    assert!(
        matches!(refused, Err(ProviderError::InvalidAmount(_))),
        "{refused:?}"
    );
    assert_eq!(stripe.requests().len(), 3, "only the read went out");
}

#[tokio::test]
async fn retrieve_reads_status_card_and_refunds_without_a_key() {
    let stripe = FakeStripe::start().await;
    stripe.answer(
        200,
        &intent_json(
            "succeeded",
            1_999,
            &json!({"latest_charge": charge(1_999, 1_999, 700)}),
        ),
    );

    let got = stripe.provider().retrieve(&pi()).await.unwrap();

    let request = stripe.only_request();
    assert_eq!(request.method, Method::GET);
    assert_eq!(request.path, format!("/v1/payment_intents/{PI}"));
    assert_eq!(request.header("idempotency-key"), None);
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert!(
        request
            .params
            .iter()
            .any(|(k, v)| k.starts_with("expand[") && v == "latest_charge")
    );
    assert_eq!(got.status, IntentStatus::Succeeded);
    assert_eq!(got.amount_received, eur(1_999));
    assert_eq!(got.amount_refunded, eur(700));
    assert_eq!(got.card.unwrap().brand, CardBrand::Visa);
}

#[tokio::test]
async fn stripe_statuses_map_to_the_ports() {
    let cases = [
        (
            "requires_payment_method",
            IntentStatus::RequiresPaymentMethod,
        ),
        // The port confirms and attaches a method in one call: "confirm next".
        ("requires_confirmation", IntentStatus::RequiresPaymentMethod),
        ("requires_action", IntentStatus::RequiresAction),
        ("processing", IntentStatus::Processing),
        ("requires_capture", IntentStatus::RequiresCapture),
        ("succeeded", IntentStatus::Succeeded),
        ("canceled", IntentStatus::Canceled),
    ];
    for (stripe_status, expected) in cases {
        let stripe = FakeStripe::start().await;
        stripe.answer(200, &intent_json(stripe_status, 1_999, &json!({})));
        let got = stripe.provider().retrieve(&pi()).await.unwrap();
        assert_eq!(got.status, expected, "{stripe_status}");
    }
}

#[tokio::test]
async fn server_errors_are_unavailable_and_tried_once() {
    let stripe = FakeStripe::start().await;
    stripe.answer(
        500,
        &api_error(
            "api_error",
            None,
            &json!({"message": "An unknown error occurred"}),
        ),
    );
    let failed = stripe
        .provider()
        .capture(&pi(), None, &new_key("capture-payment"))
        .await;
    assert!(
        matches!(failed, Err(ProviderError::Unavailable(_))),
        "{failed:?}"
    );
    assert_eq!(
        stripe.requests().len(),
        1,
        "no retry inside the adapter: the caller retries with the same key"
    );

    // A proxy's 502 page is not Stripe's JSON; still unavailable.
    let stripe = FakeStripe::start().await;
    stripe.answer_raw(502, "<html>bad gateway</html>");
    let failed = stripe
        .provider()
        .cancel(&pi(), &new_key("cancel-payment"))
        .await;
    assert!(
        matches!(failed, Err(ProviderError::Unavailable(_))),
        "{failed:?}"
    );

    // Rate limited.
    let stripe = FakeStripe::start().await;
    stripe.answer(
        429,
        &api_error("invalid_request_error", Some("rate_limit"), &json!({})),
    );
    let failed = stripe.provider().retrieve(&pi()).await;
    assert!(
        matches!(failed, Err(ProviderError::Unavailable(_))),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    // A port that was just free: nothing listens there.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let provider =
        StripeProvider::new(StripeConfig::new(SECRET).with_api_base(format!("http://{closed}")))
            .unwrap();

    let failed = provider
        .create_intent(
            CreateIntent {
                amount: eur(1_999),
                order_id: ORDER,
            },
            &new_key("create-intent"),
        )
        .await;

    let Err(ProviderError::Unavailable(cause)) = failed else {
        panic!("connection refused is unavailable: {failed:?}");
    };
    assert!(
        format!("{cause:#}").contains("stripe"),
        "the cause says where: {cause:#}"
    );
}

#[tokio::test]
async fn refusals_map_to_the_ports_errors() {
    let idempotency = api_error(
        "idempotency_error",
        None,
        &json!({"message": "Keys for idempotent requests can only be used with the same parameters they were first used with."}),
    );
    let missing = api_error(
        "invalid_request_error",
        Some("resource_missing"),
        &json!({"param": "intent"}),
    );
    let unexpected = api_error(
        "invalid_request_error",
        Some("payment_intent_unexpected_state"),
        &json!({"payment_intent": intent_json("canceled", 1_999, &json!({}))}),
    );
    let in_flight = api_error(
        "invalid_request_error",
        Some("idempotency_key_in_use"),
        &json!({}),
    );
    let no_method = api_error(
        "invalid_request_error",
        Some("resource_missing"),
        &json!({"param": "payment_method"}),
    );
    let malformed = api_error(
        "invalid_request_error",
        Some("parameter_unknown"),
        &json!({"param": "shoe_size"}),
    );
    let bad_key = api_error("invalid_request_error", None, &json!({}));

    let stripe = FakeStripe::start().await;
    let provider = stripe.provider();
    let reused = new_key("capture-payment");

    stripe.answer(400, &idempotency);
    let got = provider.capture(&pi(), None, &reused).await;
    assert!(
        matches!(&got, Err(ProviderError::IdempotencyKeyReused(k)) if *k == reused),
        "{got:?}"
    );

    stripe.answer(404, &missing);
    let got = provider
        .capture(&pi(), None, &new_key("capture-payment"))
        .await;
    assert!(
        matches!(&got, Err(ProviderError::NotFound(id)) if *id == pi()),
        "{got:?}"
    );

    stripe.answer(400, &unexpected);
    let got = provider
        .capture(&pi(), None, &new_key("capture-payment"))
        .await;
    assert!(
        matches!(
            &got,
            Err(ProviderError::UnexpectedState {
                status: IntentStatus::Canceled,
                operation: "capture",
                ..
            })
        ),
        "{got:?}"
    );

    stripe.answer(409, &in_flight);
    let got = provider.cancel(&pi(), &new_key("cancel-payment")).await;
    assert!(matches!(got, Err(ProviderError::Unavailable(_))), "{got:?}");

    stripe.answer(400, &no_method);
    let got = provider
        .confirm(
            &pi(),
            PaymentMethod::Provider("pm_gone".into()),
            &new_key("confirm-payment"),
        )
        .await;
    assert!(
        matches!(got, Err(ProviderError::InvalidPaymentMethod(_))),
        "{got:?}"
    );

    stripe.answer(400, &malformed);
    let got = provider.cancel(&pi(), &new_key("cancel-payment")).await;
    assert!(
        matches!(got, Err(ProviderError::InvalidRequest(_))),
        "{got:?}"
    );

    stripe.answer(401, &bad_key);
    let got = provider.retrieve(&pi()).await;
    assert!(matches!(got, Err(ProviderError::Unavailable(_))), "{got:?}");

    assert_eq!(stripe.requests().len(), 7, "one request per call");
}

/// Stripe's test mode, end to end. Runs only with `STRIPE_SECRET_KEY` (a `sk_test_`
/// key); without it, it says so and checks nothing.
#[tokio::test]
#[allow(clippy::print_stderr)] // a skipped test says so
async fn stripe_test_mode_creates_confirms_captures_and_refunds() {
    let Ok(secret) = std::env::var("STRIPE_SECRET_KEY") else {
        eprintln!(
            "skipped stripe_test_mode_creates_confirms_captures_and_refunds: \
             STRIPE_SECRET_KEY is not set (needs a sk_test_ key and access to api.stripe.com)"
        );
        return;
    };
    assert!(
        secret.starts_with("sk_test_") || secret.starts_with("rk_test_"),
        "STRIPE_SECRET_KEY must be a test-mode key"
    );
    let provider = StripeProvider::new(StripeConfig::new(secret)).unwrap();
    let order = Uuid::new_v4();
    let create_key = new_key("create-intent");
    let request = CreateIntent {
        amount: eur(1_234),
        order_id: order,
    };

    let created = provider
        .create_intent(request.clone(), &create_key)
        .await
        .unwrap();
    assert!(created.id.0.starts_with("pi_"), "{}", created.id);
    assert_eq!(created.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(created.order_id, order);
    assert_eq!(created.amount, eur(1_234));
    let replayed = provider.create_intent(request, &create_key).await.unwrap();
    assert_eq!(
        replayed.id, created.id,
        "the same key creates no second intent"
    );

    let confirmation = provider
        .confirm(
            &created.id,
            PaymentMethod::Provider("pm_card_visa".into()),
            &new_key("confirm-payment"),
        )
        .await
        .unwrap();
    let Confirmation::Authorised(authorised) = confirmation else {
        panic!("pm_card_visa authorises: {confirmation:?}");
    };
    assert_eq!(authorised.status, IntentStatus::RequiresCapture);
    assert_eq!(authorised.amount_capturable, eur(1_234));
    assert_eq!(authorised.card.as_ref().unwrap().last4.as_str(), "4242");

    let captured = provider
        .capture(&created.id, None, &new_key("capture-payment"))
        .await
        .unwrap();
    assert_eq!(captured.status, IntentStatus::Succeeded);
    assert_eq!(captured.amount_received, eur(1_234));

    let refund = provider
        .refund(&created.id, None, &new_key("refund-payment"))
        .await
        .unwrap();
    assert!(refund.id.0.starts_with("re_"), "{}", refund.id.0);
    assert_eq!(refund.amount, eur(1_234));
    assert_ne!(refund.status, RefundStatus::Failed);

    let declined = provider
        .create_intent(
            CreateIntent {
                amount: eur(1_234),
                order_id: order,
            },
            &new_key("create-intent"),
        )
        .await
        .unwrap();
    let confirmation = provider
        .confirm(
            &declined.id,
            PaymentMethod::Provider("pm_card_visa_chargeDeclinedInsufficientFunds".into()),
            &new_key("confirm-payment"),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            confirmation,
            Confirmation::Declined {
                code: DeclineCode::InsufficientFunds,
                ..
            }
        ),
        "{confirmation:?}"
    );
}
