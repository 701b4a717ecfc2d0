//! Read-model tables compared whole, row by row, between two read-model databases:
//! PostgreSQL and SQLite (the embedded mode), or two SQLite files. Only
//! representation is normalised: UUIDs (16-byte blobs on SQLite), times (fixed-width
//! text on SQLite, `timestamptz` on PostgreSQL; also inside JSON), JSON and arrays
//! (text on SQLite), booleans (integers on SQLite) and `numeric` (a `real` on
//! SQLite). Everything else, a column missing, a value of another type, a row more or
//! less, is a difference.
//!
//! Used by `parity.rs` and, through `#[path]`, by the gateway's
//! `tests/mode_parity.rs` (a demo seed moved from embedded to distributed).

#![allow(dead_code)] // each test binary uses a part

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, Row as _, SqlitePool, ValueRef as _};
use uuid::Uuid;

/// How a PostgreSQL column's value is represented on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Uuid,
    Time,
    /// `jsonb` and arrays: JSON text on SQLite.
    Json,
    Bool,
    Integer,
    /// `numeric` and floating point: compared as `f64`.
    Decimal,
    Text,
}

pub(crate) fn kind(data_type: &str) -> Kind {
    match data_type {
        "uuid" => Kind::Uuid,
        "timestamp with time zone" => Kind::Time,
        "jsonb" | "json" | "ARRAY" => Kind::Json,
        "boolean" => Kind::Bool,
        "bigint" | "integer" | "smallint" => Kind::Integer,
        "numeric" | "real" | "double precision" => Kind::Decimal,
        _ => Kind::Text,
    }
}

/// A time's text in one form (RFC 3339, UTC, microseconds), or `None` when `text` is
/// not a time.
pub(crate) fn time_text(text: &str) -> Option<String> {
    let parsed = DateTime::parse_from_rfc3339(text).ok()?;
    Some(
        parsed
            .with_timezone(&Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    )
}

/// Times inside JSON in one form (PostgreSQL writes `+00:00`, SQLite `Z`).
pub(crate) fn json_times(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(time_text(&s).unwrap_or(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(json_times).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, json_times(v))).collect())
        }
        other => other,
    }
}

pub(crate) fn decimal(value: &Value) -> Value {
    value.as_f64().map_or_else(|| value.clone(), Value::from)
}

/// A PostgreSQL column's value (from `to_jsonb`) in the compared form.
pub(crate) fn from_postgres(kind: Kind, value: Value) -> Value {
    match (kind, value) {
        (_, Value::Null) => Value::Null,
        (Kind::Time, Value::String(s)) => Value::String(time_text(&s).unwrap_or(s)),
        (Kind::Json, v) => json_times(v),
        (Kind::Decimal, v) => decimal(&v),
        (_, v) => v,
    }
}

/// What SQLite stored, by storage class.
pub(crate) enum Stored {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

pub(crate) fn stored(row: &SqliteRow, index: usize) -> Stored {
    let raw = row.try_get_raw(index).expect("a column");
    if raw.is_null() {
        return Stored::Null;
    }
    let class = raw.type_info().to_string();
    match class.as_str() {
        "INTEGER" => Stored::Integer(row.try_get_unchecked(index).expect("an integer")),
        "REAL" => Stored::Real(row.try_get_unchecked(index).expect("a real")),
        "TEXT" => Stored::Text(row.try_get_unchecked(index).expect("a text")),
        "BLOB" => Stored::Blob(row.try_get_unchecked(index).expect("a blob")),
        other => panic!("storage class {other}"),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An SQLite value in the form its PostgreSQL counterpart of `kind` is compared in;
/// a value of an unexpected class stays visibly different.
pub(crate) fn from_sqlite(kind: Option<Kind>, value: Stored) -> Value {
    match (kind, value) {
        (_, Stored::Null) => Value::Null,
        (Some(Kind::Uuid), Stored::Blob(b)) if b.len() == 16 => {
            Value::String(Uuid::from_slice(&b).expect("16 bytes").to_string())
        }
        (Some(Kind::Time), Stored::Text(s)) => Value::String(time_text(&s).unwrap_or(s)),
        (Some(Kind::Json), Stored::Text(s)) => {
            json_times(serde_json::from_str(&s).unwrap_or(Value::String(s)))
        }
        (Some(Kind::Bool), Stored::Integer(i @ (0 | 1))) => Value::Bool(i == 1),
        (Some(Kind::Decimal), Stored::Integer(i)) => decimal(&Value::from(i)),
        (_, Stored::Integer(i)) => Value::from(i),
        (_, Stored::Real(f)) => Value::from(f),
        (_, Stored::Text(s)) => Value::String(s),
        (_, Stored::Blob(b)) => Value::String(format!("x'{}'", hex(&b))),
    }
}

/// `table`'s rows, each a JSON object text with sorted keys, sorted.
pub(crate) type Rows = Vec<String>;

pub(crate) fn sorted(rows: impl IntoIterator<Item = BTreeMap<String, Value>>) -> Rows {
    let mut rows: Rows = rows
        .into_iter()
        .map(|row| serde_json::to_string(&row).expect("json"))
        .collect();
    rows.sort();
    rows
}

/// The columns of an SQLite table, generated ones included.
pub(crate) async fn sqlite_columns(pool: &SqlitePool, table: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT name FROM pragma_table_xinfo($1) ORDER BY cid")
        .bind(table)
        .fetch_all(pool)
        .await
        .expect("sqlite columns")
}

/// `table`'s rows on SQLite, read as `kinds` says each column is represented on
/// PostgreSQL (`None`: as stored).
pub(crate) async fn sqlite_rows(
    pool: &SqlitePool,
    table: &str,
    kinds: &HashMap<String, Kind>,
) -> Rows {
    let columns = sqlite_columns(pool, table).await;
    assert!(!columns.is_empty(), "no table {table} on SQLite");
    let list = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = sqlx::query(&format!("SELECT {list} FROM \"{table}\""))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("read {table} on SQLite: {e}"));
    sorted(rows.iter().map(|row| {
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.clone(),
                    from_sqlite(kinds.get(c).copied(), stored(row, i)),
                )
            })
            .collect()
    }))
}

