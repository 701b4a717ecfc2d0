//! The `emporium` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use emporium_projections::relay::Relay;

use std::time::Duration;

use crate::app::{Application, DemoShop, shutdown_signal};
use crate::config::{Environment, LogFormat, Overrides, Settings};
use crate::seed::SeedSize;
use crate::telemetry;

mod backbone;
mod log;

/// Emporium: an event-sourced commerce platform with AI built in.
///
/// Configuration is layered: defaults, then `<config-dir>/<env>.toml`, then
/// `EMPORIUM_*` environment variables (`__` nests: `EMPORIUM_HTTP__PORT=8080`), then
/// these flags. `emporium config print` shows the result with secrets redacted.
#[derive(Debug, Parser)]
#[command(name = "emporium", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Environment: selects `<config-dir>/<env>.toml` and defaults (json logs and no
    /// GraphiQL in production).
    #[arg(long, global = true, env = "EMPORIUM_ENV", value_enum, default_value_t = Environment::Development)]
    env: Environment,
    /// Folder holding `<env>.toml`.
    #[arg(
        long,
        global = true,
        env = "EMPORIUM_CONFIG_DIR",
        default_value = "config"
    )]
    config_dir: PathBuf,
    /// HTTP port (0 picks a free one).
    #[arg(long, global = true)]
    port: Option<u16>,
    /// PostgreSQL URL, e.g. postgres://user@127.0.0.1:5432/emporium.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// NATS URL, e.g. nats://127.0.0.1:4222.
    #[arg(long, global = true)]
    nats_url: Option<String>,
    /// Prefix of the JetStream stream and subjects.
    #[arg(long, global = true)]
    stream_prefix: Option<String>,
    /// Log format (default: pretty in development, json in production).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform in one process: the gateway, the relay and every projection
    /// runner (AI workers join as they land).
    ///
    /// A projection stopped by an event it cannot apply is logged and stays stopped
    /// (the rest keep running) until `emporium projections retry NAME`.
    ///
    /// In the embedded mode (no database or NATS URL configured) everything lives in
    /// `storage.data_dir` (`./data/`), created on start; with `storage.seed_demo` (on in
    /// development) a first start (no events yet) seeds the demo shop while serving,
    /// then prints the GraphiQL URL and the demo login.
    Serve {
        /// Do not create and migrate the database on start (distributed mode).
        #[arg(long)]
        no_migrate: bool,
        /// Products of the first-start demo seed (smaller seeds for tests).
        #[arg(long, hide = true, default_value_t = SeedSize::default().products)]
        seed_products: usize,
        /// Customers of the first-start demo seed, the demo account included.
        #[arg(long, hide = true, default_value_t = SeedSize::default().customers)]
        seed_customers: usize,
        /// Past orders of the first-start demo seed.
        #[arg(long, hide = true, default_value_t = SeedSize::default().orders)]
        seed_orders: usize,
    },
    /// Run only the relay: publishes every committed event to JetStream in commit
    /// order. Several may run; one holds the lock, the others stand by. Distributed
    /// mode only.
    Relay,
    /// Run projection runners until SIGINT/SIGTERM: one by name, or `all`.
    ///
    /// Each runner consumes the events stream through its durable consumer and keeps
    /// its read model up to date; one that meets an event it cannot apply is logged and
    /// stays stopped until `emporium projections retry NAME`. `emporium projections
    /// list` names them. Needs a migrated database and a reachable NATS (exit 4
    /// otherwise).
    Project {
        /// Projection name (see `emporium projections list`), or `all`.
        name: String,
    },
    /// Inspect and repair the projections (read models).
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Watch the events stream or replay the event store into a projection.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Run one AI worker by name.
    Worker {
        /// Worker name.
        name: String,
    },
    /// Create the database if missing and apply pending migrations (in the embedded
    /// mode: create `storage.data_dir` and its files and migrate them).
    Migrate,
    /// Load a deterministic demo shop (needs a migrated database).
    ///
    /// With `--demo`: a category tree, 1,000 products with variants, images and stock,
    /// 50 customers (log in as `demo@emporium.test` / `emporium-demo`), 200 past orders
    /// and approved reviews, written through the command layer so projections build
    /// them like any other data. The same data on every run; a database that already
    /// holds the demo account is left untouched. Without `--demo` it only prints what it
    /// would write (exit 2). In the embedded mode it writes into
    /// `<data_dir>/events.db`, which a running `serve` holds: stop it first (or let
    /// `serve` seed on its first start).
    Seed {
        /// Write the demo shop (required).
        #[arg(long)]
        demo: bool,
        /// Products to create (smaller seeds for tests).
        #[arg(long, hide = true, default_value_t = SeedSize::default().products)]
        products: usize,
        /// Customers to register, the demo account included.
        #[arg(long, hide = true, default_value_t = SeedSize::default().customers)]
        customers: usize,
        /// Past orders to place.
        #[arg(long, hide = true, default_value_t = SeedSize::default().orders)]
        orders: usize,
        /// Commands in flight at once.
        #[arg(long, hide = true, default_value_t = SeedSize::default().concurrency)]
        concurrency: usize,
    },
    /// Manage accounts (operators).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Give the account registered with an e-mail address a role (customer, staff or
    /// admin). Exit 1 when no account has the address.
    SetRole {
        /// The account's e-mail address.
        email: String,
        /// customer, staff or admin.
        #[arg(value_parser = parse_role)]
        role: emporium_domain::user::Role,
    },
}

