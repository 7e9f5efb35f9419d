//! The real binary as a child process on a free loopback port: start with extra environment,
//! wait for readiness, log in, post events, signal it, read what it stored.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "process-test-admin-password";
pub const SECRET: &str = "process-test-secret-0123456789abcdef";

pub struct Spawned {
    pub child: Child,
    pub base: String,
}

impl Spawned {
    /// Starts `mallard-metrics` on `data_dir` with `env` added, stderr piped when `capture`
    /// (else inherited), and waits until `/health/ready` answers 200.
    pub async fn start(data_dir: &Path, env: &[(&str, &str)], capture: bool) -> Spawned {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_mallard-metrics"));
        command
            .args(["--port", &port.to_string()])
            .arg("--data-dir")
            .arg(data_dir)
            .env("MALLARD_SECRET", SECRET)
            .env("MALLARD_ADMIN_PASSWORD", PASSWORD)
            .env("MALLARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if capture {
                Stdio::piped()
            } else {
                Stdio::inherit()
            });
        for (name, value) in env {
            command.env(name, value);
        }
        let spawned = Spawned {
            child: command.spawn().expect("spawn mallard-metrics"),
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            let ready = client
                .get(format!("{}/health/ready", spawned.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return spawned;
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM (through `kill`, as systemd and Docker would signal it).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `limit` for the process to exit; `None` if it did not.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Logs in; returns the `Cookie` header value (`mallard_session=…`).
    pub async fn login(&self, client: &reqwest::Client) -> String {
        let response = client
            .post(format!("{}/api/auth/login", self.base))
            .json(&serde_json::json!({ "password": PASSWORD }))
            .send()
            .await
            .expect("log in");
        assert_eq!(response.status(), 200);
        response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_string()
    }

    /// Every stored page path of `site` (today) with its pageviews, through the stats API.
    pub async fn stored_paths(
        &self,
        client: &reqwest::Client,
        cookie: &str,
        site: &str,
    ) -> HashMap<String, u64> {
        let mut paths = HashMap::new();
        for page in 1.. {
            let url = format!(
                "{}/api/stats/breakdown/pages?site_id={site}&period=today&limit=1000&page={page}",
                self.base
            );
            let response = client
                .get(&url)
                .header("cookie", cookie)
                .send()
                .await
                .expect("query");
            assert_eq!(response.status(), 200, "{url}");
            let rows: Vec<serde_json::Value> = response.json().await.expect("json");
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let path = row["value"].as_str().expect("value").to_string();
                paths.insert(path, row["pageviews"].as_u64().expect("pageviews"));
            }
        }
        paths
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts one pageview of `site` at `path`; whether it was acknowledged (202).
pub async fn post(client: &reqwest::Client, base: &str, site: &str, path: &str) -> bool {
    let body =
        serde_json::json!({"d": site, "n": "pageview", "u": format!("https://{site}{path}")});
    client
        .post(format!("{base}/api/event"))
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .is_ok_and(|response| response.status() == 202)
}

/// A client with a browser's user agent (an empty one is dropped as a bot).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(super::CHROME)
        .build()
        .expect("client")
}
