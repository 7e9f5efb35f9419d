//! Consistent online backups of a store, and restoring one into a stopped server's data folder.
//!
//! A backup is a folder: `mallard.duckdb` (a copy of the database taken in one transaction),
//! `data/YYYY/MM/DD/*.parquet` (the files that copy's manifest lists), `.secret` and
//! `.admin-password` when present, and `backup.json`, written last: a folder without it is incomplete.
//! Invariant: the copied manifest lists exactly the copied Parquet files, because compaction
//! (the only code that adds or deletes files) is held off while the backup runs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::{self, DATABASE_FILE, PARQUET_DIR};
use super::{Store, StoreError, compaction};
use crate::secret::SECRET_FILE;

pub const MARKER_FILE: &str = "backup.json";
/// Files beside the database that a restore needs: the visitor-hash secret and the admin
/// password hash chosen at first-run setup.
const KEPT_FILES: [&str; 2] = [SECRET_FILE, crate::auth::password::PASSWORD_FILE];

/// What `backup.json` records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackupReport {
    pub created: String,
    pub version: String,
    pub events: i64,
    pub parquet_files: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RestoreReport {
    pub events: i64,
    pub parquet_files: usize,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::io(path, e)
}

fn sql_string(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', "''"))
}

/// Hard-links `from` to `to` (cheap: Parquet files never change), copying across file systems.
fn link_or_copy(from: &Path, to: &Path) -> Result<u64, StoreError> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).map_err(io(to))?;
    }
    Ok(std::fs::metadata(to).map_err(io(to))?.len())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}

fn count_events(conn: &duckdb::Connection, data_dir: &Path) -> Result<i64, StoreError> {
    let files = compaction::listed_files(conn)?;
    let sql = format!(
        "SELECT count(*) FROM ({})",
        layout::relation_sql(data_dir, &files)
    );
    Ok(conn.query_row(&sql, [], |r| r.get(0))?)
}

impl Store {
    /// Writes a backup of the live store into `dest`, which must not exist yet. Ingestion goes
    /// on meanwhile; compaction waits until the backup is done.
    pub fn backup_blocking(&self, dest: &Path) -> Result<BackupReport, StoreError> {
        if dest.exists() {
            return Err(StoreError::io(
                dest,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"),
            ));
        }
        std::fs::create_dir_all(dest).map_err(io(dest))?;
        let _no_compaction = self.inner.compacting.lock();
        let conn = self.take_connection()?;
        let data_dir = self.inner.data_dir.clone();
        let result = (|| {
            let target = dest.join(DATABASE_FILE);
            let catalog: String = conn.query_row("SELECT current_database()", [], |r| r.get(0))?;
            conn.execute_batch(&format!(
                "ATTACH {} AS mallard_backup; COPY FROM DATABASE \"{}\" TO mallard_backup; \
                 DETACH mallard_backup;",
                sql_string(&target),
                catalog.replace('"', "\"\"")
            ))?;
            // The copy's own manifest says which files belong to it.
            let copy = duckdb::Connection::open(&target)?;
            let files = compaction::listed_files(&copy)?;
            let mut bytes = std::fs::metadata(&target).map_err(io(&target))?.len();
            for file in &files {
                bytes += link_or_copy(&data_dir.join(file), &dest.join(file))?;
            }
            let events = count_events(&copy, dest)?;
            drop(copy);
            for name in KEPT_FILES {
                let file = data_dir.join(name);
                if file.exists() {
                    bytes += link_or_copy(&file, &dest.join(name))?;
                }
            }
            let report = BackupReport {
                created: chrono::Utc::now().to_rfc3339(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                events,
                parquet_files: files.len(),
                bytes,
            };
            write_marker(dest, &report)?;
            Ok(report)
        })();
        self.return_connection(conn);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(dest);
        }
        result
    }
}

fn write_marker(dest: &Path, report: &BackupReport) -> Result<(), StoreError> {
    let marker = dest.join(MARKER_FILE);
    let temp = dest.join(".backup.json.tmp");
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| StoreError::Corrupt(format!("backup report: {e}")))?;
    std::fs::write(&temp, json).map_err(io(&temp))?;
    layout::publish(&temp, &marker).map_err(io(&marker))?;
    sync_dir(dest)
}

/// Restores the backup in `from` into `data_dir`, which must hold no database unless `force`
/// (then the current database and Parquet files are moved aside, not deleted). The server must
/// be stopped: DuckDB's file lock refuses a second writer.
pub fn restore(from: &Path, data_dir: &Path, force: bool) -> Result<RestoreReport, StoreError> {
    let marker = from.join(MARKER_FILE);
    let text = std::fs::read_to_string(&marker).map_err(|e| StoreError::Io {
        path: marker.display().to_string(),
        message: format!("{e}: not a complete backup"),
    })?;
    let expected: BackupReport = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("{}: {e}", marker.display())))?;
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let database = data_dir.join(DATABASE_FILE);
    if database.exists() {
        if !force {
            return Err(StoreError::io(
                &database,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a database is already there: pass --force to move it aside",
                ),
            ));
        }
        // Opening it proves no server holds it, before anything is moved.
        drop(duckdb::Connection::open(&database)?);
        let aside = data_dir.join(format!(
            "before-restore-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ));
        std::fs::create_dir_all(&aside).map_err(io(&aside))?;
        for name in [
            DATABASE_FILE,
            "mallard.duckdb.wal",
            PARQUET_DIR,
            SECRET_FILE,
        ] {
            let path = data_dir.join(name);
            if path.exists() {
                std::fs::rename(&path, aside.join(name)).map_err(io(&path))?;
            }
        }
    }
    let source = duckdb::Connection::open(from.join(DATABASE_FILE))?;
    let files = compaction::listed_files(&source)?;
    drop(source);
    let mut copied: Vec<PathBuf> = Vec::new();
    for file in &files {
        let target = data_dir.join(file);
        if let Some(dir) = target.parent() {
            layout::create_synced_dirs(data_dir, dir).map_err(io(dir))?;
        }
        std::fs::copy(from.join(file), &target).map_err(io(&target))?;
        copied.push(target);
    }
    for name in KEPT_FILES {
        let file = from.join(name);
        if file.exists() {
            std::fs::copy(&file, data_dir.join(name)).map_err(io(&file))?;
        }
    }
    let temp = data_dir.join(format!("{}mallard.duckdb", layout::TEMP_PREFIX));
    std::fs::copy(from.join(DATABASE_FILE), &temp).map_err(io(&temp))?;
    layout::publish(&temp, &database).map_err(io(&database))?;
    let conn = duckdb::Connection::open(&database)?;
    let events = count_events(&conn, data_dir)?;
    if events != expected.events {
        return Err(StoreError::Corrupt(format!(
            "restored {events} events, the backup recorded {}",
            expected.events
        )));
    }
    Ok(RestoreReport {
        events,
        parquet_files: copied.len(),
    })
}
