//! The SQL behind each stats endpoint. Visits, bounces and durations are sums of the per-event
//! deltas the sessionizer stored, so no query groups events by visit except exit pages.

use chrono::{Datelike, Days};
use duckdb::params_from_iter;
use duckdb::types::Value;
use serde::Serialize;

use super::filters::{Level, Sql, conditions};
use super::params::{DateRange, Interval, Paging, StatsQuery};
use crate::store::{Snapshot, StoreError};

/// `base`: the site's events in the range, with visit-level filters applied; `matched`: the
/// condition event-level filters add (always true without any).
struct Scope {
    with: Sql,
    matched: Sql,
}

fn scope(snapshot: &Snapshot<'_>, query: &StatsQuery, range: DateRange) -> Scope {
    let visit = conditions(&query.filters, Level::Visit);
    let end = range
        .last
        .checked_add_days(Days::new(1))
        .unwrap_or(range.last);
    let mut params = vec![
        Value::Text(query.site_id.clone()),
        Value::Text(range.first.to_string()),
        Value::Text(end.to_string()),
    ];
    params.extend(visit.params);
    let with = Sql {
        text: format!(
            "WITH base AS (SELECT * FROM ({}) WHERE site_id = ? AND ts >= CAST(? AS TIMESTAMP) AND ts < CAST(? AS TIMESTAMP){})",
            snapshot.relation(),
            visit.text
        ),
        params,
    };
    let event = conditions(&query.filters, Level::Event);
    Scope {
        with,
        matched: Sql {
            text: format!("TRUE{}", event.text),
            params: event.params,
        },
    }
}

impl Scope {
    fn has_event_filters(&self) -> bool {
        !self.matched.params.is_empty()
    }

    /// `AND session_id IN (…)`: the visits that contain a matching event.
    fn visits_condition(&self) -> Sql {
        if !self.has_event_filters() {
            return Sql::default();
        }
        Sql {
            text: format!(
                " AND session_id IN (SELECT session_id FROM base WHERE {})",
                self.matched.text
            ),
            params: self.matched.params.clone(),
        }
    }
}

