//! The event backbone's operator commands: running projections (`project`, and beside
//! the gateway in `serve`), inspecting and repairing them (`projections ...`), and
//! watching or replaying the stream (`events ...`).
//!
//! Dependencies are probed up front so an operator gets one clear line and exit code
//! 4 naming PostgreSQL or NATS, instead of a command that hangs while a client retries
//! in the background. Output meant for scripts goes to stdout; progress bars go to
//! stderr and only when it is a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sqlx::{Connection as _, PgPool};
use tokio::sync::watch;

use emporium_projections::bus::{self, StreamLayout};
use emporium_projections::projection::{
    self, Projection, ProjectionState, Rebuild, rebuild::DEFAULT_BATCH,
};

use super::CliError;
use crate::app::shutdown_signal;
use crate::backbone::{join_runners, spawn_runners};
use crate::config::Settings;
use crate::seed::{DEMO_EMAIL, DEMO_PASSWORD, SeedOutcome, SeedSize, Seeder};

/// How long a dependency may take to answer the first probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The projection named `name`, or a usage error listing the known ones.
pub(super) fn projection_named(name: &str) -> Result<Arc<dyn Projection>, CliError> {
    projection::by_name(name).ok_or_else(|| {
        CliError::Usage(anyhow::anyhow!(
            "unknown projection `{name}`; known projections: {}",
            projection::all()
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// A pool to PostgreSQL, after checking that it answers (exit 4 when it does not).
pub(super) async fn postgres(
    settings: &Settings,
    max_connections: u32,
) -> Result<PgPool, CliError> {
    let url = settings.database.url.expose();
    let redacted = settings.database.url.redacted();
    match tokio::time::timeout(PROBE_TIMEOUT, sqlx::PgConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(e)) => {
            return Err(CliError::Unavailable(
                anyhow::Error::from(e).context(format!("cannot reach PostgreSQL at {redacted}")),
            ));
        }
        Err(_) => {
            return Err(CliError::Unavailable(anyhow::anyhow!(
                "cannot reach PostgreSQL at {redacted}: no answer within {PROBE_TIMEOUT:?}"
            )));
        }
    }
    Ok(emporium_commands::db::connect_lazy(url, max_connections)?)
}

/// Fails unless the database holds the event store and the checkpoint table.
async fn ensure_migrated(pool: &PgPool) -> Result<(), CliError> {
    let migrated: bool = sqlx::query_scalar(
        "SELECT to_regclass('events') IS NOT NULL
            AND to_regclass('projection_checkpoints') IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .context("inspect the database")?;
    if migrated {
        Ok(())
    } else {
        Err(CliError::Failed(anyhow::anyhow!(
            "the database has no event store or projection tables; run `emporium migrate` first"
        )))
    }
}

/// A NATS client, after checking that the server answers (exit 4 when it does not).
pub(super) async fn nats(settings: &Settings) -> Result<async_nats::Client, CliError> {
    let client = bus::connect(settings.nats.url.expose(), Duration::from_secs(3))
        .await
        .map_err(CliError::Failed)?;
    if bus::is_connected(&client) {
        Ok(client)
    } else {
        Err(CliError::Unavailable(anyhow::anyhow!(
            "cannot reach NATS at {}",
            settings.nats.url.redacted()
        )))
    }
}

/// `emporium project <name|all>`.
pub(super) async fn project(settings: &Settings, name: &str) -> Result<(), CliError> {
    let projections = if name == "all" {
        projection::all()
    } else {
        vec![projection_named(name)?]
    };
    let layout = StreamLayout::new(&settings.nats.stream_prefix).map_err(CliError::Failed)?;
    let connections = u32::try_from(projections.len())
        .unwrap_or(u32::MAX)
        .saturating_add(2);
    let pool = postgres(settings, connections).await?;
    ensure_migrated(&pool).await?;
    let client = nats(settings).await?;
    let names: Vec<_> = projections.iter().map(|p| p.name()).collect();
    tracing::info!(stream = %layout.stream_name(), projections = ?names, "projectors starting");
    let (stop_tx, stop_rx) = watch::channel(false);
    let runners = spawn_runners(
        &pool,
        &client,
        &layout,
        projections,
        &settings.backbone.runner_config(),
        &stop_rx,
    );
    shutdown_signal().await;
    tracing::info!("stopping projectors");
    stop_tx.send_replace(true);
    join_runners(runners).await;
    Ok(())
}

/// Writes a line to stdout; a closed pipe (`| head`) is not an error.
fn emit(line: &str) -> Result<bool, CliError> {
    match writeln!(std::io::stdout(), "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(CliError::Failed(
            anyhow::Error::from(e).context("write to stdout"),
        )),
    }
}

/// Lays out rows as aligned columns (the last one unpadded).
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.pop();
    out
}

/// `emporium projections list`.
pub(super) fn list() -> Result<(), CliError> {
    let mut rows = vec![vec![
        "NAME".to_owned(),
        "VERSION".to_owned(),
        "TABLES".to_owned(),
    ]];
    for p in projection::all() {
        rows.push(vec![
            p.name().to_owned(),
            p.version().to_string(),
            p.tables().join(", "),
        ]);
    }
    emit(&table(&rows))?;
    Ok(())
}

/// The events stream's last sequence; `None` (with a note) when NATS cannot tell.
async fn stream_last_sequence(settings: &Settings, layout: &StreamLayout) -> Option<u64> {
    let note = |what: String| {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("note: lag unknown: {what}");
        }
    };
    let client = match nats(settings).await {
        Ok(client) => client,
        Err(CliError::Unavailable(e) | CliError::Failed(e) | CliError::Usage(e)) => {
            note(format!("{e:#}"));
            return None;
        }
    };
    let js = jetstream::new(client);
    match js.get_stream(layout.stream_name()).await {
        Ok(mut stream) => match stream.info().await {
            Ok(info) => Some(info.state.last_sequence),
            Err(e) => {
                note(format!("read stream {}: {e}", layout.stream_name()));
                None
            }
        },
        // No stream yet: the relay has published nothing.
        Err(_) => Some(0),
    }
}

fn dash() -> String {
    "-".to_owned()
}

/// `emporium projections status`.
pub(super) async fn status(settings: &Settings) -> Result<(), CliError> {
    let layout = StreamLayout::new(&settings.nats.stream_prefix).map_err(CliError::Failed)?;
    let pool = postgres(settings, 2).await?;
    ensure_migrated(&pool).await?;
    let last = stream_last_sequence(settings, &layout).await;
    let statuses = projection::status(&pool, last).await?;
    print_status(&statuses)
}

/// The status table of `statuses`, every projection of this build included.
fn print_status(statuses: &[projection::ProjectionStatus]) -> Result<(), CliError> {
    let mut rows = vec![
        [
            "NAME",
            "VERSION",
            "STATE",
            "POSITION",
            "STREAM SEQ",
            "LAG",
            "ERROR",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let known = projection::all();
    for p in &known {
        if !statuses.iter().any(|s| s.name == p.name()) {
            rows.push(vec![
                p.name().to_owned(),
                p.version().to_string(),
                "not built".to_owned(),
                dash(),
                dash(),
                dash(),
                dash(),
            ]);
        }
    }
    for s in statuses {
        let mut state = match &s.state {
            ProjectionState::Running => "running".to_owned(),
            ProjectionState::Failed { .. } => "stopped".to_owned(),
        };
        if let Some((version, position)) = s.rebuilding {
            state.push_str(&format!(" (rebuilding v{version} at {position})"));
        }
        if !known.iter().any(|p| p.name() == s.name) {
            state.push_str(" (not in this build)");
        }
        let error = match &s.state {
            ProjectionState::Failed {
                error,
                stream_sequence,
                ..
            } => format!(
                "at stream seq {}: {}",
                stream_sequence.map_or_else(dash, |q| q.to_string()),
                error.replace('\n', " ")
            ),
            ProjectionState::Running => dash(),
        };
        rows.push(vec![
            s.name.clone(),
            s.version.to_string(),
            state,
            s.checkpoint.cursor.position.to_string(),
            s.checkpoint.stream_sequence.to_string(),
            s.lag.map_or_else(|| "?".to_owned(), |l| l.to_string()),
            error,
        ]);
    }
    rows[1..].sort_by(|a, b| a[0].cmp(&b[0]));
    emit(&table(&rows))?;
    Ok(())
}

/// `emporium projections status|retry` in the embedded mode: the read models'
/// checkpoints in `<data_dir>/read.db`, read with the event store held (so with
/// `serve` stopped: the read models belong to the process holding the store). The lag
/// is in events behind the store's last position.
#[cfg(feature = "sqlite")]
pub(super) async fn embedded_projections(
    settings: &Settings,
    retry: Option<&str>,
) -> Result<(), CliError> {
    use emporium_projections::projection::embedded;
    let store = embedded_sqlite_store(settings).await?;
    let read = embedded::ReadDb::open(&settings.storage.data_dir.join("read.db")).await?;
    if let Some(name) = retry {
        let cleared = embedded::retry(&read, name).await?;
        read.close().await;
        return if cleared {
            emit(&format!(
                "projection {name} cleared; its runner resumes at the event that failed when \
                 `emporium serve` starts"
            ))?;
            Ok(())
        } else {
            Err(CliError::Failed(anyhow::anyhow!(
                "projection {name} is not stopped; nothing to retry"
            )))
        };
    }
    let last: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(store.pool())
        .await
        .context("read the event store's last position")?;
    let statuses = embedded::status(&read, Some(last.map_or(0, |p| p.unsigned_abs()))).await?;
    read.close().await;
    print_status(&statuses)
}

/// `emporium projections retry NAME`.
pub(super) async fn retry(settings: &Settings, name: &str) -> Result<(), CliError> {
    projection_named(name)?;
    let pool = postgres(settings, 2).await?;
    ensure_migrated(&pool).await?;
    if projection::retry(&pool, name).await? {
        emit(&format!(
            "projection {name} cleared; its runner resumes at the event that failed"
        ))?;
        Ok(())
    } else {
        Err(CliError::Failed(anyhow::anyhow!(
            "projection {name} is not stopped; nothing to retry"
        )))
    }
}

/// A progress bar on stderr, hidden unless stderr is a terminal.
fn progress_bar(total: u64, label: String) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} {wide_bar} {human_pos}/{human_len} events  {per_sec}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(label);
    bar
}

/// `emporium projections rebuild NAME` and `emporium events replay --projection NAME
/// [--from POS]`: builds the projection's current version from the event store into
/// shadow tables, then swaps them in. The live tables keep serving meanwhile and a
/// running runner carries on from the rebuilt checkpoint.
pub(super) async fn rebuild(
    settings: &Settings,
    name: &str,
    apply_from: Option<u64>,
) -> Result<(), CliError> {
    let projection = projection_named(name)?;
    let pool = postgres(settings, 4).await?;
    ensure_migrated(&pool).await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .context("count the events")?;
    let version = projection.version();
    let bar = progress_bar(
        u64::try_from(total).unwrap_or_default(),
        format!("{name} v{version}"),
    );
    let started = Instant::now();
    let mut rebuild = Rebuild::start(pool.clone(), Arc::clone(&projection), DEFAULT_BATCH).await?;
    if let Some(position) = apply_from {
        rebuild.apply_from(position);
    }
    let outcome = tokio::select! {
        outcome = rebuild.run_to_end_with(|r| {
            if r.read() > bar.length().unwrap_or(0) {
                bar.set_length(r.read());
            }
            bar.set_position(r.read());
        }) => outcome.map_err(CliError::Failed),
        () = shutdown_signal() => Err(CliError::Failed(anyhow::anyhow!("interrupted"))),
    };
    if let Err(e) = outcome {
        bar.abandon();
        let schema = rebuild.schema().to_owned();
        if let Err(abandon) = rebuild.abandon().await {
            tracing::warn!(
                error = format!("{abandon:#}"),
                schema,
                "could not drop the shadow schema"
            );
        }
        return Err(match e {
            CliError::Failed(e) => CliError::Failed(e.context(format!(
                "rebuild of {name} abandoned; the live tables are untouched"
            ))),
            other => other,
        });
    }
    let (read, applied) = (rebuild.read(), rebuild.applied());
    let checkpoint = rebuild.swap_replacing().await?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // a rate for a human
    let rate = read as f64 / seconds.max(1e-9);
    let partial = apply_from.map_or_else(String::new, |p| {
        format!(" (partial: events before position {p} skipped)")
    });
    emit(&format!(
        "rebuilt {name} v{version}{partial}: {read} events read, {applied} applied in {seconds:.1}s \
         ({rate:.0} events/s); live at stream sequence {}",
        checkpoint.stream_sequence
    ))?;
    Ok(())
}

/// A subject token given on the command line: one NATS token, no wildcards.
fn token(what: &str, value: Option<&str>) -> Result<String, CliError> {
    match value {
        None => Ok("*".to_owned()),
        Some(v)
            if !v.is_empty()
                && !v
                    .chars()
                    .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace()) =>
        {
            Ok(v.to_owned())
        }
        Some(v) => Err(CliError::Usage(anyhow::anyhow!(
            "{what} `{v}` must be one subject token (no `.`, `*`, `>` or spaces)"
        ))),
    }
}

