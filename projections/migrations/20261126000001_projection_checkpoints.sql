-- One row per projection: which version owns the live read-model tables, how far it
-- has applied the stream, and whether it stopped on a poison event. The runner
-- updates it in the same transaction as the read-model change it records.
--
-- Read-model tables themselves are not migrations: each projection version creates
-- its own (see projections/src/projection/rebuild.rs), so a version bump rebuilds
-- them into a shadow schema and swaps them in.
CREATE TABLE IF NOT EXISTS projection_checkpoints
(
    name                   text        PRIMARY KEY,
    -- The version whose tables are live (0: none yet).
    version                integer     NOT NULL,
    -- The live tables, so a later version knows what to replace.
    tables                 text[]      NOT NULL DEFAULT '{}',
    -- The last applied event in commit order: its inserting transaction (xid8,
    -- stored as bigint) and its position.
    transaction_id         bigint      NOT NULL DEFAULT 0,
    position               bigint      NOT NULL DEFAULT 0,
    -- The stream sequence of that event (the stream's n-th message is the n-th
    -- event in commit order).
    stream_sequence        bigint      NOT NULL DEFAULT 0,
    -- Bumped on every update; carried by the notification so waiters can order them.
    revision               bigint      NOT NULL DEFAULT 0,
    state                  text        NOT NULL DEFAULT 'running'
                                       CHECK (state IN ('running', 'failed')),
    -- Why it stopped, and on which event (state = 'failed').
    error                  text,
    failed_stream_sequence bigint,
    failed_event_id        uuid,
    failed_at              timestamptz,
    -- A rebuild in progress: the version being built and how far it got.
    rebuilding_version     integer,
    rebuild_position       bigint,
    updated_at             timestamptz NOT NULL DEFAULT now()
);
