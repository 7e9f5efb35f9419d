//! Sessions, API keys, CSRF and the login lockout, through the router.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::json;

use common::requests::{ORIGIN, STATS, cookie_pair, from_peer, login, request, set_cookie};
use common::{Answer, PASSWORD, TestApp};

#[tokio::test]
async fn login_sets_a_strict_cookie_and_logout_ends_the_session() {
    let app = TestApp::new();
    assert_eq!(login(&app, "wrong password!", &[]).await.status, 401);
    let answer = login(&app, PASSWORD, &[]).await;
    assert_eq!(answer.status, 200);
    let header = set_cookie(&answer);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=86400"] {
        assert!(header.contains(attribute), "{header}");
    }
    assert!(!header.contains("Secure"), "{header}");
    let cookie = cookie_pair(&answer);
    assert_eq!(
        cookie.len(),
        "mallard_session=".len() + 43,
        "a 256-bit token"
    );
    let read = || request(Method::GET, STATS, &[("cookie", &cookie)], None);
    assert_eq!(app.send(read()).await.status, 200);

    let logout = app
        .send(request(
            Method::POST,
            "/api/auth/logout",
            &[("cookie", &cookie), ("origin", ORIGIN)],
            None,
        ))
        .await;
    assert_eq!(logout.status, 204);
    assert!(set_cookie(&logout).contains("Max-Age=0"));
    assert_eq!(app.send(read()).await.status, 401, "the session is gone");

    let secure = TestApp::with(|config| {
        config.secure_cookies = true;
        config.session_ttl = std::time::Duration::from_secs(600);
    });
    let header = set_cookie(&login(&secure, PASSWORD, &[]).await);
    assert!(
        header.contains("Max-Age=600") && header.contains("; Secure"),
        "{header}"
    );
}

async fn create_key(app: &TestApp, auth: (&str, &str), name: &str, scope: &str) -> Answer {
    let headers = [auth, ("origin", ORIGIN)];
    app.send(request(
        Method::POST,
        "/api/keys",
        &headers,
        Some(json!({"name": name, "scope": scope})),
    ))
    .await
}

