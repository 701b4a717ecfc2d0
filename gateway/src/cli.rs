//! The `emporium` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use emporium_projections::relay::Relay;

use crate::app::{Application, shutdown_signal};
use crate::config::{Environment, LogFormat, Overrides, Settings};
use crate::telemetry;

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
    /// Run the platform in one process: the gateway and the relay (projectors and
    /// workers join as they land).
    Serve {
        /// Do not create and migrate the database on start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Run only the relay: publishes every committed event to JetStream in commit
    /// order. Several may run; one holds the lock, the others stand by.
    Relay,
    /// Run projectors: one by name, or `all`.
    Project {
        /// Projection name, or `all`.
        name: String,
    },
    /// Run one AI worker by name.
    Worker {
        /// Worker name.
        name: String,
    },
    /// Create the database if missing and apply pending migrations.
    Migrate,
    /// Load demo data.
    Seed,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
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
        }
    }
}

enum CliError {
    /// A part this build does not have yet, or a dependency that is down.
    Unavailable(anyhow::Error),
    Failed(anyhow::Error),
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
        Command::Serve { no_migrate } => {
            let (layout, relay_config) = settings.nats.relay()?;
            let app = Application::build(settings, !no_migrate).await?;
            let relay = Relay::new(
                app.pool().clone(),
                async_nats::jetstream::new(app.nats().clone()),
                layout,
                relay_config,
            );
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let relay = tokio::spawn(relay.run(stopped(stop_rx)));
            tracing::info!(addr = %app.local_addr().map_err(anyhow::Error::from)?, "serving; GraphiQL at /graphql");
            let served = app.run_until(shutdown_signal()).await;
            stop_tx.send_replace(true);
            relay.await.map_err(anyhow::Error::from)??;
            served?;
            Ok(())
        }
        Command::Relay => {
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
        Command::Project { name } => Err(not_yet(&format!("project {name}"), "the event backbone")),
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
        Command::Seed => Err(not_yet("seed", "the domain and embedded-mode issues")),
    }
}

/// Resolves once `stop` turns true.
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn not_yet(what: &str, arrives_with: &str) -> CliError {
    CliError::Unavailable(anyhow::anyhow!(
        "`emporium {what}` is not available in this build yet; it arrives with {arrives_with}"
    ))
}
