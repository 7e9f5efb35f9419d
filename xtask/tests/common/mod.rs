//! Runs `cargo xtask render` for the three reference configurations into temp folders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fixed hash so snapshots are stable; real renders generate a password.
pub const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c25hcHNob3RzYWx0MTIzNA$qKZ4eI1kD2b5Wf0xvWn7m1c9hXb2nJ3uT8sYlP4aR6E";
pub const TOKEN: &str = "dummy-cf-token_0123456789";
pub const SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILE178ajf+qBjsgF89XlHSQCRHewRl6yiV10Qis+eUVC operator@example.com";

/// xtask's folder. `cargo test` sets CARGO_MANIFEST_DIR for the run; the compile-time value is
/// only the fallback, since a test binary built in another clone sharing the target dir (CI's)
/// stays fresh for cargo but carries that clone's path.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

pub fn repo() -> PathBuf {
    manifest_dir()
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn fixture(name: &str) -> PathBuf {
    manifest_dir().join("tests/fixtures").join(name)
}

/// The reference configurations: Cloudflare DNS-01, HTTP-01 without DNS, several domains.
pub const CONFIGS: [&str; 3] = ["cloudflare", "nodns", "multidomain"];

pub fn config_args(config: &str) -> Vec<String> {
    let sums = fixture("SHA256SUMS").display().to_string();
    let args: Vec<&str> = match config {
        "cloudflare" => vec![
            "--domain",
            "analytics.example.com",
            "--email",
            "admin@example.com",
            "--cf-token",
            TOKEN,
            "--ssh-key",
            SSH_KEY,
            "--release-url",
            "https://releases.example.com/mallard/v0.1.0",
            "--sums",
            &sums,
        ],
        "nodns" => vec![
            "--domain",
            "stats.example.org",
            "--email",
            "ops@example.org",
            "--dns-provider",
            "none",
            "--acme-staging",
            "--ssh-key",
            SSH_KEY,
            "--release-url",
            "https://releases.example.com/mallard/v0.1.0",
            "--sums",
            &sums,
            "--retention-days",
            "90",
            "--rate-limit",
            "50",
            "--volume-size",
            "8G",
        ],
        "multidomain" => vec![
            "--domain",
            "analytics.example.com",
            "--extra-domain",
            "stats.example.net",
            "--extra-domain",
            "www.analytics.example.com",
            "--email",
            "admin@example.com",
            "--cf-token",
            TOKEN,
            "--mask-client-ips",
            "--geoip-db",
            "/srv/mallard/data/GeoLite2-City.mmdb",
        ],
        other => panic!("unknown configuration {other}"),
    };
    args.into_iter().map(String::from).collect()
}

pub fn xtask(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(repo())
        .env_remove("MM_CF_TOKEN")
        .env_remove("MM_DOMAIN")
        .env_remove("MM_EMAIL")
        .args(args)
        .output()
        .expect("run xtask")
}

/// Renders `config` with the fixed hash into a new temp folder.
pub fn render(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec![
        "render".to_string(),
        "--out".into(),
        dir.path().display().to_string(),
    ];
    args.extend(config_args(config));
    args.extend(["--admin-password-hash".to_string(), HASH.to_string()]);
    let output = xtask(&args);
    assert!(
        output.status.success(),
        "render {config} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Runs a validator that must be installed (`.ci/run` installs them from Debian's packages).
pub fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed for this test ({e}); .ci/run installs it with apt-get")
        })
}

pub fn assert_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every file under `dir`, relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path.strip_prefix(dir).expect("prefix").to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// A `write_files` entry's content as the host will see it (decoding gz+b64).
pub fn write_file_content(entry: &serde_norway::Value) -> String {
    use std::io::Read;
    let content = entry["content"].as_str().expect("content");
    match entry["encoding"].as_str() {
        None => content.to_owned(),
        Some("gz+b64") => {
            use base64::Engine;
            let compressed = base64::engine::general_purpose::STANDARD
                .decode(content.trim())
                .expect("base64");
            let mut text = String::new();
            flate2::read::GzDecoder::new(compressed.as_slice())
                .read_to_string(&mut text)
                .expect("gzip");
            text
        }
        Some(other) => panic!("unexpected encoding {other}"),
    }
}
