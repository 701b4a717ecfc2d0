//! The `emporium` binary. See `emporium --help`.

use std::process::ExitCode;

use clap::Parser;
use emporium_gateway::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    Cli::parse().run().await
}