/// The columns of a PostgreSQL table and how each is represented.
pub(crate) async fn postgres_columns(pool: &PgPool, table: &str) -> HashMap<String, Kind> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name = $1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .expect("postgres columns");
    columns.into_iter().map(|(c, t)| (c, kind(&t))).collect()
}

pub(crate) async fn postgres_rows(
    pool: &PgPool,
    table: &str,
    kinds: &HashMap<String, Kind>,
) -> Rows {
    let rows: Vec<Value> =
        sqlx::query_scalar(&format!("SELECT to_jsonb(t) FROM public.\"{table}\" t"))
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("read {table} on PostgreSQL: {e}"));
    sorted(rows.into_iter().map(|row| {
        let Value::Object(map) = row else {
            panic!("a row is an object")
        };
        map.into_iter()
            .map(|(c, v)| {
                let kind = kinds[&c];
                (c, from_postgres(kind, v))
            })
            .collect()
    }))
}

/// Asserts two dumps of `table` hold the same rows, naming a few that differ.
pub(crate) fn assert_same_rows(
    table: &str,
    left_name: &str,
    left: &Rows,
    right_name: &str,
    right: &Rows,
) {
    if left == right {
        return;
    }
    let (l, r): (BTreeSet<&String>, BTreeSet<&String>) =
        (left.iter().collect(), right.iter().collect());
    let only_left: Vec<_> = l.difference(&r).take(3).collect();
    let only_right: Vec<_> = r.difference(&l).take(3).collect();
    panic!(
        "{table}: {} rows on {left_name}, {} on {right_name}\n\
         only on {left_name} (first 3): {only_left:#?}\n\
         only on {right_name} (first 3): {only_right:#?}",
        left.len(),
        right.len()
    );
}

/// Compares `tables` between PostgreSQL (`public`) and SQLite: the same columns and
/// the same rows. Returns the tables that are empty on both.
pub(crate) async fn assert_same_on_postgres_and_sqlite(
    pg: &PgPool,
    sqlite: &SqlitePool,
    tables: &[&'static str],
) -> Vec<&'static str> {
    let mut empty = Vec::new();
    for table in tables {
        let kinds = postgres_columns(pg, table).await;
        let on_lite: BTreeSet<String> = sqlite_columns(sqlite, table).await.into_iter().collect();
        let on_pg: BTreeSet<String> = kinds.keys().cloned().collect();
        assert_eq!(on_pg, on_lite, "{table}: the same columns on both");
        let pg_rows = postgres_rows(pg, table, &kinds).await;
        let lite_rows = sqlite_rows(sqlite, table, &kinds).await;
        assert_same_rows(table, "PostgreSQL", &pg_rows, "SQLite", &lite_rows);
        if pg_rows.is_empty() {
            empty.push(*table);
        }
    }
    empty
}

/// Compares `tables` between two SQLite read-model databases, values as stored.
/// Returns the rows compared.
pub(crate) async fn assert_same_on_sqlite(
    left: &SqlitePool,
    right: &SqlitePool,
    tables: &[&'static str],
) -> usize {
    let mut compared = 0;
    for table in tables {
        let l = sqlite_rows(left, table, &HashMap::new()).await;
        let r = sqlite_rows(right, table, &HashMap::new()).await;
        assert_same_rows(table, "the first", &l, "the second", &r);
        compared += l.len();
    }
    compared
}
