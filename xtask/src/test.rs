//! `cargo xtask test`: the Rust test suites as CI runs them. The server's tests run for the
//! musl target in the shared `dist` build, so DuckDB's C++ is compiled once for them and for
//! `cargo xtask dist`; xtask's tests run on the host (they need no DuckDB).

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::dist::{Metadata, elapsed, step};
use crate::musl::{self, Purpose, TARGET};

#[derive(clap::Args)]
pub struct Args {
    /// Run plain `cargo test` on the host in the dev profile instead: no zig needed, but DuckDB's
    /// C++ is then compiled a second time, for the host (~30 minutes the first time).
    #[arg(long)]
    host: bool,
    /// Only this package's tests.
    #[arg(long, short, value_name = "PACKAGE", value_parser = ["mallard-metrics", "xtask"])]
    package: Option<String>,
    /// Test name filter and test harness flags, after `--` (e.g. `-- ingest --nocapture`).
    #[arg(last = true, value_name = "HARNESS_ARGS")]
    harness: Vec<String>,
}

pub fn run(args: &Args, root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let sh = Shell::new()?;
    sh.change_dir(root);
    let harness = &args.harness;
    let wants = |package: &str| args.package.as_deref().is_none_or(|p| p == package);

    if args.host {
        let scope = match &args.package {
            Some(package) => vec!["--package".to_owned(), package.clone()],
            None => vec!["--workspace".to_owned()],
        };
        step("cargo test on the host (dev profile)");
        cmd!(
            sh,
            "cargo test --locked --no-fail-fast {scope...} -- {harness...}"
        )
        .run()
        .context("tests failed (see above)")?;
    } else {
        if wants("mallard-metrics") {
            step("checking prerequisites (zig, cargo-zigbuild, the musl target)");
            musl::check_prerequisites(&sh, "test")?;
            let target_dir = Metadata::read(&sh)?.target_dir;
            let server = ["--package", "mallard-metrics"];
            step(&format!(
                "building the server's tests for {TARGET} in the shared `dist` build \
                 (DuckDB's C++ takes ~30 minutes unless `cargo xtask dist` compiled it)"
            ));
            let build = musl::cargo(&sh, &target_dir, "test", Purpose::Check)
                .args(server)
                .arg("--no-run");
            musl::run_with_heartbeat(build).context("building the server's tests failed")?;
            step("running the server's tests");
            musl::cargo(&sh, &target_dir, "test", Purpose::Check)
                .args(server)
                .args(["--no-fail-fast", "--"])
                .args(harness)
                .run()
                .context("the server's tests failed (see above)")?;
        }
        if wants("xtask") {
            step("running xtask's tests (host)");
            cmd!(
                sh,
                "cargo test --locked --no-fail-fast --package xtask -- {harness...}"
            )
            .run()
            .context("xtask's tests failed (see above)")?;
        }
    }
    eprintln!("all tests passed in {}", elapsed(started.elapsed()));
    Ok(())
}
