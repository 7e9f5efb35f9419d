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
