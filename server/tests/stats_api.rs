//! The stats API on the hand-computed fixture of docs/metrics.md, before and after compaction.

mod common;

use common::{DAY, DAY_BEFORE, TestApp, load_fixture};
use serde_json::json;

fn main_uri(range: &str, extra: &str) -> String {
    format!("/api/stats/main?site_id=fixture.test&{range}{extra}")
}

const ON_DAY: &str = "period=day&date=2026-11-20";
const BOTH_DAYS: &str = "start_date=2026-11-19&end_date=2026-11-20";

async fn fixture_app() -> TestApp {
    let app = TestApp::new();
    load_fixture(&app).await;
    app
}

async fn assert_fixture_answers(app: &TestApp) {
    assert_eq!(
        app.get_json(&main_uri(ON_DAY, "")).await,
        json!({"visitors": 3, "visits": 4, "pageviews": 6, "views_per_visit": 1.5, "bounce_rate": 50, "visit_duration": 90})
    );
    assert_eq!(
        app.get_json(&main_uri(BOTH_DAYS, "")).await,
        json!({"visitors": 4, "visits": 5, "pageviews": 7, "views_per_visit": 1.4, "bounce_rate": 60, "visit_duration": 72})
    );
}

#[tokio::test]
async fn main_metrics_match_the_worked_example() {
    let app = fixture_app().await;
    assert_fixture_answers(&app).await;
}

#[tokio::test]
async fn compaction_and_restart_change_no_number() {
    let app = fixture_app().await;
    let timeseries = "/api/stats/timeseries?site_id=fixture.test&start_date=2026-11-16&end_date=2026-11-22&interval=week";
    let weeks_scanned = app.get_json(timeseries).await;
    let report = app.state.store.compact().await.expect("compaction");
    assert_eq!(report.rows_moved, 8);
    assert_eq!(report.files_written, 2, "one file per day");
    assert_eq!(
        report.days_rolled_up, 2,
        "both days are over: their totals are rolled up"
    );
    assert_eq!(
        app.get_json(timeseries).await,
        weeks_scanned,
        "rollups answer like a scan"
    );
    assert_eq!(
        weeks_scanned,
        json!([{"date": "2026-11-16", "visitors": 4, "pageviews": 7}])
    );
    for day in ["2026/11/19", "2026/11/20"] {
        let dir = app.dir.path().join("data").join(day);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .expect("day folder")
            .flatten()
            .collect();
        assert_eq!(files.len(), 1, "{day}: {files:?}");
    }
    assert_fixture_answers(&app).await;
    let app = app.reopen().await;
    assert_fixture_answers(&app).await;
}

#[tokio::test]
async fn previous_period_comparison() {
    let app = fixture_app().await;
    let body = app
        .get_json(&main_uri(ON_DAY, "&compare=previous_period"))
        .await;
    assert_eq!(
        body["previous_period"],
        json!({"visitors": 1, "visits": 1, "pageviews": 1, "views_per_visit": 1.0, "bounce_rate": 100,
               "visit_duration": 0, "start_date": DAY_BEFORE, "end_date": DAY_BEFORE})
    );
    assert_eq!(body["visitors"], 3);
}

#[tokio::test]
async fn filters_on_event_and_visit_attributes() {
    let app = fixture_app().await;
    assert_eq!(
        app.get_json(&main_uri(ON_DAY, "&filters=page%3D%3D%2Fblog"))
            .await,
        json!({"visitors": 2, "visits": 2, "pageviews": 2, "views_per_visit": 1.0, "bounce_rate": 50, "visit_duration": 30})
    );
    assert_eq!(
        app.get_json(&main_uri(ON_DAY, "&filters=country==DE"))
            .await,
        json!({"visitors": 2, "visits": 3, "pageviews": 5, "views_per_visit": 1.67, "bounce_rate": 33, "visit_duration": 120})
    );
    assert_eq!(
        app.get_json(&main_uri(ON_DAY, "&filters=source==Google;country==DE"))
            .await,
        json!({"visitors": 1, "visits": 1, "pageviews": 2, "views_per_visit": 2.0, "bounce_rate": 0, "visit_duration": 300})
    );
    assert_eq!(
        app.get_json(&main_uri(ON_DAY, "&filters=country!=DE"))
            .await["visitors"],
        1
    );
    assert_eq!(
        app.get_json(&main_uri(ON_DAY, "&filters=browser~fire"))
            .await["visitors"],
        1
    );
    assert_eq!(
        app.get_json(&main_uri(ON_DAY, "&filters=event==Signup"))
            .await["visits"],
        1
    );
}

