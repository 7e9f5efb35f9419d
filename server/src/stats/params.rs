//! Query parameters shared by every stats endpoint: site, period, comparison, interval, paging.

use std::collections::HashMap;

use chrono::{Datelike, Days, Months, NaiveDate};

use super::filters::{Filter, parse_filters};
use crate::error::ApiError;

/// Pages past this are refused (a million pages of up to 1000 rows).
const MAX_PAGE: u64 = 1_000_000;

/// The longest custom range a query may cover.
const MAX_RANGE_DAYS: i64 = 3660;

/// Every `period` value [`resolve_range`] knows (`custom` is implied by `start_date`/`end_date`).
pub const PERIODS: [&str; 10] = [
    "today", "day", "7d", "30d", "90d", "month", "6mo", "12mo", "all", "custom",
];

/// An inclusive range of UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl DateRange {
    pub fn days(&self) -> i64 {
        (self.last - self.first).num_days() + 1
    }

    /// The range of the same length that ends the day before this one starts.
    pub fn previous(&self) -> DateRange {
        let last = self.first.pred_opt().unwrap_or(self.first);
        let first = last - chrono::Duration::days(self.days() - 1);
        DateRange { first, last }
    }
}

#[derive(Debug, Clone)]
pub struct StatsQuery {
    pub site_id: String,
    pub range: DateRange,
    pub period: String,
    pub filters: Vec<Filter>,
    pub compare: bool,
}

fn get<'a>(params: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn parse_date(value: &str, field: &str) -> Result<NaiveDate, ApiError> {
    let invalid = || {
        ApiError::invalid(
            field,
            format!("`{field}` must be a date as YYYY-MM-DD (1970 to 9999), got {value:?}"),
        )
    };
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| invalid())?;
    // Bounded years keep every later date calculation far from chrono's limits.
    if !(1970..=9999).contains(&date.year()) {
        return Err(invalid());
    }
    Ok(date)
}

fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// Resolves `period` (and `date`, `start_date`, `end_date`) against `today`; `earliest` is the
/// first day with data, for `all`.
pub fn resolve_range(
    params: &HashMap<String, String>,
    today: NaiveDate,
    earliest: Option<NaiveDate>,
) -> Result<(String, DateRange), ApiError> {
    let start = get(params, "start_date")
        .map(|v| parse_date(v, "start_date"))
        .transpose()?;
    let end = get(params, "end_date")
        .map(|v| parse_date(v, "end_date"))
        .transpose()?;
    let reference = get(params, "date")
        .map(|v| parse_date(v, "date"))
        .transpose()?
        .unwrap_or(today);
    let period = get(params, "period").unwrap_or(if start.is_some() || end.is_some() {
        "custom"
    } else {
        "30d"
    });
    let last_days = |n: u64| DateRange {
        first: reference - Days::new(n - 1),
        last: reference,
    };
    let range = match period {
        "today" => DateRange {
            first: today,
            last: today,
        },
        "day" => DateRange {
            first: reference,
            last: reference,
        },
        "7d" => last_days(7),
        "30d" => last_days(30),
        "90d" => last_days(90),
        "month" => {
            let first = month_start(reference);
            let last = (first + Months::new(1)).pred_opt().unwrap_or(first);
            DateRange { first, last }
        }
        "6mo" | "12mo" => {
            let months = if period == "6mo" { 5 } else { 11 };
            let first = month_start(reference) - Months::new(months);
            DateRange {
                first,
                last: reference,
            }
        }
        "all" => DateRange {
            first: earliest.unwrap_or(today).min(today),
            last: today,
        },
        "custom" => match (start, end) {
            (Some(first), Some(last)) => DateRange { first, last },
            (None, _) => {
                return Err(ApiError::invalid(
                    "start_date",
                    "`start_date` is required with `end_date`",
                ));
            }
            (_, None) => {
                return Err(ApiError::invalid(
                    "end_date",
                    "`end_date` is required with `start_date`",
                ));
            }
        },
        other => {
            return Err(ApiError::invalid(
                "period",
                format!(
                    "unknown period {other:?}; use today, day, 7d, 30d, 90d, month, 6mo, 12mo, all or start_date/end_date"
                ),
            ));
        }
    };
    if range.last < range.first {
        return Err(ApiError::invalid(
            "end_date",
            "`end_date` is before `start_date`",
        ));
    }
    if range.days() > MAX_RANGE_DAYS {
        return Err(ApiError::invalid(
            "start_date",
            format!(
                "the range covers {} days; the limit is {MAX_RANGE_DAYS}",
                range.days()
            ),
        ));
    }
    Ok((period.to_string(), range))
}

