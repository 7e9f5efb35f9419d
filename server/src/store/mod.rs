//! Durable event storage: hot rows in DuckDB, day-partitioned Parquet, and one relation over both.
//!
//! Invariant: `submit` returns `Ok` only after the events are committed to DuckDB's WAL.
//! Invariant: every stored row is read exactly once: from `events_hot` or from a file listed in
//! `parquet_files`, never both, at any moment a reader can observe.

pub mod backup;
mod compaction;
pub mod event;
mod layout;
pub mod lifecycle;
mod recover;
mod schema;
pub mod session;
pub mod synthetic;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::NaiveDate;
use duckdb::Connection;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

pub use compaction::Report as CompactionReport;
pub use event::{Acquisition, Event};
pub use writer::WriterStats;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("events could not be written: {0}")]
    WriteFailed(String),
    #[error("the write queue is full")]
    Overloaded,
    #[error("the store is shutting down")]
    Closed,
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    fn io(path: &Path, err: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            message: err.to_string(),
        }
    }
}

impl From<duckdb::Error> for StoreError {
    fn from(err: duckdb::Error) -> Self {
        Self::Database(err.to_string())
    }
}

/// A consistent view for one read: a transaction on a read connection, and the files that
/// transaction's manifest lists for the requested days.
pub struct Snapshot<'a> {
    pub conn: &'a Connection,
    data_dir: &'a Path,
    files: Vec<(NaiveDate, String)>,
}

impl Snapshot<'_> {
    /// SQL for a subquery yielding hot rows and the listed files of days `first..=last` (hot
    /// rows of other days too: callers still filter on `ts`).
    pub fn relation_for(&self, first: NaiveDate, last: NaiveDate) -> String {
        let files: Vec<String> = self
            .files
            .iter()
            .filter(|(day, _)| (first..=last).contains(day))
            .map(|(_, path)| path.clone())
            .collect();
        layout::relation_sql(self.data_dir, &files)
    }
}

struct Inner {
    data_dir: PathBuf,
    /// Connections for reads and compaction, cloned from the database's first connection.
    idle: Mutex<Vec<Connection>>,
    origin: Mutex<Connection>,
    /// Readers hold it shared while they may read files; deleting superseded files takes it
    /// exclusively.
    files: RwLock<()>,
    /// Serialises compaction runs.
    compacting: Mutex<()>,
    submit: Mutex<Option<mpsc::Sender<writer::Submission>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stats: Arc<WriterStats>,
}

