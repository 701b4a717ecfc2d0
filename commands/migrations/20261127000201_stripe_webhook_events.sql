-- Provider webhook events already applied (commands::payments::sync): the dedupe key
-- is the provider's event id. Written after the event's effect; the effect is
-- idempotent (reconciled with the intent), so a crash in between is harmless.
CREATE TABLE stripe_webhook_events (
    event_id     text        PRIMARY KEY,
    event_type   text        NOT NULL,
    intent_id    text,
    payment_id   uuid,
    outcome      text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