fn parse_role(raw: &str) -> Result<emporium_domain::user::Role, String> {
    use emporium_domain::user::Role;
    match raw.to_ascii_lowercase().as_str() {
        "customer" => Ok(Role::Customer),
        "staff" => Ok(Role::Staff),
        "admin" => Ok(Role::Admin),
        other => Err(format!("unknown role `{other}` (customer, staff or admin)")),
    }
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// List the projections of this build: name, version and the tables each owns.
    List,
    /// Show every projection's state, checkpoint (global position and stream
    /// sequence), lag behind the stream and error, as a table.
    ///
    /// The lag needs NATS; when it is unreachable the lag shows `?` and the command
    /// still succeeds.
    Status,
    /// Rebuild a projection from the event store into shadow tables, then swap them
    /// in atomically.
    ///
    /// The live tables keep serving meanwhile, and runners (in `serve` or `project`)
    /// carry on from the rebuilt checkpoint, so this works while the platform runs.
    /// Interrupting it abandons the rebuild and leaves the live tables untouched.
    Rebuild {
        /// Projection name (see `emporium projections list`).
        name: String,
    },
    /// Resume a projection stopped by an event it could not apply (after fixing the
    /// cause): its runner starts again at that event. Fails when it is not stopped.
    Retry {
        /// Projection name (see `emporium projections list`).
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Print events as they arrive on the stream, one JSON envelope a line on
    /// stdout, until interrupted.
    ///
    /// Uses an ephemeral consumer (nothing is left on the server) filtered on
    /// `<prefix>.events.<aggregate type>.<event type>`.
    Tail {
        /// Only this aggregate type, e.g. `order`.
        #[arg(long = "aggregate", value_name = "TYPE")]
        aggregate: Option<String>,
        /// Only this event type, e.g. `OrderPlaced`.
        #[arg(long = "type", value_name = "EVENT")]
        event_type: Option<String>,
        /// Start at the stream's first event instead of new ones.
        #[arg(long)]
        from_start: bool,
        /// Stop after printing this many events.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// Re-run a projection over the event store into its shadow tables and swap them
    /// in, with a progress bar (like `projections rebuild`).
    ///
    /// With `--from POS` the replay is partial: events at a global position below POS
    /// are read but not applied, so the read model holds only what later events build.
    /// That suits projections whose rows do not depend on earlier events; for one that
    /// does (most read models: an update needs the row its creation made) the replay
    /// stops at the first event it cannot apply and the live tables stay untouched.
    Replay {
        /// Projection name (see `emporium projections list`).
        #[arg(long, value_name = "NAME")]
        projection: String,
        /// Apply only events at this global position or later (a partial replay).
        #[arg(long, value_name = "POS")]
        from: Option<u64>,
    },
    /// Write the event log (every event in commit order, with its aggregate, sequence,
    /// type, schema version, payload and metadata, then the uniqueness claims) to FILE
    /// as JSON Lines, to move a shop to another store with `events import`.
    ///
    /// Password hashes travel as stored (accounts must keep working), so the file is
    /// as sensitive as the database; it is created readable by its owner only.
    /// Export a stopped platform.
    Export {
        /// The file to write (replaced when it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Read the embedded SQLite store in this file instead of PostgreSQL.
        #[arg(long, value_name = "DB")]
        sqlite: Option<PathBuf>,
    },
    /// Load a log written by `events export` into an empty event store, keeping every
    /// aggregate's sequences; all or nothing. Read models follow by replay.
    Import {
        /// The file to read.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// Write the embedded SQLite store in this file (created when missing)
        /// instead of PostgreSQL (created and migrated when missing).
        #[arg(long, value_name = "DB")]
        sqlite: Option<PathBuf>,
        /// Append to a store that already holds events (a sequence that collides
        /// fails the whole import).
        #[arg(long)]
        allow_non_empty: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration as TOML, secrets redacted.
    Print,
}

/// Exit codes, so scripts can tell failures apart.
mod exit {
    pub(super) const FAILURE: u8 = 1;
    pub(super) const USAGE: u8 = 2;
    pub(super) const CONFIG: u8 = 3;
    pub(super) const UNAVAILABLE: u8 = 4;
}

impl Cli {
    /// Runs the parsed command.
    pub async fn run(self) -> ExitCode {
        let overrides = Overrides {
            port: self.global.port,
            database_url: self.global.database_url.clone(),
            nats_url: self.global.nats_url.clone(),
            stream_prefix: self.global.stream_prefix.clone(),
            log_format: self.global.log_format,
        };
        let settings = match Settings::load(&self.global.config_dir, self.global.env, &overrides) {
            Ok(s) => s,
            Err(e) => {
                report(&e.into());
                return ExitCode::from(exit::CONFIG);
            }
        };
        if !matches!(self.command, Command::Config { .. }) {
            telemetry::init_tracing(settings.log_format(), &settings.log.filter);
        }
        match run_command(self.command, settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(CliError::Unavailable(e)) => {
                report(&e);
                ExitCode::from(exit::UNAVAILABLE)
            }
            Err(CliError::Failed(e)) => {
                report(&e);
                ExitCode::from(exit::FAILURE)
            }
            Err(CliError::Usage(e)) => {
                report(&e);
                ExitCode::from(exit::USAGE)
            }
        }
    }
}

enum CliError {
    /// A part this build does not have yet, or a dependency that is down.
    Unavailable(anyhow::Error),
    Failed(anyhow::Error),
    /// A wrong argument the parser could not catch (e.g. an unknown projection).
    Usage(anyhow::Error),
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        Self::Failed(e)
    }
}

fn report(e: &anyhow::Error) {
    // The one place the binary talks to a human on stderr without tracing: a
    // configuration error happens before logging exists.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("error: {e:#}");
    }
}

async fn run_command(command: Command, settings: Settings) -> Result<(), CliError> {
    match command {
        Command::Serve {
            no_migrate,
            seed_products,
            seed_customers,
            seed_orders,
        } => {
            let size = SeedSize {
                products: seed_products,
                customers: seed_customers,
                orders: seed_orders,
                ..SeedSize::default()
            };
            serve(settings, !no_migrate, size).await
        }
        Command::Relay => {
            distributed_only(&settings, "relay")?;
            let (layout, relay_config) = settings.nats.relay()?;
            let pool = emporium_commands::db::connect_lazy(settings.database.url.expose(), 2)?;
            let nats = emporium_projections::bus::connect(
                settings.nats.url.expose(),
                std::time::Duration::from_secs(2),
            )
            .await?;
            tracing::info!(stream = %layout.stream_name(), "relay starting");
            Relay::new(pool, async_nats::jetstream::new(nats), layout, relay_config)
                .run(shutdown_signal())
                .await?;
            Ok(())
        }
        Command::Migrate if settings.storage.embedded() => {
            backbone::migrate_embedded(&settings).await
        }
        Command::Migrate => {
            let url = settings.database.url.expose();
            let pool = emporium_commands::db::connect_lazy(url, 2)?;
            crate::db::prepare(url, &pool)
                .await
                .map_err(CliError::Unavailable)?;
            tracing::info!(database = %settings.database.url.redacted(), "migrations applied");
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Print,
        } => {
            let text = settings
                .to_redacted_toml()
                .map_err(|e| CliError::Failed(e.into()))?;
            #[allow(clippy::print_stdout)]
            {
                print!("{text}");
            }
            Ok(())
        }
        Command::Project { name } => {
            if name != "all" {
                backbone::projection_named(&name)?;
            }
            distributed_only(&settings, "project")?;
            backbone::project(&settings, &name).await
        }
        Command::Projections { command } => match command {
            ProjectionsCommand::List => backbone::list(),
            #[cfg(feature = "sqlite")]
            ProjectionsCommand::Status if settings.storage.embedded() => {
                backbone::embedded_projections(&settings, None).await
            }
            ProjectionsCommand::Status => {
                distributed_only(&settings, "projections status")?;
                backbone::status(&settings).await
            }
            ProjectionsCommand::Rebuild { name } => {
                backbone::projection_named(&name)?;
                distributed_only(&settings, "projections rebuild")?;
                backbone::rebuild(&settings, &name, None).await
            }
            ProjectionsCommand::Retry { name } => {
                backbone::projection_named(&name)?;
                #[cfg(feature = "sqlite")]
                if settings.storage.embedded() {
                    return backbone::embedded_projections(&settings, Some(&name)).await;
                }
                distributed_only(&settings, "projections retry")?;
                backbone::retry(&settings, &name).await
            }
        },
        Command::Events { command } => match command {
            EventsCommand::Tail {
                aggregate,
                event_type,
                from_start,
                limit,
            } => {
                distributed_only(&settings, "events tail")?;
                let tail = backbone::Tail {
                    aggregate,
                    event_type,
                    from_start,
                    limit,
                };
                backbone::tail(&settings, tail).await
            }
            EventsCommand::Replay { projection, from } => {
                backbone::projection_named(&projection)?;
                distributed_only(&settings, "events replay")?;
                backbone::rebuild(&settings, &projection, from).await
            }
            // In the embedded mode the store is the data directory's unless named.
            EventsCommand::Export { out, sqlite } => {
                let sqlite = sqlite.or_else(|| embedded_store_file(&settings));
                log::export(&settings, &out, sqlite.as_deref()).await
            }
            EventsCommand::Import {
                input,
                sqlite,
                allow_non_empty,
            } => {
                let sqlite = sqlite.or_else(|| embedded_store_file(&settings));
                log::import(&settings, &input, sqlite.as_deref(), allow_non_empty).await
            }
        },
        Command::Users {
            command: UsersCommand::SetRole { email, role },
        } => backbone::set_role(&settings, &email, role).await,
        Command::Worker { name } => {
            if emporium_ai_workers::WORKERS.contains(&name.as_str()) {
                Err(not_yet(&format!("worker {name}"), "the AI workers"))
            } else {
                Err(CliError::Failed(anyhow::anyhow!(
                    "unknown worker `{name}`; this build has: {:?}",
                    emporium_ai_workers::WORKERS
                )))
            }
        }
        Command::Seed {
            demo,
            products,
            customers,
            orders,
            concurrency,
        } => {
            let size = SeedSize {
                products,
                customers,
                orders,
                concurrency,
            };
            backbone::seed(&settings, size, demo).await
        }
    }
}

/// `emporium serve`: the application, the first-start demo seed (embedded mode), and
/// the GraphiQL URL and demo login on stdout once the shop is ready.
async fn serve(settings: Settings, migrate: bool, size: SeedSize) -> Result<(), CliError> {
    // The relay and the projection runners run inside the application when
    // `backbone.in_process` is on (the default), and stop after the server.
    telemetry::traces::init(&settings.telemetry)?;
    let embedded = settings
        .storage
        .embedded()
        .then(|| settings.storage.data_dir.clone());
    let app = Application::build(settings, migrate)
        .await
        .map_err(in_use_by_a_server)?;
    let addr = app.local_addr().map_err(anyhow::Error::from)?;
    let host = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    let graphiql = format!(
        "http://{}/graphql",
        std::net::SocketAddr::new(host, addr.port())
    );
    match &embedded {
        Some(dir) => {
            tracing::info!(%addr, data_dir = %dir.display(), "serving (embedded mode); GraphiQL at /graphql")
        }
        None => tracing::info!(%addr, "serving; GraphiQL at /graphql"),
    }
    // The read models may take a while to follow a large seed on a slow machine.
    let mut seed = None;
    match app.demo_shop(size, Duration::from_secs(300)).await? {
        DemoShop::Off => {}
        DemoShop::Kept { demo_account } => {
            if !demo_account {
                tracing::info!(
                    "the event store holds events but no demo account: nothing seeded (delete \
                     the data directory to start over with the demo shop)"
                );
            }
            announce(&graphiql, demo_account);
        }
        DemoShop::Seeding(seeding) => {
            tracing::info!(
                products = size.products,
                "first start: seeding the demo shop while serving (under a minute for 1,000 \
                 products); listings fill as it goes"
            );
            seed = Some(async move {
                match seeding.await {
                    Ok(summary) => {
                        say(&format!(
                            "seeded the demo shop in {:.1}s: {} products, {} customers, {} \
                             orders, {} reviews",
                            summary.elapsed.as_secs_f64(),
                            summary.products,
                            summary.customers,
                            summary.orders,
                            summary.reviews
                        ));
                        announce(&graphiql, true);
                    }
                    Err(e) => tracing::error!(
                        error = format!("{e:#}"),
                        "seeding the demo shop failed; delete the data directory to start over"
                    ),
                }
            });
        }
    }
    // The seed (if any) runs beside the server, in this task; a shutdown drops it.
    let serving = app.run_until(shutdown_signal());
    tokio::pin!(serving);
    let served = match seed {
        Some(seed) => {
            tokio::select! {
                served = &mut serving => served,
                () = seed => serving.await,
            }
        }
        None => serving.await,
    };
    // The exporter's last batch goes out before the process ends (its client
    // blocks, so off the runtime's workers).
    drop(tokio::task::spawn_blocking(telemetry::traces::shutdown).await);
    served?;
    Ok(())
}

/// A line for the human who started the process, on stdout.
fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The GraphiQL URL and, when the demo account exists, its login.
fn announce(graphiql: &str, demo_account: bool) {
    say(&format!("GraphiQL: {graphiql}"));
    if demo_account {
        say(&format!(
            "demo login: {} / {}",
            crate::seed::DEMO_EMAIL,
            crate::seed::DEMO_PASSWORD
        ));
    }
}

/// A store held by another process, worded for an operator.
fn in_use_by_a_server(e: anyhow::Error) -> CliError {
    #[cfg(feature = "sqlite")]
    if let Some(in_use) = e.downcast_ref::<emporium_commands::store::StoreInUse>() {
        return CliError::Unavailable(anyhow::anyhow!(
            "{in_use}: a running `emporium serve` (or another command) holds it; stop it \
             first, or use the running server's GraphQL API"
        ));
    }
    CliError::Failed(e)
}

/// Refuses a command that needs PostgreSQL and NATS when the embedded mode is
/// configured (instead of reaching for a default server URL).
fn distributed_only(settings: &Settings, what: &str) -> Result<(), CliError> {
    if settings.storage.embedded() {
        return Err(CliError::Usage(anyhow::anyhow!(
            "`emporium {what}` runs only in the distributed mode (PostgreSQL and NATS), and \
             this configuration is in the embedded mode (storage.mode = \"embedded\", data \
             directory `{}`); set DATABASE_URL and NATS_URL (or storage.mode = \"distributed\") \
             to use it",
            settings.storage.data_dir.display()
        )));
    }
    Ok(())
}

/// The embedded mode's event store file; `None` in the distributed mode.
fn embedded_store_file(settings: &Settings) -> Option<PathBuf> {
    settings
        .storage
        .embedded()
        .then(|| settings.storage.data_dir.join("events.db"))
}

fn not_yet(what: &str, arrives_with: &str) -> CliError {
    CliError::Unavailable(anyhow::anyhow!(
        "`emporium {what}` is not available in this build yet; it arrives with {arrives_with}"
    ))
}
