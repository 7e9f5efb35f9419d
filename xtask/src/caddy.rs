//! `cargo xtask caddy`: the custom Caddy with the Cloudflare DNS provider
//! (`dns.providers.cloudflare`, for ACME DNS-01), built with xcaddy from the pins in
//! `caddy/versions.env` (which `caddy/Dockerfile` mirrors), written to `$CARGO_TARGET_DIR/dist/caddy`
//! with its line in `SHA256SUMS`.
//!
//! Building needs Go and the Go module proxy. Where either is missing this fails at once,
//! printing the commands to run elsewhere; `--from PATH` then takes the binary built there,
//! after checking its version and modules against the pins.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::dist;

const MODULE: &str = "dns.providers.cloudflare";
const PLUGIN: &str = "github.com/caddy-dns/cloudflare";
const XCADDY: &str = "github.com/caddyserver/xcaddy/cmd/xcaddy";

#[derive(clap::Args)]
pub struct Args {
    /// Take this prebuilt Caddy (e.g. built on another machine with the commands this prints
    /// when it cannot build here) instead of building: it must report the pinned Caddy version
    /// and list the dns.providers.cloudflare module.
    #[arg(long, value_name = "PATH")]
    from: Option<PathBuf>,
    /// Folder for `caddy` and SHA256SUMS
    /// [default: $CARGO_TARGET_DIR/dist, else <workspace>/target/dist].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The pins of `caddy/versions.env`.
struct Pins {
    caddy: String,
    dns_cloudflare: String,
    xcaddy: String,
    go: String,
}

impl Pins {
    fn read(path: &Path) -> anyhow::Result<Pins> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut values = std::collections::HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .with_context(|| format!("{}:{}: expected KEY=value", path.display(), n + 1))?;
            values.insert(key.trim().to_owned(), value.trim().to_owned());
        }
        let mut take = |key: &str| {
            values
                .remove(key)
                .filter(|v| !v.is_empty())
                .with_context(|| format!("{} does not set {key}", path.display()))
        };
        Ok(Pins {
            caddy: take("CADDY_VERSION")?,
            dns_cloudflare: take("CADDY_DNS_CLOUDFLARE_VERSION")?,
            xcaddy: take("XCADDY_VERSION")?,
            go: take("GO_VERSION")?,
        })
    }

    fn build_args(&self) -> String {
        format!(
            "build {} --with {PLUGIN}@{} --output caddy",
            self.caddy, self.dns_cloudflare
        )
    }

    /// What to run on a machine with Go and network access, and how to bring the result back.
    fn instructions(&self) -> String {
        format!(
            "On a machine with Go {go} or newer and access to the Go module proxy, run:\n\n    \
             go install {XCADDY}@{xcaddy}\n    \
             CGO_ENABLED=0 xcaddy {build}\n\n\
             (or with Docker, same pins: `docker build -t mallard-caddy caddy/` then\n\
             `id=$(docker create mallard-caddy) && docker cp $id:/usr/bin/caddy ./caddy && docker rm $id`),\n\
             copy `caddy` to this machine and run:\n\n    \
             cargo xtask caddy --from ./caddy",
            go = self.go,
            xcaddy = self.xcaddy,
            build = self.build_args(),
        )
    }
}

