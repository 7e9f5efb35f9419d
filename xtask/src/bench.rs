//! `cargo xtask bench`: ingest throughput with wrk over loopback, and stats query latency on
//! generated data sets. Prints a Markdown report for docs/performance.md.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

#[derive(clap::Args)]
pub struct Args {
    /// Build and run the server with `--release` instead of the test (dev) profile.
    #[arg(long)]
    release: bool,
    /// Seconds of sustained ingest load.
    #[arg(long, default_value_t = 20)]
    duration: u32,
    /// Concurrent connections for the ingest load, comma-separated (one run each).
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    connections: Vec<u32>,
    /// Data set sizes (events) for the query benchmark, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    sizes: Vec<u64>,
    /// Timed runs per query (after two warm-up runs).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Skip the ingest benchmark.
    #[arg(long)]
    skip_ingest: bool,
    /// Skip the query benchmark.
    #[arg(long)]
    skip_queries: bool,
    /// Benchmark this server binary instead of building one, e.g. the shipped static build
    /// (`$CARGO_TARGET_DIR/dist/mallard-metrics` from `cargo xtask dist`).
    #[arg(long, value_name = "PATH", conflicts_with = "release")]
    bin: Option<PathBuf>,
}

pub fn run(args: &Args, root: &Path) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(root);
    if !args.skip_ingest
        && cmd!(sh, "wrk --version")
            .quiet()
            .ignore_status()
            .output()
            .is_err()
    {
        bail!("wrk is not installed: run `apt-get install -y wrk` (or pass --skip-ingest)");
    }
    let (binary, label) = match &args.bin {
        Some(path) => {
            if !path.is_file() {
                bail!("--bin {}: no such file", path.display());
            }
            (path.clone(), format!("{} (given)", path.display()))
        }
        None => build(&sh, args.release)?,
    };
    let scratch = sh.create_temp_dir()?;

    println!(
        "## Benchmark run\n\n- machine: {}\n- binary: {label}\n",
        machine(&sh)
    );
    if !args.skip_ingest {
        for &connections in &args.connections {
            ingest(
                &sh,
                &binary,
                &scratch.path().join(format!("ingest-{connections}")),
                args.duration,
                connections,
            )?;
        }
    }
    if !args.skip_queries {
        for &size in &args.sizes {
            queries(
                &binary,
                &scratch.path().join(format!("q{size}")),
                size,
                args.runs,
            )?;
        }
    }
    Ok(())
}

/// Builds the server on the host; returns the binary and how to name it in the report.
fn build(sh: &Shell, release: bool) -> anyhow::Result<(PathBuf, String)> {
    let (flags, profile, dir) = if release {
        (vec!["--release"], "release profile", "release")
    } else {
        (vec![], "dev profile", "debug")
    };
    eprintln!("building mallard-metrics ({profile})…");
    cmd!(sh, "cargo build -p mallard-metrics {flags...}")
        .run()
        .context("building the server")?;
    let target = crate::dist::Metadata::read(sh)?.target_dir;
    Ok((target.join(dir).join("mallard-metrics"), profile.to_owned()))
}

fn machine(sh: &Shell) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = cmd!(sh, "nproc").quiet().read().unwrap_or_default();
    format!("{cores} cores, {cpu}")
}

struct Server {
    child: Child,
    port: u16,
    /// `Cookie` header value of an admin session: stats need credentials.
    cookie: String,
}

const PASSWORD: &str = "benchmark-password-0123";

