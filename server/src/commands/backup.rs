//! `mallard-metrics backup` and `restore`: online snapshots through the running server, and
//! bringing one back while the server is stopped.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::local_admin;
use crate::store::{Store, backup};

/// Take a consistent snapshot (database + Parquet) while the server keeps ingesting.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Folder to create for the snapshot (must not exist). A complete snapshot holds
    /// `backup.json`, written last.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// The server's data folder: the running server is reached through its `admin.sock`
    /// there; when no server runs, the folder is read directly.
    #[arg(
        long,
        env = "MALLARD_DATA_DIR",
        default_value = "./data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
}

/// Bring a snapshot back into a data folder. Stop the server first.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A snapshot folder written by `mallard-metrics backup`.
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The data folder to restore into.
    #[arg(
        long,
        env = "MALLARD_DATA_DIR",
        default_value = "./data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// Replace an existing database; the current files are moved aside into
    /// `before-restore-<time>/` in the data folder, not deleted.
    #[arg(long)]
    pub force: bool,
}

fn absolute(path: &std::path::Path) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

pub fn run_backup(args: &BackupArgs) -> ExitCode {
    let to = match absolute(&args.to) {
        Ok(to) => to,
        Err(err) => {
            eprintln!("error: --to {}: {err}", args.to.display());
            return ExitCode::from(2);
        }
    };
    let socket = local_admin::socket_path(&args.data_dir);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match local_admin::request_backup(&socket, &to).await {
            Err(local_admin::ClientError::NotRunning(_)) => {
                eprintln!(
                    "no server runs on {}: reading it directly",
                    args.data_dir.display()
                );
                let store = Store::open(&args.data_dir).map_err(|e| e.to_string())?;
                let report = store.backup_blocking(&to).map_err(|e| e.to_string());
                store.close().await;
                report
            }
            other => other.map_err(|e| e.to_string()),
        }
    });
    match result {
        Ok(report) => {
            println!(
                "backup written to {}: {} events, {} Parquet files, {} bytes",
                to.display(),
                report.events,
                report.parquet_files,
                report.bytes
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: backup failed: {err}");
            ExitCode::FAILURE
        }
    }
}

pub fn run_restore(args: &RestoreArgs) -> ExitCode {
    match backup::restore(&args.from, &args.data_dir, args.force) {
        Ok(report) => {
            println!(
                "restored {} events ({} Parquet files) into {}",
                report.events,
                report.parquet_files,
                args.data_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            let hint = if err.to_string().contains("lock") {
                " (is the server still running? stop it first: systemctl stop mallard-metrics)"
            } else {
                ""
            };
            eprintln!("error: restore failed: {err}{hint}");
            ExitCode::FAILURE
        }
    }
}
