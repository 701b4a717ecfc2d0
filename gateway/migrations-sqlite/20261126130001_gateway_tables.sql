-- The gateway's own tables in the embedded mode (`gateway.db`, beside the event store
-- and `read.db`): the same tables as the PostgreSQL migrations in `../migrations`
-- (see their comments), in SQLite's types. UUIDs are 16-byte blobs and times
-- fixed-width RFC 3339 text in UTC, as `emporium_commands::sql` writes them, so text
-- order is time order.

CREATE TABLE auth_sessions (
    id               blob    PRIMARY KEY,
    user_id          blob    NOT NULL,
    current_token_id blob    NOT NULL,
    generation       integer NOT NULL DEFAULT 1,
    created_at       text    NOT NULL,
    refreshed_at     text    NOT NULL,
    expires_at       text    NOT NULL,
    revoked_at       text,
    revoked_reason   text
) WITHOUT ROWID;

CREATE INDEX auth_sessions_active_by_user
    ON auth_sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE auth_one_time_tokens (
    token_hash text PRIMARY KEY,
    purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    user_id    blob NOT NULL,
    email      text NOT NULL,
    created_at text NOT NULL,
    expires_at text NOT NULL,
    used_at    text
) WITHOUT ROWID;

CREATE INDEX auth_one_time_tokens_unused_by_user
    ON auth_one_time_tokens (user_id, purpose) WHERE used_at IS NULL;

CREATE TABLE email_templates (
    kind       text PRIMARY KEY,
    subject    text NOT NULL,
    body       text NOT NULL,
    updated_at text NOT NULL,
    updated_by blob NOT NULL
) WITHOUT ROWID;

CREATE TABLE email_ledger (
    event_id  blob NOT NULL,
    recipient text NOT NULL,
    kind      text NOT NULL,
    sent_at   text NOT NULL,
    PRIMARY KEY (event_id, recipient)
) WITHOUT ROWID;
