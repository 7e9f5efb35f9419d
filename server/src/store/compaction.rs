//! Moves hot rows into Parquet exactly once, merges a day's small files, and removes files no
//! manifest row names.
//!
//! Each step writes files under a temporary name, makes them durable, renames them, and only
//! then, in ONE transaction, records them in `parquet_files` and deletes what they replace. A
//! crash before that commit leaves files no manifest row names: `remove_orphans` deletes them at
//! start-up and the rows are still hot (or the old files still listed).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use duckdb::Connection;

use super::StoreError;
use super::layout::{
    self, TEMP_PREFIX, copy_to_parquet_sql, day_dir, parquet_select, publish, relation_sql,
};
use super::schema::EVENT_COLUMNS;

/// A day with more files than this is merged into one, even while it is still being written.
const MAX_FILES_PER_DAY: i64 = 12;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub rows_moved: u64,
    pub files_written: usize,
    pub days_merged: usize,
    pub days_rolled_up: usize,
    /// Files replaced by a merge: to delete once no reader can still be using them.
    pub superseded: Vec<PathBuf>,
}

pub(super) fn rollback_on_error<T>(
    conn: &Connection,
    written: &[PathBuf],
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
        for file in written {
            let _ = std::fs::remove_file(file);
        }
    }
    result
}

/// Moves every committed hot row into one new Parquet file per day.
pub fn move_hot_rows(
    conn: &Connection,
    data_dir: &Path,
    report: &mut Report,
) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN TRANSACTION")?;
    let mut written = Vec::new();
    let result = (|| {
        let high: Option<i64> =
            conn.query_row("SELECT max(id) FROM events_hot", [], |r| r.get(0))?;
        let Some(high) = high else {
            conn.execute_batch("ROLLBACK")?;
            return Ok(());
        };
        let mut stmt = conn.prepare(
            "SELECT CAST(ts AS DATE)::VARCHAR, count(*) FROM events_hot WHERE id <= ? GROUP BY 1 ORDER BY 1",
        )?;
        let days: Vec<(String, i64)> = stmt
            .query_map([high], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (day, rows) in days {
            let day = parse_day(&day)?;
            let relative = day_dir(day).join(format!("h{high:012}.parquet"));
            let select = format!(
                "SELECT {EVENT_COLUMNS} FROM events_hot WHERE id <= {high} AND CAST(ts AS DATE) = DATE '{day}' ORDER BY site_id, ts"
            );
            write_file(conn, data_dir, &relative, &select, &mut written)?;
            list_file_of_new_rows(conn, &relative, day, rows, high)?;
            report.rows_moved += rows as u64;
            report.files_written += 1;
        }
        conn.execute("DELETE FROM events_hot WHERE id <= ?", [high])?;
        replace_view(conn, data_dir)?;
        conn.execute_batch("COMMIT")?;
        Ok(())
    })();
    rollback_on_error(conn, &written, result)
}

/// Lists a file holding rows new to `day` and drops the day's rollup, so it is recomputed from
/// all of the day's files. Part of the caller's transaction.
pub fn list_file_of_new_rows(
    conn: &Connection,
    relative: &Path,
    day: NaiveDate,
    rows: i64,
    max_id: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO parquet_files (path, day, row_count, max_id) VALUES (?, CAST(? AS DATE), ?, ?)",
        duckdb::params![relative.to_string_lossy().into_owned(), day.to_string(), rows, max_id],
    )?;
    conn.execute(
        "DELETE FROM daily_rollups WHERE day = CAST(? AS DATE)",
        [day.to_string()],
    )?;
    conn.execute(
        "DELETE FROM rolled_days WHERE day = CAST(? AS DATE)",
        [day.to_string()],
    )?;
    Ok(())
}

/// Merges the files of each day that is over (or has too many files) into one.
pub fn merge_days(
    conn: &Connection,
    data_dir: &Path,
    today: NaiveDate,
    report: &mut Report,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT day::VARCHAR FROM parquet_files GROUP BY day
         HAVING count(*) > CASE WHEN day < CAST(? AS DATE) THEN 1 ELSE ? END ORDER BY day",
    )?;
    let days: Vec<String> = stmt
        .query_map(duckdb::params![today.to_string(), MAX_FILES_PER_DAY], |r| {
            r.get(0)
        })?
        .collect::<Result<_, _>>()?;
    for day in days {
        merge_day(conn, data_dir, parse_day(&day)?, report)?;
    }
    Ok(())
}

