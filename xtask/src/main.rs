//! `cargo xtask`: project automation. This file only dispatches; each command has its own file.

mod bench;
mod caddy;
mod dist;
mod image;
mod lint;
mod musl;
mod render;
mod test;
mod tracker;
mod vm_test;

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
    /// Build the custom Caddy (Cloudflare DNS module) from caddy/versions.env, or take one with --from.
    Caddy(caddy::Args),
    /// Build the shipped static musl binary with SHA256SUMS and manifest.json (target/dist).
    Dist(dist::Args),
    /// Run the Rust test suites as CI does: the server's for the musl target in the shared
    /// `dist` build (DuckDB's C++ compiled once), xtask's on the host. --host: plain cargo test.
    Test(test::Args),
    /// rustfmt --check and clippy with warnings denied, built like `test` (--host: plain clippy).
    Lint(lint::Args),
    /// Minify the tracking script (server/tracker/src → dist) with the pinned terser.
    Tracker(tracker::Args),
    /// Render the deployment (user-data, provision.sh, Caddyfile, compose, host files) from the
    /// templates in cloud-init/, caddy/ and images/. Prints a new admin password once.
    Render(Box<render::Args>),
    /// Build the bootable Debian 12 VM image (raw + qcow2, BIOS and UEFI) from images/recipe.toml
    /// with the bake phase done; --stock builds the plain Debian image for the VM test.
    Image(Box<image::Args>),
    /// Boot the images in qemu with NoCloud user-data and probe them from outside (TLS, login,
    /// ingest, audit, SSH, firewall, LUKS, reboot persistence), baked and stock paths.
    VmTest(Box<vm_test::Args>),
}

fn main() -> anyhow::Result<()> {
    // `cargo xtask` runs through `cargo run`, which sets CARGO_MANIFEST_DIR for the process. The
    // compile-time value is only the fallback: a binary built from another clone sharing the
    // target dir (CI's) is fresh for cargo but carries that clone's path.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let root = manifest_dir
        .parent()
        .context("xtask lives in the workspace")?
        .to_path_buf();
    match Cli::parse().command {
        Command::Bench(args) => bench::run(&args, &root),
        Command::Caddy(args) => caddy::run(&args, &root),
        Command::Dist(args) => dist::run(&args, &root),
        Command::Test(args) => test::run(&args, &root),
        Command::Lint(args) => lint::run(&args, &root),
        Command::Tracker(args) => tracker::run(&args, &root),
        Command::Render(args) => render::run(&args, &root),
        Command::Image(args) => image::run(&args, &root),
        Command::VmTest(args) => vm_test::run(&args, &root),
    }
}
