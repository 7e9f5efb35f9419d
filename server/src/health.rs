//! Liveness and readiness probes for load balancers and uptime monitors.

use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
use crate::auth::{Access, Route};

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/health", Access::Public, get_health),
        Route::get("/health/ready", Access::Public, get_ready),
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
