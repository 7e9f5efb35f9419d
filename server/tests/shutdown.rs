//! Graceful shutdown of the real binary: SIGTERM under load exits 0 within
//! `MALLARD_SHUTDOWN_TIMEOUT` and every acknowledged event is there after a restart; a request
//! that never finishes does not hold the exit past the timeout.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::process::{Spawned, client, post};

const SITE: &str = "shutdown.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_0_in_time_and_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("MALLARD_SHUTDOWN_TIMEOUT", "5"),
        ("MALLARD_CACHE_TTL", "0"),
    ];
    let mut server = Spawned::start(dir.path(), &env, false).await;
    let client = client();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..12)
        .map(|worker| {
            let (client, base, stop) = (client.clone(), server.base.clone(), stop.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut failures = 0;
                for n in 0..100_000 {
                    if stop.load(Ordering::Relaxed) || failures > 20 {
                        break;
                    }
                    let path = format!("/w{worker}/{n}");
                    if post(&client, &base, SITE, &path).await {
                        acked.push(path);
                    } else {
                        failures += 1;
                    }
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.terminate();
    let signalled = Instant::now();
    let status = server
        .wait_exit(Duration::from_secs(8))
        .await
        .expect("the server exits after SIGTERM");
    let took = signalled.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for worker in workers {
        acked.extend(worker.await.expect("worker"));
    }
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert!(
        acked.len() > 100,
        "the load was real: {} acknowledged",
        acked.len()
    );

    let server = Spawned::start(dir.path(), &env, false).await;
    let cookie = server.login(&client).await;
    let stored = server.stored_paths(&client, &cookie, SITE).await;
    for path in &acked {
        assert_eq!(
            stored.get(path),
            Some(&1),
            "acknowledged {path} is stored once"
        );
    }
    eprintln!(
        "{} acknowledged, {} stored, shutdown in {took:?}",
        acked.len(),
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_ends_does_not_hold_the_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("MALLARD_SHUTDOWN_TIMEOUT", "2"), ("MALLARD_LOG", "warn")];
    let mut server = Spawned::start(dir.path(), &env, true).await;
    // A body announced but never sent: the handler waits for it until the shutdown gives up.
    let host = server.base.trim_start_matches("http://").to_string();
    let mut stalled = std::net::TcpStream::connect(&host).expect("connect");
    write!(
        stalled,
        "POST /api/event HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\n\
         Content-Length: 1000\r\n\r\n{{\"d\":"
    )
    .expect("send a partial request");
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    let signalled = Instant::now();
    let status = server
        .wait_exit(Duration::from_secs(6))
        .await
        .expect("the server exits despite the open request");
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(3),
        "the open request was waited for until the timeout, no longer: {took:?}"
    );
    let mut stderr = String::new();
    if let Some(mut pipe) = server.child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).expect("stderr");
    }
    assert!(stderr.contains("shutdown timeout"), "{stderr}");
    drop(stalled);
}
