//! The server's one musl build: cargo-zigbuild for `x86_64-unknown-linux-musl` in the `dist`
//! profile and one build dir, used by `dist`, `test` and `lint`, so DuckDB's C++ is compiled
//! once per cache (why the profile looks the way it does: the comments in Cargo.toml).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Cmd, Shell, cmd};

pub const TARGET: &str = "x86_64-unknown-linux-musl";
pub const PROFILE: &str = "dist";

/// What the tests and clippy change: the server crate's own settings only (more codegen units
/// for compile time, overflow checks and debug assertions), so every dependency, DuckDB's C++
/// included, is the one `dist` compiled.
const CHECK_OVERRIDES: [&str; 6] = [
    "--config",
    "profile.dist.package.mallard-metrics.codegen-units=16",
    "--config",
    "profile.dist.package.mallard-metrics.overflow-checks=true",
    "--config",
    "profile.dist.package.mallard-metrics.debug-assertions=true",
];

/// What the cargo-zigbuild run is for.
#[derive(Clone, Copy)]
pub enum Purpose {
    /// The shipped binary, with the `dist` profile as written.
    Ship,
    /// Tests and clippy: the `dist` profile with [`CHECK_OVERRIDES`].
    Check,
}

/// `cargo-zigbuild <subcommand> … --target musl --profile dist` building in
/// `<target-dir>/dist-build`, so every purpose finds the same compiled dependencies. Artifacts
/// that cargo copies out ("uplifts") go to `<target-dir>` for [`Purpose::Ship`] and to
/// `<target-dir>/musl-check` otherwise: a test build of the binary never replaces the shipped one.
/// (The build dir is separate at all because cargo keeps a cross build's host artifacts in
/// `<target-dir>/<profile>/`, i.e. in `dist/`, which should hold only what ships.)
pub fn cargo<'a>(sh: &'a Shell, target_dir: &Path, subcommand: &str, purpose: Purpose) -> Cmd<'a> {
    let overrides: &[&str] = match purpose {
        Purpose::Ship => &[],
        Purpose::Check => &CHECK_OVERRIDES,
    };
    let artifacts = match purpose {
        Purpose::Ship => target_dir.to_path_buf(),
        Purpose::Check => target_dir.join("musl-check"),
    };
    cmd!(
        sh,
        "cargo-zigbuild {subcommand} --locked --target {TARGET} --profile {PROFILE} {overrides...}"
    )
    .env("CARGO_TARGET_DIR", artifacts)
    .env("CARGO_BUILD_BUILD_DIR", target_dir.join("dist-build"))
}

/// Fails listing every missing prerequisite with its install command; returns zig's version.
pub fn check_prerequisites(sh: &Shell, command: &str) -> anyhow::Result<String> {
    let mut missing = Vec::new();
    let zig = zig_version(sh);
    if zig.is_none() {
        missing.push((
            "zig (the C/C++ compiler and linker for musl)",
            "pip install ziglang",
        ));
    }
    if cmd!(sh, "cargo-zigbuild --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        missing.push(("cargo-zigbuild", "cargo install --locked cargo-zigbuild"));
    }
    let sysroot = cmd!(sh, "rustc --print sysroot")
        .quiet()
        .read()
        .context("running `rustc --print sysroot`")?;
    if !Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .is_dir()
    {
        missing.push((
            "the Rust standard library for musl",
            "rustup target add x86_64-unknown-linux-musl",
        ));
    }
    match zig {
        Some(version) if missing.is_empty() => Ok(version),
        _ => {
            let mut message = format!("missing prerequisites for `cargo xtask {command}`:");
            for (what, install) in &missing {
                message += &format!("\n  - {what}: run `{install}`");
            }
            bail!(message)
        }
    }
}

/// zig as cargo-zigbuild finds it: `$CARGO_ZIGBUILD_ZIG_PATH`, `zig`, or `python3 -m ziglang`.
pub fn zig_version(sh: &Shell) -> Option<String> {
    let mut candidates: Vec<Vec<String>> = Vec::new();
    if let Ok(path) = std::env::var("CARGO_ZIGBUILD_ZIG_PATH") {
        candidates.push(path.split_whitespace().map(String::from).collect());
    }
    candidates.push(vec!["zig".into()]);
    candidates.push(vec!["python3".into(), "-m".into(), "ziglang".into()]);
    candidates.into_iter().find_map(|argv| {
        let (program, rest) = argv.split_first()?;
        let version = cmd!(sh, "{program} {rest...} version")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()?;
        Some(version.trim().to_owned()).filter(|v| !v.is_empty())
    })
}

/// Runs `cmd`; when stderr is not a terminal (CI logs) cargo prints no progress bar and DuckDB's
/// build script is silent for half an hour, so say every minute that the build is alive.
pub fn run_with_heartbeat(cmd: Cmd<'_>) -> xshell::Result<()> {
    let started = Instant::now();
    let stop = (!std::io::stderr().is_terminal()).then(|| {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_secs(60))
            {
                eprintln!(
                    "   … still building ({})",
                    crate::dist::elapsed(started.elapsed())
                );
            }
        });
        stop
    });
    let result = cmd.run();
    drop(stop);
    result
}
