//! `GET /api/stats/export`: one row per day (date, visitors, visits, pageviews, bounce_rate,
//! visit_duration) as JSON or CSV, for a time-series database or a spreadsheet.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::params::DateRange;
use super::{queries, stats_query, store_error};
use crate::AppState;
use crate::error::ApiError;

/// One day of an export: `stats/main`'s numbers for that day.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ExportRow)]
pub struct DayRow {
    /// The day, YYYY-MM-DD (UTC).
    #[schema(format = Date)]
    date: String,
    visitors: u64,
    visits: u64,
    pageviews: u64,
    bounce_rate: u64,
    visit_duration: u64,
}

/// A `format` value.
pub struct Format;

impl utoipa::PartialSchema for Format {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::string_enum(["json", "csv"], None)
    }
}

impl utoipa::ToSchema for Format {}

pub async fn get_export(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let csv = match params.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("unknown format {other:?}; use json or csv"),
            ));
        }
    };
    let query = stats_query(&state, &params).await?;
    let range = query.range;
    let rows = state
        .store
        .read(Some((range.first, range.last)), move |snapshot| {
            range
                .first
                .iter_days()
                .take_while(|day| *day <= range.last)
                .map(|day| {
                    let metrics = queries::main_metrics(
                        snapshot,
                        &query,
                        DateRange {
                            first: day,
                            last: day,
                        },
                    )?;
                    Ok(DayRow {
                        date: day.to_string(),
                        visitors: metrics.visitors,
                        visits: metrics.visits,
                        pageviews: metrics.pageviews,
                        bounce_rate: metrics.bounce_rate,
                        visit_duration: metrics.visit_duration,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(store_error)?;
    if !csv {
        return Ok(axum::Json(rows).into_response());
    }
    let mut body = String::from("date,visitors,visits,pageviews,bounce_rate,visit_duration\n");
    for row in &rows {
        body.push_str(&format!(
            "{},{},{},{},{},{}\n",
            row.date, row.visitors, row.visits, row.pageviews, row.bounce_rate, row.visit_duration
        ));
    }
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    Ok(response)
}
