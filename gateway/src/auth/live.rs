//! Sessions known to be live, so checking a request's access token costs no statement.
//!
//! Every authenticated request asks whether its session was revoked. On PostgreSQL
//! that was a statement and a pooled connection (sqlx pings it on return) per
//! request: on the addToCart benchmark a tenth of the database's round trips. The
//! answer changes only when a session is revoked, so a live answer is kept, and
//! forgotten the moment anything revokes:
//!
//! - this process forgets a session itself right after its own revocation commits,
//!   so a logout is refused by the very next request here;
//! - a trigger on `auth_sessions` (migration `..._auth_sessions_revoked_notify`) sends
//!   `NOTIFY emporium_session_revoked` with the session id for every revocation or
//!   deletion, from any process or by hand, and every gateway listens: another
//!   replica forgets it a few milliseconds after the commit;
//! - while the listener is not connected nothing is kept (a notification could be
//!   missed), and everything kept is dropped when it (re)connects;
//! - an answer older than `auth.session_cache_seconds` is asked again regardless.
//!
//! A read that started before a revocation must not store its (now stale) live
//! answer after the revocation was forgotten: every forgetting bumps an epoch under
//! a lock, and an answer is stored only when the epoch is the one its read started
//! in. Only "live" is kept; a refusal is always asked again.
//!
//! The embedded mode (SQLite, one process, no network round trip) does not keep
//! anything.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use uuid::Uuid;

/// The channel the `auth_sessions` trigger notifies; the payload is the session id,
/// or empty for "forget everything" (a TRUNCATE).
pub(crate) const CHANNEL: &str = "emporium_session_revoked";

/// Sessions kept at most (about 64 bytes each).
const CAPACITY: usize = 100_000;

/// See the module docs.
pub(crate) struct LiveSessions {
    kept: quick_cache::sync::Cache<Uuid, (Uuid, Instant)>,
    ttl: Duration,
    /// Whether the revocation listener is connected (nothing is kept otherwise).
    listening: AtomicBool,
    /// Bumped, under `forgetting`, by every forgetting.
    epoch: AtomicU64,
    forgetting: Mutex<()>,
}

impl std::fmt::Debug for LiveSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSessions")
            .field("ttl", &self.ttl)
            .field("listening", &self.listening.load(Ordering::Relaxed))
            .field("kept", &self.kept.len())
            .finish_non_exhaustive()
    }
}

/// The epoch a read started in, to hand back to [`LiveSessions::keep`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epoch(u64);

impl LiveSessions {
    /// Keeps live answers for `ttl` once [`listen`] connects; `ttl` zero keeps none.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            kept: quick_cache::sync::Cache::new(CAPACITY),
            ttl,
            listening: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            forgetting: Mutex::new(()),
        }
    }

    /// Whether `sid` is known live for `user_id`; `Err` carries the epoch to read
    /// the answer in.
    pub(crate) fn check(&self, sid: Uuid, user_id: Uuid) -> Result<(), Epoch> {
        let epoch = Epoch(self.epoch.load(Ordering::Acquire));
        if !self.listening.load(Ordering::Acquire) {
            return Err(epoch);
        }
        match self.kept.get(&sid) {
            Some((owner, at)) if owner == user_id && at.elapsed() < self.ttl => Ok(()),
            _ => Err(epoch),
        }
    }

    /// Keeps a live answer read in `epoch`, unless something was forgotten since.
    pub(crate) fn keep(&self, sid: Uuid, user_id: Uuid, epoch: Epoch) {
        if self.ttl.is_zero() || !self.listening.load(Ordering::Acquire) {
            return;
        }
        let _guard = self.forgetting.lock().unwrap_or_else(|e| e.into_inner());
        if self.epoch.load(Ordering::Acquire) == epoch.0 {
            self.kept.insert(sid, (user_id, Instant::now()));
        }
    }

    /// Forgets one session (it was revoked), or every one (`None`).
    pub(crate) fn forget(&self, sid: Option<Uuid>) {
        let _guard = self.forgetting.lock().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match sid {
            Some(sid) => {
                self.kept.remove(&sid);
            }
            None => self.kept.clear(),
        }
    }

    fn listening(&self, on: bool) {
        self.listening.store(on, Ordering::Release);
        self.forget(None);
    }
}

