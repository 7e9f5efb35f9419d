//! A release folder served over HTTP on 127.0.0.1 (the guest reaches it as 10.0.2.2 through
//! qemu's user-mode network): the stock path downloads `mallard-metrics` and `caddy` from it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The served folder and every request line seen, for the report.
pub struct Server {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
}

pub fn start(dir: &Path) -> anyhow::Result<Server> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&requests);
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                if let Err(e) = answer(stream, &dir, &log) {
                    log.lock().map(|mut l| l.push(format!("error: {e}"))).ok();
                }
            });
        }
    });
    Ok(Server { port, requests })
}

fn answer(stream: TcpStream, dir: &Path, log: &Mutex<Vec<String>>) -> anyhow::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Skip the headers.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let request = request.trim().to_owned();
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let name = target.trim_start_matches('/');
    // Only plain file names of the folder: no path traversal.
    let file: Option<PathBuf> = (matches!(method, "GET" | "HEAD")
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.'))
    .then(|| dir.join(name))
    .filter(|path| path.is_file());
    let mut stream = stream;
    match file {
        Some(path) => {
            let body = std::fs::read(&path)?;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            if method == "GET" {
                stream.write_all(&body)?;
            }
            log.lock()
                .map(|mut l| l.push(format!("200 {request}")))
                .ok();
        }
        None => {
            stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            log.lock()
                .map(|mut l| l.push(format!("404 {request}")))
                .ok();
        }
    }
    Ok(())
}
