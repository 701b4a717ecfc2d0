//! Rate limits: fixed-window counters behind one trait, in memory (one process) or
//! in Redis (shared by every gateway replica).
//!
//! A window is `[k * window, (k + 1) * window)` on the injected clock; a hit adds its
//! cost to the subject's counter for the current window, and the hit is refused once
//! the counter exceeds the quota (refused hits count too, so hammering does not
//! reopen the window). Fixed windows may let up to twice the quota through around a
//! window boundary; that is the documented trade for one counter per subject.
//! Subjects (addresses, e-mails) are hashed before they become keys.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// How many hits a subject may make per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Hits allowed per window.
    pub limit: u32,
    /// The window's length.
    pub window: Duration,
}

impl Quota {
    /// `limit` per minute.
    #[must_use]
    pub fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            window: Duration::from_secs(60),
        }
    }

    /// `limit` per hour.
    #[must_use]
    pub fn per_hour(limit: u32) -> Self {
        Self {
            limit,
            window: Duration::from_secs(3600),
        }
    }

    /// The window holding `now`, and the time left in it.
    fn window_at(self, now: DateTime<Utc>) -> (i64, Duration) {
        let window_ms = i64::try_from(self.window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let now_ms = now.timestamp_millis();
        let index = now_ms.div_euclid(window_ms);
        let left = (index + 1) * window_ms - now_ms;
        (
            index,
            Duration::from_millis(u64::try_from(left).unwrap_or(0)),
        )
    }
}

/// The answer to a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the quota.
    Allowed,
    /// Over the quota until the window ends.
    Limited {
        /// Time until the window resets.
        retry_after: Duration,
    },
}

/// Counts hits per bucket and subject.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Adds `cost` hits for `subject` in `bucket` at `now` and judges them.
    ///
    /// # Errors
    /// When the counter store fails (callers fail open and log it).
    async fn hit(
        &self,
        bucket: &str,
        subject: &str,
        quota: Quota,
        cost: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Verdict>;
}

fn subject_key(subject: &str) -> String {
    let digest = Sha256::digest(subject.as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

fn judge(count: u64, quota: Quota, left: Duration) -> Verdict {
    if count > u64::from(quota.limit) {
        Verdict::Limited { retry_after: left }
    } else {
        Verdict::Allowed
    }
}

/// Counters in this process's memory.
#[derive(Debug, Default)]
pub struct InMemoryRateLimiter {
    counters: Mutex<HashMap<(String, String), (i64, u64)>>,
}

/// Entries kept before stale windows are swept.
const SWEEP_AT: usize = 100_000;

#[async_trait::async_trait]
impl RateLimiter for InMemoryRateLimiter {
    async fn hit(
        &self,
        bucket: &str,
        subject: &str,
        quota: Quota,
        cost: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Verdict> {
        let (window, left) = quota.window_at(now);
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if counters.len() >= SWEEP_AT {
            counters.retain(|_, (w, _)| *w >= window);
        }
        let entry = counters
            .entry((bucket.to_owned(), subject_key(subject)))
            .or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 = entry.1.saturating_add(u64::from(cost));
        Ok(judge(entry.1, quota, left))
    }
}

/// Counters in Redis: `INCRBY` and `PEXPIRE` in one `MULTI`, the window index in the
/// key. Connects on first use, so a Redis that is down at start does not stop the
/// gateway.
pub struct RedisRateLimiter {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    prefix: String,
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// A limiter over the Redis at `url`, writing keys under `<prefix>:rl:`.
    ///
    /// # Errors
    /// When the URL is malformed.
    pub fn new(url: &str, prefix: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(url).context("parse redis url")?,
            connection: OnceCell::new(),
            prefix: prefix.to_owned(),
        })
    }

    async fn connection(&self) -> anyhow::Result<ConnectionManager> {
        self.connection
            .get_or_try_init(|| async {
                ConnectionManager::new(self.client.clone())
                    .await
                    .context("connect to redis")
            })
            .await
            .cloned()
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(
        &self,
        bucket: &str,
        subject: &str,
        quota: Quota,
        cost: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Verdict> {
        let (window, left) = quota.window_at(now);
        let key = format!(
            "{}:rl:{bucket}:{}:{window}",
            self.prefix,
            subject_key(subject)
        );
        // Keys outlive their window a little (Redis's clock need not match ours).
        let ttl_ms = u64::try_from(quota.window.as_millis()).unwrap_or(u64::MAX / 2) + 1_000;
        let mut connection = self.connection().await?;
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .cmd("INCRBY")
            .arg(&key)
            .arg(cost)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_ms)
            .ignore()
            .query_async(&mut connection)
            .await
            .context("redis rate-limit counter")?;
        Ok(judge(count, quota, left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_and_report_the_time_left() {
        let quota = Quota::per_minute(5);
        let t = DateTime::from_timestamp(600 + 15, 0).unwrap();
        let (index, left) = quota.window_at(t);
        assert_eq!(index, 10);
        assert_eq!(left, Duration::from_secs(45));
    }
}