/// Spawns the revocation listener for `live` on its own connection to `pool`'s
/// server; it ends when `live` is dropped. `None` outside a Tokio runtime or when
/// nothing is kept.
pub(crate) fn listen(
    live: &Arc<LiveSessions>,
    pool: &PgPool,
) -> Option<tokio::task::JoinHandle<()>> {
    if live.ttl.is_zero() {
        return None;
    }
    let handle = tokio::runtime::Handle::try_current().ok()?;
    let own = emporium_commands::db::own_connection(pool, "emporium-session-revocations");
    Some(handle.spawn(run(Arc::downgrade(live), own)))
}

async fn run(live: Weak<LiveSessions>, pool: PgPool) {
    loop {
        let result = listen_once(&live, &pool).await;
        let Some(sessions) = live.upgrade() else {
            return;
        };
        sessions.listening(false);
        drop(sessions);
        if let Err(error) = result {
            tracing::warn!(
                error = format!("{error:#}"),
                "session revocation listener failed; asking the database for every request meanwhile"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Listens until the connection drops or `live` is gone.
async fn listen_once(live: &Weak<LiveSessions>, pool: &PgPool) -> anyhow::Result<()> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .context("open the session revocation listener")?;
    listener
        .listen(CHANNEL)
        .await
        .context("listen for session revocations")?;
    {
        let Some(sessions) = live.upgrade() else {
            return Ok(());
        };
        // Forgets whatever was kept while not listening (nothing, by construction;
        // this also covers a reconnect).
        sessions.listening(true);
    }
    loop {
        // `None`: the connection dropped (a notification may be lost).
        let notification = listener
            .try_recv()
            .await
            .context("receive a session revocation")?;
        let Some(sessions) = live.upgrade() else {
            return Ok(());
        };
        let Some(notification) = notification else {
            anyhow::bail!("the listener's connection dropped");
        };
        sessions.forget(notification.payload().parse().ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening(ttl: Duration) -> LiveSessions {
        let live = LiveSessions::new(ttl);
        live.listening(true);
        live
    }

    #[test]
    fn a_live_answer_is_kept_for_its_owner_only() {
        let live = listening(Duration::from_secs(60));
        let (sid, user) = (Uuid::new_v4(), Uuid::new_v4());
        let epoch = live.check(sid, user).expect_err("nothing kept yet");
        live.keep(sid, user, epoch);
        assert!(live.check(sid, user).is_ok());
        assert!(live.check(sid, Uuid::new_v4()).is_err());
        assert!(live.check(Uuid::new_v4(), user).is_err());
    }

    #[test]
    fn a_read_from_before_a_revocation_is_not_kept() {
        let live = listening(Duration::from_secs(60));
        let (sid, user) = (Uuid::new_v4(), Uuid::new_v4());
        let before = live.check(sid, user).expect_err("nothing kept yet");
        live.forget(Some(sid));
        live.keep(sid, user, before);
        assert!(
            live.check(sid, user).is_err(),
            "a stale live answer was kept"
        );
        let after = live.check(sid, user).expect_err("nothing kept");
        live.keep(sid, user, after);
        assert!(live.check(sid, user).is_ok());
        live.forget(Some(sid));
        assert!(
            live.check(sid, user).is_err(),
            "a revoked session stayed kept"
        );
    }

    #[test]
    fn nothing_is_kept_while_not_listening_or_past_its_age() {
        let live = LiveSessions::new(Duration::from_secs(60));
        let (sid, user) = (Uuid::new_v4(), Uuid::new_v4());
        let epoch = live.check(sid, user).expect_err("nothing kept");
        live.keep(sid, user, epoch);
        assert!(live.check(sid, user).is_err(), "kept while not listening");

        let live = listening(Duration::from_secs(60));
        let epoch = live.check(sid, user).expect_err("nothing kept");
        live.keep(sid, user, epoch);
        live.listening(false);
        assert!(
            live.check(sid, user).is_err(),
            "kept across a lost listener"
        );

        let live = listening(Duration::ZERO);
        let epoch = live.check(sid, user).expect_err("nothing kept");
        live.keep(sid, user, epoch);
        assert!(live.check(sid, user).is_err(), "kept with a zero age");
    }
}
