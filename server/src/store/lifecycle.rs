//! Data lifecycle: retention drops whole old days; erasure removes one site's rows in a date
//! range everywhere (hot rows, Parquet files rewritten, rollups).
//!
//! Both run under the compaction lock and follow compaction's rule: new files are published
//! before ONE transaction swaps the manifest; replaced files are deleted only afterwards, while
//! no reader holds the file lock.

use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Serialize;

use super::compaction::{parse_day, replace_view, rollback_on_error, write_file};
use super::layout::{day_dir, parquet_select};
use super::{Store, StoreError};

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub days_removed: usize,
    pub files_removed: usize,
    pub hot_rows_removed: u64,
}

/// What an erasure removed (the answer of `DELETE /api/gdpr/erase`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EraseReport {
    /// Rows deleted from `events_hot`.
    pub hot_rows: u64,
    /// Rows left out of rewritten Parquet files.
    pub parquet_rows: u64,
    /// Parquet files rewritten.
    pub files_rewritten: usize,
}

impl Store {
    /// Deletes every event of days before `today - keep_days` (UTC days), with their day
    /// folders. `keep_days = 0` keeps everything.
    pub fn apply_retention_blocking(
        &self,
        keep_days: u32,
        today: NaiveDate,
    ) -> Result<RetentionReport, StoreError> {
        let mut report = RetentionReport::default();
        if keep_days == 0 {
            return Ok(report);
        }
        let cutoff = today - chrono::Duration::days(i64::from(keep_days));
        let _running = self.inner.compacting.lock();
        let conn = self.take_connection()?;
        let data_dir = self.inner.data_dir.clone();
        conn.execute_batch("BEGIN TRANSACTION")?;
        let result = (|| {
            let mut stmt = conn.prepare(
                "SELECT path, day::VARCHAR FROM parquet_files WHERE day < CAST(? AS DATE)",
            )?;
            let files: Vec<(String, String)> = stmt
                .query_map([cutoff.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut days: Vec<NaiveDate> = files
                .iter()
                .map(|(_, day)| parse_day(day))
                .collect::<Result<_, _>>()?;
            days.sort();
            days.dedup();
            let hot = conn.execute(
                "DELETE FROM events_hot WHERE ts < CAST(? AS TIMESTAMP)",
                [cutoff.to_string()],
            )?;
            for table in ["parquet_files", "daily_rollups", "rolled_days"] {
                conn.execute(
                    &format!("DELETE FROM {table} WHERE day < CAST(? AS DATE)"),
                    [cutoff.to_string()],
                )?;
            }
            replace_view(&conn, &data_dir)?;
            conn.execute_batch("COMMIT")?;
            report.hot_rows_removed = hot as u64;
            report.files_removed = files.len();
            report.days_removed = days.len();
            Ok(days)
        })();
        let result = rollback_on_error(&conn, &[], result);
        self.return_connection(conn);
        let days = result?;
        let _exclusive = self.inner.files.write();
        for day in days {
            let dir = data_dir.join(day_dir(day));
            if let Err(err) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %err, "could not remove an expired day; start-up removes its files");
            }
        }
        Ok(report)
    }

    /// Removes every event of `site` between `first` and `last` (inclusive UTC days).
    pub fn erase_blocking(
        &self,
        site: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<EraseReport, StoreError> {
        let _running = self.inner.compacting.lock();
        let conn = self.take_connection()?;
        let data_dir = self.inner.data_dir.clone();
        let mut report = EraseReport::default();
        let mut written: Vec<PathBuf> = Vec::new();
        let mut superseded: Vec<PathBuf> = Vec::new();
        conn.execute_batch("BEGIN TRANSACTION")?;
        let after_last = last.succ_opt().unwrap_or(last);
        let result = (|| {
            report.hot_rows = conn.execute(
                "DELETE FROM events_hot WHERE site_id = ? AND ts >= CAST(? AS TIMESTAMP) AND ts < CAST(? AS TIMESTAMP)",
                [site, &first.to_string(), &after_last.to_string()],
            )? as u64;
            let mut stmt = conn.prepare(
                "SELECT path, day::VARCHAR, row_count, max_id FROM parquet_files
                 WHERE day BETWEEN CAST(? AS DATE) AND CAST(? AS DATE) ORDER BY path",
            )?;
            let files: Vec<(String, String, i64, i64)> = stmt
                .query_map([first.to_string(), last.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            for (path, day, rows, max_id) in files {
                let source = parquet_select(&data_dir, std::slice::from_ref(&path));
                let matching: i64 = conn.query_row(
                    &format!("SELECT count(*) FROM ({source}) WHERE site_id = ?"),
                    [site],
                    |r| r.get(0),
                )?;
                if matching == 0 {
                    continue;
                }
                conn.execute("DELETE FROM parquet_files WHERE path = ?", [&path])?;
                let kept = rows - matching;
                if kept > 0 {
                    let day = parse_day(&day)?;
                    let relative = day_dir(day).join(format!(
                        "e{max_id:012}-{:08x}.parquet",
                        rand::random::<u32>()
                    ));
                    let escaped = site.replace('\'', "''");
                    write_file(
                        &conn,
                        &data_dir,
                        &relative,
                        &format!("{source} WHERE site_id <> '{escaped}' ORDER BY site_id, ts"),
                        &mut written,
                    )?;
                    conn.execute(
                        "INSERT INTO parquet_files (path, day, row_count, max_id) VALUES (?, CAST(? AS DATE), ?, ?)",
                        duckdb::params![relative.to_string_lossy().into_owned(), day.to_string(), kept, max_id],
                    )?;
                }
                report.parquet_rows += matching as u64;
                report.files_rewritten += 1;
                superseded.push(data_dir.join(&path));
            }
            // The other sites' totals of those days are unchanged; the erased site has none.
            conn.execute(
                "DELETE FROM daily_rollups WHERE site_id = ? AND day BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)",
                [site, &first.to_string(), &last.to_string()],
            )?;
            replace_view(&conn, &data_dir)?;
            conn.execute_batch("COMMIT")?;
            Ok(())
        })();
        let result = rollback_on_error(&conn, &written, result);
        self.return_connection(conn);
        result?;
        let _exclusive = self.inner.files.write();
        for file in &superseded {
            if let Err(err) = std::fs::remove_file(file) {
                tracing::warn!(file = %file.display(), error = %err, "could not remove an erased file; start-up will");
            }
        }
        Ok(report)
    }
}