#[tokio::test]
async fn breakdowns_sort_by_visitors_then_value() {
    let app = fixture_app().await;
    let get = |dim: &'static str| {
        let uri = format!("/api/stats/breakdown/{dim}?site_id=fixture.test&{ON_DAY}");
        let app = &app;
        async move { app.get_json(&uri).await }
    };
    assert_eq!(
        get("pages").await,
        json!([
            {"value": "/", "visitors": 2, "pageviews": 3, "visits": 3},
            {"value": "/blog", "visitors": 2, "pageviews": 2, "visits": 2},
            {"value": "/pricing", "visitors": 1, "pageviews": 1, "visits": 1}
        ])
    );
    assert_eq!(
        get("sources").await,
        json!([
            {"value": "Direct / None", "visitors": 2, "pageviews": 4, "visits": 3, "bounce_rate": 67, "visit_duration": 20},
            {"value": "Google", "visitors": 1, "pageviews": 2, "visits": 1, "bounce_rate": 0, "visit_duration": 300}
        ])
    );
    assert_eq!(
        get("entry_pages").await,
        json!([
            {"value": "/", "visitors": 2, "pageviews": 5, "visits": 3, "bounce_rate": 33, "visit_duration": 120},
            {"value": "/blog", "visitors": 1, "pageviews": 1, "visits": 1, "bounce_rate": 100, "visit_duration": 0}
        ])
    );
    assert_eq!(
        get("exit_pages").await,
        json!([
            {"value": "/blog", "visitors": 2, "visits": 2},
            {"value": "/", "visitors": 1, "visits": 1},
            {"value": "/pricing", "visitors": 1, "visits": 1}
        ])
    );
    assert_eq!(
        get("events").await,
        json!([{"value": "Signup", "visitors": 1, "events": 1, "revenue": null}])
    );
    assert_eq!(
        get("countries").await[0],
        json!({"value": "DE", "visitors": 2, "pageviews": 5, "visits": 3, "bounce_rate": 33, "visit_duration": 120})
    );
    assert_eq!(get("devices").await.as_array().map(Vec::len), Some(2));
    assert_eq!(get("browsers").await[0]["value"], "Chrome");
}

#[tokio::test]
async fn breakdown_paging() {
    let app = fixture_app().await;
    let uri = |page: u32| {
        format!("/api/stats/breakdown/pages?site_id=fixture.test&{ON_DAY}&limit=2&page={page}")
    };
    assert_eq!(
        app.get_json(&uri(1)).await.as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        app.get_json(&uri(2)).await,
        json!([{"value": "/pricing", "visitors": 1, "pageviews": 1, "visits": 1}])
    );
    assert_eq!(app.get_json(&uri(3)).await, json!([]));
}

