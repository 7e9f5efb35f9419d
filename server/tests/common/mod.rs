//! Shared helpers for the server's integration tests: an app on a real DuckDB in a temp dir,
//! driven with `oneshot`, signed in with a session of its own, and a fixture of events at
//! known times.
#![allow(dead_code)]

pub mod process;
pub mod requests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use mallard_metrics::config::Config;
use mallard_metrics::ingest::client_ip::Peer;
use mallard_metrics::store::{Acquisition, Event};
use mallard_metrics::{AppState, app};
use tower::ServiceExt;

pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
/// The admin password every `TestApp` is configured with (as a hash, like production).
pub const PASSWORD: &str = "correct horse battery staple";
pub static PASSWORD_HASH: LazyLock<String> = LazyLock::new(|| {
    mallard_metrics::commands::hash_password::hash(PASSWORD).expect("hash the test password")
});
pub const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";

/// The server's folder. `cargo test` sets CARGO_MANIFEST_DIR for the run; the compile-time value
/// is only the fallback, since a test binary built in another clone sharing the target dir (CI's)
/// stays fresh for cargo but carries that clone's path.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

pub fn testdata(path: &str) -> PathBuf {
    let root = std::env::var_os("MALLARD_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../../shared/testdata"));
    root.join(path)
}

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    router: Router,
    /// A session token: [`TestApp::get`] sends it, [`TestApp::send`] does not.
    pub session: String,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

impl TestApp {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    pub fn with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_data_dir(dir.path());
        config.secret = Some(SECRET.into());
        config.admin_password_hash = Some(PASSWORD_HASH.clone());
        adjust(&mut config);
        let state = AppState::open(config).expect("open app state");
        Self::from_state(dir, state)
    }

    pub fn from_state(dir: tempfile::TempDir, state: AppState) -> Self {
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let router = app(state.clone()).layer(MockConnectInfo(Peer::Tcp(peer)));
        let session = state.auth.sessions.create();
        Self {
            dir,
            state,
            router,
            session,
        }
    }

    /// The `Cookie` header value that carries this app's session.
    pub fn cookie(&self) -> String {
        format!("mallard_session={}", self.session)
    }

    /// The same data directory, opened again (as after a restart).
    pub async fn reopen(self) -> Self {
        self.state.store.close().await;
        let TestApp {
            dir, state, router, ..
        } = self;
        let config = (*state.config).clone();
        drop(router);
        drop(state);
        let state = AppState::open(config).expect("reopen");
        Self::from_state(dir, state)
    }

    /// Sends `request` as it is: no credentials are added.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn post_event(&self, body: &str, user_agent: &str) -> Answer {
        self.send(
            Request::post("/api/event")
                .header("content-type", "text/plain")
                .header("user-agent", user_agent)
                .body(Body::from(body.to_string()))
                .expect("request"),
        )
        .await
    }

    /// A GET signed in with this app's session.
    pub async fn get(&self, uri: &str) -> Answer {
        self.send(
            Request::get(uri)
                .header("cookie", self.cookie())
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    pub async fn get_json(&self, uri: &str) -> serde_json::Value {
        let answer = self.get(uri).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()
    }
}

pub struct Visit<'a> {
    pub visitor: u64,
    pub source: &'a str,
    pub browser: &'a str,
    pub country: &'a str,
    pub device: &'a str,
}

/// An event at `day` `hh:mm` UTC for the fixture site.
pub fn event(day: &str, time: &str, visit: &Visit<'_>, name: &str, path: &str) -> Event {
    let ts =
        chrono::NaiveDateTime::parse_from_str(&format!("{day} {time}:00"), "%Y-%m-%d %H:%M:%S")
            .expect("fixture time")
            .and_utc();
    Event {
        ts_micros: ts.timestamp_micros(),
        site_id: "fixture.test".into(),
        name: name.into(),
        visitor_id: visit.visitor,
        hostname: "fixture.test".into(),
        pathname: path.into(),
        acquisition: Acquisition {
            source: visit.source.into(),
            source_class: if visit.source == "Direct / None" {
                "direct".into()
            } else {
                "search".into()
            },
            ..Default::default()
        },
        browser: Some(visit.browser.into()),
        device: Some(visit.device.into()),
        country: Some(visit.country.into()),
        ..Default::default()
    }
}

pub const DAY: &str = "2026-11-20";
pub const DAY_BEFORE: &str = "2026-11-19";

/// The hand-computed fixture of docs/metrics.md ("Worked example").
pub fn fixture() -> Vec<Event> {
    let v1 = Visit {
        visitor: 1,
        source: "Google",
        browser: "Chrome",
        country: "DE",
        device: "Desktop",
    };
    let v2 = Visit {
        visitor: 2,
        source: "Direct / None",
        browser: "Firefox",
        country: "GB",
        device: "Mobile",
    };
    let v3 = Visit {
        visitor: 3,
        source: "Direct / None",
        browser: "Chrome",
        country: "DE",
        device: "Desktop",
    };
    let v4 = Visit {
        visitor: 4,
        source: "Twitter",
        browser: "Safari",
        country: "US",
        device: "Mobile",
    };
    vec![
        event(DAY_BEFORE, "15:00", &v4, "pageview", "/blog"),
        event(DAY, "09:00", &v3, "pageview", "/"),
        event(DAY, "09:01", &v3, "pageview", "/blog"),
        event(DAY, "10:00", &v1, "pageview", "/"),
        event(DAY, "10:02", &v1, "pageview", "/pricing"),
        event(DAY, "10:05", &v1, "Signup", "/pricing"),
        event(DAY, "11:00", &v2, "pageview", "/blog"),
        event(DAY, "12:00", &v3, "pageview", "/"),
    ]
}

pub async fn load_fixture(app: &TestApp) {
    for event in fixture() {
        app.state
            .store
            .submit(vec![event])
            .await
            .expect("fixture event stored");
    }
}
