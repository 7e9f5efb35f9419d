//! The stats API: `main`, `timeseries`, `breakdown/{dimension}` and `export`, all per site.
//!
//! Invariant: answers are computed inside one store snapshot, so a compaction running at the
//! same time can neither hide nor double-count events.

mod export;
pub mod filters;
pub mod params;
pub mod queries;

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};

use crate::AppState;
use crate::auth::{Access, Route};
use crate::error::ApiError;
use crate::store::StoreError;
use params::StatsQuery;
use queries::{BREAKDOWNS, Bucket};

/// Every stats route needs a session or an API key (the guard is installed by `crate::app`);
/// `Cache-Control: no-store` comes from the app-wide headers layer.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/api/stats/main", Access::Read, get_main),
        Route::get("/api/stats/timeseries", Access::Read, get_timeseries),
        Route::get(
            "/api/stats/breakdown/{dimension}",
            Access::Read,
            get_breakdown,
        ),
        Route::get("/api/stats/export", Access::Read, export::get_export),
    ]
}

fn store_error(err: StoreError) -> ApiError {
    tracing::error!(error = %err, "stats query failed");
    ApiError::internal("the query failed; see the server log")
}

async fn stats_query(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Result<StatsQuery, ApiError> {
    let today = chrono::Utc::now().date_naive();
    let earliest = if params.get("period").map(String::as_str) == Some("all") {
        state
            .store
            .read(Some((today, today)), queries::earliest_day)
            .await
            .map_err(store_error)?
    } else {
        None
    };
    params::parse(params, today, earliest)
}

async fn get_main(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = stats_query(&state, &params).await?;
    let range = query.range;
    let previous = query.compare.then(|| range.previous());
    let days = (previous.map_or(range.first, |p| p.first), range.last);
    let (current, before) = state
        .store
        .read(Some(days), move |snapshot| {
            let current = queries::main_metrics(snapshot, &query, range)?;
            let before = previous
                .map(|p| queries::main_metrics(snapshot, &query, p))
                .transpose()?;
            Ok((current, before))
        })
        .await
        .map_err(store_error)?;
    let mut body = serde_json::to_value(current).map_err(|e| ApiError::internal(e.to_string()))?;
    if let (Some(before), Some(period), Some(object)) = (before, previous, body.as_object_mut()) {
        let mut block =
            serde_json::to_value(before).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(block) = block.as_object_mut() {
            block.insert("start_date".into(), period.first.to_string().into());
            block.insert("end_date".into(), period.last.to_string().into());
        }
        object.insert("previous_period".into(), block);
    }
    Ok(Json(body))
}

async fn get_timeseries(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Bucket>>, ApiError> {
    let query = stats_query(&state, &params).await?;
    let interval = params::parse_interval(&params, &query)?;
    let days = (query.range.first, query.range.last);
    let buckets = state
        .store
        .read(Some(days), move |snapshot| {
            queries::timeseries(snapshot, &query, interval)
        })
        .await
        .map_err(store_error)?;
    Ok(Json(buckets))
}

async fn get_breakdown(
    State(state): State<AppState>,
    Path(dimension): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let by = BREAKDOWNS
        .iter()
        .find(|(name, _)| *name == dimension)
        .map(|(_, by)| *by)
        .ok_or_else(|| {
            let known: Vec<&str> = BREAKDOWNS.iter().map(|(name, _)| *name).collect();
            ApiError::invalid(
                "dimension",
                format!(
                    "unknown dimension {dimension:?}; known: {}",
                    known.join(", ")
                ),
            )
        })?;
    let query = stats_query(&state, &params).await?;
    let paging = params::parse_paging(&params)?;
    let days = (query.range.first, query.range.last);
    let rows = state
        .store
        .read(Some(days), move |snapshot| {
            queries::breakdown(snapshot, &query, by, &paging)
        })
        .await
        .map_err(store_error)?;
    Ok(Json(rows))
}