/// Parses what every stats endpoint takes.
pub fn parse(
    params: &HashMap<String, String>,
    today: NaiveDate,
    earliest: Option<NaiveDate>,
) -> Result<StatsQuery, ApiError> {
    let site_id = get(params, "site_id").ok_or_else(|| {
        ApiError::invalid(
            "site_id",
            "`site_id` is required (the site's domain, as in data-domain)",
        )
    })?;
    if site_id.chars().count() > 256 {
        return Err(ApiError::invalid(
            "site_id",
            "`site_id` is longer than 256 characters",
        ));
    }
    let (period, range) = resolve_range(params, today, earliest)?;
    let filters = match get(params, "filters") {
        None => Vec::new(),
        Some(text) => parse_filters(text)?,
    };
    let compare = match get(params, "compare") {
        None => false,
        Some("previous_period") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "compare",
                format!("unknown comparison {other:?}; use previous_period"),
            ));
        }
    };
    Ok(StatsQuery {
        site_id: site_id.to_string(),
        range,
        period,
        filters,
        compare,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
    Week,
    Month,
}

/// Every `interval` value and what it means.
pub const INTERVALS: [(&str, Interval); 4] = [
    ("hour", Interval::Hour),
    ("day", Interval::Day),
    ("week", Interval::Week),
    ("month", Interval::Month),
];

impl Interval {
    pub fn sql_unit(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
    }
}

pub fn parse_interval(
    params: &HashMap<String, String>,
    query: &StatsQuery,
) -> Result<Interval, ApiError> {
    let interval = match get(params, "interval") {
        None if query.range.days() == 1 => Interval::Hour,
        None if query.range.days() > 180 => Interval::Month,
        None => Interval::Day,
        Some(name) => INTERVALS
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, interval)| *interval)
            .ok_or_else(|| {
                ApiError::invalid(
                    "interval",
                    format!("unknown interval {name:?}; use hour, day, week or month"),
                )
            })?,
    };
    if interval == Interval::Hour && query.range.days() > 31 {
        return Err(ApiError::invalid(
            "interval",
            "`interval=hour` is limited to ranges of 31 days",
        ));
    }
    Ok(interval)
}

pub struct Paging {
    pub limit: u32,
    pub offset: u64,
}

pub fn parse_paging(params: &HashMap<String, String>) -> Result<Paging, ApiError> {
    let limit = match get(params, "limit") {
        None => 100,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    "`limit` must be a whole number from 1 to 1000",
                ));
            }
        },
    };
    let page = match get(params, "page") {
        None => 1,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "page",
                    format!("`page` must be a whole number from 1 to {MAX_PAGE}"),
                ));
            }
        },
    };
    Ok(Paging {
        limit,
        offset: (page - 1) * u64::from(limit),
    })
}

/// The query parameters of every stats endpoint, as the OpenAPI document describes them
/// ([`parse`] and [`resolve_range`] read them).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StatsParams {
    /// The site's id: its domain, as in `data-domain` (at most 256 characters).
    #[param(max_length = 256)]
    site_id: String,
    /// `today`; `day` (the day `date`); `7d`, `30d`, `90d` (that many days ending with
    /// `date`); `month` (the calendar month of `date`); `6mo`, `12mo` (calendar months up to
    /// `date`); `all` (first stored day to today); `custom` (`start_date` to `end_date`).
    /// Default `30d`, or `custom` when `start_date` or `end_date` is given.
    #[param(inline)]
    period: Option<Period>,
    /// The reference day of the period (YYYY-MM-DD, UTC); default today.
    #[param(format = Date)]
    date: Option<String>,
    /// First day of a custom period (YYYY-MM-DD, UTC, inclusive); a period covers at most
    /// 3660 days.
    #[param(format = Date)]
    start_date: Option<String>,
    /// Last day of a custom period (YYYY-MM-DD, UTC, inclusive).
    #[param(format = Date)]
    end_date: Option<String>,
    /// `dimension==value`, `dimension!=value`, `dimension~text` (contains, any case) or
    /// `dimension!~text`, joined by `;`; `|` separates alternative values (`page==/a|/b`).
    #[param(inline)]
    filters: Option<Filters>,
}

/// `compare` (only `GET /api/stats/main` uses it).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CompareParams {
    /// `previous_period`: add the same numbers for the period of equal length just before.
    #[param(inline)]
    compare: Option<Compare>,
}

/// `interval` of `GET /api/stats/timeseries`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct IntervalParams {
    /// The bucket size: `hour` (periods of at most 31 days), `day`, `week` (from Monday),
    /// `month`. Default `hour` for one day, `month` past 180 days, else `day`.
    #[param(inline)]
    interval: Option<IntervalName>,
}

