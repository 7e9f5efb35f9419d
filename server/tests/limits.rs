//! Load limits and the query cache through the router: events per site per second (429 with
//! `Retry-After`, then recovery), cached stats answers (hits, misses, staleness up to the TTL,
//! none with TTL 0), and the cap on concurrent queries (wait, then 503).

mod common;

use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::json;

use common::requests::request;
use common::{CHROME, TestApp};

const TOKEN: &str = "limits-metrics-token-0123";

fn event(site: &str, path: &str) -> String {
    json!({"d": site, "n": "pageview", "u": format!("https://{site}{path}")}).to_string()
}

/// The value of one sample line of `/metrics`, e.g. `mallard_cache_hits_total`.
async fn metric(app: &TestApp, name: &str) -> f64 {
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
    let text = String::from_utf8(answer.body).expect("utf-8");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

async fn pageviews(app: &TestApp, query: &str) -> u64 {
    app.get_json(&format!("/api/stats/main?{query}")).await["pageviews"]
        .as_u64()
        .expect("pageviews")
}

#[tokio::test]
async fn a_site_over_its_rate_gets_429_then_recovers() {
    let app = TestApp::with(|config| {
        config.rate_limit = 2;
        config.cache_ttl = Duration::ZERO;
        config.metrics_token = Some(TOKEN.into());
    });
    for n in 0..2 {
        let answer = app
            .post_event(&event("busy.test", &format!("/{n}")), CHROME)
            .await;
        assert_eq!(answer.status, 202);
    }
    let refused = app.post_event(&event("busy.test", "/2"), CHROME).await;
    assert_eq!(refused.status, 429);
    assert!(refused.json()["error"].as_str().is_some());
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert_eq!(retry, 1);
    assert_eq!(
        app.post_event(&event("calm.test", "/"), CHROME)
            .await
            .status,
        202,
        "the limit is per site"
    );
    assert_eq!(
        metric(&app, "mallard_rate_limit_rejections_total").await,
        1.0
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = app.post_event(&event("busy.test", "/3"), CHROME).await;
    assert_eq!(answer.status, 202, "a second later the site may send again");
    assert_eq!(
        pageviews(&app, "site_id=busy.test&period=today").await,
        3,
        "the refused event was not stored"
    );
}

#[tokio::test]
async fn repeated_questions_are_answered_from_the_cache_until_the_ttl() {
    let app = TestApp::with(|config| {
        config.cache_ttl = Duration::from_secs(3);
        config.metrics_token = Some(TOKEN.into());
    });
    assert_eq!(
        app.post_event(&event("c.test", "/a"), CHROME).await.status,
        202
    );
    let query = "site_id=c.test&period=today";
    assert_eq!(pageviews(&app, query).await, 1);
    assert_eq!(metric(&app, "mallard_cache_misses_total").await, 1.0);

    let cached_at = Instant::now();
    assert_eq!(
        app.post_event(&event("c.test", "/b"), CHROME).await.status,
        202
    );
    assert_eq!(pageviews(&app, query).await, 1, "stale within the TTL");
    assert_eq!(
        pageviews(&app, "period=today&site_id=c.test").await,
        1,
        "the parameters' order does not matter"
    );
    let uri = format!("/api/stats/main?{query}");
    let anonymous = app.send(request(Method::GET, &uri, &[], None)).await;
    assert_eq!(
        anonymous.status, 401,
        "the cache never answers without credentials"
    );
    // Other credentials asking the same question get the same cached answer.
    let cookie = app.cookie();
    let created = app
        .send(request(
            Method::POST,
            "/api/keys",
            &[("cookie", &cookie), ("origin", common::requests::ORIGIN)],
            Some(json!({"name": "reader", "scope": "read"})),
        ))
        .await;
    let bearer = format!("Bearer {}", created.json()["key"].as_str().expect("key"));
    let by_key = app
        .send(request(
            Method::GET,
            &uri,
            &[("authorization", &bearer)],
            None,
        ))
        .await;
    assert_eq!(by_key.json()["pageviews"], 1);
    assert_eq!(metric(&app, "mallard_cache_hits_total").await, 3.0);
    let health = app.get_json("/health/detailed").await;
    assert_eq!(health["cache_empty"], false);
    assert!(health["cache_entries"].as_u64() >= Some(1));

    tokio::time::sleep(
        Duration::from_secs(3).saturating_sub(cached_at.elapsed()) + Duration::from_millis(200),
    )
    .await;
    assert_eq!(pageviews(&app, query).await, 2, "fresh once the TTL passed");

    app.state.cache.invalidate_all();
    let health = app.get_json("/health/detailed").await;
    assert_eq!(health["cache_empty"], true, "{health}");
}

#[tokio::test]
async fn with_a_zero_ttl_new_events_show_at_once() {
    let app = TestApp::with(|config| {
        config.cache_ttl = Duration::ZERO;
        config.metrics_token = Some(TOKEN.into());
    });
    let query = "site_id=z.test&period=today";
    for expected in 1..=3 {
        let path = format!("/{expected}");
        assert_eq!(
            app.post_event(&event("z.test", &path), CHROME).await.status,
            202
        );
        assert_eq!(pageviews(&app, query).await, expected);
    }
    assert_eq!(metric(&app, "mallard_cache_hits_total").await, 0.0);
    assert_eq!(metric(&app, "mallard_cache_misses_total").await, 0.0);
}

#[tokio::test]
async fn queries_over_the_cap_wait_then_get_503() {
    let app = TestApp::with(|config| config.max_concurrent_queries = 1);
    let cached = "/api/stats/main?site_id=q.test&period=today";
    assert_eq!(app.get(cached).await.status, 200);

    let slot = app.state.limits.query_slot().await.expect("the only slot");
    let started = Instant::now();
    let busy = app
        .get("/api/stats/timeseries?site_id=q.test&period=today")
        .await;
    let waited = started.elapsed();
    assert_eq!(busy.status, 503);
    assert_eq!(busy.headers["retry-after"], "1");
    assert!(busy.json()["error"].as_str().is_some());
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(4),
        "waited {waited:?}"
    );
    assert_eq!(
        app.get(cached).await.status,
        200,
        "a cached answer needs no query slot"
    );

    // A slot freed while a query waits lets it run.
    let release = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(slot);
    };
    let (answer, ()) = tokio::join!(
        app.get("/api/stats/breakdown/pages?site_id=q.test&period=today"),
        release
    );
    assert_eq!(answer.status, 200);
}
