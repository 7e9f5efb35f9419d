//! The local admin socket: operations for the host's operator (backups), on a Unix socket of
//! its own, never on the public listener.
//!
//! Invariant: these routes exist only on `<data>/admin.sock`, created mode 0600, so only the
//! server's own user and root can reach them; the reverse proxy (in the socket group of the
//! public listener) cannot.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::store::backup::BackupReport;

pub const SOCKET_FILE: &str = "admin.sock";

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

#[derive(Deserialize)]
struct BackupRequest {
    to: PathBuf,
}

fn router() -> Router<AppState> {
    Router::new().route("/backup", post(post_backup))
}

async fn post_backup(
    State(state): State<AppState>,
    Json(request): Json<BackupRequest>,
) -> Result<Json<BackupReport>, ApiError> {
    if !request.to.is_absolute() {
        return Err(ApiError::invalid(
            "to",
            "the backup folder must be an absolute path",
        ));
    }
    let store = state.store.clone();
    let report = tokio::task::spawn_blocking(move || store.backup_blocking(&request.to))
        .await
        .map_err(|e| ApiError::internal(format!("backup task failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("backup failed: {e}")))?;
    tracing::info!(
        events = report.events,
        files = report.parquet_files,
        "backup written"
    );
    Ok(Json(report))
}

/// Serves the admin routes until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let path = socket_path(state.store.data_dir());
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let app = router().with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no server answers on {0}")]
    NotRunning(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the server answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

/// Asks the running server for a backup into `to` (one HTTP/1.1 request over the socket).
pub async fn request_backup(socket: &Path, to: &Path) -> Result<BackupReport, ClientError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|_| ClientError::NotRunning(socket.display().to_string()))?;
    let body = serde_json::json!({ "to": to }).to_string();
    let request = format!(
        "POST /backup HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| ClientError::Protocol("no header end".into()))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| ClientError::Protocol(head.lines().next().unwrap_or_default().into()))?;
    let body = dechunk(head, body);
    if status != 200 {
        return Err(ClientError::Refused { status, body });
    }
    serde_json::from_str(&body).map_err(|e| ClientError::Protocol(format!("{e}: {body}")))
}

/// The body of a `Transfer-Encoding: chunked` answer, or the body as it is.
fn dechunk(head: &str, body: &str) -> String {
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let (Some(chunk), Some(next)) = (after.get(..size), after.get(size..)) else {
            break;
        };
        if size == 0 {
            break;
        }
        out.push_str(chunk);
        rest = next.trim_start_matches("\r\n");
    }
    out
}