/// What `events tail` shows.
#[derive(Debug)]
pub(super) struct Tail {
    pub(super) aggregate: Option<String>,
    pub(super) event_type: Option<String>,
    pub(super) from_start: bool,
    pub(super) limit: Option<u64>,
}

/// `emporium events tail`: an ephemeral ordered consumer, one JSON envelope a line.
pub(super) async fn tail(settings: &Settings, tail: Tail) -> Result<(), CliError> {
    let layout = StreamLayout::new(&settings.nats.stream_prefix).map_err(CliError::Failed)?;
    let filter = format!(
        "{}.events.{}.{}",
        settings.nats.stream_prefix,
        token("aggregate type", tail.aggregate.as_deref())?,
        token("event type", tail.event_type.as_deref())?
    );
    let client = nats(settings).await?;
    let js = jetstream::new(client);
    let stream = js.get_stream(layout.stream_name()).await.map_err(|e| {
        CliError::Failed(anyhow::anyhow!(
            "open stream {}: {e} (has a relay run with prefix `{}`?)",
            layout.stream_name(),
            settings.nats.stream_prefix
        ))
    })?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: filter.clone(),
            deliver_policy: if tail.from_start {
                DeliverPolicy::All
            } else {
                DeliverPolicy::New
            },
            ..OrderedConfig::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("create a consumer on {filter}: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("read {filter}: {e}"))?;
    tracing::debug!(filter, "tailing");
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut printed = 0u64;
    while tail.limit.is_none_or(|limit| printed < limit) {
        let next = tokio::select! {
            () = &mut shutdown => break,
            next = messages.next() => next,
        };
        let Some(message) = next else { break };
        let message = message.map_err(|e| anyhow::anyhow!("receive from {filter}: {e}"))?;
        let envelope: serde_json::Value =
            serde_json::from_slice(&message.payload).context("decode an event envelope")?;
        if !emit(&envelope.to_string())? {
            break;
        }
        printed += 1;
    }
    Ok(())
}

/// `emporium seed [--demo]`.
pub(super) async fn seed(settings: &Settings, size: SeedSize, demo: bool) -> Result<(), CliError> {
    if !demo {
        emit(&crate::seed::plan(size))?;
        return Err(CliError::Usage(anyhow::anyhow!(
            "nothing written: pass --demo to load the demo shop"
        )));
    }
    if settings.storage.embedded() {
        let store = embedded_store(settings).await?;
        return seeded(Seeder::new(store, size)).await;
    }
    // A product command holds up to two claim transactions (SKU and slug) while it
    // commits on a third connection.
    let connections = u32::try_from(size.concurrency)
        .unwrap_or(u32::MAX)
        .saturating_mul(3)
        .saturating_add(2);
    let pool = postgres(settings, connections).await?;
    ensure_migrated(&pool).await?;
    seeded(Seeder::new(emporium_commands::PgStore::new(pool), size)).await
}

/// Runs `seeder` and says what it did.
async fn seeded(seeder: Seeder) -> Result<(), CliError> {
    let summary = match seeder.run().await.map_err(CliError::Failed)? {
        SeedOutcome::AlreadySeeded => {
            emit(&format!(
                "already seeded: {DEMO_EMAIL} exists; nothing written (log in with password \
                 `{DEMO_PASSWORD}`)"
            ))?;
            return Ok(());
        }
        SeedOutcome::Seeded(summary) => summary,
    };
    emit(&format!(
        "seeded the demo shop in {:.1}s: {} categories, {} products ({} variants, {} featured), \
         {} SKUs in stock ({} low), {} customers, {} orders, {} reviews\n\
         log in as {DEMO_EMAIL} with password `{DEMO_PASSWORD}`",
        summary.elapsed.as_secs_f64(),
        summary.categories,
        summary.products,
        summary.variants,
        summary.featured,
        summary.skus,
        summary.low_stock,
        summary.customers,
        summary.orders,
        summary.reviews,
    ))?;
    Ok(())
}

/// `emporium users set-role EMAIL ROLE`.
pub(super) async fn set_role(
    settings: &Settings,
    email: &str,
    role: emporium_domain::user::Role,
) -> Result<(), CliError> {
    let store = if settings.storage.embedded() {
        embedded_store(settings).await?
    } else {
        let pool = postgres(settings, 2).await?;
        ensure_migrated(&pool).await?;
        emporium_commands::AnyStore::from(&pool)
    };
    let user_id = crate::auth::set_role(&store, email, role, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            crate::error::ApiError::Internal(e) => CliError::Unavailable(e),
            other => CliError::Failed(anyhow::anyhow!(other.message())),
        })?;
    tracing::info!(%user_id, ?role, "role changed");
    Ok(())
}

