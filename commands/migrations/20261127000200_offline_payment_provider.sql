-- The offline payment provider's durable state (commands::payments::OfflineProvider::durable):
-- what Stripe would hold for us, so a restarted process sees the same intent for the
-- same idempotency key. Only card brand, last four and a keyed fingerprint are stored.
CREATE TABLE offline_provider_keys (
    id              smallint    PRIMARY KEY CHECK (id = 1),
    -- HMAC key of the card fingerprints, random per database.
    fingerprint_key bytea       NOT NULL
);

CREATE TABLE offline_payment_intents (
    intent_id  text        PRIMARY KEY,
    order_id   uuid        NOT NULL,
    -- The PaymentIntent as the port reports it (JSON of commands::payments::PaymentIntent).
    state      jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX offline_payment_intents_order ON offline_payment_intents (order_id);

CREATE TABLE offline_payment_refunds (
    seq        bigserial   UNIQUE,
    refund_id  text        PRIMARY KEY,
    intent_id  text        NOT NULL REFERENCES offline_payment_intents (intent_id),
    refund     jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A key's first successful response and its request's fingerprint, as Stripe keeps them.
CREATE TABLE offline_payment_idempotency (
    key        text        PRIMARY KEY,
    request    jsonb       NOT NULL,
    response   jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
