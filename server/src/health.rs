//! Liveness and readiness probes for load balancers and uptime monitors, and a detailed status
//! for operators (it reveals configuration, so it needs a session or an API key).

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Access, Route};

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/health", Access::Public, get_health),
        Route::get("/health/ready", Access::Public, get_ready),
        Route::get("/health/detailed", Access::Read, get_detailed),
    ]
}

async fn get_health() -> &'static str {
    "ok"
}

/// Ready only when a real query over stored events succeeds.
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

/// Counters and switches, never a secret: whether a password or a metrics token is set, not
/// what it is.
async fn get_detailed(State(state): State<AppState>) -> Json<Value> {
    let stats = state.store.stats();
    let cache_entries = state.cache.entry_count();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.metrics.uptime().as_secs(),
        "buffered_events": stats.buffered_events.load(Ordering::Relaxed).max(0),
        "flush_failures": stats.flush_failures.load(Ordering::Relaxed),
        "auth_configured": state.auth.password.is_set(),
        "geoip_loaded": state.enricher.geoip_loaded(),
        "filter_bots": state.config.filter_bots,
        "cache_enabled": state.cache.is_enabled(),
        "cache_entries": cache_entries,
        "cache_empty": cache_entries == 0,
        "rate_limit": state.config.rate_limit,
        "retention_days": state.config.retention_days,
        "metrics_enabled": state.config.metrics_token.is_some(),
        // No DuckDB extension is ever loaded: funnels, retention and flows are built-in SQL.
        "behavioral_extension_loaded": false,
    }))
}