#[tokio::test]
async fn api_keys_are_shown_once_scoped_and_revocable() {
    let app = TestApp::new();
    let cookie = app.cookie();
    let created = create_key(&app, ("cookie", &cookie), "grafana", "read").await;
    assert_eq!(created.status, 201);
    let body = created.json();
    let key = body["key"].as_str().expect("key").to_string();
    assert!(key.starts_with("mm_") && key.len() == 46, "{key}");
    assert_eq!(
        (body["name"].as_str(), body["scope"].as_str()),
        (Some("grafana"), Some("read"))
    );
    let bearer = format!("Bearer {key}");

    let listed = app.get_json("/api/keys").await;
    assert_eq!(listed[0]["id"], body["id"]);
    assert_eq!(listed[0]["last4"], &key[key.len() - 4..]);
    assert!(
        listed[0]["created"]
            .as_str()
            .is_some_and(|c| c.ends_with('Z'))
    );
    assert!(!listed.to_string().contains(&key), "a key is never listed");

    let read = |auth: &str| request(Method::GET, STATS, &[("authorization", auth)], None);
    assert_eq!(app.send(read(&bearer)).await.status, 200);
    let keys = app
        .send(request(
            Method::GET,
            "/api/keys",
            &[("authorization", &bearer)],
            None,
        ))
        .await;
    assert_eq!(keys.status, 403, "a read key cannot manage keys");

    let admin = create_key(&app, ("cookie", &cookie), "ops", "admin")
        .await
        .json();
    let admin_bearer = format!("Bearer {}", admin["key"].as_str().expect("key"));
    let by_key = app
        .send(request(
            Method::POST,
            "/api/keys",
            &[("authorization", &admin_bearer)],
            Some(json!({"name": "ci", "scope": "read"})),
        ))
        .await;
    assert_eq!(by_key.status, 201, "an admin key needs no Origin");

    let bad = create_key(&app, ("cookie", &cookie), "x", "write").await;
    assert_eq!(
        (bad.status, bad.json()["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("scope"))
    );
    let bad = create_key(&app, ("cookie", &cookie), "  ", "read").await;
    assert_eq!(bad.json()["field"], "name");

    let app = app.reopen().await;
    assert_eq!(
        app.send(read(&bearer)).await.status,
        200,
        "keys survive a restart"
    );
    let id = body["id"].as_str().expect("id");
    let revoke = || {
        request(
            Method::DELETE,
            &format!("/api/keys/{id}"),
            &[("authorization", &admin_bearer)],
            None,
        )
    };
    assert_eq!(app.send(revoke()).await.status, 204);
    assert_eq!(
        app.send(read(&bearer)).await.status,
        401,
        "a revoked key is refused at once"
    );
    assert_eq!(app.send(revoke()).await.status, 404);
    assert_eq!(
        app.get_json("/api/keys").await.as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn cookie_authenticated_writes_need_this_origin() {
    let app = TestApp::new();
    let cookie = app.cookie();
    let body = || Some(json!({"name": "n", "scope": "read"}));
    for origin in [
        None,
        Some("https://evil.example"),
        Some("http://mallard.test:8080"),
        Some("null"),
    ] {
        let mut headers = vec![("cookie", cookie.as_str())];
        headers.extend(origin.map(|o| ("origin", o)));
        let answer = app
            .send(request(Method::POST, "/api/keys", &headers, body()))
            .await;
        assert_eq!(answer.status, 403, "origin {origin:?}");
        assert_eq!(answer.json()["field"], "Origin");
    }
    let foreign = login(&app, PASSWORD, &[("origin", "https://evil.example")]).await;
    assert_eq!(foreign.status, 403, "no login from another site's page");
    assert_eq!(
        login(&app, PASSWORD, &[("origin", ORIGIN)]).await.status,
        200
    );
    let event = json!({"d": "example.com", "n": "pageview", "u": "https://example.com/"});
    let ingest = request(
        Method::POST,
        "/api/event",
        &[
            ("origin", "https://example.com"),
            ("user-agent", common::CHROME),
        ],
        Some(event),
    );
    assert_eq!(
        app.send(ingest).await.status,
        202,
        "ingestion takes every origin"
    );
}

#[tokio::test]
async fn failed_logins_lock_the_client_out() {
    let app = TestApp::with(|config| config.max_login_attempts = 3);
    let behind_proxy = |ip: &'static str| [("x-forwarded-for", ip)];
    for _ in 0..3 {
        assert_eq!(
            login(&app, "not the password", &behind_proxy("198.51.100.7"))
                .await
                .status,
            401
        );
    }
    let locked = login(&app, PASSWORD, &behind_proxy("198.51.100.7")).await;
    assert_eq!(locked.status, 429, "locked even with the right password");
    let retry: u64 = locked.headers["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((299..=300).contains(&retry), "{retry}");
    assert!(locked.json()["error"].is_string());
    assert_eq!(
        login(&app, PASSWORD, &behind_proxy("198.51.100.8"))
            .await
            .status,
        200,
        "another client behind the trusted proxy is not locked"
    );
    let failures = app
        .state
        .auth
        .login_failures
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(failures, 3);
}

#[tokio::test]
async fn forged_forwarded_for_neither_escapes_nor_causes_a_lockout() {
    // No trusted proxies: X-Forwarded-For is the client's own claim.
    let app = TestApp::with(|config| {
        config.max_login_attempts = 3;
        config.trusted_proxies.clear();
    });
    let attempt = |password: &str, peer: &str, forwarded: String| {
        let body = json!({ "password": password });
        let headers = [("x-forwarded-for", forwarded.as_str())];
        from_peer(
            request(Method::POST, "/api/auth/login", &headers, Some(body)),
            peer,
        )
    };
    for i in 0..3 {
        let answer = app
            .send(attempt(
                "wrong password",
                "203.0.113.66",
                format!("192.0.2.{i}"),
            ))
            .await;
        assert_eq!(answer.status, 401);
    }
    let rotated = app
        .send(attempt(PASSWORD, "203.0.113.66", "192.0.2.99".into()))
        .await;
    assert_eq!(
        rotated.status, 429,
        "a new forged address does not reset the count"
    );

    for _ in 0..5 {
        app.send(attempt(
            "wrong password",
            "203.0.113.77",
            "203.0.113.88".into(),
        ))
        .await;
    }
    let victim = app
        .send(attempt(PASSWORD, "203.0.113.88", String::new()))
        .await;
    assert_eq!(
        victim.status, 200,
        "failures sent \"as\" another address do not lock it"
    );
}
