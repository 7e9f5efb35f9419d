//! The SQL behind each stats endpoint. Visits, bounces and durations are sums of the per-event
//! deltas the sessionizer stored, so no query groups events by visit except exit pages.

use chrono::{Datelike, Days, NaiveDate};
use duckdb::params_from_iter;
use duckdb::types::Value;
use serde::Serialize;
use utoipa::ToSchema;

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
            snapshot.relation_for(range.first, range.last),
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

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct MainMetrics {
    /// Unique visitors (ids rotate daily, so one person on two days counts twice).
    pub visitors: u64,
    pub visits: u64,
    pub pageviews: u64,
    /// Pageviews per visit, rounded to two decimals.
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

/// Additive sums behind the main metrics. Visitors add up across days because visitor ids
/// rotate daily.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Totals {
    visitors: i64,
    visits: i64,
    pageviews: i64,
    bounces: i64,
    duration_ms: i64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, other: Totals) {
        self.visitors += other.visitors;
        self.visits += other.visits;
        self.pageviews += other.pageviews;
        self.bounces += other.bounces;
        self.duration_ms += other.duration_ms;
    }
}

impl Totals {
    fn metrics(self) -> MainMetrics {
        metrics(
            self.visitors,
            self.visits,
            self.pageviews,
            self.bounces,
            self.duration_ms,
        )
    }
}

/// Days (between `?1` and `?2`) whose rollups answer queries. A day with hot rows (events stored
/// with an old timestamp, e.g. by an import) is scanned instead until compaction rolls it up anew.
const USABLE_ROLLUP: &str = "day BETWEEN CAST(?1 AS DATE) AND CAST(?2 AS DATE)
    AND day IN (SELECT day FROM rolled_days)
    AND day NOT IN (SELECT DISTINCT CAST(ts AS DATE) FROM events_hot
                    WHERE ts >= CAST(?1 AS TIMESTAMP) AND ts < CAST(?2 AS TIMESTAMP) + INTERVAL 1 DAY)";

/// The sub-ranges of `range` whose days are not answered by `daily_rollups` and must be scanned.
fn unrolled_ranges(
    snapshot: &Snapshot<'_>,
    range: DateRange,
) -> Result<Vec<DateRange>, StoreError> {
    let rolled: std::collections::BTreeSet<NaiveDate> = rollups(snapshot, None, range)?
        .into_iter()
        .map(|(day, _)| day)
        .collect();
    let mut rest: Vec<DateRange> = Vec::new();
    for day in range.first.iter_days().take_while(|d| *d <= range.last) {
        if rolled.contains(&day) {
            continue;
        }
        match rest.last_mut() {
            Some(open) if open.last.succ_opt() == Some(day) => open.last = day,
            _ => rest.push(DateRange {
                first: day,
                last: day,
            }),
        }
    }
    Ok(rest)
}

/// Usable rollup rows of `range`, per day: for `site`, or (with `None`) one empty row per rolled
/// day, whatever the site, to tell which days need no scan.
fn rollups(
    snapshot: &Snapshot<'_>,
    site: Option<&str>,
    range: DateRange,
) -> Result<Vec<(NaiveDate, Totals)>, StoreError> {
    let sql = match site {
        Some(_) => format!(
            "SELECT day::VARCHAR, visitors, visits, pageviews, bounces, duration_ms
             FROM daily_rollups WHERE site_id = ?3 AND {USABLE_ROLLUP}"
        ),
        None => {
            format!("SELECT day::VARCHAR, 0, 0, 0, 0, 0 FROM rolled_days WHERE {USABLE_ROLLUP}")
        }
    };
    let mut params = vec![
        Value::Text(range.first.to_string()),
        Value::Text(range.last.to_string()),
    ];
    params.extend(site.map(|s| Value::Text(s.to_string())));
    let rows = run(snapshot, &sql, &params, |r| {
        let totals = Totals {
            visitors: r.get(1)?,
            visits: r.get(2)?,
            pageviews: r.get(3)?,
            bounces: r.get(4)?,
            duration_ms: r.get(5)?,
        };
        Ok((r.get::<_, String>(0)?, totals))
    })?;
    rows.into_iter()
        .map(|(day, totals)| {
            NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map(|day| (day, totals))
                .map_err(|e| StoreError::Corrupt(format!("bad rollup day {day:?}: {e}")))
        })
        .collect()
}

fn scan_totals(
    snapshot: &Snapshot<'_>,
    query: &StatsQuery,
    range: DateRange,
) -> Result<Totals, StoreError> {
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
    let rows = run(snapshot, &sql, &params, |r| {
        Ok(Totals {
            visitors: r.get(0)?,
            pageviews: r.get(1)?,
            visits: r.get(2)?,
            bounces: r.get(3)?,
            duration_ms: r.get(4)?,
        })
    })?;
    Ok(rows.into_iter().next().unwrap_or_default())
}

pub fn main_metrics(
    snapshot: &Snapshot<'_>,
    query: &StatsQuery,
    range: DateRange,
) -> Result<MainMetrics, StoreError> {
    if !query.filters.is_empty() {
        return Ok(scan_totals(snapshot, query, range)?.metrics());
    }
    let mut totals = Totals::default();
    for (_, day) in rollups(snapshot, Some(&query.site_id), range)? {
        totals += day;
    }
    for part in unrolled_ranges(snapshot, range)? {
        totals += scan_totals(snapshot, query, part)?;
    }
    Ok(totals.metrics())
}