impl Server {
    fn start(binary: &Path, data_dir: &Path) -> anyhow::Result<Server> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(binary)
            .args(["--port", &port.to_string()])
            .arg("--data-dir")
            .arg(data_dir)
            .env("MALLARD_SECRET", "benchmark-secret-benchmark-secret-0123")
            .env("MALLARD_LOG", "warn")
            .env("MALLARD_ADMIN_PASSWORD", PASSWORD)
            // Measure queries, not cache hits.
            .env("MALLARD_CACHE_TTL", "0")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Server {
            child,
            port,
            cookie: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if server
                .get("/health/ready")
                .map(|(status, _)| status == 200)
                .unwrap_or(false)
            {
                server.cookie = login(port)?;
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the server did not become ready within 60 s")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A minimal HTTP/1.1 GET with the admin session: status and body.
    fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let headers = format!("Cookie: {}\r\n", self.cookie);
        exchange(self.port, &format!("GET {path}"), &headers, "")
    }
}

/// Signs in and returns the session cookie (`name=value`).
fn login(port: u16) -> anyhow::Result<String> {
    let body = format!(r#"{{"password":"{PASSWORD}"}}"#);
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .lines()
        .find_map(|line| {
            line.strip_prefix("set-cookie: ")
                .or(line.strip_prefix("Set-Cookie: "))
        })
        .and_then(|cookie| cookie.split(';').next())
        .map(str::to_owned)
        .context("signing in to the benchmark server returned no session cookie")
}

/// One HTTP/1.1 request: status and body.
fn exchange(
    port: u16,
    request_line: &str,
    headers: &str,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "{request_line} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n{body}"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

const WRK_SCRIPT: &str = r#"
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain"
local n = 0
request = function()
  n = n + 1
  local headers = { ["Content-Type"] = "text/plain",
    ["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 v" .. (n % 5000) }
  local body = '{"d":"bench.test","n":"pageview","u":"https://bench.test/p/' .. (n % 1000) .. '","r":"https://www.google.com/","w":1280}'
  return wrk.format("POST", "/api/event", headers, body)
end
"#;

fn ingest(
    sh: &Shell,
    binary: &Path,
    data_dir: &Path,
    seconds: u32,
    connections: u32,
) -> anyhow::Result<()> {
    let server = Server::start(binary, data_dir)?;
    let script = data_dir.join("post.lua");
    std::fs::write(&script, WRK_SCRIPT)?;
    let url = format!("http://127.0.0.1:{}/api/event", server.port);
    let (duration, connections) = (format!("{seconds}s"), connections.to_string());
    eprintln!("ingest: wrk, {connections} connections, {duration}…");
    let output = cmd!(
        sh,
        "wrk -t2 -c{connections} -d{duration} --latency -s {script} {url}"
    )
    .read()?;
    let (_, body) = server.get("/api/stats/main?site_id=bench.test&period=today")?;
    println!(
        "### Ingest, {connections} connections (POST /api/event over loopback, wrk on the same 2 cores)\n"
    );
    println!("```\n{}\n```\n", output.trim());
    println!("Stored after the run (`/api/stats/main`): {body}\n");
    Ok(())
}

fn queries(binary: &Path, data_dir: &Path, size: u64, runs: usize) -> anyhow::Result<()> {
    eprintln!("queries: generating {size} events…");
    let started = Instant::now();
    let status = Command::new(binary)
        .args([
            "generate",
            "--events",
            &size.to_string(),
            "--days",
            "30",
            "--site",
            "bench.test",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .status()?;
    if !status.success() {
        bail!("generating the data set failed");
    }
    let generated = started.elapsed();
    let server = Server::start(binary, data_dir)?;
    let cases = [
        (
            "stats/main, 30d",
            "/api/stats/main?site_id=bench.test&period=30d",
        ),
        (
            "stats/main, 30d, compare",
            "/api/stats/main?site_id=bench.test&period=30d&compare=previous_period",
        ),
        (
            "stats/main, 30d, filter page",
            "/api/stats/main?site_id=bench.test&period=30d&filters=page%3D%3D%2Fpage%2F7",
        ),
        (
            "stats/main, 30d, filter country",
            "/api/stats/main?site_id=bench.test&period=30d&filters=country%3D%3DDE",
        ),
        (
            "timeseries, 30d by day",
            "/api/stats/timeseries?site_id=bench.test&period=30d",
        ),
        (
            "breakdown/pages, 30d",
            "/api/stats/breakdown/pages?site_id=bench.test&period=30d",
        ),
        (
            "breakdown/sources, 30d",
            "/api/stats/breakdown/sources?site_id=bench.test&period=30d",
        ),
        (
            "breakdown/exit_pages, 30d",
            "/api/stats/breakdown/exit_pages?site_id=bench.test&period=30d",
        ),
    ];
    println!(
        "### Queries on {size} events over 30 days (generated in {:.0} s)\n",
        generated.as_secs_f64()
    );
    println!("| query | median ms | min ms | max ms |\n| --- | ---: | ---: | ---: |");
    for (name, path) in cases {
        let mut times = Vec::new();
        for run in 0..runs + 2 {
            let started = Instant::now();
            let (status, body) = server.get(path)?;
            let elapsed = started.elapsed();
            if status != 200 {
                bail!("{path}: HTTP {status}: {body}");
            }
            if run >= 2 {
                times.push(elapsed.as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "| {name} | {median:.1} | {:.1} | {:.1} |",
            times[0],
            times[times.len() - 1]
        );
    }
    println!();
    Ok(())
}
