//! Observability: the Prometheus metrics, `/health/detailed`, request ids, the retention job's
//! count, and the JSON request log of the real binary (fields present, personal data absent).

mod common;

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};

use common::process::{PASSWORD, SECRET, Spawned, client};
use common::requests::{login, request};
use common::{CHROME, TestApp, Visit, event};

const TOKEN: &str = "metrics-test-token-0123456789";

async fn scrape(app: &TestApp) -> String {
    let bearer = format!("Bearer {TOKEN}");
    let answer = app
        .send(request(
            Method::GET,
            "/metrics",
            &[("authorization", &bearer)],
            None,
        ))
        .await;
    assert_eq!(answer.status, 200);
    let content_type = answer.headers["content-type"].to_str().expect("ascii");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    String::from_utf8(answer.body).expect("utf-8")
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

fn with_token() -> TestApp {
    TestApp::with(|config| config.metrics_token = Some(TOKEN.into()))
}

#[tokio::test]
async fn metrics_count_events_commits_logins_and_requests_by_route_template() {
    let app = with_token();
    let two_sites = json!({"d": "m.test,n.test", "n": "pageview", "u": "https://m.test/"});
    let one = json!({"d": "m.test", "n": "pageview", "u": "https://m.test/x"});
    let first = app.post_event(&two_sites.to_string(), CHROME).await;
    let second = app.post_event(&one.to_string(), CHROME).await;
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (202, 202));
    assert_eq!(
        login(&app, "not the password at all", &[]).await.status,
        401
    );
    let pages = app
        .get("/api/stats/breakdown/pages?site_id=m.test&period=today")
        .await;
    assert_eq!(pages.status, 200);
    assert_eq!(app.get("/nowhere/secret-path").await.status, 404);

    let ids: Vec<String> = [&first, &second, &pages]
        .iter()
        .map(|answer| {
            answer.headers["x-request-id"]
                .to_str()
                .expect("ascii")
                .to_string()
        })
        .collect();
    for id in &ids {
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "one id per request");

    let text = scrape(&app).await;
    assert_eq!(sample(&text, "mallard_events_ingested_total"), 3.0);
    assert_eq!(sample(&text, "mallard_flush_failures_total"), 0.0);
    assert_eq!(sample(&text, "mallard_login_failures_total"), 1.0);
    assert_eq!(sample(&text, "mallard_rate_limit_rejections_total"), 0.0);
    assert_eq!(sample(&text, "mallard_cache_misses_total"), 1.0);
    assert_eq!(sample(&text, "mallard_cache_hits_total"), 0.0);
    assert_eq!(sample(&text, "mallard_retention_deleted_events_total"), 0.0);
    assert_eq!(sample(&text, "mallard_behavioral_extension"), 0.0);
    assert_eq!(sample(&text, "mallard_buffered_events"), 0.0);
    assert_eq!(sample(&text, "mallard_commit_batch_size_sum"), 3.0);
    assert!(sample(&text, "mallard_commit_batch_size_count") >= 2.0);
    assert!(sample(&text, "mallard_commit_duration_seconds_count") >= 2.0);
    let breakdown = text
        .lines()
        .find(|line| {
            line.starts_with("mallard_http_request_duration_seconds_count{")
                && line.contains(r#"route="/api/stats/breakdown/{dimension}""#)
        })
        .unwrap_or_else(|| panic!("no breakdown histogram in\n{text}"));
    assert!(
        breakdown.contains(r#"method="GET""#) && breakdown.contains(r#"status="200""#),
        "{breakdown}"
    );
    assert!(text.contains(r#"route="/api/event",method="POST",status="202""#));
    assert!(text.contains(r#"route="unmatched""#));
    assert!(
        !text.contains("breakdown/pages") && !text.contains("secret-path"),
        "raw paths never become labels"
    );
}

#[tokio::test]
async fn health_detailed_needs_credentials_and_tells_no_secret() {
    let app = with_token();
    let anonymous = app
        .send(request(Method::GET, "/health/detailed", &[], None))
        .await;
    assert_eq!(anonymous.status, 401);
    let health = app.get_json("/health/detailed").await;
    for key in [
        "status",
        "version",
        "buffered_events",
        "auth_configured",
        "geoip_loaded",
        "filter_bots",
        "cache_entries",
        "cache_empty",
        "behavioral_extension_loaded",
        "uptime_seconds",
        "flush_failures",
    ] {
        assert!(health.get(key).is_some(), "{key} missing: {health}");
    }
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["behavioral_extension_loaded"], false);
    assert_eq!(health["auth_configured"], true);
    assert_eq!(health["geoip_loaded"], false);
    assert_eq!(health["filter_bots"], true);
    assert_eq!(health["buffered_events"], 0);
    assert_eq!(health["cache_empty"], true);
    assert_eq!(health["metrics_enabled"], true);
    let text = health.to_string();
    for secret in [TOKEN, common::SECRET, "$argon2id", common::PASSWORD] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let live = app.send(request(Method::GET, "/health", &[], None)).await;
    assert_eq!(
        (live.status.as_u16(), live.body.as_slice()),
        (200, &b"ok"[..])
    );
}

#[tokio::test]
async fn retention_removes_old_events_counts_them_and_clears_the_cache() {
    let app = TestApp::with(|config| {
        config.retention_days = 30;
        config.metrics_token = Some(TOKEN.into());
    });
    let today = chrono::Utc::now().date_naive();
    let visit = Visit {
        visitor: 7,
        source: "Direct / None",
        browser: "Chrome",
        country: "DE",
        device: "Desktop",
    };
    let days_ago = |n: i64| (today - chrono::Duration::days(n)).to_string();
    let events = vec![
        event(&days_ago(40), "10:00", &visit, "pageview", "/old"),
        event(&days_ago(40), "10:01", &visit, "pageview", "/old/2"),
        event(&days_ago(10), "10:00", &visit, "pageview", "/recent"),
        event(&today.to_string(), "00:00", &visit, "pageview", "/today"),
    ];
    app.state.store.submit(events).await.expect("stored");
    let uri = "/api/stats/main?site_id=fixture.test&period=all";
    assert_eq!(app.get_json(uri).await["pageviews"], 4);

    let report = mallard_metrics::server::apply_retention(&app.state)
        .await
        .expect("retention");
    assert_eq!(report.hot_rows_removed, 2);
    assert_eq!(
        app.get_json(uri).await["pageviews"],
        2,
        "no stale cached answer"
    );
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "mallard_retention_deleted_events_total"), 2.0);
}

/// Every JSON line of a log.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_request_logs_name_the_route_and_no_personal_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("MALLARD_LOG_FORMAT", "json"), ("MALLARD_LOG", "info")];
    let mut server = Spawned::start(dir.path(), &env, true).await;
    let client = client();
    let forwarded = "203.0.113.77";
    let cookie = server.login(&client).await;
    let event = json!({"d": "log.test", "n": "pageview", "u": "https://log.test/p?utm_source=news&q=querysecret"});
    let posted = client
        .post(format!("{}/api/event", server.base))
        .header("content-type", "text/plain")
        .header("x-forwarded-for", forwarded)
        .body(event.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), 202);
    let stats = client
        .get(format!(
            "{}/api/stats/breakdown/pages?site_id=log.test&period=today&limit=7",
            server.base
        ))
        .header("cookie", &cookie)
        .header("x-forwarded-for", forwarded)
        .send()
        .await
        .expect("stats");
    assert_eq!(stats.status(), 200);
    let stats_id = stats.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();

    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("exits on SIGTERM");
    assert!(status.success());
    let mut log = String::new();
    if let Some(mut pipe) = server.child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut log).expect("stderr");
    }

    let requests: Vec<Value> = json_lines(&log)
        .into_iter()
        .filter(|line| line["message"] == "request")
        .collect();
    let line = requests
        .iter()
        .find(|line| line["request_id"] == stats_id.as_str())
        .unwrap_or_else(|| panic!("no log line for request {stats_id}:\n{log}"));
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/api/stats/breakdown/{dimension}");
    assert_eq!(line["status"], 200);
    assert!(line["latency_ms"].as_f64().is_some(), "{line}");
    assert!(requests.iter().any(|line| {
        line["route"] == "/api/event" && line["status"] == 202 && line["method"] == "POST"
    }));
    assert!(
        requests
            .iter()
            .any(|line| line["route"] == "/api/auth/login" && line["status"] == 200)
    );
    let session = cookie.trim_start_matches("mallard_session=");
    for private in [
        forwarded,
        PASSWORD,
        SECRET,
        session,
        "querysecret",
        "limit=7",
        "Chrome/120",
    ] {
        assert!(!log.contains(private), "{private:?} is in the log:\n{log}");
    }
}