#[tokio::test]
async fn timeseries_is_zero_filled() {
    let app = fixture_app().await;
    let days = app
        .get_json("/api/stats/timeseries?site_id=fixture.test&start_date=2026-11-18&end_date=2026-11-20&interval=day")
        .await;
    assert_eq!(
        days,
        json!([
            {"date": "2026-11-18", "visitors": 0, "pageviews": 0},
            {"date": DAY_BEFORE, "visitors": 1, "pageviews": 1},
            {"date": DAY, "visitors": 3, "pageviews": 6}
        ])
    );
    let hours = app
        .get_json(&format!(
            "/api/stats/timeseries?site_id=fixture.test&{ON_DAY}"
        ))
        .await;
    let hours = hours.as_array().expect("array");
    assert_eq!(hours.len(), 24, "a one-day period defaults to hours");
    assert_eq!(
        hours[9],
        json!({"date": "2026-11-20 09:00:00", "visitors": 1, "pageviews": 2})
    );
    assert_eq!(
        hours[10],
        json!({"date": "2026-11-20 10:00:00", "visitors": 1, "pageviews": 2})
    );
    assert_eq!(
        hours[13],
        json!({"date": "2026-11-20 13:00:00", "visitors": 0, "pageviews": 0})
    );
}

#[tokio::test]
async fn bad_parameters_answer_400_naming_the_field() {
    let app = fixture_app().await;
    let cases = [
        ("/api/stats/main?period=7d", "site_id"),
        (
            "/api/stats/main?site_id=fixture.test&period=fortnight",
            "period",
        ),
        (
            "/api/stats/main?site_id=fixture.test&start_date=2026-02-30&end_date=2026-03-01",
            "start_date",
        ),
        (
            "/api/stats/main?site_id=fixture.test&filters=colour==red",
            "filters",
        ),
        (
            "/api/stats/main?site_id=fixture.test&compare=last_year",
            "compare",
        ),
        (
            "/api/stats/timeseries?site_id=fixture.test&interval=minute",
            "interval",
        ),
        (
            "/api/stats/timeseries?site_id=fixture.test&period=90d&interval=hour",
            "interval",
        ),
        (
            "/api/stats/breakdown/colours?site_id=fixture.test",
            "dimension",
        ),
        (
            "/api/stats/breakdown/pages?site_id=fixture.test&limit=0",
            "limit",
        ),
        (
            "/api/stats/breakdown/pages?site_id=fixture.test&page=-1",
            "page",
        ),
    ];
    for (uri, field) in cases {
        let answer = app.get(uri).await;
        assert_eq!(answer.status, 400, "{uri}");
        let body = answer.json();
        assert_eq!(body["field"], field, "{uri}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn other_sites_are_not_counted() {
    let app = fixture_app().await;
    let body = app
        .get_json("/api/stats/main?site_id=other.test&period=day&date=2026-11-20")
        .await;
    assert_eq!(body["visitors"], 0);
    assert_eq!(body["bounce_rate"], 0);
}

#[tokio::test]
async fn closed_days_are_merged_into_one_file_exactly_once() {
    let app = TestApp::new();
    let events = common::fixture();
    let (first, second) = events.split_at(4);
    for event in first {
        app.state
            .store
            .submit(vec![event.clone()])
            .await
            .expect("stored");
    }
    app.state.store.compact().await.expect("first compaction");
    for event in second {
        app.state
            .store
            .submit(vec![event.clone()])
            .await
            .expect("stored");
    }
    let report = app.state.store.compact().await.expect("second compaction");
    assert_eq!(
        report.days_merged, 1,
        "2026-11-20 had two files and is over"
    );
    let dir = app.dir.path().join("data/2026/11/20");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("day folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with('m'),
        "the merged file replaced both: {files:?}"
    );
    assert_fixture_answers(&app).await;
    let again = app.state.store.compact().await.expect("idle compaction");
    assert_eq!((again.rows_moved, again.days_merged), (0, 0));
}

#[tokio::test]
async fn files_no_manifest_names_are_removed_at_start_up() {
    let app = fixture_app().await;
    app.state.store.compact().await.expect("compaction");
    let day = app.dir.path().join("data/2026/11/20");
    std::fs::write(day.join(".tmp-interrupted.parquet"), b"half written").expect("write");
    std::fs::copy(
        std::fs::read_dir(&day)
            .expect("dir")
            .flatten()
            .find(|e| {
                e.file_name().to_string_lossy().ends_with(".parquet")
                    && !e.file_name().to_string_lossy().starts_with('.')
            })
            .expect("a listed file")
            .path(),
        day.join("h999999999999.parquet"),
    )
    .expect("copy");
    let app = app.reopen().await;
    let names: Vec<String> = std::fs::read_dir(&day)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "the temp file and the unlisted copy are gone: {names:?}"
    );
    assert_fixture_answers(&app).await;
}

#[tokio::test]
async fn a_rolled_up_day_with_late_hot_rows_is_scanned_not_double_counted() {
    let app = fixture_app().await;
    assert_eq!(
        app.state
            .store
            .compact()
            .await
            .expect("compaction")
            .days_rolled_up,
        2
    );
    let late = common::Visit {
        visitor: 9,
        source: "Direct / None",
        browser: "Chrome",
        country: "FR",
        device: "Desktop",
    };
    app.state
        .store
        .submit(vec![common::event(
            DAY, "18:00", &late, "pageview", "/late",
        )])
        .await
        .expect("stored");
    let expected = json!({"visitors": 4, "visits": 5, "pageviews": 7, "views_per_visit": 1.4, "bounce_rate": 60, "visit_duration": 72});
    assert_eq!(app.get_json(&main_uri(ON_DAY, "")).await, expected);
    let report = app.state.store.compact().await.expect("compaction");
    assert_eq!(
        (report.rows_moved, report.days_rolled_up),
        (1, 1),
        "the day is rolled up anew"
    );
    assert_eq!(app.get_json(&main_uri(ON_DAY, "")).await, expected);
}

#[tokio::test]
async fn generated_visits_answer_the_same_from_rollups_and_from_a_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let last = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("date");
    let written =
        mallard_metrics::store::synthetic::generate(dir.path(), "bench.test", 5000, 3, last)
            .expect("generate");
    assert!(written > 4000, "{written} events");
    let mut config = mallard_metrics::config::Config::for_data_dir(dir.path());
    config.secret = Some(common::SECRET.into());
    let app = TestApp::from_state(dir, mallard_metrics::AppState::open(config).expect("open"));
    let range = "site_id=bench.test&start_date=2026-11-18&end_date=2026-11-20";
    let rolled = app.get_json(&format!("/api/stats/main?{range}")).await;
    assert_eq!(
        rolled["visits"],
        3 * 667,
        "ceil(5000 / 3 / 2.5) visits a day"
    );
    // An event filter every event matches forces the scan path.
    let scanned = app
        .get_json(&format!(
            "/api/stats/main?{range}&filters=hostname==bench.test"
        ))
        .await;
    assert_eq!(rolled, scanned);
    let days = app
        .get_json(&format!("/api/stats/timeseries?{range}&interval=day"))
        .await;
    let days_scanned = app
        .get_json(&format!(
            "/api/stats/timeseries?{range}&interval=day&filters=hostname==bench.test"
        ))
        .await;
    assert_eq!(days, days_scanned);
}

#[tokio::test]
async fn export_gives_one_row_per_day_as_json_or_csv() {
    let app = fixture_app().await;
    let uri = format!("/api/stats/export?site_id=fixture.test&{BOTH_DAYS}");
    assert_eq!(
        app.get_json(&uri).await,
        json!([
            {"date": DAY_BEFORE, "visitors": 1, "visits": 1, "pageviews": 1, "bounce_rate": 100, "visit_duration": 0},
            {"date": DAY, "visitors": 3, "visits": 4, "pageviews": 6, "bounce_rate": 50, "visit_duration": 90},
        ])
    );
    let csv = app.get(&format!("{uri}&format=csv")).await;
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        String::from_utf8_lossy(&csv.body),
        format!(
            "date,visitors,visits,pageviews,bounce_rate,visit_duration\n\
             {DAY_BEFORE},1,1,1,100,0\n{DAY},3,4,6,50,90\n"
        )
    );
    let bad = app.get(&format!("{uri}&format=xml")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["field"], "format");
}
