//! Talking to the guest from outside: SSH as the default user with the run's key, and HTTPS
//! through Caddy with `curl --resolve`, trusting only the CA taken from the guest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::qemu::Ports;
use crate::image::tools;

pub const DOMAIN: &str = "mallard.test";
pub const USER: &str = "debian";

#[derive(Clone)]
pub struct Guest {
    pub ports: Ports,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    /// Caddy's local root certificate, once fetched.
    pub ca: Option<PathBuf>,
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

impl Guest {
    fn ssh_command(&self, user: &str) -> Command {
        let mut cmd = tools::command("ssh");
        cmd.args(["-F", "/dev/null", "-i"])
            .arg(&self.key)
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
            // Accept the key the guest made at first boot, then insist on it (after the reboot
            // too: the host keys must persist).
            .args(["-o", "StrictHostKeyChecking=accept-new"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=10"])
            .args(["-o", "ServerAliveCountMax=6", "-o", "LogLevel=ERROR"])
            .args(["-p", &self.ports.ssh.to_string()])
            .arg(format!("{user}@127.0.0.1"));
        cmd
    }

    /// Runs a shell command as the default user; `input` goes to its stdin.
    pub fn ssh_raw(&self, user: &str, script: &str, input: &str) -> anyhow::Result<Output> {
        let mut child = self
            .ssh_command(user)
            .arg("--")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running ssh (apt-get install openssh-client)")?;
        let mut stdin = child.stdin.take().context("stdin")?;
        stdin.write_all(input.as_bytes()).ok();
        drop(stdin);
        Ok(child.wait_with_output()?)
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ssh(&self, script: &str) -> anyhow::Result<String> {
        let out = self.ssh_raw(USER, script, "")?;
        if !out.status.success() {
            bail!(
                "`{script}` in the guest failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn wait_ssh(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.ssh_raw(USER, "true", "") {
                Ok(out) if out.status.success() => return Ok(()),
                Ok(out) if Instant::now() > deadline => bail!(
                    "no SSH login within {}s: {}",
                    timeout.as_secs(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Err(e) if Instant::now() > deadline => return Err(e),
                _ => std::thread::sleep(Duration::from_secs(3)),
            }
        }
    }

    /// `curl` to `https://mallard.test:<port><path>` resolved to 127.0.0.1; `-k` only when no CA
    /// was fetched yet (the boot-time probe).
    pub fn https(&self, path: &str, extra: &[&str]) -> anyhow::Result<Answer> {
        let mut cmd = tools::command("curl");
        cmd.args(["--silent", "--show-error", "--include", "--max-time", "20"])
            .arg("--resolve")
            .arg(format!("{DOMAIN}:{}:127.0.0.1", self.ports.https));
        match &self.ca {
            Some(ca) => cmd.arg("--cacert").arg(ca),
            None => cmd.arg("--insecure"),
        };
        cmd.args(extra)
            .arg(format!("https://{DOMAIN}:{}{path}", self.ports.https));
        let out = tools::capture(&mut cmd)?;
        if !out.status.success() {
            bail!(
                "curl {path}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        parse(&String::from_utf8_lossy(&out.stdout))
    }
}

fn parse(text: &str) -> anyhow::Result<Answer> {
    let (headers, body) = text
        .split_once("\r\n\r\n")
        .context("an HTTP answer without a header block")?;
    let status = headers
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .context("an HTTP answer without a status line")?;
    Ok(Answer {
        status,
        headers: headers.to_owned(),
        body: body.to_owned(),
    })
}

/// Connects to a forwarded port, sends `probe`, and returns what came back within `wait`
/// (empty: nothing answered — the firewall dropped it, or nothing listens).
pub fn raw_probe(port: u16, probe: &[u8], wait: Duration) -> String {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    stream.set_read_timeout(Some(wait)).ok();
    stream.write_all(probe).ok();
    let mut buffer = [0u8; 256];
    match stream.read(&mut buffer) {
        Ok(n) => String::from_utf8_lossy(&buffer[..n]).into_owned(),
        Err(_) => String::new(),
    }
}

/// Creates the run's SSH key pair (ed25519, no passphrase).
pub fn keygen(dir: &Path) -> anyhow::Result<PathBuf> {
    let key = dir.join("id_ed25519");
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(dir.join("id_ed25519.pub"));
    tools::run(
        tools::command("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "mallard-vm-test",
                "-f",
            ])
            .arg(&key)
            .stdout(Stdio::null()),
    )?;
    Ok(key)
}
