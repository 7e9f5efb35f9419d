//! A full disk under the real binary (a small tmpfs as the data folder): acknowledged events
//! survive, new ones get 503 + `Retry-After` while writes fail, `mallard_flush_failures_total`
//! counts the failures, and ingestion recovers by itself once space returns.
//!
//! Mounting the tmpfs needs root (CI runs as root); without it the test fails saying so.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{Spawned, client, post};

const TOKEN: &str = "disk-full-metrics-token-0123";
const SITE: &str = "full.test";

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a {size} tmpfs at {} failed: this test needs root (CI runs as root)",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system until a write fails.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 1 << 20];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
}

async fn flush_failures(client: &reqwest::Client, base: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("mallard_flush_failures_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("mallard_flush_failures_total is exposed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_no_acknowledged_event_and_recovers_by_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _mounted = Tmpfs::mount(dir.path(), "24m");
    let data = dir.path().join("data");
    let env = [("MALLARD_METRICS_TOKEN", TOKEN), ("MALLARD_CACHE_TTL", "0")];
    let server = Spawned::start(&data, &env, false).await;
    let client = client();
    let mut acknowledged = Vec::new();
    let mut n = 0;
    let send = async |acknowledged: &mut Vec<String>, n: &mut u32| {
        *n += 1;
        let path = format!("/e/{n}");
        let ok = post(&client, &server.base, SITE, &path).await;
        if ok {
            acknowledged.push(path);
        }
        ok
    };
    for _ in 0..20 {
        assert!(
            send(&mut acknowledged, &mut n).await,
            "with free space every event is stored"
        );
    }

    let filler = dir.path().join("filler");
    fill(&filler);
    // Writes now fail: within a few events the server answers 503 with Retry-After.
    let mut refused = None;
    for _ in 0..50 {
        if !send(&mut acknowledged, &mut n).await {
            let answer = client
                .post(format!("{}/api/event", server.base))
                .body(
                    serde_json::json!({"d": SITE, "n": "pageview", "u": "https://full.test/probe"})
                        .to_string(),
                )
                .send()
                .await
                .expect("post");
            refused = Some((
                answer.status().as_u16(),
                answer.headers().get("retry-after").cloned(),
            ));
            break;
        }
    }
    let (status, retry_after) = refused.expect("a full disk must refuse events");
    assert_eq!(status, 503);
    assert!(retry_after.is_some(), "503 carries Retry-After");
    assert!(flush_failures(&client, &server.base).await > 0);

    // Space returns: ingestion recovers without a restart.
    std::fs::remove_file(&filler).expect("free space");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut recovered = 0;
    while recovered < 10 {
        assert!(
            Instant::now() < deadline,
            "ingestion did not recover after space returned"
        );
        if send(&mut acknowledged, &mut n).await {
            recovered += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Every acknowledged event is stored exactly once, also after a restart.
    let cookie = server.login(&client).await;
    let stored = server.stored_paths(&client, &cookie, SITE).await;
    let mut server = server;
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(15)).await.is_some());
    drop(server);
    let server = Spawned::start(&data, &env, false).await;
    let cookie = server.login(&client).await;
    let after_restart = server.stored_paths(&client, &cookie, SITE).await;
    assert_eq!(stored, after_restart);
    for path in &acknowledged {
        assert_eq!(after_restart.get(path), Some(&1), "{path} was acknowledged");
    }
    assert_eq!(
        after_restart.values().sum::<u64>(),
        acknowledged.len() as u64
    );
}
