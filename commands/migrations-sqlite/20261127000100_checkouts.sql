-- The checkout process manager's durable state (commands::checkout), as in
-- commands/migrations/20261127000100_checkouts.sql, in the embedded store's file:
-- UUIDs are 16-byte blobs, times RFC 3339 text in UTC with six fractional digits
-- (commands::sql::sqlite_time: text order is time order), JSON is text, booleans
-- are 0/1.
CREATE TABLE IF NOT EXISTS checkouts
(
    order_id          BLOB    PRIMARY KEY,
    cart_id           BLOB    NOT NULL UNIQUE,
    customer_id       BLOB    NOT NULL,
    email             TEXT,
    client_ip         TEXT,
    -- {shipping_address, billing_address, shipping_method, coupon}
    request           TEXT    NOT NULL,
    -- The payment method, cleared once the provider has it.
    payment_method    TEXT,
    state             TEXT    NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    failure           TEXT,
    grand_total_minor INTEGER,
    paid              INTEGER NOT NULL DEFAULT 0,
    stock_committed   INTEGER NOT NULL DEFAULT 0,
    expires_at        TEXT    NOT NULL,
    next_attempt_at   TEXT    NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS checkouts_due ON checkouts (next_attempt_at) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS checkouts_expiry ON checkouts (expires_at) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS checkouts_customer ON checkouts (customer_id, created_at);
CREATE INDEX IF NOT EXISTS checkouts_email ON checkouts (email, created_at);
CREATE INDEX IF NOT EXISTS checkouts_ip ON checkouts (client_ip, created_at);
CREATE INDEX IF NOT EXISTS checkouts_uncommitted ON checkouts (order_id) WHERE paid AND NOT stock_committed;
