//! Uniqueness across aggregates (one account per e-mail, one product per slug).
//!
//! An aggregate sees only itself, so a key is claimed in `unique_keys` around the
//! owner's command: the claim's transaction opens before the command and commits
//! only after the command has committed. A second claimant of the same key blocks on
//! the first's uncommitted row and then sees it (taken) or its absence (the first
//! was refused or died: the claim rolled back with it). A claim therefore never
//! outlives a failed command, and no orphan can block a key.
//!
//! The one window left, the command committed but the process died before the
//! claim committed, is closed by the caller: it checks, inside the claim's
//! transaction, that no committed owner already has the key (see
//! `users::Users::register`).
//!
//! The functions here are the PostgreSQL implementation; a store reaches them through
//! [`EventStore::claim`](crate::store::EventStore::claim). The SQLite store keeps the
//! same contract with an in-process lock per key instead of an open transaction (one
//! process owns an SQLite store, and SQLite has one writer: a claim holding a write
//! transaction open would block its own command's commit).

use anyhow::Context;
use sqlx::{PgPool, Postgres, Transaction};

/// A claim in progress: the key is held (and invisible to others) until
/// [`Pending::confirm`]; dropping it rolls the claim back.
#[derive(Debug)]
pub struct Pending {
    tx: Transaction<'static, Postgres>,
}

impl Pending {
    /// The claim's transaction, for checks that must see the same snapshot.
    pub fn transaction(&mut self) -> &mut Transaction<'static, Postgres> {
        &mut self.tx
    }

    /// Makes the claim permanent. Call after the owner's command committed.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn confirm(self) -> anyhow::Result<()> {
        self.tx.commit().await.context("confirm unique key claim")
    }

    /// Gives the claim up.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn abandon(self) -> anyhow::Result<()> {
        self.tx.rollback().await.context("abandon unique key claim")
    }
}

/// Outcome of [`claim`] (and of [`EventStore::claim`](crate::store::EventStore::claim),
/// with that store's pending claim).
#[derive(Debug)]
pub enum Claim<P = Pending> {
    /// The key is held for this owner until confirmed or abandoned. `already_ours`
    /// when a previous, confirmed claim by the same owner exists (a retry).
    Pending {
        /// The open claim.
        pending: P,
        /// Whether the owner held the key already.
        already_ours: bool,
    },
    /// Another owner holds the key.
    TakenBy(String),
}

/// Claims `key` in `scope` for `owner_id`. Blocks while another claimant's claim of
/// the same key is in flight.
///
/// # Errors
/// When the database fails.
pub async fn claim(pool: &PgPool, scope: &str, key: &str, owner_id: &str) -> anyhow::Result<Claim> {
    let mut tx = pool.begin().await.context("begin unique key claim")?;
    let inserted = sqlx::query(
        "INSERT INTO unique_keys (scope, key, owner_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(owner_id)
    .execute(&mut *tx)
    .await
    .context("claim unique key")?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Pending {
            pending: Pending { tx },
            already_ours: false,
        });
    }
    let holder: String =
        sqlx::query_scalar("SELECT owner_id FROM unique_keys WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .context("read unique key holder")?;
    if holder == owner_id {
        Ok(Claim::Pending {
            pending: Pending { tx },
            already_ours: true,
        })
    } else {
        tx.rollback().await.context("end unique key claim")?;
        Ok(Claim::TakenBy(holder))
    }
}

/// Gives up a confirmed claim held by `owner_id` (the key changed, say).
///
/// # Errors
/// When the database fails.
pub async fn release(pool: &PgPool, scope: &str, key: &str, owner_id: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM unique_keys WHERE scope = $1 AND key = $2 AND owner_id = $3")
        .bind(scope)
        .bind(key)
        .bind(owner_id)
        .execute(pool)
        .await
        .context("release unique key")?;
    Ok(())
}

/// Who holds `key` in `scope`, if anyone.
///
/// # Errors
/// When the database fails.
pub async fn holder(pool: &PgPool, scope: &str, key: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("SELECT owner_id FROM unique_keys WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .fetch_optional(pool)
        .await
        .context("read unique key holder")
}
