-- Sessions: one row per sign-in, that is per refresh-token family. Only the family's
-- current refresh token (`current_token_id`, the JWT's `jti`) is accepted; a refresh
-- swaps it with one conditional UPDATE, so of two concurrent refreshes with one
-- token exactly one succeeds. Presenting an earlier (rotated) token revokes the
-- family. Access tokens carry the session id (`sid`) and are refused once it is
-- revoked (logout, reset, reuse).
CREATE TABLE IF NOT EXISTS auth_sessions (
    id               uuid        PRIMARY KEY,
    user_id          uuid        NOT NULL,
    current_token_id uuid        NOT NULL,
    generation       integer     NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL,
    refreshed_at     timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    revoked_reason   text
);

CREATE INDEX IF NOT EXISTS auth_sessions_active_by_user
    ON auth_sessions (user_id) WHERE revoked_at IS NULL;
