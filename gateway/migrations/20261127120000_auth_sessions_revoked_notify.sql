-- Every gateway keeps the sessions it found live (gateway/src/auth/live.rs) and must
-- forget one the moment it is revoked, by whichever process or hand: each revocation
-- or deletion of a session notifies `emporium_session_revoked` with its id (delivered
-- when the transaction commits), and a TRUNCATE with an empty payload (forget all).
CREATE OR REPLACE FUNCTION emporium_session_revoked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('emporium_session_revoked', '');
    ELSE
        PERFORM pg_notify('emporium_session_revoked', OLD.id::text);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS auth_sessions_revoked ON auth_sessions;
CREATE TRIGGER auth_sessions_revoked
    AFTER UPDATE ON auth_sessions
    FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
          OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION emporium_session_revoked();

DROP TRIGGER IF EXISTS auth_sessions_deleted ON auth_sessions;
CREATE TRIGGER auth_sessions_deleted
    AFTER DELETE ON auth_sessions
    FOR EACH ROW
    EXECUTE FUNCTION emporium_session_revoked();

DROP TRIGGER IF EXISTS auth_sessions_truncated ON auth_sessions;
CREATE TRIGGER auth_sessions_truncated
    AFTER TRUNCATE ON auth_sessions
    FOR EACH STATEMENT
    EXECUTE FUNCTION emporium_session_revoked();
