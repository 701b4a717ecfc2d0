//! The relational store port: one statement text, run on PostgreSQL (distributed
//! mode) or SQLite (embedded mode).
//!
//! Read models are written by projections and read by the gateway, and the tables
//! kept beside the event store (checkouts, the offline payment provider, sessions)
//! are written and read, through the same SQL wherever SQL allows: placeholders are `$1`, `$2`, … on both backends (sqlx's
//! SQLite driver maps `$N` to the N-th argument, whatever order they appear in),
//! `INSERT … ON CONFLICT (…) DO UPDATE SET … = excluded.…` and `RETURNING` run on
//! both. Where the dialects part (arrays, `jsonb` operators and aggregates, `ILIKE`,
//! full text, interval arithmetic), the caller picks the text by [`Conn::backend`]
//! and nothing else differs.
//!
//! Arguments are [`Value`]s collected with [`args!`](crate::args): each keeps its SQL
//! type even when null, so PostgreSQL gets a typed parameter. How a value is stored:
//!
//! | Rust                 | PostgreSQL    | SQLite                          |
//! |----------------------|---------------|---------------------------------|
//! | `Uuid`               | `uuid`        | 16-byte blob (sqlx's encoding)  |
//! | `DateTime<Utc>`      | `timestamptz` | RFC 3339 text in UTC, microseconds, `Z` ([`sqlite_time`]): text order is time order |
//! | JSON ([`Value::Json`]) | `jsonb`     | JSON text                       |
//! | `Vec<String>`, `Vec<Uuid>` | `text[]`, `uuid[]` | a JSON array as text (`json_each` reads it) |
//!
//! Rows decode with `sqlx::FromRow` into types that decode on both backends
//! ([`Rows`], [`Scalar`]); a column read back as an array is per-backend.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments as _, FromRow, PgConnection, PgPool, Postgres};
use uuid::Uuid;

#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteArguments, SqliteRow};
#[cfg(feature = "sqlite")]
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

/// Which database a [`Conn`] or [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL: the distributed mode.
    Postgres,
    /// SQLite: the embedded mode.
    Sqlite,
}

/// One statement argument with its SQL type (kept when null).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(Option<bool>),
    I32(Option<i32>),
    I64(Option<i64>),
    F64(Option<f64>),
    Text(Option<String>),
    Uuid(Option<Uuid>),
    Time(Option<DateTime<Utc>>),
    /// `jsonb` on PostgreSQL, JSON text on SQLite.
    Json(Option<serde_json::Value>),
    /// `text[]` on PostgreSQL, a JSON array as text on SQLite.
    TextArray(Vec<String>),
    /// `uuid[]` on PostgreSQL, a JSON array of hyphenated UUIDs as text on SQLite.
    UuidArray(Vec<Uuid>),
    /// `bigint[]` on PostgreSQL, a JSON array as text on SQLite.
    I64Array(Vec<i64>),
}

impl Value {
    /// A JSON document (any `Serialize`).
    ///
    /// # Errors
    /// When the value does not serialise.
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<Self> {
        Ok(Self::Json(Some(serde_json::to_value(value)?)))
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident $(via $conv:expr)?),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Self::$variant(Some(value_from!(@conv v $(, $conv)?)))
            }
        }
        impl From<Option<$t>> for Value {
            fn from(v: Option<$t>) -> Self {
                Self::$variant(v.map(|v| value_from!(@conv v $(, $conv)?)))
            }
        }
    )*};
    (@conv $v:ident) => { $v };
    (@conv $v:ident, $conv:expr) => { ($conv)($v) };
}

value_from! {
    bool => Bool,
    i32 => I32,
    i64 => I64,
    f64 => F64,
    String => Text,
    &str => Text via |s: &str| s.to_owned(),
    &String => Text via |s: &String| s.clone(),
    Uuid => Uuid,
    DateTime<Utc> => Time,
    serde_json::Value => Json,
}

impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Self {
        Self::TextArray(v)
    }
}

impl From<Vec<Uuid>> for Value {
    fn from(v: Vec<Uuid>) -> Self {
        Self::UuidArray(v)
    }
}

impl From<Vec<i64>> for Value {
    fn from(v: Vec<i64>) -> Self {
        Self::I64Array(v)
    }
}