/// The event store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (or creates) the store in `data_dir`: migrates the schema, removes files left by an
    /// interrupted compaction, rebuilds the open visits and starts the writer.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir.join(layout::PARQUET_DIR))
            .map_err(|e| StoreError::io(data_dir, e))?;
        let data_dir = std::fs::canonicalize(data_dir).map_err(|e| StoreError::io(data_dir, e))?;
        let db_path = data_dir.join(layout::DATABASE_FILE);
        let conn = Connection::open(&db_path)?;
        // The binary runs without network egress: never fetch an extension at run time.
        conn.execute_batch(
            "SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;",
        )?;
        // A checkpoint blocks the commit that triggers it; fewer, larger ones keep ingest latency
        // flat. Compaction checkpoints after moving rows, which keeps the WAL short anyway.
        conn.execute_batch("SET checkpoint_threshold = '256MB'")?;
        // Cached Parquet footers make repeated queries over the same files cheaper.
        let _ = conn.execute_batch("SET enable_object_cache = true");
        let from = schema::migrate(&conn)?;
        if from != schema::latest_version() {
            tracing::info!(
                from,
                to = schema::latest_version(),
                "database schema migrated"
            );
        }
        let removed = compaction::remove_orphans(&conn, &data_dir)?;
        if removed > 0 {
            tracing::warn!(
                removed,
                "start-up removed files of an interrupted compaction"
            );
        }
        compaction::replace_view(&conn, &data_dir)?;
        let sessionizer = recover::open_sessions(&conn, &data_dir)?;
        let next_id: i64 = conn.query_row(
            "SELECT greatest((SELECT coalesce(max(id), 0) FROM events_hot),
                             (SELECT coalesce(max(max_id), 0) FROM parquet_files)) + 1",
            [],
            |r| r.get(0),
        )?;
        tracing::info!(open_visits = sessionizer.len(), data_dir = %data_dir.display(), "store opened");
        let stats = Arc::new(WriterStats::default());
        let (tx, thread) = writer::spawn(conn.try_clone()?, sessionizer, next_id, stats.clone());
        Ok(Store {
            inner: Arc::new(Inner {
                data_dir,
                idle: Mutex::new(Vec::new()),
                origin: Mutex::new(conn),
                files: RwLock::new(()),
                compacting: Mutex::new(()),
                submit: Mutex::new(Some(tx)),
                writer_thread: Mutex::new(Some(thread)),
                stats,
            }),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub fn stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Stores events durably; `Ok` means committed. Refuses with `Overloaded` when the queue is
    /// full or writes are failing, so the caller can answer 503 rather than promise too much.
    pub async fn submit(&self, events: Vec<Event>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let sender = self.inner.submit.lock().clone().ok_or(StoreError::Closed)?;
        if self.inner.stats.failing.load(Ordering::Relaxed)
            && sender.capacity() < sender.max_capacity()
        {
            return Err(StoreError::Overloaded);
        }
        let count = events.len() as i64;
        let (ack, answer) = oneshot::channel();
        self.inner
            .stats
            .buffered_events
            .fetch_add(count, Ordering::Relaxed);
        if sender.try_send(writer::Submission { events, ack }).is_err() {
            self.inner
                .stats
                .buffered_events
                .fetch_sub(count, Ordering::Relaxed);
            return Err(StoreError::Overloaded);
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn take_connection(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.inner.idle.lock().pop() {
            return Ok(conn);
        }
        Ok(self.inner.origin.lock().try_clone()?)
    }

    fn return_connection(&self, conn: Connection) {
        self.inner.idle.lock().push(conn);
    }

    /// Runs `f` on a blocking thread against a snapshot holding the events of `days`
    /// (inclusive; `None` = all days).
    pub async fn read<T, F>(
        &self,
        days: Option<(NaiveDate, NaiveDate)>,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Snapshot<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(days, f))
            .await
            .map_err(|e| StoreError::Database(format!("query task failed: {e}")))?
    }

    fn read_blocking<T>(
        &self,
        days: Option<(NaiveDate, NaiveDate)>,
        f: impl FnOnce(&Snapshot<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.take_connection()?;
        let _files = self.inner.files.read();
        if let Err(err) = conn.execute_batch("BEGIN TRANSACTION") {
            self.return_connection(conn);
            return Err(err.into());
        }
        let result = (|| {
            let all = (
                NaiveDate::from_ymd_opt(1, 1, 1),
                NaiveDate::from_ymd_opt(9999, 12, 31),
            );
            let (first, last) = days
                .or(all.0.zip(all.1))
                .ok_or_else(|| StoreError::Corrupt("date range".into()))?;
            let mut stmt = conn.prepare(
                "SELECT day::VARCHAR, path FROM parquet_files
                 WHERE day BETWEEN CAST(? AS DATE) AND CAST(? AS DATE) ORDER BY day, path",
            )?;
            let files = stmt
                .query_map([first.to_string(), last.to_string()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?))
                })?
                .map(|row| {
                    let (day, path) = row?;
                    let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                        .map_err(|e| StoreError::Corrupt(format!("bad day {day:?}: {e}")))?;
                    Ok((day, path))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let snapshot = Snapshot {
                conn: &conn,
                data_dir: &self.inner.data_dir,
                files,
            };
            f(&snapshot)
        })();
        let _ = conn.execute_batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
        self.return_connection(conn);
        result
    }

    /// Runs `f` on a pooled connection outside any snapshot, in autocommit mode: for the small
    /// admin tables (API keys), never for events, which only the writer adds.
    pub fn with_connection_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.take_connection()?;
        let result = f(&conn);
        self.return_connection(conn);
        result
    }

    /// [`with_connection_blocking`](Self::with_connection_blocking) on a blocking thread.
    pub async fn with_connection<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.with_connection_blocking(f))
            .await
            .map_err(|e| StoreError::Database(format!("admin task failed: {e}")))?
    }

    /// Moves hot rows to Parquet and merges days; deletes superseded files once no reader can
    /// be using them.
    pub fn compact_blocking(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<CompactionReport, StoreError> {
        let today = now.date_naive();
        // Events carry the time their request arrived; one committed just after midnight may
        // belong to the day before, so a day is rolled up only an hour after it ended.
        let rollup_cutoff = (now - chrono::Duration::hours(1)).date_naive();
        let _running = self.inner.compacting.lock();
        let conn = self.take_connection()?;
        let mut report = CompactionReport::default();
        let result = compaction::move_hot_rows(&conn, &self.inner.data_dir, &mut report)
            .and_then(|()| compaction::merge_days(&conn, &self.inner.data_dir, today, &mut report))
            .and_then(|()| {
                compaction::roll_up_days(&conn, &self.inner.data_dir, rollup_cutoff, &mut report)
            });
        if result.is_ok() && report.rows_moved > 0 {
            // Folding the WAL into the database file now, while the hot table is nearly empty,
            // keeps start-up replay short. It may be refused while other transactions run.
            if let Err(err) = conn.execute_batch("CHECKPOINT") {
                tracing::debug!(error = %err, "checkpoint after compaction skipped");
            }
        }
        self.return_connection(conn);
        if !report.superseded.is_empty() {
            let _exclusive = self.inner.files.write();
            for file in &report.superseded {
                if let Err(err) = std::fs::remove_file(file) {
                    tracing::warn!(file = %file.display(), error = %err, "could not remove a merged file; start-up will");
                }
            }
        }
        result.map(|()| report)
    }

    pub async fn compact(&self) -> Result<CompactionReport, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.compact_blocking(chrono::Utc::now()))
            .await
            .map_err(|e| StoreError::Database(format!("compaction task failed: {e}")))?
    }

    /// Stops accepting events, lets the writer commit what is queued, and waits for it.
    pub async fn close(&self) {
        self.inner.submit.lock().take();
        let thread = self.inner.writer_thread.lock().take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
