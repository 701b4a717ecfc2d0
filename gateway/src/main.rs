//! The `emporium` binary. See `emporium --help`.

use std::process::ExitCode;

use clap::Parser;
use emporium_gateway::cli::Cli;

/// mimalloc instead of glibc's malloc: the gateway allocates many short-lived buffers
/// per request (BENCHMARKS.md, gateway run 12).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    Cli::parse().run().await
}
