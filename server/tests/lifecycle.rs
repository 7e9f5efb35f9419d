//! Retention and erasure on a real store: whole old days go (rows, files, folders), and one
//! site's rows in a range vanish from hot rows and Parquet alike while other sites keep theirs.

mod common;

use axum::http::Method;
use chrono::NaiveDate;
use common::requests::{ORIGIN, request};
use common::{DAY, DAY_BEFORE, TestApp, fixture, load_fixture};

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("day")
}

/// Events per (site, day), read through a store snapshot.
async fn counts(app: &TestApp) -> Vec<(String, String, i64)> {
    app.state
        .store
        .read(None, |snapshot| {
            let sql = format!(
                "SELECT site_id, CAST(ts AS DATE)::VARCHAR, count(*) FROM ({}) GROUP BY ALL ORDER BY ALL",
                snapshot.relation_for(day("2000-01-01"), day("2100-01-01"))
            );
            let mut stmt = snapshot.conn.prepare(&sql)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
        .expect("counts")
}

async fn load_two_sites(app: &TestApp) {
    load_fixture(app).await;
    let other: Vec<_> = fixture()
        .into_iter()
        .map(|mut event| {
            event.site_id = "other.test".into();
            event
        })
        .collect();
    app.state.store.submit(other).await.expect("stored");
}

fn compact(app: &TestApp) {
    let now = chrono::NaiveDateTime::parse_from_str("2026-11-22 12:00:00", "%Y-%m-%d %H:%M:%S")
        .expect("now")
        .and_utc();
    app.state.store.compact_blocking(now).expect("compaction");
}

#[tokio::test]
async fn retention_drops_whole_old_days_with_their_folders() {
    let app = TestApp::new();
    load_two_sites(&app).await;
    compact(&app);
    let folder = app.dir.path().join("data/2026/11/19");
    assert!(folder.is_dir());
    // A late hot row of the old day too: retention removes hot rows as well.
    let mut late = fixture()[0].clone();
    late.site_id = "late.test".into();
    app.state.store.submit(vec![late]).await.expect("stored");

    let report = app
        .state
        .store
        .apply_retention_blocking(1, day("2026-11-21"))
        .expect("retention");
    assert_eq!(report.days_removed, 1);
    assert_eq!(report.hot_rows_removed, 1);
    assert!(report.files_removed >= 1);
    assert!(!folder.exists(), "the expired day's folder is deleted");
    let remaining = counts(&app).await;
    assert!(remaining.iter().all(|(_, d, _)| d == DAY), "{remaining:?}");
    assert_eq!(remaining.iter().map(|r| r.2).sum::<i64>(), 14);

    // keep_days = 0 keeps everything.
    let none = app
        .state
        .store
        .apply_retention_blocking(0, day("2030-01-01"))
        .expect("noop");
    assert_eq!(none.days_removed, 0);
    let app = app.reopen().await;
    assert_eq!(counts(&app).await, remaining, "a restart changes nothing");
}

#[tokio::test]
async fn erase_removes_one_sites_rows_in_hot_rows_and_parquet() {
    let app = TestApp::new();
    load_two_sites(&app).await;
    compact(&app);
    // Some rows stay hot: the erase must reach both places.
    let mut hot = fixture()[1].clone();
    hot.site_id = "fixture.test".into();
    app.state.store.submit(vec![hot]).await.expect("stored");
    let before = counts(&app).await;

    let report = app
        .state
        .store
        .erase_blocking("fixture.test", day(DAY), day(DAY))
        .expect("erase");
    assert_eq!(report.hot_rows, 1);
    assert_eq!(report.parquet_rows, 7);
    assert!(report.files_rewritten >= 1);
    let after = counts(&app).await;
    let expected: Vec<_> = before
        .iter()
        .filter(|(site, d, _)| !(site == "fixture.test" && d == DAY))
        .cloned()
        .collect();
    assert_eq!(after, expected);
    assert!(
        after
            .iter()
            .any(|(site, d, _)| site == "fixture.test" && d == DAY_BEFORE)
    );

    // The stats API agrees, also for rolled-up days, and after a restart.
    compact(&app);
    let app = app.reopen().await;
    assert_eq!(counts(&app).await, expected);
    let main = app
        .get_json(&format!(
            "/api/stats/main?site_id=fixture.test&period=custom&start_date={DAY_BEFORE}&end_date={DAY}"
        ))
        .await;
    assert_eq!(main["pageviews"], 1, "{main}");
    let other = app
        .get_json(&format!(
            "/api/stats/main?site_id=other.test&period=custom&start_date={DAY_BEFORE}&end_date={DAY}"
        ))
        .await;
    assert_eq!(other["pageviews"], 7, "{other}");
}

#[tokio::test]
async fn the_erase_endpoint_needs_an_admin_and_names_bad_fields() {
    let app = TestApp::new();
    load_two_sites(&app).await;
    compact(&app);
    let uri =
        format!("/api/gdpr/erase?site_id=fixture.test&start_date={DAY_BEFORE}&end_date={DAY}");
    let anonymous = app.send(request(Method::DELETE, &uri, &[], None)).await;
    assert_eq!(anonymous.status, 401);
    let cookie = app.cookie();
    let signed_in = [("cookie", cookie.as_str()), ("origin", ORIGIN)];
    for (query, field) in [
        ("start_date=2026-11-19&end_date=2026-11-20", "site_id"),
        ("site_id=fixture.test&end_date=2026-11-20", "start_date"),
        (
            "site_id=fixture.test&start_date=2026-11-19&end_date=20.11.2026",
            "end_date",
        ),
        (
            "site_id=fixture.test&start_date=2026-11-20&end_date=2026-11-19",
            "end_date",
        ),
    ] {
        let answer = app
            .send(request(
                Method::DELETE,
                &format!("/api/gdpr/erase?{query}"),
                &signed_in,
                None,
            ))
            .await;
        assert_eq!(answer.status, 400, "{query}");
        assert_eq!(answer.json()["field"], field, "{query}");
    }
    let answer = app
        .send(request(Method::DELETE, &uri, &signed_in, None))
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["parquet_rows"], 8);
    let left = counts(&app).await;
    assert!(
        left.iter().all(|(site, _, _)| site == "other.test"),
        "{left:?}"
    );
}
