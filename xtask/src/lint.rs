//! `cargo xtask lint`: rustfmt and clippy (warnings are errors) as CI runs them: the server in
//! the shared musl `dist` build (no second DuckDB compile), xtask on the host.

use std::path::Path;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::dist::{Metadata, step};
use crate::musl::{self, Purpose, TARGET};

#[derive(clap::Args)]
pub struct Args {
    /// Run clippy on the host in the dev profile instead: no zig needed, but DuckDB's C++ is
    /// then compiled a second time, for the host (~30 minutes the first time).
    #[arg(long)]
    host: bool,
}

pub fn run(args: &Args, root: &Path) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(root);
    step("cargo fmt --check");
    cmd!(sh, "cargo fmt --all --check")
        .run()
        .context("formatting differs: run `cargo fmt --all`")?;
    let deny = ["--", "-D", "warnings"];
    if args.host {
        step("clippy on the host (dev profile)");
        cmd!(
            sh,
            "cargo clippy --locked --workspace --all-targets {deny...}"
        )
        .run()
        .context("clippy found problems (see above)")?;
        return Ok(());
    }
    musl::check_prerequisites(&sh, "lint")?;
    let target_dir = Metadata::read(&sh)?.target_dir;
    step(&format!(
        "clippy: the server, for {TARGET} in the shared `dist` build"
    ));
    let server = musl::cargo(&sh, &target_dir, "clippy", Purpose::Check)
        .args(["--package", "mallard-metrics", "--all-targets"])
        .args(deny);
    musl::run_with_heartbeat(server).context("clippy found problems in the server (see above)")?;
    step("clippy: xtask (host)");
    cmd!(
        sh,
        "cargo clippy --locked --package xtask --all-targets {deny...}"
    )
    .run()
    .context("clippy found problems in xtask (see above)")?;
    Ok(())
}
