//! `cargo xtask caddy` and its pins: without Go it fails at once with the commands to run on a
//! machine that has Go; `--from` takes only a binary matching the pins in caddy/versions.env;
//! caddy/Dockerfile's ARG defaults equal those pins.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `caddy/versions.env`: `KEY=value` lines, `#` comments.
fn pins() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(common::repo().join("caddy/versions.env"))
        .expect("read caddy/versions.env");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (key, value) = l.split_once('=').expect("KEY=value");
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn pin(key: &str) -> String {
    pins()
        .remove(key)
        .unwrap_or_else(|| panic!("caddy/versions.env lacks {key}"))
}

fn xtask_caddy(args: &[&str], path: Option<&Path>) -> (Output, Duration) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.arg("caddy").args(args);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let started = Instant::now();
    let output = command.output().expect("run xtask");
    (output, started.elapsed())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn pins_are_versions() {
    let pins = pins();
    for key in [
        "CADDY_VERSION",
        "CADDY_DNS_CLOUDFLARE_VERSION",
        "XCADDY_VERSION",
        "GO_VERSION",
    ] {
        let value = pins
            .get(key)
            .unwrap_or_else(|| panic!("{key} is not pinned"));
        let digits = if key == "GO_VERSION" {
            value.as_str()
        } else {
            value
                .strip_prefix('v')
                .unwrap_or_else(|| panic!("{key}={value}: Go module versions start with v"))
        };
        assert!(
            digits.split('.').all(|n| n.parse::<u32>().is_ok()),
            "{key}={value} is not a release version"
        );
    }
}

#[test]
fn without_go_it_fails_fast_naming_the_commands_to_run_elsewhere() {
    // A PATH without `go` (whatever this machine has), as on a machine without Go.
    let empty = tempfile::tempdir().expect("temp dir");
    let (output, took) = xtask_caddy(&[], Some(empty.path()));
    let err = stderr(&output);
    assert!(!output.status.success(), "succeeded without Go:\n{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(err.contains("Go is not installed"), "{err}");
    for expected in [
        format!(
            "go install github.com/caddyserver/xcaddy/cmd/xcaddy@{}",
            pin("XCADDY_VERSION")
        ),
        format!(
            "xcaddy build {} --with github.com/caddy-dns/cloudflare@{} --output caddy",
            pin("CADDY_VERSION"),
            pin("CADDY_DNS_CLOUDFLARE_VERSION")
        ),
        "cargo xtask caddy --from ./caddy".to_owned(),
    ] {
        assert!(err.contains(&expected), "stderr lacks `{expected}`:\n{err}");
    }
}

#[test]
fn debian_caddy_without_the_module_is_refused() {
    let debian = Path::new("/usr/bin/caddy");
    assert!(
        debian.is_file(),
        "this test refuses Debian's stock Caddy: install it with `apt-get install -y caddy`"
    );
    let out = tempfile::tempdir().expect("temp dir");
    let out_dir = out.path().to_str().expect("utf-8 path");
    let (output, took) = xtask_caddy(&["--from", "/usr/bin/caddy", "--out", out_dir], None);
    let err = stderr(&output);
    assert!(!output.status.success(), "accepted Debian's caddy:\n{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        err.contains("lacks the module dns.providers.cloudflare"),
        "{err}"
    );
    assert!(
        !out.path().join("caddy").exists(),
        "a refused binary must not be copied"
    );
}

/// A stand-in for a custom Caddy: answers `version` and `list-modules --versions`.
fn fake_caddy(dir: &Path, version: &str, cloudflare: &str) -> PathBuf {
    let path = dir.join("caddy");
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in\n  version) echo '{version} h1:fake=' ;;\n  \
         list-modules) printf 'admin.api.load\\nhttp.handlers.reverse_proxy\\n\
         dns.providers.cloudflare {cloudflare} h1:fake=\\n' ;;\n  *) exit 1 ;;\nesac\n"
    );
    std::fs::write(&path, script).expect("write fake caddy");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn a_binary_matching_the_pins_is_copied_with_its_checksum() {
    let src = tempfile::tempdir().expect("temp dir");
    let fake = fake_caddy(
        src.path(),
        &pin("CADDY_VERSION"),
        &pin("CADDY_DNS_CLOUDFLARE_VERSION"),
    );
    let out = tempfile::tempdir().expect("temp dir");
    let out_dir = out.path().to_str().expect("utf-8 path");
    let (output, _) = xtask_caddy(
        &["--from", fake.to_str().expect("utf-8"), "--out", out_dir],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let copied = std::fs::read(out.path().join("caddy")).expect("dist/caddy");
    assert_eq!(copied, std::fs::read(&fake).expect("fake"));
    let sums = std::fs::read_to_string(out.path().join("SHA256SUMS")).expect("SHA256SUMS");
    let check = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(out.path())
        .output()
        .expect("run sha256sum");
    assert!(check.status.success(), "sha256sum --check failed:\n{sums}");
    assert!(
        sums.ends_with("  caddy\n") && sums.lines().count() == 1,
        "{sums}"
    );
}

#[test]
fn a_binary_with_other_versions_is_refused_naming_the_pins() {
    let src = tempfile::tempdir().expect("temp dir");
    let fake = fake_caddy(src.path(), "v2.0.0", "v0.0.1");
    let out = tempfile::tempdir().expect("temp dir");
    let out_dir = out.path().to_str().expect("utf-8 path");
    let (output, _) = xtask_caddy(
        &["--from", fake.to_str().expect("utf-8"), "--out", out_dir],
        None,
    );
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(
        err.contains(&format!("CADDY_VERSION={}", pin("CADDY_VERSION"))),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "CADDY_DNS_CLOUDFLARE_VERSION={}",
            pin("CADDY_DNS_CLOUDFLARE_VERSION")
        )),
        "{err}"
    );
    assert!(!out.path().join("caddy").exists());
}

#[test]
fn dockerfile_arg_defaults_equal_versions_env() {
    let text = std::fs::read_to_string(common::repo().join("caddy/Dockerfile"))
        .expect("read caddy/Dockerfile");
    let defaults: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ARG "))
        .filter_map(|arg| arg.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    assert_eq!(
        defaults,
        pins(),
        "caddy/Dockerfile's ARG defaults differ from caddy/versions.env"
    );
    // …and the build uses every one of them.
    for used in [
        "FROM golang:${GO_VERSION} AS build",
        "github.com/caddyserver/xcaddy/cmd/xcaddy@${XCADDY_VERSION}",
        "xcaddy build \"${CADDY_VERSION}\"",
        "github.com/caddy-dns/cloudflare@${CADDY_DNS_CLOUDFLARE_VERSION}",
    ] {
        assert!(text.contains(used), "caddy/Dockerfile lacks `{used}`");
    }
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let user = instructions
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the final stage sets USER");
    assert!(
        !matches!(user.split(':').next(), Some("0" | "root")),
        "USER {user}"
    );
    assert!(instructions.contains(&"EXPOSE 80 443 443/udp"));
    assert_eq!(
        instructions.last(),
        Some(
            &r#"CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]"#
        )
    );
}
