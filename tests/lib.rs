//! Test support shared by every crate's integration tests, plus (in `e2e/`) the
//! black-box tests of the whole platform.
//!
//! [`TestDatabase`] gives each test a PostgreSQL database of its own, named
//! `emporium_test_<uuid>`, dropped by [`TestDatabase::drop_database`]; interrupted
//! runs leave some behind, which `./dev clean-test-dbs` removes.

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};
use uuid::Uuid;

/// The server used to create and drop per-test databases:
/// `TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`.
#[must_use]
pub fn maintenance_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The NATS server for tests: `TEST_NATS_URL`, default `nats://127.0.0.1:4222`.
#[must_use]
pub fn nats_url() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A prefix no other test uses, for JetStream streams and subjects.
#[must_use]
pub fn unique_prefix() -> String {
    format!("t{}", Uuid::new_v4().simple())
}

/// A fresh, empty database for one test.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    pool: PgPool,
}

impl TestDatabase {
    /// Creates the database (not migrated) and a pool of `max_connections` to it.
    ///
    /// # Errors
    /// When PostgreSQL is unreachable.
    pub async fn create(max_connections: u32) -> anyhow::Result<Self> {
        let name = format!("emporium_test_{}", Uuid::new_v4().simple());
        let base = maintenance_url();
        // Options after the database name (`?sslmode=disable`) carry over.
        let (path, options) = base
            .split_once('?')
            .map_or((base.as_str(), ""), |(p, o)| (p, o));
        let (server, _) = path
            .rsplit_once('/')
            .context("TEST_DATABASE_URL must name a database")?;
        let url = if options.is_empty() {
            format!("{server}/{name}")
        } else {
            format!("{server}/{name}?{options}")
        };
        let mut conn = sqlx::PgConnection::connect(&base).await.context(
            "connect to the maintenance database (is PostgreSQL running? ./dev services)",
        )?;
        sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
            .execute(&mut conn)
            .await
            .context("create test database")?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .connect(&url)
            .await
            .context("connect to test database")?;
        Ok(Self { name, url, pool })
    }

    /// Its URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool connected to it.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool and drops the database, even with other sessions open.
    ///
    /// # Errors
    /// When PostgreSQL is unreachable.
    pub async fn drop_database(self) -> anyhow::Result<()> {
        self.pool.close().await;
        let mut conn = sqlx::PgConnection::connect(&maintenance_url()).await?;
        sqlx::query(&format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            self.name
        ))
        .execute(&mut conn)
        .await
        .context("drop test database")?;
        Ok(())
    }
}
