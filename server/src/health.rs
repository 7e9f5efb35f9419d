//! Liveness and readiness probes for load balancers and uptime monitors, and a detailed status
//! for operators (it reveals configuration, so it needs a session or an API key).

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Access, Route};
use crate::error::ErrorBody;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/health", Access::Public, get_health),
        Route::get("/health/ready", Access::Public, get_ready),
        Route::get("/health/detailed", Access::Read, get_detailed),
    ]
}

/// Liveness
///
/// `ok` while the process runs.
#[utoipa::path(
    get,
    path = "/health",
    tag = "monitoring",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain",
        example = "ok")),
)]
async fn get_health() -> &'static str {
    "ok"
}

/// Readiness
///
/// Ready only when a real query over stored events succeeds: what uptime monitors should poll.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "monitoring",
    responses(
        (status = 200, description = "Ready", body = String, content_type = "text/plain",
            example = "ready"),
        (status = 503, description = "The events cannot be queried", body = String,
            content_type = "text/plain", example = "not ready"),
    ),
)]
async fn get_ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let today = chrono::Utc::now().date_naive();
    let probe = state
        .store
        .read(Some((today, today)), move |snapshot| {
            let sql = format!(
                "SELECT count(*) FROM ({}) WHERE ts >= CAST(? AS TIMESTAMP)",
                snapshot.relation_for(today, today)
            );
            Ok(snapshot
                .conn
                .query_row(&sql, [today.to_string()], |r| r.get::<_, i64>(0))?)
        })
        .await;
    match probe {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(error = %err, "readiness probe failed");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready")
        }
    }
}

/// The answer of `/health/detailed`: counters and switches, never a secret (whether a password
/// or a metrics token is set, not what it is).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HealthDetailed)]
pub struct Detailed {
    /// Always `ok`.
    pub status: &'static str,
    /// The server's version.
    pub version: &'static str,
    pub uptime_seconds: u64,
    /// Events waiting for the writer's next commit.
    pub buffered_events: u64,
    /// Failed group commits since start-up (their events were refused, never acknowledged).
    pub flush_failures: u64,
    /// Whether an admin password is set.
    pub auth_configured: bool,
    pub geoip_loaded: bool,
    pub filter_bots: bool,
    pub cache_enabled: bool,
    pub cache_entries: u64,
    pub cache_empty: bool,
    /// Events per second per site (`MALLARD_RATE_LIMIT`); 0: unlimited.
    pub rate_limit: u32,
    /// `MALLARD_RETENTION_DAYS`; 0: keep everything.
    pub retention_days: u32,
    /// Whether `MALLARD_METRICS_TOKEN` is set (`/metrics` exists).
    pub metrics_enabled: bool,
    /// Always `false`: no DuckDB extension is ever loaded (funnels, retention and flows are
    /// built-in SQL); kept for monitors written for the seed guide.
    pub behavioral_extension_loaded: bool,
}

/// Detailed status
///
/// Counters and switches for operators. It describes the configuration, so it needs a session
/// or an API key; it never contains a secret, only whether one is set.
#[utoipa::path(
    get,
    path = "/health/detailed",
    tag = "monitoring",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The status", body = Detailed),
        (status = 401, description = "No valid session or API key", body = ErrorBody),
    ),
)]
async fn get_detailed(State(state): State<AppState>) -> Json<Detailed> {
    let stats = state.store.stats();
    let cache_entries = state.cache.entry_count();
    Json(Detailed {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.metrics.uptime().as_secs(),
        buffered_events: u64::try_from(stats.buffered_events.load(Ordering::Relaxed)).unwrap_or(0),
        flush_failures: stats.flush_failures.load(Ordering::Relaxed),
        auth_configured: state.auth.password.is_set(),
        geoip_loaded: state.enricher.geoip_loaded(),
        filter_bots: state.config.filter_bots,
        cache_enabled: state.cache.is_enabled(),
        cache_entries,
        cache_empty: cache_entries == 0,
        rate_limit: state.config.rate_limit,
        retention_days: state.config.retention_days,
        metrics_enabled: state.config.metrics_token.is_some(),
        behavioral_extension_loaded: false,
    })
}
