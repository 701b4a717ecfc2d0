-- The event store. The first seven columns are postgres-es's contract; the rest are
-- what reliable publication needs (see ARCHITECTURE.md, "Relay").
CREATE TABLE IF NOT EXISTS events
(
    aggregate_type text                     NOT NULL,
    aggregate_id   text                     NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                     NOT NULL,
    event_version  text                     NOT NULL,
    payload        jsonb                    NOT NULL,
    metadata       jsonb                    NOT NULL,
    -- Global position: assigned at insert, NOT commit order (see transaction_id).
    position       bigserial                NOT NULL UNIQUE,
    -- The inserting transaction. A relay reads only rows whose transaction is older
    -- than every transaction still in flight, in (transaction_id, position) order,
    -- which is commit-safe where `position` alone is not.
    transaction_id xid8                     NOT NULL DEFAULT pg_current_xact_id(),
    event_id       uuid                     NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    recorded_at    timestamptz              NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX IF NOT EXISTS events_commit_order ON events (transaction_id, position);

CREATE TABLE IF NOT EXISTS snapshots
(
    aggregate_type   text   NOT NULL,
    aggregate_id     text   NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0) NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          jsonb  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- Uniqueness the domain cannot see on its own (one e-mail per user, one slug per
-- product, ...): a key is claimed here before the owning aggregate's first command.
CREATE TABLE IF NOT EXISTS unique_keys
(
    scope       text        NOT NULL,
    key         text        NOT NULL,
    owner_id    text        NOT NULL,
    reserved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