/// The embedded mode's event store, `<data_dir>/events.db` (created and migrated when
/// missing); a running `serve` holds it, which is an error naming that.
#[cfg(feature = "sqlite")]
async fn embedded_store(settings: &Settings) -> Result<emporium_commands::AnyStore, CliError> {
    embedded_sqlite_store(settings)
        .await
        .map(emporium_commands::AnyStore::from)
}

#[cfg(feature = "sqlite")]
async fn embedded_sqlite_store(
    settings: &Settings,
) -> Result<emporium_commands::store::SqliteStore, CliError> {
    let path = settings.storage.data_dir.join("events.db");
    emporium_commands::store::SqliteStore::open(&path)
        .await
        .map_err(super::in_use_by_a_server)
}

#[cfg(not(feature = "sqlite"))]
async fn embedded_store(_: &Settings) -> Result<emporium_commands::AnyStore, CliError> {
    Err(CliError::Unavailable(anyhow::anyhow!(
        "storage.mode = \"embedded\" needs a build with the `sqlite` feature"
    )))
}

/// `emporium migrate` in the embedded mode: creates the data directory and its files
/// (the event store, the read models' file, the gateway's own) and migrates them. The
/// read models themselves are built by `serve` from the events.
pub(super) async fn migrate_embedded(settings: &Settings) -> Result<(), CliError> {
    let dir = &settings.storage.data_dir;
    let store = embedded_store(settings).await?;
    #[cfg(feature = "sqlite")]
    {
        let read =
            emporium_projections::projection::embedded::ReadDb::open(&dir.join("read.db")).await?;
        read.close().await;
        crate::db::open_local(&dir.join("gateway.db"))
            .await?
            .close()
            .await;
    }
    drop(store);
    tracing::info!(data_dir = %dir.display(), "embedded data files migrated");
    Ok(())
}