/// Paging of `GET /api/stats/breakdown/{dimension}` ([`parse_paging`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PagingParams {
    /// Rows per page, 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The page, from 1 (at most 1000000); default 1.
    #[param(minimum = 1, maximum = 1_000_000)]
    page: Option<u64>,
}

/// A `period` value: one of [`PERIODS`].
pub struct Period;

impl utoipa::PartialSchema for Period {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::string_enum(PERIODS, None)
    }
}

impl utoipa::ToSchema for Period {}

/// An `interval` value: one of [`INTERVALS`].
pub struct IntervalName;

impl utoipa::PartialSchema for IntervalName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::string_enum(INTERVALS.iter().map(|(name, _)| *name), None)
    }
}

impl utoipa::ToSchema for IntervalName {}

/// A `compare` value.
pub struct Compare;

impl utoipa::PartialSchema for Compare {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::string_enum(["previous_period"], None)
    }
}

impl utoipa::ToSchema for Compare {}

/// A `filters` value; its schema lists the dimensions one may filter on.
pub struct Filters;

impl utoipa::PartialSchema for Filters {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let names: Vec<&str> = super::filters::FILTER_DIMENSIONS
            .iter()
            .map(|dimension| dimension.name)
            .collect();
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(format!("Dimensions: {}", names.join(", "))))
            .examples([serde_json::json!("page==/blog;country==DE|FR")])
            .into()
    }
}

impl utoipa::ToSchema for Filters {}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn periods_resolve_to_inclusive_day_ranges() {
        let today = day("2026-11-24");
        let range = |p: &[(&str, &str)]| {
            resolve_range(&params(p), today, Some(day("2026-01-05")))
                .expect("valid")
                .1
        };
        assert_eq!(
            range(&[("period", "7d")]),
            DateRange {
                first: day("2026-11-18"),
                last: today
            }
        );
        assert_eq!(
            range(&[("period", "month")]),
            DateRange {
                first: day("2026-11-01"),
                last: day("2026-11-30")
            }
        );
        assert_eq!(
            range(&[("period", "6mo")]),
            DateRange {
                first: day("2026-06-01"),
                last: today
            }
        );
        assert_eq!(
            range(&[("period", "all")]),
            DateRange {
                first: day("2026-01-05"),
                last: today
            }
        );
        assert_eq!(
            range(&[("start_date", "2026-02-01"), ("end_date", "2026-02-03")]),
            DateRange {
                first: day("2026-02-01"),
                last: day("2026-02-03")
            }
        );
        assert_eq!(
            range(&[("period", "day"), ("date", "2026-03-01")]).first,
            day("2026-03-01")
        );
    }

    #[test]
    fn every_documented_period_and_interval_is_accepted() {
        let today = day("2026-11-24");
        for period in PERIODS {
            let mut p = params(&[("period", period)]);
            if period == "custom" {
                p = params(&[
                    ("period", period),
                    ("start_date", "2026-11-01"),
                    ("end_date", "2026-11-02"),
                ]);
            }
            resolve_range(&p, today, None).unwrap_or_else(|e| panic!("{period}: {e}"));
        }
        let query = parse(&params(&[("site_id", "a.com")]), today, None).expect("query");
        for (name, interval) in INTERVALS {
            assert_eq!(
                parse_interval(&params(&[("interval", name)]), &query).expect(name),
                interval
            );
        }
    }

    #[test]
    fn previous_period_has_the_same_length_and_ends_before() {
        let r = DateRange {
            first: day("2026-11-18"),
            last: day("2026-11-24"),
        };
        assert_eq!(
            r.previous(),
            DateRange {
                first: day("2026-11-11"),
                last: day("2026-11-17")
            }
        );
    }

    #[test]
    fn bad_periods_and_dates_name_their_field() {
        let today = day("2026-11-24");
        let err = |p: &[(&str, &str)]| resolve_range(&params(p), today, None).expect_err("invalid");
        assert_eq!(
            err(&[("period", "fortnight")]).field.as_deref(),
            Some("period")
        );
        assert_eq!(
            err(&[("start_date", "2026-13-01"), ("end_date", "2026-12-01")])
                .field
                .as_deref(),
            Some("start_date")
        );
        assert_eq!(
            err(&[("start_date", "2026-02-01")]).field.as_deref(),
            Some("end_date")
        );
        assert_eq!(
            err(&[("start_date", "2026-02-05"), ("end_date", "2026-02-01")])
                .field
                .as_deref(),
            Some("end_date")
        );
    }
}
