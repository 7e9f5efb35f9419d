//! `mallard-metrics backup` against the running server (through its admin socket) while events
//! keep arriving, and `restore` into a fresh folder: the restored server answers the same stats.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const SECRET: &str = "backup-test-secret-0123456789abcdef";
const PASSWORD: &str = "backup-test-admin-password";

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_mallard-metrics"))
            .args([
                "serve",
                "--port",
                &port.to_string(),
                "--compact-interval",
                "1",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("MALLARD_SECRET", SECRET)
            .env("MALLARD_ADMIN_PASSWORD", PASSWORD)
            .env("MALLARD_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn stop(mut self) {
        // SIGTERM: the server commits what is queued and removes nothing.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mallard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mallard-metrics"))
        .args(args)
        .env("MALLARD_LOG", "warn")
        .env_remove("MALLARD_DATA_DIR")
        .output()
        .expect("run mallard-metrics")
}

async fn post_events(client: &reqwest::Client, base: &str, range: std::ops::Range<u32>) {
    for i in range {
        let body = serde_json::json!({
            "d": "backup.test", "n": "pageview", "u": format!("https://backup.test/p/{}", i % 7),
        });
        let response = client
            .post(format!("{base}/api/event"))
            .header("user-agent", CHROME)
            .header("x-forwarded-for", format!("198.51.100.{}", i % 13))
            .body(body.to_string())
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 202);
    }
}

/// Logs in; returns the `Cookie` header value for the session.
async fn login(client: &reqwest::Client, base: &str) -> String {
    let response = client
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({ "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200);
    let set_cookie = response.headers()["set-cookie"].to_str().expect("ascii");
    set_cookie.split(';').next().unwrap_or_default().to_string()
}

async fn stats(client: &reqwest::Client, base: &str) -> (serde_json::Value, serde_json::Value) {
    let cookie = login(client, base).await;
    let cookie = cookie.as_str();
    let get = |path: String| async move {
        client
            .get(format!("{base}{path}"))
            .header("cookie", cookie)
            .send()
            .await
            .expect("get")
            .json::<serde_json::Value>()
            .await
            .expect("json")
    };
    (
        get("/api/stats/main?site_id=backup.test&period=today".into()).await,
        get("/api/stats/breakdown/pages?site_id=backup.test&period=today".into()).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_backup_then_restore_reproduces_the_stats_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, restored, snapshot) = (
        dir.path().join("data"),
        dir.path().join("restored"),
        dir.path().join("snapshot"),
    );
    let client = reqwest::Client::new();
    let server = Server::start(&data);
    post_events(&client, &server.base, 0..40).await;
    // Let compaction move these to Parquet, so the backup holds both files and hot rows.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !has_parquet(&data.join("data")) {
        assert!(Instant::now() < deadline, "no Parquet file appeared");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    post_events(&client, &server.base, 40..60).await;
    let before = stats(&client, &server.base).await;
    assert_eq!(before.0["pageviews"], 60, "{:?}", before.0);

    let backup = mallard(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap_or_default(),
        "--to",
        snapshot.to_str().unwrap_or_default(),
    ]);
    let stderr = String::from_utf8_lossy(&backup.stderr);
    assert!(backup.status.success(), "backup failed: {stderr}");
    assert!(
        !stderr.contains("no server runs"),
        "it must go through the running server"
    );
    assert!(String::from_utf8_lossy(&backup.stdout).contains("60 events"));
    assert!(snapshot.join("backup.json").is_file() && snapshot.join("mallard.duckdb").is_file());
    assert!(has_parquet(&snapshot.join("data")));
    // The server keeps ingesting after the snapshot; those events are not in it.
    post_events(&client, &server.base, 60..65).await;
    server.stop();

    // A second backup into the same folder is refused, not merged.
    let again = mallard(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap_or_default(),
        "--to",
        snapshot.to_str().unwrap_or_default(),
    ]);
    assert!(!again.status.success());

    let restore = mallard(&[
        "restore",
        "--from",
        snapshot.to_str().unwrap_or_default(),
        "--data-dir",
        restored.to_str().unwrap_or_default(),
    ]);
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let server = Server::start(&restored);
    let after = stats(&client, &server.base).await;
    assert_eq!(
        after, before,
        "restored stats differ from the stats at backup time"
    );
    server.stop();

    // Restoring over an existing database needs --force, which moves the old one aside.
    let refused = mallard(&[
        "restore",
        "--from",
        snapshot.to_str().unwrap_or_default(),
        "--data-dir",
        data.to_str().unwrap_or_default(),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let forced = mallard(&[
        "restore",
        "--force",
        "--from",
        snapshot.to_str().unwrap_or_default(),
        "--data-dir",
        data.to_str().unwrap_or_default(),
    ]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let aside = std::fs::read_dir(&data)
        .expect("read_dir")
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("before-restore-")
        });
    assert!(aside, "the replaced database is kept aside");
}

#[test]
fn backup_without_a_running_server_reads_the_folder_directly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let snapshot = dir.path().join("snapshot");
    let server = Server::start(&data);
    server.stop();
    let output = mallard(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap_or_default(),
        "--to",
        snapshot.to_str().unwrap_or_default(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("no server runs"));
    assert!(snapshot.join("backup.json").is_file());
}

#[test]
fn restore_refuses_an_incomplete_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("partial")).expect("mkdir");
    let output = mallard(&[
        "restore",
        "--from",
        dir.path().join("partial").to_str().unwrap_or_default(),
        "--data-dir",
        dir.path().join("data").to_str().unwrap_or_default(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a complete backup"));
}

#[test]
fn hash_password_reads_stdin_and_refuses_short_passwords() {
    use std::io::Write;
    let run = |input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mallard-metrics"))
            .arg("hash-password")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        child.wait_with_output().expect("wait")
    };
    let output = run("correct horse battery staple\n");
    assert!(output.status.success());
    let hash = String::from_utf8_lossy(&output.stdout);
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains("correct horse"));
    let short = run("short\n");
    assert_eq!(short.status.code(), Some(2));
}

fn has_parquet(dir: &Path) -> bool {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                return true;
            }
        }
    }
    false
}