/// One interval of a timeseries.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct Bucket {
    /// The interval's start: `2026-11-20` (day; a week's Monday; a month's first day) or
    /// `2026-11-20 09:00:00` (hour).
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

/// The bucket a day falls in.
fn bucket_of(day: NaiveDate, interval: Interval) -> String {
    match interval {
        Interval::Week => (day
            - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday())))
        .to_string(),
        Interval::Month => day.with_day(1).unwrap_or(day).to_string(),
        _ => day.to_string(),
    }
}

pub fn timeseries(
    snapshot: &Snapshot<'_>,
    query: &StatsQuery,
    interval: Interval,
) -> Result<Vec<Bucket>, StoreError> {
    let mut sums: std::collections::HashMap<String, (i64, i64)> = std::collections::HashMap::new();
    let mut add = |bucket: String, visitors: i64, pageviews: i64| {
        let entry = sums.entry(bucket).or_default();
        entry.0 += visitors;
        entry.1 += pageviews;
    };
    if query.filters.is_empty() && interval != Interval::Hour {
        // Whole days: rolled-up days from their totals, the others by scanning, per day.
        for (day, totals) in rollups(snapshot, Some(&query.site_id), query.range)? {
            add(bucket_of(day, interval), totals.visitors, totals.pageviews);
        }
        for part in unrolled_ranges(snapshot, query.range)? {
            for (day, visitors, pageviews) in scan_buckets(snapshot, query, part, Interval::Day)? {
                // Day buckets are labelled YYYY-MM-DD, so they parse back into days.
                if let Ok(day) = NaiveDate::parse_from_str(&day, "%Y-%m-%d") {
                    add(bucket_of(day, interval), visitors, pageviews);
                }
            }
        }
    } else {
        for (bucket, visitors, pageviews) in scan_buckets(snapshot, query, query.range, interval)? {
            add(bucket, visitors, pageviews);
        }
    }
    Ok(bucket_labels(query.range, interval)
        .into_iter()
        .map(|date| {
            let (visitors, pageviews) = sums.get(&date).copied().unwrap_or_default();
            Bucket {
                date,
                visitors: visitors as u64,
                pageviews: pageviews as u64,
            }
        })
        .collect())
}

fn scan_buckets(
    snapshot: &Snapshot<'_>,
    query: &StatsQuery,
    range: DateRange,
    interval: Interval,
) -> Result<Vec<(String, i64, i64)>, StoreError> {
    let scope = scope(snapshot, query, range);
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
    run(snapshot, &sql, &params, |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
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

/// A `{dimension}` of `/api/stats/breakdown/{dimension}`: one of [`BREAKDOWNS`].
pub struct Dimension;

impl utoipa::PartialSchema for Dimension {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::string_enum(BREAKDOWNS.iter().map(|(name, _)| *name), None)
    }
}

impl ToSchema for Dimension {}

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

/// A breakdown row; its fields depend on the dimension.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(untagged)]
pub enum BreakdownRow {
    Visit(VisitRow),
    Page(PageRow),
    ExitPage(ExitPageRow),
    Event(EventRow),
}

/// A row of a visit-attribute breakdown (every dimension but `pages`, `exit_pages` and
/// `events`): visit metrics per value.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitRow {
    pub value: String,
    pub visitors: u64,
    pub pageviews: u64,
    pub visits: u64,
    pub bounce_rate: u64,
    pub visit_duration: u64,
}

/// A row of `pages`.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageRow {
    pub value: String,
    pub visitors: i64,
    pub pageviews: i64,
    pub visits: i64,
}

/// A row of `exit_pages`.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExitPageRow {
    pub value: String,
    pub visitors: i64,
    pub visits: i64,
}

/// A row of `events` (custom events; pageviews excluded).
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRow {
    /// The event name.
    pub value: String,
    pub visitors: i64,
    pub events: i64,
    /// The sum of the events' revenue amounts; `null` without any.
    #[schema(required = true)]
    pub revenue: Option<f64>,
}

pub fn breakdown(
    snapshot: &Snapshot<'_>,
    query: &StatsQuery,
    by: Breakdown,
    paging: &Paging,
) -> Result<Vec<BreakdownRow>, StoreError> {
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
                "SELECT {column} AS value, count(DISTINCT visitor_id) FILTER (WHERE {m}) AS visitors,
                        count(*) FILTER (WHERE name = 'pageview' AND {m}) AS pageviews,
                        count(*) FILTER (WHERE is_entry) AS visits,
                        coalesce(sum(bounce_delta), 0)::BIGINT AS bounces,
                        coalesce(sum(duration_ms), 0)::BIGINT AS duration_ms
                 FROM base WHERE {column} IS NOT NULL{v} GROUP BY 1 {page}",
                m = m.text,
                v = visits.text
            ),
            vec![&m.params, &m.params, &visits.params],
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
                BreakdownRow::Visit(VisitRow {
                    value,
                    visitors: m.visitors,
                    pageviews: m.pageviews,
                    visits: m.visits,
                    bounce_rate: m.bounce_rate,
                    visit_duration: m.visit_duration,
                })
            }
            Breakdown::Pages => BreakdownRow::Page(PageRow {
                value,
                visitors,
                pageviews: r.get(2)?,
                visits: r.get(3)?,
            }),
            Breakdown::ExitPages => BreakdownRow::ExitPage(ExitPageRow {
                value,
                visitors,
                visits: r.get(2)?,
            }),
            Breakdown::Events => BreakdownRow::Event(EventRow {
                value,
                visitors,
                events: r.get(2)?,
                revenue: r.get(3)?,
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
