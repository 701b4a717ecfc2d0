//! Read-your-writes: wait, bounded, until a projection has applied a given commit.
//!
//! A command returns the global `position` of its last event. Positions are insert
//! order, not commit order, so "the projection has passed it" means its checkpoint
//! (a commit position) is at or beyond `(transaction_id, position)` of that event;
//! the transaction id is looked up once by position (unique, indexed).
//!
//! Every checkpoint update is announced with `NOTIFY` in its own transaction (so it is
//! delivered exactly when the change is visible). One [`CheckpointWatch`] per process
//! listens on a single connection and publishes the latest checkpoints on a watch
//! channel; any number of waiters share it.
//!
//! In the embedded mode (feature `sqlite`) there is no `NOTIFY`: the runners live in
//! the process and announce each checkpoint through a [`CheckpointPublisher`] right
//! after its commit ([`CheckpointWatch::embedded`]). The watch's API is the same, so
//! the gateway waits the same way on either; a commit position's transaction id is
//! its position there (see [`SqliteFeed`](crate::feed::SqliteFeed)).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::checkpoint::CHANNEL;
use crate::envelope::CommitPosition;

/// Why a wait ended without the projection passing the commit.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The projection had not applied the commit within the timeout.
    #[error("projection {projection} had not reached position {position} within {timeout:?}")]
    Timeout {
        /// The projection.
        projection: String,
        /// The position waited for.
        position: i64,
        /// The bound.
        timeout: Duration,
    },
    /// No event has that position (it is not committed, or never was).
    #[error("no committed event has position {0}")]
    UnknownPosition(i64),
    /// PostgreSQL failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// A projection's checkpoint as last announced, with the revision that orders
/// announcements of the same projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    revision: i64,
    cursor: CommitPosition,
    /// The checkpoint as of the last announcement that changed the read model (one
    /// that applied events, not only skipped them); the checkpoint itself when that
    /// is unknown (a reload from the table), which errs towards "changed".
    changed: CommitPosition,
}

type Checkpoints = HashMap<String, Seen>;

/// The process's view of every projection's checkpoint, kept current by
/// `LISTEN emporium_projection_checkpoints` (distributed) or by the embedded runners
/// of this process ([`CheckpointWatch::embedded`]).
#[derive(Debug, Clone)]
pub struct CheckpointWatch {
    source: Source,
    checkpoints: watch::Receiver<Checkpoints>,
}

/// Where announcements come from, and where commit positions are looked up.
#[derive(Debug, Clone)]
enum Source {
    Postgres {
        pool: PgPool,
        _task: Arc<TaskGuard>,
    },
    #[cfg(feature = "sqlite")]
    Embedded {
        /// The embedded event store (commit positions are looked up there).
        store: sqlx::SqlitePool,
        /// Kept so waits time out rather than fail when every runner has stopped.
        _publisher: CheckpointPublisher,
    },
}

/// Announces checkpoints to the [`CheckpointWatch`]es of this process: what an
/// embedded runner does after each commit, instead of `NOTIFY`. Clones share the
/// channel.
#[derive(Debug, Clone)]
pub struct CheckpointPublisher {
    tx: Arc<watch::Sender<Checkpoints>>,
}

impl CheckpointPublisher {
    /// Announces that `projection`'s checkpoint, at `revision` (the checkpoint row's
    /// counter, which orders announcements), is `cursor`; `changed`: the move applied
    /// events rather than only skipping events the projection does not read. An
    /// announcement older than one already seen is ignored.
    pub fn publish(&self, projection: &str, revision: i64, cursor: CommitPosition, changed: bool) {
        let seen = Seen {
            revision,
            cursor,
            changed: cursor,
        };
        self.tx
            .send_if_modified(|map| merge(map, projection.to_owned(), seen, changed));
    }
}

#[derive(Debug)]
struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An announcement: the projection, what it says, and whether it changed the read
/// model (a payload without the fifth field did, as far as anyone can tell).
fn parse(payload: &str) -> Option<(String, Seen, bool)> {
    let mut parts = payload.split(' ');
    let name = parts.next()?.to_owned();
    let revision = parts.next()?.parse().ok()?;
    let transaction_id = parts.next()?.parse().ok()?;
    let position = parts.next()?.parse().ok()?;
    let changed = parts.next() != Some("0");
    let cursor = CommitPosition {
        transaction_id,
        position,
    };
    Some((
        name,
        Seen {
            revision,
            cursor,
            changed: cursor,
        },
        changed,
    ))
}

