//! The real binary as a process on a real socket: concurrent ingestion, `kill -9` mid-load,
//! restart, and compaction racing queries. Every acknowledged event must be counted exactly once.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

const PASSWORD: &str = "process-test-admin-password";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

struct Server {
    child: Child,
    base: String,
    /// `mallard_session=…`, from logging in once the server is ready.
    cookie: String,
}

impl Server {
    fn start(data_dir: &Path, compact_every: u64) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_mallard-metrics"))
            .args([
                "--port",
                &port.to_string(),
                "--compact-interval",
                &compact_every.to_string(),
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("MALLARD_SECRET", "process-test-secret-0123456789abcdef")
            .env("MALLARD_ADMIN_PASSWORD", PASSWORD)
            .env("MALLARD_LOG", "warn")
            // These tests poll the same stats while events arrive: answers must be fresh.
            .env("MALLARD_CACHE_TTL", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mallard-metrics");
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            cookie: String::new(),
        };
        server.wait_ready();
        server.cookie = probe::login(&server.base, PASSWORD).expect("log in");
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if probe::status_of(&format!("{}/health/ready", self.base))
                .is_ok_and(|status| status == 200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not become ready");
    }

    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tiny blocking HTTP exchanges for readiness polling and logging in (reqwest's blocking
/// client is not compiled in).
mod probe {
    use std::io::{Read, Write};

    fn exchange(url: &str, method: &str, body: &str) -> Result<String, std::io::Error> {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut stream = std::net::TcpStream::connect(host)?;
        write!(
            stream,
            "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    }

    pub fn status_of(url: &str) -> Result<u16, std::io::Error> {
        let response = exchange(url, "GET", "")?;
        Ok(response
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0))
    }

    /// Logs in; returns the `Cookie` header value to send with later requests.
    pub fn login(base: &str, password: &str) -> Option<String> {
        let body = serde_json::json!({ "password": password }).to_string();
        let response = exchange(&format!("{base}/api/auth/login"), "POST", &body).ok()?;
        response.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            let pair = value.trim().split(';').next()?;
            (name.eq_ignore_ascii_case("set-cookie") && pair.starts_with("mallard_session="))
                .then(|| pair.to_string())
        })
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(CHROME)
        .build()
        .expect("client")
}

async fn post(client: &reqwest::Client, base: &str, path: &str) -> bool {
    let body = json!({"d": "load.test", "n": "pageview", "u": format!("https://load.test{path}")});
    match client
        .post(format!("{base}/api/event"))
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
    {
        Ok(response) => response.status() == 202,
        Err(_) => false,
    }
}

async fn get_json(client: &reqwest::Client, server: &Server, path: &str) -> serde_json::Value {
    let url = format!("{}{path}", server.base);
    let response = client
        .get(&url)
        .header("cookie", &server.cookie)
        .send()
        .await
        .expect("query");
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.expect("json")
}

/// Every stored page path with its pageview count, read through the stats API.
async fn stored_paths(client: &reqwest::Client, server: &Server) -> HashMap<String, u64> {
    let mut paths = HashMap::new();
    for page in 1.. {
        let path = format!(
            "/api/stats/breakdown/pages?site_id=load.test&period=today&limit=1000&page={page}"
        );
        let rows: Vec<serde_json::Value> =
            serde_json::from_value(get_json(client, server, &path).await).expect("an array");
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

async fn main_pageviews(client: &reqwest::Client, server: &Server) -> u64 {
    let body = get_json(
        client,
        server,
        "/api/stats/main?site_id=load.test&period=today",
    )
    .await;
    body["pageviews"].as_u64().expect("pageviews")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_events_are_visible_within_two_seconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), 300);
    let client = client();
    let started = Instant::now();
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let (client, base) = (client.clone(), server.base.clone());
            tokio::spawn(async move { post(&client, &base, &format!("/c/{i}")).await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        accepted += u64::from(task.await.expect("task"));
    }
    assert_eq!(accepted, 1000, "every event is accepted");
    let posted = Instant::now();
    loop {
        if main_pageviews(&client, &server).await == 1000 {
            break;
        }
        assert!(
            posted.elapsed() < Duration::from_secs(2),
            "not visible within 2 s of the last 202"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "1000 concurrent events posted and visible in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_event_and_counts_none_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Compaction every second, so the kill can land in the middle of one.
    let server = Server::start(dir.path(), 1);
    let client = client();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..16)
        .map(|worker| {
            let (client, base, stop) = (client.clone(), server.base.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut acked, mut failed) = (Vec::new(), Vec::new());
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let path = format!("/w{worker}/{n}");
                    if post(&client, &base, &path).await {
                        acked.push(path)
                    } else {
                        failed.push(path)
                    }
                    if failed.len() > 50 {
                        break;
                    }
                }
                (acked, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    server.kill_9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    for worker in workers {
        let (a, f) = worker.await.expect("worker");
        acked.extend(a);
        failed.extend(f);
    }
    assert!(
        acked.len() > 500,
        "the load was real: {} acknowledged",
        acked.len()
    );

    let server = Server::start(dir.path(), 1);
    let stored = stored_paths(&client, &server).await;
    for path in &acked {
        assert_eq!(
            stored.get(path),
            Some(&1),
            "acknowledged {path} must be stored exactly once"
        );
    }
    let failed: std::collections::HashSet<&String> = failed.iter().collect();
    for (path, count) in &stored {
        assert_eq!(*count, 1, "{path} counted twice");
        assert!(
            acked.contains(path) || failed.contains(path),
            "{path} was never sent"
        );
    }
    let total = main_pageviews(&client, &server).await;
    assert_eq!(total, stored.len() as u64);

    // Compaction after the restart moves the recovered rows once more; numbers stay put.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(main_pageviews(&client, &server).await, total);
    eprintln!(
        "acknowledged {}, stored {}, unacknowledged but stored {}",
        acked.len(),
        stored.len(),
        stored.len() - acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_racing_queries_never_double_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), 1);
    let client = client();
    let mut sent = 0u64;
    for round in 0..8 {
        let posts: Vec<_> = (0..100)
            .map(|i| {
                let (client, base) = (client.clone(), server.base.clone());
                tokio::spawn(async move { post(&client, &base, &format!("/r{round}/{i}")).await })
            })
            .collect();
        for p in posts {
            assert!(p.await.expect("task"));
            sent += 1;
        }
        // Query continuously while compaction (every second) moves rows underneath.
        let until = Instant::now() + Duration::from_millis(400);
        while Instant::now() < until {
            let seen = main_pageviews(&client, &server).await;
            assert_eq!(
                seen, sent,
                "a query saw {seen} events, {sent} were acknowledged"
            );
        }
    }
    let parquet = walk(&dir.path().join("data"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count();
    assert!(
        parquet > 0,
        "compaction wrote Parquet files while queries ran"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(walk(&path))
            } else {
                found.push(path)
            }
        }
    }
    found
}

/// One HTTP/1.1 exchange over a Unix socket, as Caddy in front of the server would make it.
fn unix_request(socket: &Path, request: &str) -> (u16, String) {
    let (status, body, _) = unix_exchange(socket, request);
    (status, body)
}

/// [`unix_request`] with the response head as well.
fn unix_exchange(socket: &Path, request: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream =
        std::os::unix::net::UnixStream::connect(socket).expect("connect to the socket");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, body.to_string(), head.to_string())
}

#[test]
fn serves_on_a_unix_socket_behind_a_proxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("mallard.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mallard-metrics"))
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("MALLARD_SECRET", "process-test-secret-0123456789abcdef")
        .env("MALLARD_ADMIN_PASSWORD", PASSWORD)
        .env("MALLARD_LOG", "warn")
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&socket).expect("socket").permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o660,
        "only the owner and the proxy's group may connect"
    );

    let body = json!({"d": "sock.test", "n": "pageview", "u": "https://sock.test/"}).to_string();
    let post = format!(
        "POST /api/event HTTP/1.1\r\nHost: sock.test\r\nUser-Agent: {CHROME}\r\nX-Forwarded-For: 198.51.100.20\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(unix_request(&socket, &post).0, 202);
    let (status, _) = unix_request(
        &socket,
        "GET /health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    let stats = "GET /api/stats/main?site_id=sock.test&period=today HTTP/1.1\r\nHost: x\r\n\
                 X-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n";
    assert_eq!(
        unix_request(&socket, stats).0,
        401,
        "a client behind the proxy may not read stats without credentials"
    );
    let login_body = json!({ "password": PASSWORD }).to_string();
    let login = format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: stats.test\r\nX-Forwarded-For: 203.0.113.9\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{login_body}",
        login_body.len()
    );
    let (status, _, head) = unix_exchange(&socket, &login);
    assert_eq!(status, 200);
    let cookie = head
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .and_then(|value| value.split(';').next())
        .expect("a session cookie")
        .to_string();
    let signed_in = stats.replace(
        "Connection: close",
        &format!("Cookie: {cookie}\r\nConnection: close"),
    );
    assert_eq!(unix_request(&socket, &signed_in).0, 200, "{signed_in}");
    let _ = child.kill();
    let _ = child.wait();
}