pub fn run(args: &Args, root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let pins = Pins::read(&root.join("caddy/versions.env"))?;
    let sh = Shell::new()?;
    sh.change_dir(root);
    eprintln!(
        "==> pins (caddy/versions.env): Caddy {}, {PLUGIN} {}, xcaddy {}",
        pins.caddy, pins.dns_cloudflare, pins.xcaddy
    );

    let binary = match &args.from {
        Some(path) => {
            eprintln!("==> checking {}", path.display());
            std::path::absolute(path)?
        }
        None => build(&sh, &pins)?,
    };
    let version = verify(&sh, &binary, &pins)?;

    let out = match &args.out {
        Some(out) => out.clone(),
        None => dist::Metadata::read(&sh)?.default_out_dir(),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let bytes = std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    let dest = out.join("caddy");
    let partial = out.join(".caddy.partial");
    std::fs::write(&partial, &bytes).with_context(|| format!("writing {}", partial.display()))?;
    dist::set_executable(&partial)?;
    std::fs::rename(&partial, &dest).with_context(|| format!("writing {}", dest.display()))?;
    let sha256 = dist::sha256_hex(&bytes);
    dist::record_checksum(&out, "caddy", &sha256)?;
    eprintln!(
        "\n{}\n  Caddy {version} with {MODULE}\n  {} bytes, sha256 {sha256}\n  {}",
        dest.display(),
        bytes.len(),
        out.join("SHA256SUMS").display()
    );
    eprintln!("done in {}", dist::elapsed(started.elapsed()));
    Ok(())
}

/// Builds with the pinned xcaddy (`go run …@version`, so an installed xcaddy of another
/// version cannot slip in); fails fast when Go or the module proxy is missing.
fn build(sh: &Shell, pins: &Pins) -> anyhow::Result<PathBuf> {
    eprintln!("==> checking for Go and the Go module proxy");
    let go = cmd!(sh, "go version").quiet().ignore_stderr().read();
    let Ok(go) = go else {
        bail!(
            "cannot build Caddy here: Go is not installed (`go` is not on PATH).\n{}",
            pins.instructions()
        );
    };
    eprintln!("   {}", go.trim());
    let proxy = cmd!(sh, "go env GOPROXY")
        .quiet()
        .read()
        .context("running `go env GOPROXY`")?;
    if let Err(why) = check_proxy(&proxy) {
        bail!("cannot build Caddy here: {why}.\n{}", pins.instructions());
    }
    let dir = dist::Metadata::read(sh)?.target_dir.join("caddy-build");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let output = dir.join("caddy");
    eprintln!("==> building Caddy with xcaddy (downloads Caddy and its modules)");
    let (xcaddy, caddy, plugin) = (
        format!("{XCADDY}@{}", pins.xcaddy),
        &pins.caddy,
        format!("{PLUGIN}@{}", pins.dns_cloudflare),
    );
    cmd!(
        sh,
        "go run {xcaddy} build {caddy} --with {plugin} --output {output}"
    )
    .env("CGO_ENABLED", "0")
    .run()
    .context("xcaddy build failed (see its output above)")?;
    Ok(output)
}

/// `Ok` if the first GOPROXY entry answers a TCP connection within a few seconds.
fn check_proxy(goproxy: &str) -> Result<(), String> {
    let first = goproxy
        .split([',', '|'])
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let (host, port) = match first.as_str() {
        "" | "off" => return Err(format!("GOPROXY is `{}`", goproxy.trim())),
        // Modules come straight from their repositories; ours are on GitHub.
        "direct" => ("github.com".to_owned(), 443),
        url => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
            let authority = rest.split('/').next().unwrap_or(rest);
            match authority.rsplit_once(':') {
                Some((host, port)) if port.parse::<u16>().is_ok() => {
                    (host.to_owned(), port.parse().unwrap_or(443))
                }
                _ => (
                    authority.to_owned(),
                    if scheme == "http" { 80 } else { 443 },
                ),
            }
        }
    };
    // Name resolution has no timeout of its own: run it on a thread and stop waiting.
    let (tx, rx) = mpsc::channel();
    let target = format!("{host}:{port}");
    std::thread::spawn(move || {
        let result = target
            .to_socket_addrs()
            .map_err(|e| e.to_string())
            .and_then(|mut addrs| addrs.next().ok_or_else(|| "no address".to_owned()))
            .and_then(|addr| {
                TcpStream::connect_timeout(&addr, Duration::from_secs(3))
                    .map(drop)
                    .map_err(|e| e.to_string())
            });
        let _ = tx.send(result);
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(format!(
            "the Go module proxy {first} is unreachable ({host}:{port}: {err})"
        )),
        Err(_) => Err(format!(
            "the Go module proxy {first} is unreachable ({host}:{port}: no answer in 5 s)"
        )),
    }
}

/// Checks the binary against the pins; returns its version. Lists every problem at once.
fn verify(sh: &Shell, binary: &Path, pins: &Pins) -> anyhow::Result<String> {
    if !binary.is_file() {
        bail!("{} is not a file", binary.display());
    }
    let version = cmd!(sh, "{binary} version")
        .quiet()
        .read()
        .with_context(|| format!("running `{} version`: is it Caddy?", binary.display()))?;
    let version = version.split_whitespace().next().unwrap_or("").to_owned();
    let modules = cmd!(sh, "{binary} list-modules --versions")
        .quiet()
        .read()
        .with_context(|| format!("running `{} list-modules`", binary.display()))?;
    let module_version = modules.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(MODULE)).then(|| words.next().map(str::to_owned))
    });

    let mut problems = Vec::new();
    if version.trim_start_matches('v') != pins.caddy.trim_start_matches('v') {
        problems.push(format!(
            "it is Caddy {version}, but caddy/versions.env pins CADDY_VERSION={}",
            pins.caddy
        ));
    }
    match &module_version {
        None => problems.push(format!(
            "it lacks the module {MODULE} ({PLUGIN}): `caddy list-modules` does not list it"
        )),
        Some(Some(v)) if v != &pins.dns_cloudflare => problems.push(format!(
            "its {MODULE} module is {PLUGIN} {v}, but caddy/versions.env pins \
             CADDY_DNS_CLOUDFLARE_VERSION={}",
            pins.dns_cloudflare
        )),
        Some(_) => {}
    }
    if !problems.is_empty() {
        bail!(
            "refusing {}:\n  - {}\nBuild the pinned Caddy instead. {}",
            binary.display(),
            problems.join("\n  - "),
            pins.instructions()
        );
    }
    if module_version == Some(None) {
        eprintln!("   warning: the binary does not report {MODULE}'s version (no build info)");
    }
    eprintln!("   Caddy {version}, {MODULE} present");
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_off_is_refused() {
        assert!(check_proxy("off").is_err());
    }

    #[test]
    fn unreachable_proxy_is_refused_fast() {
        let started = Instant::now();
        // Port 9 (discard) on loopback: nothing listens there.
        let err = check_proxy("http://127.0.0.1:9,direct").expect_err("nothing listens");
        assert!(err.contains("127.0.0.1:9"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(6));
    }
}
