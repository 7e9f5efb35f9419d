//! `POST /api/event` and `GET /api/event` through the router, on a real DuckDB: what is stored,
//! what is refused, and that nothing about the client's address reaches the disk.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::{CHROME, IPHONE, TestApp, testdata};
use serde_json::json;

const TODAY_MAIN: &str = "/api/stats/main?site_id=example.com&period=today";

async fn pageviews(app: &TestApp) -> u64 {
    app.get_json(TODAY_MAIN).await["pageviews"]
        .as_u64()
        .expect("pageviews")
}

#[tokio::test]
async fn a_pageview_round_trips_with_its_enrichment() {
    let app = TestApp::new();
    let body = json!({
        "d": "example.com", "n": "pageview",
        "u": "https://www.example.com/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=launch%20week#plans",
        "r": "https://mail.google.com/mail/u/0/?secret=1", "w": 1280
    });
    let answer = app.post_event(&body.to_string(), CHROME).await;
    assert_eq!(
        answer.status,
        202,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(pageviews(&app).await, 1);

    let breakdown =
        |dim: &str| format!("/api/stats/breakdown/{dim}?site_id=example.com&period=today");
    assert_eq!(
        app.get_json(&breakdown("pages")).await[0]["value"],
        "/pricing",
        "query and fragment are not stored"
    );
    assert_eq!(
        app.get_json(&breakdown("utm_campaign")).await[0]["value"],
        "launch week"
    );
    assert_eq!(
        app.get_json(&breakdown("sources")).await[0]["value"],
        "newsletter"
    );
    assert_eq!(
        app.get_json(&breakdown("channels")).await[0]["value"],
        "email"
    );
    assert_eq!(
        app.get_json(&breakdown("referrers")).await[0]["value"],
        "mail.google.com/mail/u/0"
    );
    assert_eq!(
        app.get_json(&breakdown("browsers")).await[0]["value"],
        "Chrome"
    );
    assert_eq!(
        app.get_json(&breakdown("browser_versions")).await[0]["value"],
        "120.0"
    );
    assert_eq!(app.get_json(&breakdown("os")).await[0]["value"], "Windows");
    assert_eq!(
        app.get_json(&breakdown("devices")).await[0]["value"],
        "Desktop"
    );
}

#[tokio::test]
async fn plausible_long_names_and_custom_events_with_props_and_revenue() {
    let app = TestApp::new();
    let plausible = json!({"domain": "example.com", "name": "pageview", "url": "https://example.com/", "referrer": null});
    assert_eq!(
        app.post_event(&plausible.to_string(), IPHONE).await.status,
        202
    );
    let purchase = json!({
        "name": "Purchase", "url": "https://example.com/checkout", "domain": "example.com",
        "props": "{\"plan\":\"pro\"}", "revenue": {"amount": "49.99", "currency": "usd"}
    });
    assert_eq!(
        app.post_event(&purchase.to_string(), IPHONE).await.status,
        202
    );
    let short = json!({"n": "Purchase", "u": "https://example.com/checkout", "d": "example.com", "ra": 10.01, "rc": "USD", "p": {"plan": "basic"}});
    assert_eq!(app.post_event(&short.to_string(), IPHONE).await.status, 202);

    let events = app
        .get_json("/api/stats/breakdown/events?site_id=example.com&period=today")
        .await;
    assert_eq!(events[0]["value"], "Purchase");
    assert_eq!(events[0]["events"], 2);
    assert_eq!(
        events[0]["visitors"], 1,
        "same client, same day: one visitor"
    );
    assert!((events[0]["revenue"].as_f64().expect("revenue") - 60.0).abs() < 1e-9);
    let devices = app
        .get_json("/api/stats/breakdown/devices?site_id=example.com&period=today")
        .await;
    assert_eq!(devices[0]["value"], "Mobile");
    let main = app.get_json(TODAY_MAIN).await;
    assert_eq!(
        (main["visits"].as_u64(), main["bounce_rate"].as_u64()),
        (Some(1), Some(0))
    );
}

#[tokio::test]
async fn invalid_payloads_get_400_naming_the_field_and_store_nothing() {
    let app = TestApp::new();
    let long = "x".repeat(257);
    let long_url = format!("https://example.com/{}", "a".repeat(2048));
    let many_props: serde_json::Map<String, serde_json::Value> =
        (0..31).map(|i| (format!("k{i}"), json!(i))).collect();
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "body"),
        ("[1,2]".into(), "body"),
        (json!({"n": "pageview", "u": "https://example.com/"}).to_string(), "d"),
        (json!({"d": "example.com", "u": "https://example.com/"}).to_string(), "n"),
        (json!({"d": "example.com", "n": "pageview"}).to_string(), "u"),
        (json!({"d": long, "n": "pageview", "u": "https://example.com/"}).to_string(), "d"),
        (json!({"d": "example.com", "n": long, "u": "https://example.com/"}).to_string(), "n"),
        (json!({"d": "example.com", "n": "pageview", "u": long_url}).to_string(), "u"),
        (json!({"d": "example.com", "n": "pageview", "u": "/relative"}).to_string(), "u"),
        (json!({"d": "example.com", "n": "pageview", "u": "ftp://example.com/"}).to_string(), "u"),
        (json!({"d": "example.com", "n": "pageview", "u": "https://example.com/", "r": 5}).to_string(), "r"),
        (json!({"d": "example.com", "n": "pageview", "u": "https://example.com/", "w": -1}).to_string(), "w"),
        (json!({"d": "example.com", "n": "pageview", "u": "https://example.com/", "p": many_props}).to_string(), "p"),
        (json!({"d": "example.com", "n": "pageview", "u": "https://example.com/", "p": "[1]"}).to_string(), "p"),
        (json!({"d": "example.com", "n": "pageview", "u": "https://example.com/", "p": {"a": {"b": 1}}}).to_string(), "p"),
        (json!({"d": "example.com", "n": "Buy", "u": "https://example.com/", "revenue": {"amount": 5, "currency": "XYZ"}}).to_string(), "revenue.currency"),
        (json!({"d": "example.com", "n": "Buy", "u": "https://example.com/", "revenue": {"amount": "lots", "currency": "EUR"}}).to_string(), "revenue.amount"),
        (json!({"d": "example.com", "n": "Buy", "u": "https://example.com/", "ra": 5}).to_string(), "rc"),
        (r#"{"d":"example.com","n":"Buy","u":"https://example.com/","ra":1e400,"rc":"EUR"}"#.into(), "body"),
    ];
    for (body, field) in &cases {
        let answer = app.post_event(body, CHROME).await;
        assert_eq!(answer.status, 400, "{body}");
        let error = answer.json();
        assert_eq!(error["field"], *field, "{body}: {error}");
        assert!(
            error["error"].as_str().is_some_and(|e| e.len() > 5),
            "{error}"
        );
    }
    let big_props = json!({"d": "example.com", "n": "x", "u": "https://example.com/", "p": {"k": "v".repeat(5000)}});
    assert_eq!(
        app.post_event(&big_props.to_string(), CHROME).await.json()["field"],
        "p"
    );
    assert_eq!(pageviews(&app).await, 0);
    assert_eq!(
        app.get_json("/api/stats/breakdown/events?site_id=example.com&period=today")
            .await,
        json!([])
    );
}