fn run<T>(
    snapshot: &Snapshot<'_>,
    sql: &str,
    params: &[Value],
    map: impl FnMut(&duckdb::Row<'_>) -> duckdb::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = snapshot.conn.prepare(sql)?;
    let rows = stmt.query_map(params_from_iter(params.iter()), map)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MainMetrics {
    pub visitors: u64,
    pub visits: u64,
    pub pageviews: u64,
    pub views_per_visit: f64,
    /// Percent of visits that were one pageview and nothing else.
    pub bounce_rate: u64,
    /// Mean seconds from a visit's first to its last event.
    pub visit_duration: u64,
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator == 0.0 {
        0.0
    } else {
        numerator / denominator
    }
}

fn metrics(
    visitors: i64,
    visits: i64,
    pageviews: i64,
    bounces: i64,
    duration_ms: i64,
) -> MainMetrics {
    let visits_f = visits as f64;
    MainMetrics {
        visitors: visitors.max(0) as u64,
        visits: visits.max(0) as u64,
        pageviews: pageviews.max(0) as u64,
        views_per_visit: (ratio(pageviews as f64, visits_f) * 100.0).round() / 100.0,
        bounce_rate: (ratio(bounces as f64, visits_f) * 100.0).round() as u64,
        visit_duration: (ratio(duration_ms as f64, visits_f) / 1000.0).round() as u64,
    }
}

pub fn main_metrics(
    snapshot: &Snapshot<'_>,
    query: &StatsQuery,
    range: DateRange,
) -> Result<MainMetrics, StoreError> {
    let scope = scope(snapshot, query, range);
    let visits = scope.visits_condition();
    let matched = &scope.matched;
    let sql = format!(
        "{with}
         SELECT (SELECT count(DISTINCT visitor_id) FROM base WHERE {m}),
                (SELECT count(*) FROM base WHERE name = 'pageview' AND {m}),
                count(*) FILTER (WHERE is_entry),
                coalesce(sum(bounce_delta), 0)::BIGINT,
                coalesce(sum(duration_ms), 0)::BIGINT
         FROM base WHERE TRUE{v}",
        with = scope.with.text,
        m = matched.text,
        v = visits.text,
    );
    let params: Vec<Value> = [
        &scope.with.params,
        &matched.params,
        &matched.params,
        &visits.params,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let row = run(snapshot, &sql, &params, |r| {
        Ok(metrics(
            r.get(0)?,
            r.get(2)?,
            r.get(1)?,
            r.get(3)?,
            r.get(4)?,
        ))
    })?;
    Ok(row
        .into_iter()
        .next()
        .unwrap_or_else(|| metrics(0, 0, 0, 0, 0)))
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bucket {
    pub date: String,
    pub visitors: u64,
    pub pageviews: u64,
}

fn bucket_format(interval: Interval) -> &'static str {
    match interval {
        Interval::Hour => "%Y-%m-%d %H:00:00",
        _ => "%Y-%m-%d",
    }
}

/// Every bucket label of the range, in order, so the answer has no gaps.
fn bucket_labels(range: DateRange, interval: Interval) -> Vec<String> {
    let mut labels = Vec::new();
    let mut day = match interval {
        Interval::Week => {
            range.first
                - chrono::Duration::days(i64::from(range.first.weekday().num_days_from_monday()))
        }
        Interval::Month => range.first.with_day(1).unwrap_or(range.first),
        _ => range.first,
    };
    while day <= range.last {
        match interval {
            Interval::Hour => labels.extend((0..24).map(|h| format!("{day} {h:02}:00:00"))),
            _ => labels.push(day.to_string()),
        }
        day = match interval {
            Interval::Hour | Interval::Day => day + chrono::Duration::days(1),
            Interval::Week => day + chrono::Duration::days(7),
            Interval::Month => day + chrono::Months::new(1),
        };
    }
    labels
}

pub fn timeseries(
    snapshot: &Snapshot<'_>,
    query: &StatsQuery,
    interval: Interval,
) -> Result<Vec<Bucket>, StoreError> {
    let scope = scope(snapshot, query, query.range);
    let sql = format!(
        "{with}
         SELECT strftime(date_trunc('{unit}', ts), '{format}') AS bucket,
                count(DISTINCT visitor_id), count(*) FILTER (WHERE name = 'pageview')
         FROM base WHERE {m} GROUP BY 1",
        with = scope.with.text,
        unit = interval.sql_unit(),
        format = bucket_format(interval),
        m = scope.matched.text,
    );
    let params: Vec<Value> = scope
        .with
        .params
        .iter()
        .chain(&scope.matched.params)
        .cloned()
        .collect();
    let rows: std::collections::HashMap<String, (i64, i64)> = run(snapshot, &sql, &params, |r| {
        Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))
    })?
    .into_iter()
    .collect();
    Ok(bucket_labels(query.range, interval)
        .into_iter()
        .map(|date| {
            let (visitors, pageviews) = rows.get(&date).copied().unwrap_or_default();
            Bucket {
                date,
                visitors: visitors as u64,
                pageviews: pageviews as u64,
            }
        })
        .collect())
}

/// What a breakdown groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakdown {
    /// A visit attribute (`source`, `browser`, `entry_page`, …): visit metrics per value.
    Visit(&'static str),
    Pages,
    ExitPages,
    Events,
}

pub const BREAKDOWNS: &[(&str, Breakdown)] = &[
    ("pages", Breakdown::Pages),
    ("entry_pages", Breakdown::Visit("entry_page")),
    ("exit_pages", Breakdown::ExitPages),
    ("sources", Breakdown::Visit("source")),
    ("channels", Breakdown::Visit("source_class")),
    ("referrers", Breakdown::Visit("referrer")),
    ("utm_source", Breakdown::Visit("utm_source")),
    ("utm_medium", Breakdown::Visit("utm_medium")),
    ("utm_campaign", Breakdown::Visit("utm_campaign")),
    ("utm_term", Breakdown::Visit("utm_term")),
    ("utm_content", Breakdown::Visit("utm_content")),
    ("browsers", Breakdown::Visit("browser")),
    ("browser_versions", Breakdown::Visit("browser_version")),
    ("os", Breakdown::Visit("os")),
    ("os_versions", Breakdown::Visit("os_version")),
    ("devices", Breakdown::Visit("device")),
    ("countries", Breakdown::Visit("country")),
    ("regions", Breakdown::Visit("region")),
    ("cities", Breakdown::Visit("city")),
    ("events", Breakdown::Events),
];

pub fn breakdown(
    snapshot: &Snapshot<'_>,
    query: &StatsQuery,
    by: Breakdown,
    paging: &Paging,
) -> Result<Vec<serde_json::Value>, StoreError> {
    let scope = scope(snapshot, query, query.range);
    let visits = scope.visits_condition();
    let m = &scope.matched;
    let page = format!(
        "ORDER BY visitors DESC, value ASC LIMIT {} OFFSET {}",
        paging.limit, paging.offset
    );
    let (sql, extra): (String, Vec<&Vec<Value>>) = match by {
        Breakdown::Visit(column) => (
            format!(
                "SELECT {column} AS value, count(DISTINCT visitor_id) AS visitors,
                        count(*) FILTER (WHERE name = 'pageview') AS pageviews,
                        count(*) FILTER (WHERE is_entry) AS visits,
                        coalesce(sum(bounce_delta), 0)::BIGINT AS bounces,
                        coalesce(sum(duration_ms), 0)::BIGINT AS duration_ms
                 FROM base WHERE {column} IS NOT NULL{v} GROUP BY 1 {page}",
                v = visits.text
            ),
            vec![&visits.params],
        ),
        Breakdown::Pages => (
            format!(
                "SELECT pathname AS value, count(DISTINCT visitor_id) AS visitors, count(*) AS pageviews,
                        count(DISTINCT session_id) AS visits
                 FROM base WHERE name = 'pageview' AND {m} GROUP BY 1 {page}",
                m = m.text
            ),
            vec![&m.params],
        ),
        Breakdown::ExitPages => (
            format!(
                ", exits AS (
                   SELECT session_id, any_value(visitor_id) AS visitor_id,
                          arg_max(pathname, ts) FILTER (WHERE name = 'pageview') AS exit_page
                   FROM base WHERE TRUE{v} GROUP BY session_id)
                 SELECT exit_page AS value, count(DISTINCT visitor_id) AS visitors, count(*) AS visits
                 FROM exits WHERE exit_page IS NOT NULL GROUP BY 1 {page}",
                v = visits.text
            ),
            vec![&visits.params],
        ),
        Breakdown::Events => (
            format!(
                "SELECT name AS value, count(DISTINCT visitor_id) AS visitors, count(*) AS events,
                        sum(revenue_amount) AS revenue
                 FROM base WHERE name <> 'pageview' AND {m} GROUP BY 1 {page}",
                m = m.text
            ),
            vec![&m.params],
        ),
    };
    let sql = format!("{} {sql}", scope.with.text);
    let params: Vec<Value> = std::iter::once(&scope.with.params)
        .chain(extra)
        .flatten()
        .cloned()
        .collect();
    run(snapshot, &sql, &params, |r| {
        let value: String = r.get(0)?;
        let visitors: i64 = r.get(1)?;
        Ok(match by {
            Breakdown::Visit(_) => {
                let m = metrics(visitors, r.get(3)?, r.get(2)?, r.get(4)?, r.get(5)?);
                serde_json::json!({
                    "value": value, "visitors": m.visitors, "pageviews": m.pageviews, "visits": m.visits,
                    "bounce_rate": m.bounce_rate, "visit_duration": m.visit_duration,
                })
            }
            Breakdown::Pages => serde_json::json!({
                "value": value, "visitors": visitors, "pageviews": r.get::<_, i64>(2)?, "visits": r.get::<_, i64>(3)?,
            }),
            Breakdown::ExitPages => serde_json::json!({
                "value": value, "visitors": visitors, "visits": r.get::<_, i64>(2)?,
            }),
            Breakdown::Events => serde_json::json!({
                "value": value, "visitors": visitors, "events": r.get::<_, i64>(2)?,
                "revenue": r.get::<_, Option<f64>>(3)?,
            }),
        })
    })
}

