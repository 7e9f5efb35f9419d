//! `DELETE /api/gdpr/erase`: removes a site's events in a date range everywhere they are
//! stored (hot rows, Parquet files rewritten, rollups), for erasure requests. Admin only.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use chrono::NaiveDate;

use crate::AppState;
use crate::auth::{Access, Route};
use crate::error::{ApiError, ErrorBody};
use crate::store::lifecycle::EraseReport;

pub fn routes() -> Vec<Route> {
    vec![Route::delete(
        "/api/gdpr/erase",
        Access::Admin,
        delete_erase,
    )]
}

fn date(params: &HashMap<String, String>, field: &str) -> Result<NaiveDate, ApiError> {
    let text = params
        .get(field)
        .ok_or_else(|| ApiError::invalid(field, format!("`{field}` is required (YYYY-MM-DD)")))?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::invalid(
            field,
            format!("`{field}` must be a date as YYYY-MM-DD, got {text:?}"),
        )
    })
}

/// The parameters of `DELETE /api/gdpr/erase`, as the OpenAPI document describes them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EraseParams {
    /// The site whose events to remove (at most 256 bytes).
    #[param(max_length = 256)]
    site_id: String,
    /// The first UTC day to erase (YYYY-MM-DD, inclusive).
    #[param(format = Date)]
    start_date: String,
    /// The last UTC day to erase (YYYY-MM-DD, inclusive).
    #[param(format = Date)]
    end_date: String,
}

/// Erase a site's events
///
/// Removes every event of `site_id` between the two days everywhere it is stored: hot rows,
/// Parquet files (rewritten without them), daily rollups; the query cache is emptied.
#[utoipa::path(
    delete,
    path = "/api/gdpr/erase",
    tag = "data",
    security(("session" = []), ("bearer" = [])),
    params(EraseParams),
    responses(
        (status = 200, description = "What was removed", body = EraseReport),
        (status = 400, description = "A missing or malformed parameter, or `end_date` before \
            `start_date`; `field` names it", body = ErrorBody),
        (status = 401, description = "No valid session or API key", body = ErrorBody),
        (status = 403, description = "A `read` key, or a session without this server's \
            `Origin`", body = ErrorBody),
    ),
)]
async fn delete_erase(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<EraseReport>, ApiError> {
    let site = params
        .get("site_id")
        .filter(|site| !site.is_empty() && site.len() <= 256)
        .ok_or_else(|| ApiError::invalid("site_id", "`site_id` is required (at most 256 bytes)"))?
        .clone();
    let (first, last) = (date(&params, "start_date")?, date(&params, "end_date")?);
    if first > last {
        return Err(ApiError::invalid(
            "end_date",
            "`end_date` is before `start_date`",
        ));
    }
    let store = state.store.clone();
    let erase_site = site.clone();
    let report =
        tokio::task::spawn_blocking(move || store.erase_blocking(&erase_site, first, last))
            .await
            .map_err(|e| ApiError::internal(format!("erase task failed: {e}")))?
            .map_err(|e| ApiError::internal(format!("erase failed: {e}")))?;
    // Cached answers may still count the erased events.
    state.cache.invalidate_all();
    tracing::info!(
        site = %site,
        start = %first,
        end = %last,
        hot_rows = report.hot_rows,
        parquet_rows = report.parquet_rows,
        files = report.files_rewritten,
        "erased"
    );
    Ok(Json(report))
}
