-- Single-use tokens mailed to users (e-mail verification, password reset). Only the
-- SHA-256 of a token is stored; a token is consumed by one conditional UPDATE
-- (unused and unexpired), so it works once. A newer token of the same purpose for
-- the same user supersedes the older ones (they are marked used).
CREATE TABLE IF NOT EXISTS auth_one_time_tokens (
    token_hash text        PRIMARY KEY,
    purpose    text        NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    user_id    uuid        NOT NULL,
    email      text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE INDEX IF NOT EXISTS auth_one_time_tokens_unused_by_user
    ON auth_one_time_tokens (user_id, purpose) WHERE used_at IS NULL;
