//! Running the app: binding TCP or a Unix socket, background compaction, graceful shutdown.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;

use crate::config::Listen;
use crate::ingest::client_ip::Peer;
use crate::{AppState, app};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {listen}: {message}")]
    Bind { listen: String, message: String },
    #[error("server error: {0}")]
    Serve(String),
}

/// Serves until `shutdown` resolves, then stops accepting, lets the writer commit what is queued
/// and returns.
pub async fn run(
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listen = state.config.listen.clone();
    let bind_error = |e: std::io::Error| ServeError::Bind {
        listen: listen.to_string(),
        message: e.to_string(),
    };
    let compactor = tokio::spawn(compact_forever(state.clone()));
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
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
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
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    compactor.abort();
    let _ = stop_admin.send(());
    let _ = admin.await;
    state.store.close().await;
    tracing::info!("stopped");
    result.map_err(|e| ServeError::Serve(e.to_string()))
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