/// Takes `seen` unless an announcement as new or newer is already there; one that
/// did not change the read model keeps the last change's position.
fn merge(map: &mut Checkpoints, name: String, mut seen: Seen, changed: bool) -> bool {
    match map.get(&name) {
        Some(old) if old.revision >= seen.revision => false,
        old => {
            if !changed && let Some(old) = old {
                seen.changed = old.changed;
            }
            map.insert(name, seen);
            true
        }
    }
}

async fn load(pool: &PgPool) -> anyhow::Result<Vec<(String, Seen)>> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT name, revision, transaction_id, position FROM projection_checkpoints",
    )
    .fetch_all(pool)
    .await
    .context("read projection checkpoints")?;
    Ok(rows
        .into_iter()
        .map(|(name, revision, txid, position)| {
            (name, {
                let cursor = CommitPosition {
                    transaction_id: u64::try_from(txid).unwrap_or_default(),
                    position: u64::try_from(position).unwrap_or_default(),
                };
                Seen {
                    revision,
                    cursor,
                    changed: cursor,
                }
            })
        })
        .collect())
}

impl CheckpointWatch {
    /// Starts listening, then loads the current checkpoints (in that order, so no
    /// update falls between the two).
    ///
    /// # Errors
    /// When PostgreSQL is unreachable.
    pub async fn start(pool: PgPool) -> anyhow::Result<Self> {
        let mut listener = PgListener::connect_with(&pool)
            .await
            .context("open the checkpoint listener")?;
        listener
            .listen(CHANNEL)
            .await
            .context("listen for checkpoints")?;
        let mut initial = Checkpoints::new();
        for (name, seen) in load(&pool).await? {
            merge(&mut initial, name, seen, true);
        }
        let (tx, rx) = watch::channel(initial);
        let reload_pool = pool.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        if let Some((name, seen, changed)) = parse(notification.payload()) {
                            tx.send_if_modified(|map| merge(map, name, seen, changed));
                        }
                    }
                    // The connection dropped and was re-established: announcements
                    // may have been missed, so read the table again.
                    Ok(None) => match load(&reload_pool).await {
                        Ok(rows) => {
                            tx.send_if_modified(|map| {
                                rows.into_iter().fold(false, |changed, (n, s)| {
                                    merge(map, n, s, true) || changed
                                })
                            });
                        }
                        Err(e) => tracing::warn!(error = format!("{e:#}"), "reload checkpoints"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "checkpoint listener failed; retrying");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(Self {
            source: Source::Postgres {
                pool,
                _task: Arc::new(TaskGuard(task)),
            },
            checkpoints: rx,
        })
    }

    /// A watch fed in process by the embedded runners (through the returned
    /// publisher) over the embedded event store `store`. It starts empty; runners
    /// announce their checkpoint when they start.
    #[cfg(feature = "sqlite")]
    #[must_use]
    pub fn embedded(store: sqlx::SqlitePool) -> (Self, CheckpointPublisher) {
        let (tx, rx) = watch::channel(Checkpoints::new());
        let publisher = CheckpointPublisher { tx: Arc::new(tx) };
        (
            Self {
                source: Source::Embedded {
                    store,
                    _publisher: publisher.clone(),
                },
                checkpoints: rx,
            },
            publisher,
        )
    }

    /// The commit position of the event at global `position`.
    ///
    /// # Errors
    /// [`WaitError::UnknownPosition`] when no event has it.
    pub async fn commit_position(&self, position: i64) -> Result<CommitPosition, WaitError> {
        let txid: Option<i64> = match &self.source {
            Source::Postgres { pool, .. } => sqlx::query_scalar(
                "SELECT transaction_id::text::bigint FROM events WHERE position = $1",
            )
            .bind(position)
            .fetch_optional(pool)
            .await
            .context("look up the event's transaction")?,
            // One writer at a time: the transaction id is the position.
            #[cfg(feature = "sqlite")]
            Source::Embedded { store, .. } => {
                sqlx::query_scalar("SELECT position FROM events WHERE position = $1")
                    .bind(position)
                    .fetch_optional(store)
                    .await
                    .context("look up the event")?
            }
        };
        let txid = txid.ok_or(WaitError::UnknownPosition(position))?;
        Ok(CommitPosition {
            transaction_id: u64::try_from(txid).context("xid beyond i64")?,
            position: u64::try_from(position).map_err(|_| WaitError::UnknownPosition(position))?,
        })
    }

