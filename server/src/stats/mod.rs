//! The stats API: `main`, `timeseries`, `breakdown/{dimension}` and `export`, all per site.
//!
//! Invariant: answers are computed inside one store snapshot, so a compaction running at the
//! same time can neither hide nor double-count events.
//!
//! Every answer goes through [`cached`]: from the query cache (at most `MALLARD_CACHE_TTL`
//! old), else computed in one of `MALLARD_MAX_CONCURRENT_QUERIES` query slots.

mod export;
pub mod filters;
pub mod params;
pub mod queries;

use std::collections::HashMap;
use std::future::Future;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Access, Route};
use crate::cache::{Cached, QueryCache};
use crate::error::{ApiError, ErrorBody};
use crate::store::StoreError;
use params::{StatsParams, StatsQuery};
use queries::{BREAKDOWNS, BreakdownRow, Bucket, MainMetrics};

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
        Route::get("/api/stats/export", Access::Read, get_export),
    ]
}

/// The cached answer to the request `uri`, or `compute`'s, cached when it is a `200`. The
/// computation runs in a query slot (see [`crate::limits`]) as a task of its own, so it keeps
/// the slot, and still fills the cache, when its client goes away.
async fn cached<F>(state: &AppState, uri: &Uri, compute: F) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    let key = QueryCache::key(uri);
    if let Some(hit) = state.cache.get(&key) {
        let mut response = (StatusCode::OK, hit.body).into_response();
        if let Some(content_type) = hit.content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        return Ok(response);
    }
    let slot = state.limits.query_slot().await?;
    let cache = state.cache.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let response = compute.await?;
        if response.status() != StatusCode::OK || !cache.is_enabled() {
            return Ok(response);
        }
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|e| ApiError::internal(format!("reading the answer failed: {e}")))?;
        let content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
        cache.insert(
            key,
            Cached {
                content_type,
                body: body.clone(),
            },
        );
        Ok(Response::from_parts(parts, Body::from(body)))
    })
    .await
    .map_err(|e| ApiError::internal(format!("query task failed: {e}")))?
}

const STATS_400: &str = "A missing or invalid parameter; `field` names it";
const STATS_401: &str = "No valid session or API key";
const STATS_503: &str = "Every query slot stayed busy for 2 s (`MALLARD_MAX_CONCURRENT_QUERIES`)";

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

/// The main metrics of the period.
#[derive(Serialize, ToSchema)]
#[schema(as = Main)]
pub struct MainAnswer {
    #[serde(flatten)]
    current: MainMetrics,
    /// With `compare=previous_period`: the same numbers for the period of equal length just
    /// before.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    previous_period: Option<PreviousPeriod>,
}

/// The comparison block: the same numbers for the period just before, and its days.
#[derive(Serialize, ToSchema)]
pub struct PreviousPeriod {
    #[serde(flatten)]
    metrics: MainMetrics,
    /// Its first day (YYYY-MM-DD).
    #[schema(format = Date)]
    start_date: String,
    /// Its last day (YYYY-MM-DD).
    #[schema(format = Date)]
    end_date: String,
}

/// Main metrics
///
/// Visitors, visits, pageviews, views per visit, bounce rate and visit duration of the period.
#[utoipa::path(
    get,
    path = "/api/stats/main",
    tag = "stats",
    security(("session" = []), ("bearer" = [])),
    params(StatsParams, params::CompareParams),
    responses(
        (status = 200, description = "The metrics", body = MainAnswer),
        (status = 400, description = STATS_400, body = ErrorBody),
        (status = 401, description = STATS_401, body = ErrorBody),
        (status = 503, description = STATS_503, body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
)]
async fn get_main(
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    cached(&state.clone(), &uri, main(state, params)).await
}

async fn main(state: AppState, params: HashMap<String, String>) -> Result<Response, ApiError> {
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
    let previous_period = before
        .zip(previous)
        .map(|(metrics, period)| PreviousPeriod {
            metrics,
            start_date: period.first.to_string(),
            end_date: period.last.to_string(),
        });
    Ok(Json(MainAnswer {
        current,
        previous_period,
    })
    .into_response())
}

/// Timeseries
///
/// Visitors and pageviews per interval of the period, zero-filled.
#[utoipa::path(
    get,
    path = "/api/stats/timeseries",
    tag = "stats",
    security(("session" = []), ("bearer" = [])),
    params(StatsParams, params::IntervalParams),
    responses(
        (status = 200, description = "One bucket per interval", body = Vec<Bucket>),
        (status = 400, description = STATS_400, body = ErrorBody),
        (status = 401, description = STATS_401, body = ErrorBody),
        (status = 503, description = STATS_503, body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
)]
async fn get_timeseries(
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    cached(&state.clone(), &uri, timeseries(state, params)).await
}

async fn timeseries(
    state: AppState,
    params: HashMap<String, String>,
) -> Result<Response, ApiError> {
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
    Ok(Json::<Vec<Bucket>>(buckets).into_response())
}

/// Breakdown
///
/// The period's numbers per value of a dimension, sorted by visitors (descending), then value.
#[utoipa::path(
    get,
    path = "/api/stats/breakdown/{dimension}",
    tag = "stats",
    security(("session" = []), ("bearer" = [])),
    params(
        ("dimension" = inline(queries::Dimension), Path, description = "What to break down by"),
        StatsParams,
        params::PagingParams,
    ),
    responses(
        (status = 200, description = "One row per value", body = Vec<BreakdownRow>),
        (status = 400, description = STATS_400, body = ErrorBody),
        (status = 401, description = STATS_401, body = ErrorBody),
        (status = 503, description = STATS_503, body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
)]
async fn get_breakdown(
    State(state): State<AppState>,
    uri: Uri,
    Path(dimension): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    cached(&state.clone(), &uri, breakdown(state, dimension, params)).await
}

async fn breakdown(
    state: AppState,
    dimension: String,
    params: HashMap<String, String>,
) -> Result<Response, ApiError> {
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
    Ok(Json::<Vec<BreakdownRow>>(rows).into_response())
}

/// Export
///
/// One row per day of the period (each equal to `stats/main` for that day, filters applied),
/// as JSON or CSV (`text/csv`, header line first).
#[utoipa::path(
    get,
    path = "/api/stats/export",
    tag = "stats",
    security(("session" = []), ("bearer" = [])),
    params(
        StatsParams,
        ("format" = inline(Option<export::Format>), Query, description = "`json` (default) or `csv`"),
    ),
    responses(
        (status = 200, description = "One row per day", content(
            (Vec<export::DayRow> = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = STATS_400, body = ErrorBody),
        (status = 401, description = STATS_401, body = ErrorBody),
        (status = 503, description = STATS_503, body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
)]
async fn get_export(
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let compute = export::get_export(State(state.clone()), Query(params));
    cached(&state, &uri, compute).await
}