fn merge_day(
    conn: &Connection,
    data_dir: &Path,
    day: NaiveDate,
    report: &mut Report,
) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN TRANSACTION")?;
    let mut written = Vec::new();
    let result = (|| {
        let mut stmt = conn.prepare(
            "SELECT path, row_count, max_id FROM parquet_files WHERE day = CAST(? AS DATE) ORDER BY path",
        )?;
        let files: Vec<(String, i64, i64)> = stmt
            .query_map([day.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let rows: i64 = files.iter().map(|f| f.1).sum();
        let high = files.iter().map(|f| f.2).max().unwrap_or_default();
        let paths: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
        let relative = day_dir(day).join(format!("m{high:012}.parquet"));
        let source = parquet_select(data_dir, &paths);
        write_file(
            conn,
            data_dir,
            &relative,
            &format!("{source} ORDER BY site_id, ts"),
            &mut written,
        )?;
        for path in &paths {
            conn.execute("DELETE FROM parquet_files WHERE path = ?", [path])?;
        }
        conn.execute(
            "INSERT INTO parquet_files (path, day, row_count, max_id) VALUES (?, CAST(? AS DATE), ?, ?)",
            duckdb::params![relative.to_string_lossy().into_owned(), day.to_string(), rows, high],
        )?;
        replace_view(conn, data_dir)?;
        conn.execute_batch("COMMIT")?;
        report.days_merged += 1;
        report
            .superseded
            .extend(paths.iter().map(|p| data_dir.join(p)));
        Ok(())
    })();
    rollback_on_error(conn, &written, result)
}

/// Stores per-(site, day) totals for every day before `cutoff` that is wholly in Parquet and not
/// rolled up yet. Queries then answer those days from `daily_rollups` without reading events.
/// Visitor ids rotate daily, so a day's distinct visitors add up across days exactly.
pub fn roll_up_days(
    conn: &Connection,
    data_dir: &Path,
    cutoff: NaiveDate,
    report: &mut Report,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT DISTINCT day::VARCHAR FROM parquet_files
         WHERE day < CAST(? AS DATE) AND day NOT IN (SELECT day FROM rolled_days) ORDER BY 1",
    )?;
    let days: Vec<String> = stmt
        .query_map([cutoff.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for day in days {
        let day = parse_day(&day)?;
        conn.execute_batch("BEGIN TRANSACTION")?;
        let result = (|| {
            let next = day.succ_opt().unwrap_or(day);
            let hot: i64 = conn.query_row(
                "SELECT count(*) FROM events_hot WHERE ts >= CAST(? AS TIMESTAMP) AND ts < CAST(? AS TIMESTAMP)",
                [day.to_string(), next.to_string()],
                |r| r.get(0),
            )?;
            if hot > 0 {
                conn.execute_batch("ROLLBACK")?;
                return Ok(());
            }
            let mut stmt = conn.prepare(
                "SELECT path FROM parquet_files WHERE day = CAST(? AS DATE) ORDER BY path",
            )?;
            let files: Vec<String> = stmt
                .query_map([day.to_string()], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            conn.execute(
                &format!(
                    "INSERT INTO daily_rollups
                     SELECT site_id, CAST(? AS DATE), count(DISTINCT visitor_id), count(*) FILTER (WHERE is_entry),
                            count(*) FILTER (WHERE name = 'pageview'), coalesce(sum(bounce_delta), 0),
                            coalesce(sum(duration_ms), 0)
                     FROM ({}) GROUP BY site_id",
                    parquet_select(data_dir, &files)
                ),
                [day.to_string()],
            )?;
            conn.execute(
                "INSERT INTO rolled_days (day) VALUES (CAST(? AS DATE))",
                [day.to_string()],
            )?;
            conn.execute_batch("COMMIT")?;
            report.days_rolled_up += 1;
            Ok(())
        })();
        rollback_on_error(conn, &[], result)?;
    }
    Ok(())
}

pub(super) fn write_file(
    conn: &Connection,
    data_dir: &Path,
    relative: &Path,
    select: &str,
    written: &mut Vec<PathBuf>,
) -> Result<(), StoreError> {
    let target = data_dir.join(relative);
    let dir = target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| data_dir.to_path_buf());
    layout::create_synced_dirs(data_dir, &dir).map_err(|e| StoreError::io(&dir, e))?;
    let temp = dir.join(format!(
        "{TEMP_PREFIX}{:016x}.parquet",
        rand::random::<u64>()
    ));
    written.push(temp.clone());
    conn.execute_batch(&copy_to_parquet_sql(select, &temp))?;
    publish(&temp, &target).map_err(|e| StoreError::io(&target, e))?;
    written.push(target);
    Ok(())
}

/// Recreates the `events` view over hot rows and every listed file (for operators' ad-hoc SQL).
pub fn replace_view(conn: &Connection, data_dir: &Path) -> Result<(), StoreError> {
    let files = listed_files(conn)?;
    conn.execute_batch(&format!(
        "CREATE OR REPLACE VIEW events AS {}",
        relation_sql(data_dir, &files)
    ))?;
    Ok(())
}

pub fn listed_files(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT path FROM parquet_files ORDER BY day, path")?;
    let files = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(files)
}

/// Deletes temporary files and Parquet files that no manifest row names.
pub fn remove_orphans(conn: &Connection, data_dir: &Path) -> Result<usize, StoreError> {
    let listed: HashSet<PathBuf> = listed_files(conn)?
        .into_iter()
        .map(|p| data_dir.join(p))
        .collect();
    let mut removed = 0;
    let mut stack = vec![data_dir.join(layout::PARQUET_DIR)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let orphan = name.starts_with(TEMP_PREFIX)
                || (name.ends_with(".parquet") && !listed.contains(&path));
            if orphan {
                std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
                tracing::warn!(file = %path.display(), "removed a file no manifest row names");
                removed += 1;
            }
        }
    }
    Ok(removed)
}

pub(super) fn parse_day(text: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| StoreError::Corrupt(format!("bad day {text:?}: {e}")))
}
