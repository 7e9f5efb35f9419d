//! `cargo xtask`: project automation. This file only dispatches; each command has its own file.

mod bench;

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Bench(args) => bench::run(&args),
    }
}
