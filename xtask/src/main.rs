//! `cargo xtask`: project automation. This file only dispatches; each command has its own file.

mod bench;
mod tracker;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Builds, benchmarks and (in later commands) renders Mallard Metrics' deployment artifacts.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure HTTP ingest throughput and stats query latency against the real server.
    Bench(bench::Args),
    /// Minify the tracking script (server/tracker/src → dist) with the pinned terser.
    Tracker(tracker::Args),
}

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace")?
        .to_path_buf();
    match Cli::parse().command {
        Command::Bench(args) => bench::run(&args),
        Command::Tracker(args) => tracker::run(&args, &root),
    }
}
