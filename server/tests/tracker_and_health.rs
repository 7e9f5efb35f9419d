//! The tracking script and the health probes, through the router.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::TestApp;

#[tokio::test]
async fn the_script_is_served_at_both_paths_with_an_etag() {
    let app = TestApp::new();
    let ours = app.get("/mallard.js").await;
    assert_eq!(ours.status, 200);
    assert!(
        ours.headers["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("application/javascript"))
    );
    assert!(String::from_utf8_lossy(&ours.body).contains("/api/event"));
    let plausible_path = app.get("/js/script.js").await;
    assert_eq!(plausible_path.body, ours.body);
    let etag = ours.headers["etag"].clone();
    let again = app
        .send(
            Request::get("/mallard.js")
                .header("if-none-match", etag)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::new();
    let health = app.get("/health").await;
    assert_eq!(
        (health.status.as_u16(), health.body.as_slice()),
        (200, &b"ok"[..])
    );
    let ready = app.get("/health/ready").await;
    assert_eq!(
        (ready.status.as_u16(), ready.body.as_slice()),
        (200, &b"ready"[..])
    );
}

#[tokio::test]
async fn the_served_script_fits_the_gzip_budget() {
    use std::io::Read;
    let app = TestApp::new();
    let plain = app.get("/mallard.js").await.body;
    let answer = app
        .send(
            Request::get("/mallard.js")
                .header("accept-encoding", "br, gzip;q=0.9")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(answer.headers["content-encoding"], "gzip");
    assert_ne!(
        answer.headers["etag"],
        app.get("/mallard.js").await.headers["etag"],
        "one ETag per encoding"
    );
    let size = answer.body.len();
    assert!(
        size <= 1024,
        "mallard.js is {size} bytes gzipped on the wire; the budget is 1024"
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(answer.body.as_slice())
        .read_to_end(&mut unzipped)
        .expect("valid gzip");
    assert_eq!(unzipped, plain);
    eprintln!("mallard.js: {} bytes, {size} bytes gzipped", plain.len());
}

#[tokio::test]
async fn hash_mode_keeps_the_route_fragment_in_the_path() {
    let app = TestApp::new();
    let event = |h: serde_json::Value| {
        serde_json::json!({"d": "example.com", "n": "pageview", "u": "https://example.com/app#/settings", "h": h}).to_string()
    };
    assert_eq!(
        app.post_event(&event(serde_json::json!(true)), common::CHROME)
            .await
            .status,
        202
    );
    assert_eq!(
        app.post_event(&event(serde_json::json!(false)), common::CHROME)
            .await
            .status,
        202
    );
    assert_eq!(
        app.post_event(&event(serde_json::json!("yes")), common::CHROME)
            .await
            .status,
        400
    );
    let pages = app
        .get_json("/api/stats/breakdown/pages?site_id=example.com&period=today")
        .await;
    let values: Vec<&str> = pages
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["value"].as_str())
        .collect();
    assert_eq!(values, vec!["/app", "/app#/settings"]);
}
