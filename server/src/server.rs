//! Running the app: binding TCP or a Unix socket, the background jobs (compaction, retention,
//! forgetting idle rate-limit state), graceful shutdown within `MALLARD_SHUTDOWN_TIMEOUT`.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::Listen;
use crate::ingest::client_ip::Peer;
use crate::store::StoreError;
use crate::store::lifecycle::RetentionReport;
use crate::{AppState, app};

/// The first retention run, after start-up work has settled; then one a day.
const RETENTION_FIRST_RUN: Duration = Duration::from_secs(60);
const RETENTION_EVERY: Duration = Duration::from_secs(86_400);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {listen}: {message}")]
    Bind { listen: String, message: String },
    #[error("server error: {0}")]
    Serve(String),
}

/// Serves until `shutdown` resolves, then stops accepting, lets open requests finish and the
/// writer commit what is queued, and returns: within `config.shutdown_timeout` of the signal
/// (what is still open then is dropped with a warning; it was never acknowledged).
pub async fn run(
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listen = state.config.listen.clone();
    let bind_error = |e: std::io::Error| ServeError::Bind {
        listen: listen.to_string(),
        message: e.to_string(),
    };
    let jobs = [
        tokio::spawn(compact_forever(state.clone())),
        tokio::spawn(retain_forever(state.clone())),
        tokio::spawn(forget_idle_sites(state.clone())),
    ];
    let timeout = state.config.shutdown_timeout;
    let signalled = Arc::new(Notify::new());
    let shutdown = {
        let signalled = signalled.clone();
        async move {
            shutdown.await;
            signalled.notify_one();
        }
    };
    // The operator's socket (backups) lives as long as the public listener.
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin_state = state.clone();
    let admin = tokio::spawn(async move {
        let stopped = async {
            let _ = admin_stopped.await;
        };
        if let Err(err) = crate::local_admin::serve(admin_state, stopped).await {
            tracing::warn!(error = %err, "the local admin socket (backups) is unavailable");
        }
    });
    let router = app(state.clone()).into_make_service_with_connect_info::<Peer>();
    let result = match &listen {
        Listen::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(bind_error)?;
            tracing::info!(listen = %listen, "listening");
            let serve = axum::serve(listener, router).with_graceful_shutdown(shutdown);
            bounded(serve.into_future(), &signalled, timeout).await
        }
        Listen::Unix(path) => {
            // A socket file left by a previous run would make bind fail.
            if path.exists() {
                std::fs::remove_file(path).map_err(bind_error)?;
            }
            let listener = tokio::net::UnixListener::bind(path).map_err(bind_error)?;
            // The reverse proxy runs as another user in the same group.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                .map_err(bind_error)?;
            tracing::info!(listen = %listen, "listening");
            let serve = axum::serve(listener, router).with_graceful_shutdown(shutdown);
            bounded(serve.into_future(), &signalled, timeout).await
        }
    };
    let deadline = result.deadline;
    for job in jobs {
        job.abort();
    }
    let _ = stop_admin.send(());
    let _ = tokio::time::timeout_at(deadline.into(), admin).await;
    if tokio::time::timeout_at(deadline.into(), state.store.close())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_s = timeout.as_secs(),
            "the writer did not finish within the shutdown timeout; events it had not committed were never acknowledged"
        );
    }
    tracing::info!("stopped");
    result.outcome.map_err(|e| ServeError::Serve(e.to_string()))
}

struct Served {
    outcome: std::io::Result<()>,
    /// When shutdown must be complete: the signal plus the timeout.
    deadline: Instant,
}

/// Runs `serve` (which ends after the shutdown signal, once open requests are answered), but
/// for no longer than `timeout` after the signal, less what the final commit is given: the last
/// second (a quarter of the timeout, if that is shorter).
async fn bounded(
    serve: impl Future<Output = std::io::Result<()>>,
    signalled: &Notify,
    timeout: Duration,
) -> Served {
    let drain = timeout - (timeout / 4).min(Duration::from_secs(1));
    let mut since = None;
    let waited = async {
        signalled.notified().await;
        since = Some(Instant::now());
        tokio::time::sleep(drain).await;
    };
    let outcome = tokio::select! {
        outcome = serve => outcome,
        () = waited => {
            tracing::warn!(
                drain_s = drain.as_secs_f64(),
                "requests still open at the shutdown timeout are dropped"
            );
            Ok(())
        }
    };
    Served {
        outcome,
        deadline: since.unwrap_or_else(Instant::now) + timeout,
    }
}

async fn compact_forever(state: AppState) {
    let mut tick = tokio::time::interval(state.config.compact_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match state.store.compact().await {
            Ok(report) if report.rows_moved > 0 || report.days_merged > 0 => {
                tracing::info!(
                    rows = report.rows_moved,
                    files = report.files_written,
                    merged_days = report.days_merged,
                    "compacted"
                );
            }
            Ok(_) => {}
            Err(err) => {
                tracing::error!(error = %err, "compaction failed; rows stay hot and are retried")
            }
        }
    }
}

/// Removes events older than `config.retention_days` (nothing when 0), counts them and clears
/// the query cache.
pub async fn apply_retention(state: &AppState) -> Result<RetentionReport, StoreError> {
    let days = state.config.retention_days;
    if days == 0 {
        return Ok(RetentionReport::default());
    }
    let today = chrono::Utc::now().date_naive();
    let cutoff = today - chrono::Duration::days(i64::from(days));
    // Counted first: new events are never older than the cutoff, and compaction only moves
    // rows, so this is what the deletion removes.
    let expired = state
        .store
        .read(None, move |snapshot| {
            let first = chrono::NaiveDate::MIN;
            let last = cutoff.pred_opt().unwrap_or(cutoff);
            let sql = format!(
                "SELECT count(*) FROM ({}) WHERE ts < CAST(? AS TIMESTAMP)",
                snapshot.relation_for(first, last)
            );
            Ok(snapshot
                .conn
                .query_row(&sql, [cutoff.to_string()], |r| r.get::<_, i64>(0))?)
        })
        .await?;
    let store = state.store.clone();
    let report = tokio::task::spawn_blocking(move || store.apply_retention_blocking(days, today))
        .await
        .map_err(|e| StoreError::Database(format!("retention task failed: {e}")))??;
    state.cache.invalidate_all();
    let removed = u64::try_from(expired).unwrap_or(0);
    state.metrics.retention_deleted_events.inc_by(removed);
    tracing::info!(
        keep_days = days,
        events = removed,
        days_removed = report.days_removed,
        files_removed = report.files_removed,
        hot_rows_removed = report.hot_rows_removed,
        "retention applied"
    );
    Ok(report)
}

async fn retain_forever(state: AppState) {
    if state.config.retention_days == 0 {
        return;
    }
    tokio::time::sleep(RETENTION_FIRST_RUN).await;
    loop {
        if let Err(err) = apply_retention(&state).await {
            tracing::error!(error = %err, "retention failed; retried tomorrow");
        }
        tokio::time::sleep(RETENTION_EVERY).await;
    }
}

async fn forget_idle_sites(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        state.limits.forget_idle_sites();
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
}
