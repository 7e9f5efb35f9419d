//! The route table through the router: every non-public route answers 401 without
//! credentials, the public ones are exactly the expected list; first-run setup; the security
//! headers and the login page.

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use mallard_metrics::auth::Access;
use serde_json::json;

use common::requests::{STATS, cookie_pair, login, request};
use common::{PASSWORD, TestApp};

fn concrete(path: &str) -> String {
    path.replace("{dimension}", "pages")
        .replace("{id}", "0123456789abcdef")
}

async fn assert_every_protected_route_refuses(app: &TestApp, headers: &[(&str, &str)]) {
    let mut checked = 0;
    for route in mallard_metrics::routes() {
        if route.access == Access::Public {
            continue;
        }
        let body = (route.method == Method::POST).then(|| json!({"name": "x", "scope": "read"}));
        let answer = app
            .send(request(
                route.method.clone(),
                &concrete(route.path),
                headers,
                body,
            ))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{} {}",
            route.method,
            route.path
        );
        assert!(
            answer.json()["error"].is_string(),
            "{} {}",
            route.method,
            route.path
        );
        checked += 1;
    }
    assert!(checked >= 6, "stats and keys routes are protected");
    let paths = [
        "/api/v2/query",
        "/api/gdpr/erase",
        "/api/stats/unknown",
        "/api/keys/x/y",
        STATS,
    ];
    for path in paths {
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            let answer = app.send(request(method.clone(), path, headers, None)).await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} (no route yet)"
            );
        }
    }
}

#[tokio::test]
async fn every_non_public_route_answers_401_without_credentials() {
    let configured = TestApp::new();
    let unset = TestApp::with(|config| config.admin_password_hash = None);
    for app in [&configured, &unset] {
        assert_every_protected_route_refuses(app, &[]).await;
        assert_every_protected_route_refuses(app, &[("cookie", "mallard_session=forged")]).await;
        assert_every_protected_route_refuses(app, &[("authorization", "Bearer mm_forged")]).await;
        assert_every_protected_route_refuses(app, &[("x-forwarded-for", "127.0.0.1")]).await;
    }
    let status = unset.get_json("/api/auth/status").await;
    assert_eq!(status["setup_required"], true);
    assert_eq!(
        configured.get_json("/api/auth/status").await["setup_required"],
        false
    );
}

