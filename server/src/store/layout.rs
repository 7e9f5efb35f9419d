//! Where things live under the data directory, and the SQL that reads them as one relation.

use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};

use super::schema::EVENT_COLUMNS;

pub const DATABASE_FILE: &str = "mallard.duckdb";
pub const PARQUET_DIR: &str = "data";
/// Files being written; never listed in the manifest, removed at start-up.
pub const TEMP_PREFIX: &str = ".tmp-";

/// `data/YYYY/MM/DD`, relative to the data directory.
pub fn day_dir(day: NaiveDate) -> PathBuf {
    PathBuf::from(PARQUET_DIR)
        .join(format!("{:04}", day.year()))
        .join(format!("{:02}", day.month()))
        .join(format!("{:02}", day.day()))
}

fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A `SELECT` of the event columns from the given Parquet files (paths relative to `data_dir`;
/// at least one).
pub fn parquet_select(data_dir: &Path, files: &[String]) -> String {
    let list: Vec<String> = files
        .iter()
        .map(|file| sql_string(&data_dir.join(file).to_string_lossy()))
        .collect();
    format!(
        "SELECT {EVENT_COLUMNS} FROM read_parquet([{}], union_by_name = true)",
        list.join(", ")
    )
}

/// A `SELECT` over hot rows plus the given Parquet files, with the event columns in one order.
/// Used for the `events` view and for every query.
pub fn relation_sql(data_dir: &Path, files: &[String]) -> String {
    let hot = format!("SELECT {EVENT_COLUMNS} FROM events_hot");
    if files.is_empty() {
        return hot;
    }
    format!("{hot} UNION ALL {}", parquet_select(data_dir, files))
}

pub fn copy_to_parquet_sql(select: &str, target: &Path) -> String {
    format!(
        "COPY ({select}) TO {} (FORMAT parquet, COMPRESSION zstd)",
        sql_string(&target.to_string_lossy())
    )
}

/// Makes a finished file durable under its final name: fsync the file, rename, fsync the folder.
pub fn publish(temp: &Path, target: &Path) -> std::io::Result<()> {
    std::fs::File::open(temp)?.sync_all()?;
    std::fs::rename(temp, target)?;
    if let Some(dir) = target.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Creates `dir` (inside `data_dir`) and makes the new folder entries durable: a file listed in
/// the manifest must not vanish with its folder after a power loss.
pub fn create_synced_dirs(data_dir: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut current = dir.parent();
    while let Some(parent) = current {
        std::fs::File::open(parent)?.sync_all()?;
        if parent == data_dir || !parent.starts_with(data_dir) {
            break;
        }
        current = parent.parent();
    }
    Ok(())
}
