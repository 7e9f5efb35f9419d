//! The `mallard-metrics` command: parses flags and dispatches; the work lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mallard_metrics::config::{LogFormat, ServeArgs};
use mallard_metrics::{AppState, commands, server};

/// The static musl build takes mimalloc for every allocation, Rust's and (through the crate's
/// `override` feature) DuckDB's C++: musl's own allocator halved ingest throughput.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Self-hosted, cookie-less web analytics in one binary.
///
/// Without a subcommand, `mallard-metrics` serves (the same as `mallard-metrics serve`).
/// Every serve option can also be set through its MALLARD_* environment variable or a TOML
/// file (--config); a flag beats the environment, which beats the file.
#[derive(Parser)]
#[command(
    name = "mallard-metrics",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest events, answer stats queries and serve the tracking script (the default).
    Serve(Box<ServeArgs>),
    /// Write synthetic visits into a data directory, for benchmarks and demos. The server must
    /// not be running on that directory.
    Generate(GenerateArgs),
    /// Check that this host still has the posture provisioning gave it (SSH, firewall,
    /// fail2ban, encrypted volume, services, certificates, backups, updates); run as root.
    #[command(after_help = mallard_metrics::audit::HELP)]
    Audit(mallard_metrics::audit::AuditArgs),
    /// Take a consistent snapshot (database + Parquet) while the server keeps running.
    Backup(commands::backup::BackupArgs),
    /// Bring a snapshot back into a data folder; the server must be stopped.
    Restore(commands::backup::RestoreArgs),
    /// Print an Argon2id hash (for MALLARD_ADMIN_PASSWORD_HASH) of a password read on stdin.
    HashPassword(commands::hash_password::HashPasswordArgs),
    /// Exit 0 when a health URL answers 200 (container healthchecks; no curl needed).
    Healthcheck(commands::healthcheck::HealthcheckArgs),
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Data directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    data_dir: std::path::PathBuf,
    /// Site id the events belong to.
    #[arg(long, default_value = "bench.test")]
    site: String,
    /// About how many events to write in all.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Spread over this many days, ending yesterday (UTC).
    #[arg(long, default_value_t = 30)]
    days: u32,
}

fn generate(args: &GenerateArgs) -> ExitCode {
    let last_day = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
    let started = std::time::Instant::now();
    eprintln!(
        "writing ~{} events for {} over {} days into {} …",
        args.events,
        args.site,
        args.days,
        args.data_dir.display()
    );
    match mallard_metrics::store::synthetic::generate(
        &args.data_dir,
        &args.site,
        args.events,
        args.days,
        last_day,
    ) {
        Ok(written) => {
            eprintln!(
                "wrote {written} events in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A panic ends the process, in every build: a background task (the flusher, compaction) that
/// died alone would leave a server that answers but no longer stores. The `dist` profile unwinds
/// (its compiled dependencies are shared with the tests, which need unwinding), so the abort is
/// done here, after the default hook has printed the message.
fn abort_on_panic() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        print(info);
        std::process::abort();
    }));
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MALLARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    abort_on_panic();
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => *args,
        Some(Command::Generate(args)) => return generate(&args),
        Some(Command::Audit(args)) => return mallard_metrics::audit::run(&args),
        Some(Command::Backup(args)) => return commands::backup::run_backup(&args),
        Some(Command::Restore(args)) => return commands::backup::run_restore(&args),
        Some(Command::HashPassword(args)) => return commands::hash_password::run(&args),
        Some(Command::Healthcheck(args)) => return commands::healthcheck::run(&args),
        None => cli.serve,
    };
    let config = match args.resolve() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let state = match AppState::open(config) {
            Ok(state) => state,
            Err(err) => {
                tracing::error!("cannot start: {err}");
                return ExitCode::FAILURE;
            }
        };
        match server::run(state, server::shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!("{err}");
                ExitCode::FAILURE
            }
        }
    });
    // Whatever still runs on a blocking thread (a compaction, a query) is crash-safe and is not
    // waited for: shutdown already took what `MALLARD_SHUTDOWN_TIMEOUT` allows.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}
