-- The checkout process manager's durable state: one row per checkout, written before
-- its first command, so a crash at any step leaves a row the sweeper resumes from.
-- The aggregates (cart, coupon, order, inventory, payment) hold every business fact;
-- this row holds only what no event carries: the customer's checkout choices, the
-- payment method until it is confirmed, and the scheduling of the next attempt.
CREATE TABLE IF NOT EXISTS checkouts
(
    order_id        uuid        PRIMARY KEY,
    cart_id         uuid        NOT NULL UNIQUE,
    customer_id     uuid        NOT NULL,
    email           text,
    client_ip       text,
    -- {shipping_address, billing_address, shipping_method, coupon}
    request         jsonb       NOT NULL,
    -- The payment method, cleared once the provider has it (never a real card
    -- number in production: Stripe's client SDK sends a `pm_...` id).
    payment_method  jsonb,
    -- open: the process manager still has work (or waits on the customer, staff or
    -- the provider); closed: nothing left until an outside event (shipment).
    state           text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    -- Why the checkout ended before or instead of payment ({kind, ...}).
    failure         jsonb,
    grand_total_minor bigint,
    paid            boolean     NOT NULL DEFAULT false,
    -- The reservations were committed because the order shipped.
    stock_committed boolean     NOT NULL DEFAULT false,
    expires_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS checkouts_due ON checkouts (next_attempt_at) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS checkouts_expiry ON checkouts (expires_at) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS checkouts_customer ON checkouts (customer_id, created_at);
CREATE INDEX IF NOT EXISTS checkouts_email ON checkouts (email, created_at);
CREATE INDEX IF NOT EXISTS checkouts_ip ON checkouts (client_ip, created_at);
-- Paid checkouts whose shipment has not committed their stock yet.
CREATE INDEX IF NOT EXISTS checkouts_uncommitted ON checkouts (order_id) WHERE paid AND NOT stock_committed;