/// A statement's arguments, in `$1, $2, …` order. Build with [`args!`](crate::args).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args(pub Vec<Value>);

/// The arguments of one statement: `args![id, name, at]`, each converted with
/// `Into<Value>`.
#[macro_export]
macro_rules! args {
    () => { $crate::sql::Args::default() };
    ($($value:expr),+ $(,)?) => {
        $crate::sql::Args(vec![$($crate::sql::Value::from($value)),+])
    };
}

#[cfg(feature = "sqlite")]
fn json_text<T: serde::Serialize>(value: &T) -> String {
    // Serialising strings, UUIDs, integers or a `serde_json::Value` cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn pg_args(args: Args) -> sqlx::Result<PgArguments> {
    let mut out = PgArguments::default();
    for value in args.0 {
        match value {
            Value::Bool(v) => out.add(v),
            Value::I32(v) => out.add(v),
            Value::I64(v) => out.add(v),
            Value::F64(v) => out.add(v),
            Value::Text(v) => out.add(v),
            Value::Uuid(v) => out.add(v),
            Value::Time(v) => out.add(v),
            Value::Json(v) => out.add(v.map(sqlx::types::Json)),
            Value::TextArray(v) => out.add(v),
            Value::UuidArray(v) => out.add(v),
            Value::I64Array(v) => out.add(v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// A time as SQLite stores it: RFC 3339 in UTC with exactly six fractional digits
/// and `Z`, so text order is time order and values round-trip with PostgreSQL's
/// microsecond `timestamptz`.
#[cfg(feature = "sqlite")]
#[must_use]
pub fn sqlite_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(feature = "sqlite")]
fn sqlite_args(args: Args) -> sqlx::Result<SqliteArguments<'static>> {
    let mut out = SqliteArguments::default();
    for value in args.0 {
        match value {
            Value::Bool(v) => out.add(v),
            Value::I32(v) => out.add(v),
            Value::I64(v) => out.add(v),
            Value::F64(v) => out.add(v),
            Value::Text(v) => out.add(v),
            Value::Uuid(v) => out.add(v),
            Value::Time(v) => out.add(v.map(sqlite_time)),
            Value::Json(v) => out.add(v.map(|v| json_text(&v))),
            Value::TextArray(v) => out.add(json_text(&v)),
            Value::UuidArray(v) => out.add(json_text(&v)),
            Value::I64Array(v) => out.add(json_text(&v)),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// A row type that decodes on every backend this build has.
#[cfg(feature = "sqlite")]
pub trait Rows:
    for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin + 'static
{
}
#[cfg(feature = "sqlite")]
impl<T> Rows for T where
    T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin + 'static
{
}
/// A row type that decodes on every backend this build has.
#[cfg(not(feature = "sqlite"))]
pub trait Rows: for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static {}
#[cfg(not(feature = "sqlite"))]
impl<T> Rows for T where T: for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static {}

/// A single column's type that decodes on every backend this build has.
#[cfg(feature = "sqlite")]
pub trait Scalar:
    for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
    + for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + Send
    + Unpin
    + 'static
{
}
#[cfg(feature = "sqlite")]
impl<T> Scalar for T where
    T: for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
        + for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + Send
        + Unpin
        + 'static
{
}
/// A single column's type that decodes on every backend this build has.
#[cfg(not(feature = "sqlite"))]
pub trait Scalar:
    for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres> + Send + Unpin + 'static
{
}
#[cfg(not(feature = "sqlite"))]
impl<T> Scalar for T where
    T: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres> + Send + Unpin + 'static
{
}

/// Runs `$body` on whichever backend `$self` (a `Conn` or a `Db`) holds, with `$q`
/// bound to that backend's arguments and `$e` to its connection or pool.
macro_rules! dispatch {
    ($self:ident, $args:ident, |$q:ident, $e:ident| $body:expr) => {
        match $self {
            Self::Postgres($e) => {
                let $q = pg_args($args)?;
                $body
            }
            #[cfg(feature = "sqlite")]
            Self::Sqlite($e) => {
                let $q = sqlite_args($args)?;
                $body
            }
        }
    };
}

/// A connection (usually inside the caller's transaction) to either backend.
#[derive(Debug)]
pub enum Conn<'c> {
    Postgres(&'c mut PgConnection),
    #[cfg(feature = "sqlite")]
    Sqlite(&'c mut SqliteConnection),
}

impl<'c> From<&'c mut PgConnection> for Conn<'c> {
    fn from(conn: &'c mut PgConnection) -> Self {
        Self::Postgres(conn)
    }
}

#[cfg(feature = "sqlite")]
impl<'c> From<&'c mut SqliteConnection> for Conn<'c> {
    fn from(conn: &'c mut SqliteConnection) -> Self {
        Self::Sqlite(conn)
    }
}

impl Conn<'_> {
    /// The backend behind this connection.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The PostgreSQL connection, for SQL that has no SQLite form yet.
    ///
    /// # Errors
    /// On SQLite, naming `what` as not available in the embedded mode.
    #[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
    pub fn postgres(&mut self, what: &str) -> anyhow::Result<&mut PgConnection> {
        match self {
            Self::Postgres(conn) => Ok(conn),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => anyhow::bail!("{what} is not available on SQLite yet"),
        }
    }

    /// Runs a statement; returns the rows it changed.
    ///
    /// # Errors
    /// The database's.
    pub fn execute<'a>(&'a mut self, sql: &'a str, args: Args) -> BoxFuture<'a, sqlx::Result<u64>> {
        Box::pin(async move {
            dispatch!(self, args, |a, c| Ok(sqlx::query_with(sql, a)
                .execute(&mut **c)
                .await?
                .rows_affected()))
        })
    }

    /// At most one row.
    ///
    /// # Errors
    /// The database's, or a row that does not decode.
    pub fn fetch_optional<'a, T: Rows>(
        &'a mut self,
        sql: &'a str,
        args: Args,
    ) -> BoxFuture<'a, sqlx::Result<Option<T>>> {
        Box::pin(async move {
            dispatch!(self, args, |a, c| sqlx::query_as_with(sql, a)
                .fetch_optional(&mut **c)
                .await)
        })
    }

    /// Exactly one row.
    ///
    /// # Errors
    /// The database's, no row (`RowNotFound`), or a row that does not decode.
    pub fn fetch_one<'a, T: Rows>(
        &'a mut self,
        sql: &'a str,
        args: Args,
    ) -> BoxFuture<'a, sqlx::Result<T>> {
        Box::pin(async move {
            dispatch!(self, args, |a, c| sqlx::query_as_with(sql, a)
                .fetch_one(&mut **c)
                .await)
        })
    }

    /// Every row.
    ///
    /// # Errors
    /// The database's, or a row that does not decode.
    pub fn fetch_all<'a, T: Rows>(
        &'a mut self,
        sql: &'a str,
        args: Args,
    ) -> BoxFuture<'a, sqlx::Result<Vec<T>>> {
        Box::pin(async move {
            dispatch!(self, args, |a, c| sqlx::query_as_with(sql, a)
                .fetch_all(&mut **c)
                .await)
        })
    }

    /// The first column of at most one row.
    ///
    /// # Errors
    /// The database's, or a value that does not decode.
    pub fn scalar_optional<'a, T: Scalar>(
        &'a mut self,
        sql: &'a str,
        args: Args,
    ) -> BoxFuture<'a, sqlx::Result<Option<T>>> {
        Box::pin(async move {
            dispatch!(self, args, |a, c| sqlx::query_scalar_with(sql, a)
                .fetch_optional(&mut **c)
                .await)
        })
    }

    /// The first column of every row.
    ///
    /// # Errors
    /// The database's, or a value that does not decode.
    pub fn scalar_all<'a, T: Scalar>(
        &'a mut self,
        sql: &'a str,
        args: Args,
    ) -> BoxFuture<'a, sqlx::Result<Vec<T>>> {
        Box::pin(async move {
            dispatch!(self, args, |a, c| sqlx::query_scalar_with(sql, a)
                .fetch_all(&mut **c)
                .await)
        })
    }
}