#[tokio::test]
async fn oversize_bodies_get_413() {
    let app = TestApp::new();
    let body = format!(
        r#"{{"d":"example.com","n":"pageview","u":"https://example.com/","pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let answer = app.post_event(&body, CHROME).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["field"], "body");
    assert_eq!(pageviews(&app).await, 0);
}

#[tokio::test]
async fn bots_are_acknowledged_but_not_stored() {
    // The same question is asked before and after an event: no cached answer in between.
    let app = TestApp::with(|config| config.cache_ttl = std::time::Duration::ZERO);
    let body =
        json!({"d": "example.com", "n": "pageview", "u": "https://example.com/"}).to_string();
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    assert_eq!(app.post_event(&body, googlebot).await.status, 202);
    assert_eq!(app.post_event(&body, "").await.status, 202);
    assert_eq!(pageviews(&app).await, 0);
    assert_eq!(app.post_event(&body, CHROME).await.status, 202);
    assert_eq!(pageviews(&app).await, 1);
}

#[tokio::test]
async fn the_pixel_variant_answers_a_gif() {
    let app = TestApp::new();
    let answer = app
        .send(
            Request::get("/api/event?d=example.com&u=https%3A%2F%2Fexample.com%2Fnoscript&w=400")
                .header("user-agent", CHROME)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["content-type"], "image/gif");
    assert!(answer.body.starts_with(b"GIF89a"));
    let pages = app
        .get_json("/api/stats/breakdown/pages?site_id=example.com&period=today")
        .await;
    assert_eq!(pages[0]["value"], "/noscript");
    let bad = app.get("/api/event?d=example.com").await;
    assert_eq!(
        (bad.status.as_u16(), bad.json()["field"].clone()),
        (400, json!("u"))
    );
}

#[tokio::test]
async fn cors_is_open_for_ingestion_only() {
    let app = TestApp::new();
    let preflight = |path: &str| {
        Request::options(path)
            .header("origin", "https://customer.example")
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .expect("request")
    };
    let answer = app.send(preflight("/api/event")).await;
    assert_eq!(
        answer
            .headers
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"*"[..])
    );
    let answer = app.send(preflight("/api/stats/main")).await;
    assert!(answer.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn stats_need_credentials_even_from_the_server_itself() {
    let app = TestApp::new();
    for forwarded in [None, Some("203.0.113.50"), Some("127.0.0.1")] {
        let mut request = Request::get(TODAY_MAIN);
        if let Some(address) = forwarded {
            request = request.header("x-forwarded-for", address);
        }
        let answer = app
            .send(request.body(Body::empty()).expect("request"))
            .await;
        assert_eq!(answer.status, 401, "forwarded for {forwarded:?}");
        assert!(answer.json()["error"].as_str().is_some());
    }
    assert_eq!(
        app.get(TODAY_MAIN).await.status,
        200,
        "a signed-in client may read"
    );
}

#[tokio::test]
async fn forwarded_address_locates_the_visitor_and_never_reaches_the_disk() {
    let app =
        TestApp::with(|config| config.geoip_db = Some(testdata("geoip/GeoIP2-City-Test.mmdb")));
    let unique_ua =
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0 Unique4242";
    let send = |ip: &'static str| {
        Request::post("/api/event")
            .header("user-agent", unique_ua)
            .header("x-forwarded-for", ip)
            .body(Body::from(
                json!({"d": "example.com", "n": "pageview", "u": "https://example.com/geo"})
                    .to_string(),
            ))
            .expect("request")
    };
    assert_eq!(app.send(send("81.2.69.142")).await.status, 202);
    assert_eq!(app.send(send("216.160.83.56")).await.status, 202);
    assert_eq!(
        app.send(send("1.1.1.1")).await.status,
        202,
        "an unknown address still counts"
    );
    let get = |dim: &str| format!("/api/stats/breakdown/{dim}?site_id=example.com&period=today");
    let countries = app.get_json(&get("countries")).await;
    let values: Vec<&str> = countries
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["value"].as_str())
        .collect();
    assert_eq!(values, vec!["GB", "US"]);
    let cities = app.get_json(&get("cities")).await;
    let cities: Vec<&str> = cities
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["value"].as_str())
        .collect();
    assert_eq!(cities, vec!["London", "Milton"]);
    assert_eq!(app.get_json(&get("regions")).await[0]["value"], "GB-ENG");
    assert_eq!(pageviews(&app).await, 3);

    app.state.store.compact().await.expect("compaction");
    let app = app.reopen().await;
    assert_eq!(pageviews(&app).await, 3);
    app.state.store.close().await;
    for needle in ["81.2.69.142", "216.160.83.56", "1.1.1.1", "Unique4242"] {
        let hits = files_containing(app.dir.path(), needle.as_bytes());
        assert!(hits.is_empty(), "{needle} found in {hits:?}");
    }
}

fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .expect("readable")
                .windows(needle.len())
                .any(|w| w == needle)
            {
                hits.push(path);
            }
        }
    }
    hits
}

#[tokio::test]
async fn a_country_only_database_gives_countries_without_cities() {
    let app = TestApp::with(|config| {
        config.geoip_db = Some(testdata("geoip/GeoLite2-Country-Test.mmdb"))
    });
    let request = Request::post("/api/event")
        .header("user-agent", CHROME)
        .header("x-forwarded-for", "67.43.156.0")
        .body(Body::from(
            json!({"d": "example.com", "n": "pageview", "u": "https://example.com/"}).to_string(),
        ))
        .expect("request");
    assert_eq!(app.send(request).await.status, 202);
    let get = |dim: &str| format!("/api/stats/breakdown/{dim}?site_id=example.com&period=today");
    assert_eq!(app.get_json(&get("countries")).await[0]["value"], "BT");
    assert_eq!(app.get_json(&get("cities")).await, json!([]));
}

#[tokio::test]
async fn a_missing_geoip_database_fails_start_up_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = mallard_metrics::config::Config::for_data_dir(dir.path());
    config.geoip_db = Some(dir.path().join("nope.mmdb"));
    let Err(err) = mallard_metrics::AppState::open(config) else {
        panic!("must not start without its GeoIP file")
    };
    assert!(err.to_string().contains("nope.mmdb"), "{err}");
}
