//! Group commit: one thread owns the write connection; requests that arrive together share one
//! DuckDB transaction (one WAL fsync), and each is acknowledged only after that commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use duckdb::{Connection, appender_params_from_iter};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::event::{Event, row};
use super::session::Sessionizer;

/// Most events committed in one transaction; larger bursts are split.
const MAX_BATCH_EVENTS: usize = 10_000;
/// Submissions waiting for the writer before new ones are refused with 503.
pub const QUEUE_CAPACITY: usize = 20_000;

pub struct Submission {
    pub events: Vec<Event>,
    pub ack: oneshot::Sender<Result<(), StoreError>>,
}

/// Counters the writer keeps; read by health and metrics endpoints.
pub struct WriterStats {
    pub buffered_events: AtomicI64,
    pub committed_events: AtomicU64,
    pub committed_batches: AtomicU64,
    pub flush_failures: AtomicU64,
    /// Set while commits fail, so new events are refused instead of queued.
    pub failing: AtomicBool,
    /// Events per group commit (committed or not).
    pub batch_sizes: Histogram,
    /// Seconds each group commit took, from `BEGIN` to `COMMIT` (or the failure).
    pub commit_seconds: Histogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        Self {
            buffered_events: AtomicI64::new(0),
            committed_events: AtomicU64::new(0),
            committed_batches: AtomicU64::new(0),
            flush_failures: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            // 1, 2, 4, … 8192: MAX_BATCH_EVENTS lands in the last bucket but one.
            batch_sizes: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            // 0.5 ms … ~4 s.
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
        }
    }
}

pub fn spawn(
    conn: Connection,
    sessionizer: Sessionizer,
    next_id: i64,
    stats: Arc<WriterStats>,
) -> (mpsc::Sender<Submission>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let handle = std::thread::Builder::new()
        .name("mallard-writer".into())
        .spawn(move || {
            Writer {
                conn,
                sessionizer,
                next_id,
                stats,
            }
            .run(rx)
        })
        .expect("spawning the writer thread");
    (tx, handle)
}

struct Writer {
    conn: Connection,
    sessionizer: Sessionizer,
    next_id: i64,
    stats: Arc<WriterStats>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Submission>) {
        let mut batches_since_expiry = 0u32;
        while let Some(first) = rx.blocking_recv() {
            let mut count = first.events.len();
            let mut batch = vec![first];
            while count < MAX_BATCH_EVENTS {
                match rx.try_recv() {
                    Ok(next) => {
                        count += next.events.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            self.commit(batch, count);
            batches_since_expiry += 1;
            if batches_since_expiry >= 1000 {
                batches_since_expiry = 0;
                self.sessionizer
                    .expire(chrono::Utc::now().timestamp_micros());
            }
        }
        tracing::debug!("writer: all senders gone, stopping");
    }

    fn commit(&mut self, batch: Vec<Submission>, count: usize) {
        let first_id = self.next_id;
        let started = std::time::Instant::now();
        let result = self.write(&batch);
        self.stats
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.stats.batch_sizes.observe(count as f64);
        let ack = match result {
            Ok(()) => {
                self.sessionizer.commit();
                self.stats
                    .committed_events
                    .fetch_add(count as u64, Ordering::Relaxed);
                self.stats.committed_batches.fetch_add(1, Ordering::Relaxed);
                self.stats.failing.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(err) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.sessionizer.rollback();
                self.next_id = first_id;
                self.stats.flush_failures.fetch_add(1, Ordering::Relaxed);
                self.stats.failing.store(true, Ordering::Relaxed);
                tracing::error!(error = %err, events = count, "commit failed; events refused");
                Err(StoreError::WriteFailed(err.to_string()))
            }
        };
        self.stats
            .buffered_events
            .fetch_sub(count as i64, Ordering::Relaxed);
        for submission in batch {
            // A client that went away no longer needs its answer; its events are stored anyway.
            let _ = submission.ack.send(ack.clone());
        }
    }

    fn write(&mut self, batch: &[Submission]) -> duckdb::Result<()> {
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        {
            let mut appender = self.conn.appender("events_hot")?;
            for event in batch.iter().flat_map(|s| &s.events) {
                let facts = self.sessionizer.assign(event, rand::random::<u64>);
                appender.append_row(appender_params_from_iter(row(self.next_id, event, &facts)))?;
                self.next_id += 1;
            }
            appender.flush()?;
        }
        self.conn.execute_batch("COMMIT")
    }
}
