-- Provider webhook events already applied (commands::payments::sync), as in
-- commands/migrations/20261127000201_stripe_webhook_events.sql.
CREATE TABLE IF NOT EXISTS stripe_webhook_events
(
    event_id     TEXT PRIMARY KEY,
    event_type   TEXT NOT NULL,
    intent_id    TEXT,
    payment_id   BLOB,
    outcome      TEXT NOT NULL,
    processed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