/// A pool of either backend: what the gateway reads read models through.
#[derive(Debug, Clone)]
pub enum Db {
    Postgres(PgPool),
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
}

impl From<PgPool> for Db {
    fn from(pool: PgPool) -> Self {
        Self::Postgres(pool)
    }
}

#[cfg(feature = "sqlite")]
impl From<SqlitePool> for Db {
    fn from(pool: SqlitePool) -> Self {
        Self::Sqlite(pool)
    }
}

/// A transaction on a [`Db`]; [`conn`](Self::conn) runs statements in it.
#[derive(Debug)]
pub enum Tx {
    Postgres(sqlx::Transaction<'static, Postgres>),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, Sqlite>),
}

impl Tx {
    /// The transaction's connection.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Postgres(tx) => Conn::Postgres(tx),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(tx) => Conn::Sqlite(tx),
        }
    }

    /// Commits.
    ///
    /// # Errors
    /// The database's.
    pub async fn commit(self) -> sqlx::Result<()> {
        match self {
            Self::Postgres(tx) => tx.commit().await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(tx) => tx.commit().await,
        }
    }
}

impl Db {
    /// The backend behind this pool.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The PostgreSQL pool, for code that has no SQLite form yet.
    ///
    /// # Errors
    /// On SQLite, naming `what` as not available in the embedded mode.
    #[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
    pub fn postgres(&self, what: &str) -> anyhow::Result<&PgPool> {
        match self {
            Self::Postgres(pool) => Ok(pool),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => anyhow::bail!("{what} is not available on SQLite yet"),
        }
    }