/// The first day any event was stored, for `period=all`.
pub fn earliest_day(snapshot: &Snapshot<'_>) -> Result<Option<chrono::NaiveDate>, StoreError> {
    let sql = "SELECT least((SELECT min(day) FROM parquet_files), (SELECT min(ts)::DATE FROM events_hot))::VARCHAR";
    let day: Option<String> = snapshot.conn.query_row(sql, [], |r| r.get(0))?;
    Ok(day.and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn buckets_cover_the_range_without_gaps() {
        let range = DateRange {
            first: day("2026-11-18"),
            last: day("2026-11-24"),
        };
        assert_eq!(bucket_labels(range, Interval::Day).len(), 7);
        assert_eq!(bucket_labels(range, Interval::Hour).len(), 7 * 24);
        assert_eq!(
            bucket_labels(range, Interval::Week),
            vec!["2026-11-16", "2026-11-23"]
        );
        let range = DateRange {
            first: day("2026-06-15"),
            last: day("2026-11-24"),
        };
        assert_eq!(
            bucket_labels(range, Interval::Month)
                .first()
                .map(String::as_str),
            Some("2026-06-01")
        );
        assert_eq!(bucket_labels(range, Interval::Month).len(), 6);
    }

    #[test]
    fn metrics_round_like_the_docs_say() {
        let m = metrics(3, 4, 7, 1, 90_000);
        assert_eq!(
            (m.bounce_rate, m.visit_duration, m.views_per_visit),
            (25, 23, 1.75)
        );
        assert_eq!(
            metrics(0, 0, 0, 0, 0).bounce_rate,
            0,
            "no visits means no division by zero"
        );
    }
}
