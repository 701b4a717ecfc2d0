//! Stripe webhook events: what the endpoint needs from one, and (for the offline
//! provider and tests) the events Stripe would send.
//!
//! The endpoint reads only an event's `id`, `type` and which PaymentIntent it is about
//! (`data.object.id` of a `payment_intent`, `data.object.payment_intent` of a `charge`
//! or `refund`); the intent's state itself is always retrieved from the provider, so
//! nothing else in the payload is trusted or needed.

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use super::webhook::{WebhookSecret, signature_header};
use super::{IntentId, IntentStatus, PaymentIntent};

/// A webhook event: its id, type and raw JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEvent {
    /// `evt_...`.
    pub id: String,
    /// E.g. `payment_intent.succeeded`.
    pub event_type: String,
    /// The body as delivered.
    pub payload: Vec<u8>,
}

/// What the endpoint reads from a delivered event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    /// `evt_...`: the deduplication key.
    pub id: String,
    /// The event type.
    pub event_type: String,
    /// The PaymentIntent it is about, if any.
    pub intent: Option<IntentId>,
}

/// Why an event body was refused (after its signature was verified).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseEventError {
    /// Not JSON, or not an object.
    #[error("event body is not a JSON object")]
    NotJson,
    /// No usable `id` or `type`.
    #[error("event has no {0}")]
    Missing(&'static str),
}

/// An id is 1 to 255 printable ASCII characters (as Stripe's are).
fn id_like(value: &Value) -> Option<String> {
    let s = value.as_str()?;
    ((1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())).then(|| s.to_owned())
}

impl StripeEvent {
    /// Reads a delivered body.
    ///
    /// # Errors
    /// [`ParseEventError`] when it is not an event.
    pub fn parse(body: &[u8]) -> Result<ParsedEvent, ParseEventError> {
        let value: Value = serde_json::from_slice(body).map_err(|_| ParseEventError::NotJson)?;
        if !value.is_object() {
            return Err(ParseEventError::NotJson);
        }
        let id = id_like(&value["id"]).ok_or(ParseEventError::Missing("id"))?;
        let event_type = id_like(&value["type"]).ok_or(ParseEventError::Missing("type"))?;
        let object = &value["data"]["object"];
        let intent = match object["object"].as_str() {
            Some("payment_intent") => id_like(&object["id"]),
            Some("charge" | "refund") => id_like(&object["payment_intent"]),
            _ => None,
        }
        .map(IntentId);
        Ok(ParsedEvent {
            id,
            event_type,
            intent,
        })
    }

    /// The `payment_intent.*` event Stripe sends with `intent` as its object.
    #[must_use]
    pub fn for_intent(event_type: &str, intent: &PaymentIntent) -> Self {
        Self::new(event_type, intent_object(intent))
    }

    /// The `charge.refunded` event for a refund of `intent` (its charge as the object).
    #[must_use]
    pub fn charge_refunded(intent: &PaymentIntent) -> Self {
        let charge = json!({
            "id": format!("ch_{}", intent.id.0.trim_start_matches("pi_")),
            "object": "charge",
            "payment_intent": intent.id.0,
            "amount": intent.amount.amount_minor(),
            "amount_captured": intent.amount_received.amount_minor(),
            "amount_refunded": intent.amount_refunded.amount_minor(),
            "refunded": intent.amount_refunded == intent.amount_received,
            "currency": intent.amount.currency().code().to_ascii_lowercase(),
            "status": "succeeded",
            "metadata": { "order_id": intent.order_id.to_string() },
        });
        Self::new("charge.refunded", charge)
    }

    fn new(event_type: &str, object: Value) -> Self {
        let id = format!("evt_offline_{}", Uuid::new_v4().simple());
        let body = json!({
            "id": id,
            "object": "event",
            "api_version": "2025-03-31.basil",
            "created": Utc::now().timestamp(),
            "livemode": false,
            "pending_webhooks": 1,
            "type": event_type,
            "data": { "object": object },
        });
        Self {
            id,
            event_type: event_type.to_owned(),
            payload: serde_json::to_vec(&body).unwrap_or_default(),
        }
    }

    /// The `Stripe-Signature` header Stripe would send with it, signed at `timestamp`.
    #[must_use]
    pub fn signature(&self, secret: &WebhookSecret, timestamp: i64) -> String {
        signature_header(&self.payload, secret, timestamp)
    }
}

/// A PaymentIntent as Stripe's API shows it (the fields webhooks consumers read).
fn intent_object(intent: &PaymentIntent) -> Value {
    let mut object = json!({
        "id": intent.id.0,
        "object": "payment_intent",
        "amount": intent.amount.amount_minor(),
        "amount_capturable": intent.amount_capturable.amount_minor(),
        "amount_received": intent.amount_received.amount_minor(),
        "capture_method": "manual",
        "currency": intent.amount.currency().code().to_ascii_lowercase(),
        "status": intent.status.as_str(),
        "metadata": { "order_id": intent.order_id.to_string() },
        "next_action": null,
        "last_payment_error": null,
    });
    if intent.status == IntentStatus::RequiresAction {
        object["next_action"] = json!({ "type": "use_stripe_sdk" });
    }
    if let Some(decline) = intent.last_decline {
        object["last_payment_error"] = json!({
            "type": "card_error",
            "code": "card_declined",
            "decline_code": serde_json::to_value(decline).unwrap_or(Value::Null),
        });
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_intent() {
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"object":"payment_intent","id":"pi_1"}}}"#;
        assert_eq!(
            StripeEvent::parse(body).unwrap(),
            ParsedEvent {
                id: "evt_1".into(),
                event_type: "payment_intent.succeeded".into(),
                intent: Some(IntentId("pi_1".into()))
            }
        );
        let charge = br#"{"id":"evt_2","type":"charge.refunded","data":{"object":{"object":"charge","id":"ch_1","payment_intent":"pi_9"}}}"#;
        assert_eq!(
            StripeEvent::parse(charge).unwrap().intent,
            Some(IntentId("pi_9".into()))
        );
        let other = br#"{"id":"evt_3","type":"customer.created","data":{"object":{"object":"customer","id":"cus_1"}}}"#;
        assert_eq!(StripeEvent::parse(other).unwrap().intent, None);
        assert_eq!(StripeEvent::parse(b"[1]"), Err(ParseEventError::NotJson));
        assert_eq!(StripeEvent::parse(b"nope"), Err(ParseEventError::NotJson));
        assert_eq!(
            StripeEvent::parse(br#"{"type":"x"}"#),
            Err(ParseEventError::Missing("id"))
        );
        assert_eq!(
            StripeEvent::parse(br#"{"id":"evt 1","type":"x"}"#),
            Err(ParseEventError::Missing("id"))
        );
        assert_eq!(
            StripeEvent::parse(br#"{"id":"evt_1"}"#),
            Err(ParseEventError::Missing("type"))
        );
    }
}
