-- The durable offline payment provider (commands::payments::OfflineProvider::durable),
-- as in commands/migrations/20261127000200_offline_payment_provider.sql. SQLite has
-- one writer at a time, so an operation is one write transaction (BEGIN IMMEDIATE)
-- instead of PostgreSQL's compare-and-set function. Times are RFC 3339 text (UTC).
CREATE TABLE IF NOT EXISTS offline_provider_keys
(
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    -- HMAC key of the card fingerprints, random per database, in hex.
    fingerprint_key TEXT    NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS offline_payment_intents
(
    intent_id  TEXT PRIMARY KEY,
    order_id   BLOB NOT NULL,
    -- The PaymentIntent as the port reports it (JSON).
    state      TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX IF NOT EXISTS offline_payment_intents_order ON offline_payment_intents (order_id);

CREATE TABLE IF NOT EXISTS offline_payment_refunds
(
    -- The rowid: refunds in the order they were made.
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_id  TEXT    NOT NULL UNIQUE,
    intent_id  TEXT    NOT NULL REFERENCES offline_payment_intents (intent_id),
    refund     TEXT    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

-- A key's first successful response and its request's fingerprint, as Stripe keeps them.
CREATE TABLE IF NOT EXISTS offline_payment_idempotency
(
    key        TEXT PRIMARY KEY,
    request    TEXT NOT NULL,
    response   TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
