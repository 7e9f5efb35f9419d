//! `mallard-metrics healthcheck`: exits 0 when a health URL answers 200. For container
//! healthchecks, where a `FROM scratch` image has no curl.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

/// Exit 0 when the URL answers 200 within the timeout, 1 otherwise.
#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// A plain-HTTP URL on this host.
    #[arg(long, default_value = "http://127.0.0.1:8000/health/ready")]
    pub url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

fn probe(url: &str, timeout: Duration) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let address = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    let mut stream =
        std::net::TcpStream::connect_timeout(&address, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let read = stream.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(head.get(..read).unwrap_or_default()).into_owned();
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}

pub fn run(args: &HealthcheckArgs) -> ExitCode {
    match probe(&args.url, Duration::from_secs(args.timeout)) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("unhealthy: {} answered {status}", args.url);
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("unhealthy: {}: {err}", args.url);
            ExitCode::FAILURE
        }
    }
}