    /// Starts a transaction.
    ///
    /// # Errors
    /// The database's.
    pub async fn begin(&self) -> sqlx::Result<Tx> {
        Ok(match self {
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
        })
    }

    /// Starts a transaction that reads and then writes. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`): a deferred transaction that reads and then
    /// writes fails with `SQLITE_BUSY` when another writer committed in between, and
    /// the busy timeout does not wait that out. On PostgreSQL as [`Db::begin`].
    ///
    /// # Errors
    /// The database's.
    pub async fn begin_write(&self) -> sqlx::Result<Tx> {
        Ok(match self {
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Runs a statement; returns the rows it changed.
    ///
    /// # Errors
    /// The database's.
    pub async fn execute(&self, sql: &str, args: Args) -> sqlx::Result<u64> {
        dispatch!(self, args, |a, p| Ok(sqlx::query_with(sql, a)
            .execute(p)
            .await?
            .rows_affected()))
    }

    /// At most one row.
    ///
    /// # Errors
    /// The database's, or a row that does not decode.
    pub async fn fetch_optional<T: Rows>(&self, sql: &str, args: Args) -> sqlx::Result<Option<T>> {
        dispatch!(self, args, |a, p| sqlx::query_as_with(sql, a)
            .fetch_optional(p)
            .await)
    }

    /// Exactly one row.
    ///
    /// # Errors
    /// The database's, no row (`RowNotFound`), or a row that does not decode.
    pub async fn fetch_one<T: Rows>(&self, sql: &str, args: Args) -> sqlx::Result<T> {
        dispatch!(self, args, |a, p| sqlx::query_as_with(sql, a)
            .fetch_one(p)
            .await)
    }

    /// Every row.
    ///
    /// # Errors
    /// The database's, or a row that does not decode.
    pub async fn fetch_all<T: Rows>(&self, sql: &str, args: Args) -> sqlx::Result<Vec<T>> {
        dispatch!(self, args, |a, p| sqlx::query_as_with(sql, a)
            .fetch_all(p)
            .await)
    }

    /// The first column of at most one row.
    ///
    /// # Errors
    /// The database's, or a value that does not decode.
    pub async fn scalar_optional<T: Scalar>(
        &self,
        sql: &str,
        args: Args,
    ) -> sqlx::Result<Option<T>> {
        dispatch!(self, args, |a, p| sqlx::query_scalar_with(sql, a)
            .fetch_optional(p)
            .await)
    }

    /// The first column of every row.
    ///
    /// # Errors
    /// The database's, or a value that does not decode.
    pub async fn scalar_all<T: Scalar>(&self, sql: &str, args: Args) -> sqlx::Result<Vec<T>> {
        dispatch!(self, args, |a, p| sqlx::query_scalar_with(sql, a)
            .fetch_all(p)
            .await)
    }
}