    /// The last checkpoint announced for `projection`.
    #[must_use]
    pub fn checkpoint(&self, projection: &str) -> Option<CommitPosition> {
        self.checkpoints.borrow().get(projection).map(|s| s.cursor)
    }

    /// The checkpoint `projection` had when its read model last changed, as far as
    /// this watch knows: unchanged while the projection only skips events it does
    /// not read, so it versions what the read model holds (for caches).
    #[must_use]
    pub fn changed(&self, projection: &str) -> Option<CommitPosition> {
        self.checkpoints.borrow().get(projection).map(|s| s.changed)
    }

    /// Waits until `projection` has applied the event at global `position` (as
    /// returned by a command), or `timeout` passes.
    ///
    /// # Errors
    /// [`WaitError`]: timeout, unknown position, or PostgreSQL down.
    pub async fn wait_for_position(
        &self,
        projection: &str,
        position: i64,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        let target = self.commit_position(position).await?;
        self.wait_for(projection, target, timeout)
            .await
            .map_err(|_| WaitError::Timeout {
                projection: projection.to_owned(),
                position,
                timeout,
            })
    }

    /// Waits until `projection`'s checkpoint is at or beyond `target`, or `timeout`
    /// passes (`Err(())`).
    ///
    /// # Errors
    /// `Err(())` on timeout.
    #[allow(clippy::result_unit_err)] // the caller words the timeout; see wait_for_position
    pub async fn wait_for(
        &self,
        projection: &str,
        target: CommitPosition,
        timeout: Duration,
    ) -> Result<(), ()> {
        let mut rx = self.checkpoints.clone();
        let reached = rx.wait_for(|map| map.get(projection).is_some_and(|s| s.cursor >= target));
        match tokio::time::timeout(timeout, reached).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_parse_and_merge_by_revision() {
        let (name, seen, changed) = parse("catalog 7 1000 42").unwrap();
        assert!(
            changed,
            "an announcement without the flag counts as a change"
        );
        assert_eq!(name, "catalog");
        assert_eq!(
            seen.cursor,
            CommitPosition {
                transaction_id: 1000,
                position: 42
            }
        );
        let mut map = Checkpoints::new();
        assert!(merge(&mut map, name.clone(), seen, changed));
        let older = Seen {
            revision: 6,
            cursor: CommitPosition::START,
            changed: CommitPosition::START,
        };
        assert!(!merge(&mut map, name.clone(), older, true));
        assert_eq!(map[&name], seen);
        assert!(parse("garbage").is_none());

        // A move that only skipped events keeps the last change's position.
        let (name, skipped, changed) = parse("catalog 8 1001 43 0").unwrap();
        assert!(!changed);
        assert!(merge(&mut map, name.clone(), skipped, changed));
        assert_eq!(map[&name].cursor.position, 43);
        assert_eq!(map[&name].changed.position, 42);
        let (name, applied, changed) = parse("catalog 9 1002 44 1").unwrap();
        assert!(merge(&mut map, name.clone(), applied, changed));
        assert_eq!(map[&name].changed.position, 44);
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn in_process_announcements_wake_waiters_and_keep_their_order() {
        let store = sqlx::SqlitePool::connect_lazy("sqlite::memory:").unwrap();
        let (watch, publisher) = CheckpointWatch::embedded(store);
        let at = |position| CommitPosition {
            transaction_id: position,
            position,
        };
        assert_eq!(watch.checkpoint("carts"), None);
        let waiter = {
            let watch = watch.clone();
            tokio::spawn(async move {
                watch
                    .wait_for("carts", at(5), Duration::from_secs(60))
                    .await
            })
        };
        publisher.publish("carts", 1, at(3), true);
        publisher.publish("carts", 2, at(5), false);
        waiter.await.unwrap().expect("woken at 5");
        assert_eq!(watch.checkpoint("carts"), Some(at(5)));
        assert_eq!(watch.changed("carts"), Some(at(3)), "5 only skipped events");
        // An older announcement (a stale revision) is ignored.
        publisher.publish("carts", 1, at(4), true);
        assert_eq!(watch.checkpoint("carts"), Some(at(5)));
        // With every publisher clone but the watch's own gone, waits time out
        // rather than fail at once.
        drop(publisher);
        let started = std::time::Instant::now();
        assert!(
            watch
                .wait_for("carts", at(6), Duration::from_millis(20))
                .await
                .is_err()
        );
        assert!(
            started.elapsed() >= Duration::from_millis(20),
            "failed at once"
        );
    }
}