#[tokio::test]
async fn the_public_routes_are_exactly_these() {
    let public: BTreeSet<(String, String)> = mallard_metrics::routes()
        .into_iter()
        .filter(|route| route.access == Access::Public)
        .map(|route| (route.method.to_string(), route.path.to_string()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("GET", "/health"),
        ("GET", "/health/ready"),
        // Its own bearer token (MALLARD_METRICS_TOKEN), not a session or an API key:
        // `the_metrics_endpoint_needs_its_own_token` below.
        ("GET", "/metrics"),
        ("GET", "/mallard.js"),
        ("GET", "/js/script.js"),
        ("GET", "/api/event"),
        ("POST", "/api/event"),
        ("GET", "/api/auth/status"),
        ("POST", "/api/auth/setup"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/logout"),
        ("GET", "/"),
        ("GET", "/dashboard/app.js"),
        ("GET", "/dashboard/style.css"),
        ("GET", "/api/openapi.json"),
    ]
    .into_iter()
    .map(|(method, path)| (method.to_string(), path.to_string()))
    .collect();
    assert_eq!(
        public, expected,
        "a route was made public (or removed): update this list only on purpose"
    );
}

#[tokio::test]
async fn first_run_setup_persists_the_password_once() {
    let app = TestApp::with(|config| config.admin_password_hash = None);
    let answer = login(&app, PASSWORD, &[]).await;
    assert_eq!(
        answer.status, 401,
        "no password yet: nothing to log in with"
    );

    let setup = |password: &str| {
        request(
            Method::POST,
            "/api/auth/setup",
            &[],
            Some(json!({ "password": password })),
        )
    };
    let short = app.send(setup("too short")).await;
    assert_eq!(short.status, 400);
    assert_eq!(short.json()["field"], "password");
    let created = app.send(setup("a long enough password")).await;
    assert_eq!(created.status, 201);
    let cookie = cookie_pair(&created);
    let status = app
        .send(request(
            Method::GET,
            "/api/auth/status",
            &[("cookie", &cookie)],
            None,
        ))
        .await;
    assert_eq!(
        status.json(),
        json!({"authenticated": true, "setup_required": false})
    );
    assert_eq!(app.send(setup("another long password")).await.status, 409);

    let file = app.dir.path().join(".admin-password");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&file).expect("file").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let stored = std::fs::read_to_string(&file).expect("read");
    assert!(stored.starts_with("$argon2id$"), "only the hash is stored");
    assert!(!stored.contains("long enough"));

    let app = app.reopen().await;
    let status = app
        .send(request(
            Method::GET,
            "/api/auth/status",
            &[("cookie", &cookie)],
            None,
        ))
        .await;
    assert_eq!(
        status.json(),
        json!({"authenticated": false, "setup_required": false}),
        "the password survives a restart, sessions do not"
    );
    assert_eq!(app.send(setup("a third long password")).await.status, 409);
    assert_eq!(login(&app, "a long enough password", &[]).await.status, 200);
}

#[tokio::test]
async fn security_headers_are_on_every_response() {
    let app = TestApp::new();
    let pages = [
        "/",
        "/dashboard/app.js",
        "/health",
        "/mallard.js",
        "/api/auth/status",
        STATS,
        "/nowhere",
    ];
    for uri in pages {
        let answer = app.send(request(Method::GET, uri, &[], None)).await;
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        assert_eq!(header("x-frame-options"), "DENY", "{uri}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(
            header("referrer-policy"),
            "strict-origin-when-cross-origin",
            "{uri}"
        );
        assert!(header("permissions-policy").contains("camera=()"), "{uri}");
        let html = header("content-type").starts_with("text/html");
        assert_eq!(html, uri == "/", "{uri}");
        assert_eq!(
            !header("content-security-policy").is_empty(),
            html,
            "{uri}: CSP on HTML"
        );
        if uri.starts_with("/api/") {
            assert_eq!(header("cache-control"), "no-store", "{uri}");
        }
    }
    let page = app.get("/").await;
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(
        app.get("/mallard.js").await.headers["cache-control"],
        "public, max-age=86400"
    );
}

#[tokio::test]
async fn the_login_page_uses_no_inline_script_or_style() {
    let app = TestApp::new();
    let html = String::from_utf8(app.get("/").await.body).expect("utf-8");
    assert!(html.contains("Set the admin password") && html.contains("Sign in"));
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script defer src=\"/dashboard/").count()
    );
    assert!(!html.contains("style=") && !html.contains("<style") && !html.contains("onclick"));
    let script = app.get("/dashboard/app.js").await;
    assert_eq!(
        script.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(String::from_utf8_lossy(&script.body).contains("/api/auth/login"));
    assert_eq!(
        app.get("/dashboard/style.css").await.headers["content-type"],
        "text/css; charset=utf-8"
    );
}

#[tokio::test]
async fn a_corrupt_password_file_stops_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".admin-password"), "hunter2\n").expect("write");
    let mut config = mallard_metrics::config::Config::for_data_dir(dir.path());
    config.secret = Some(common::SECRET.into());
    let err = mallard_metrics::AppState::open(config)
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(
        message.contains(".admin-password") && message.contains("Argon2id"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn the_metrics_endpoint_needs_its_own_token() {
    let unset = TestApp::new();
    let cookie = unset.cookie();
    for headers in [vec![], vec![("cookie", cookie.as_str())]] {
        let answer = unset
            .send(request(Method::GET, "/metrics", &headers, None))
            .await;
        assert_eq!(answer.status, 404, "no token configured: no endpoint");
    }

    let token = "metrics-token-0123456789";
    let app = TestApp::with(|config| config.metrics_token = Some(token.into()));
    let cookie = app.cookie();
    let created = app
        .send(request(
            Method::POST,
            "/api/keys",
            &[("cookie", &cookie), ("origin", common::requests::ORIGIN)],
            Some(json!({"name": "admin", "scope": "admin"})),
        ))
        .await;
    let key = format!("Bearer {}", created.json()["key"].as_str().expect("key"));
    let refused: [&[(&str, &str)]; 5] = [
        &[],
        &[("cookie", &cookie)],
        &[("authorization", &key)],
        &[("authorization", "Bearer metrics-token-012345678")],
        &[("x-forwarded-for", "127.0.0.1")],
    ];
    for headers in refused {
        let answer = app
            .send(request(Method::GET, "/metrics", headers, None))
            .await;
        assert_eq!(answer.status, 401, "{headers:?}");
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
    }
    let bearer = format!("Bearer {token}");
    let answer = app
        .send(request(
            Method::GET,
            "/metrics",
            &[("authorization", &bearer)],
            None,
        ))
        .await;
    assert_eq!(answer.status, 200);
    assert!(String::from_utf8_lossy(&answer.body).contains("mallard_events_ingested_total"));
}
