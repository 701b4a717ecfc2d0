-- The embedded event store (SQLite, WAL). The same columns as the PostgreSQL store
-- (commands/migrations/), adapted:
-- * `position` is the rowid (INTEGER PRIMARY KEY), AUTOINCREMENT so a position is
--   never reused even if the tail were deleted. SQLite has one writer at a time and a
--   rolled-back insert gives its rowid back, so positions are assigned in commit
--   order with no gaps: a reader that has seen position p has seen every event up to
--   p (ARCHITECTURE.md, "Embedded event store").
-- * No transaction id column: commit order is position order.
-- * JSON is TEXT; `event_id` is a hyphenated UUID and `recorded_at` RFC 3339 (UTC,
--   microseconds), both written by the store.
-- * Optimistic concurrency: the UNIQUE key refuses a second writer of a sequence
--   (SQLITE_CONSTRAINT_UNIQUE, mapped to a conflict by the store).
CREATE TABLE IF NOT EXISTS events
(
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    sequence       INTEGER NOT NULL CHECK (sequence >= 0),
    event_type     TEXT    NOT NULL,
    event_version  TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    event_id       TEXT    NOT NULL UNIQUE,
    recorded_at    TEXT    NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE TABLE IF NOT EXISTS snapshots
(
    aggregate_type   TEXT    NOT NULL,
    aggregate_id     TEXT    NOT NULL,
    last_sequence    INTEGER NOT NULL CHECK (last_sequence >= 0),
    current_snapshot INTEGER NOT NULL CHECK (current_snapshot >= 0),
    payload          TEXT    NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
) STRICT;

-- Uniqueness the domain cannot see on its own; see commands/src/reservations.rs.
CREATE TABLE IF NOT EXISTS unique_keys
(
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    reserved_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (scope, key)
) STRICT;

-- The committed-owner lookups of registration and products (see KeyLookup): the
-- same expressions as the store's queries, so these indexes serve them.
CREATE INDEX IF NOT EXISTS events_user_registered_email
    ON events (json_extract(payload, '$.UserRegistered.email'))
    WHERE aggregate_type = 'user' AND event_type = 'UserRegistered';
CREATE INDEX IF NOT EXISTS events_product_created_sku
    ON events (json_extract(payload, '$.ProductCreated.sku'))
    WHERE aggregate_type = 'product' AND event_type = 'ProductCreated';
CREATE INDEX IF NOT EXISTS events_variant_added_sku
    ON events (json_extract(payload, '$.VariantAdded.sku'))
    WHERE aggregate_type = 'product' AND event_type = 'VariantAdded';
