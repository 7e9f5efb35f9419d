//! The shipped artifacts of `cargo xtask dist`: the binary is static (ELF without interpreter or
//! shared libraries), matches SHA256SUMS and manifest.json, and serves from an empty root
//! (a chroot holding only itself and an empty data folder). Also the `FROM scratch` image recipe.
//!
//! These tests never skip: without a dist build they fail, saying to run `cargo xtask dist`.
//! The chroot needs root (CI runs as root).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = "mallard-metrics";
const TARGET: &str = "x86_64-unknown-linux-musl";
const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

/// `$CARGO_TARGET_DIR/dist` (relative values are relative to the workspace), else `target/dist`.
fn dist_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    common::repo().join(target).join("dist")
}

fn dist_binary() -> PathBuf {
    let path = dist_dir().join(BIN);
    assert!(
        path.is_file(),
        "{} does not exist: run `cargo xtask dist` first (same CARGO_TARGET_DIR as this test)",
        path.display()
    );
    path
}

#[derive(Debug)]
struct Linkage {
    interpreter: bool,
    dynamic_section: bool,
    needed_libraries: usize,
}

/// Reads the program headers of an ELF64 little-endian file (and its dynamic section, if any).
fn linkage(elf: &[u8]) -> Linkage {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not ELF64");
    assert_eq!(elf[5], 1, "not little-endian");
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().expect("2 bytes"));
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| {
        let value = u64::from_le_bytes(elf[at..at + 8].try_into().expect("8 bytes"));
        usize::try_from(value).expect("fits usize")
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), usize::from(u16_at(0x36)), u16_at(0x38));
    let mut result = Linkage {
        interpreter: false,
        dynamic_section: false,
        needed_libraries: 0,
    };
    for ph in (0..usize::from(phnum)).map(|i| phoff + i * phentsize) {
        match u32_at(ph) {
            PT_INTERP => result.interpreter = true,
            PT_DYNAMIC => {
                result.dynamic_section = true;
                let (offset, size) = (u64_at(ph + 8), u64_at(ph + 32));
                // Elf64_Dyn entries: d_tag, d_val; DT_NEEDED = 1, DT_NULL = 0 ends the list.
                for entry in (offset..offset + size).step_by(16) {
                    match u64_at(entry) {
                        0 => break,
                        1 => result.needed_libraries += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    result
}

#[test]
fn binary_is_static() {
    let elf = std::fs::read(dist_binary()).expect("read the dist binary");
    let linkage = linkage(&elf);
    assert!(
        !linkage.interpreter,
        "the dist binary has an ELF interpreter (PT_INTERP): it is dynamically linked"
    );
    assert_eq!(
        linkage.needed_libraries, 0,
        "the dist binary needs shared libraries (DT_NEEDED)"
    );
    assert!(
        !linkage.dynamic_section,
        "the dist binary has a dynamic section (PT_DYNAMIC): expected a plain static executable"
    );
}

#[test]
fn the_glibc_test_binary_is_seen_as_dynamic() {
    // The parser's counter-check: this test executable is a normal glibc program.
    let elf = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
    let linkage = linkage(&elf);
    assert!(linkage.interpreter && linkage.dynamic_section && linkage.needed_libraries > 0);
}

fn sha256sum(path: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum (coreutils)");
    assert!(output.status.success(), "sha256sum {}", path.display());
    String::from_utf8(output.stdout).expect("utf-8")[..64].to_owned()
}

#[test]
fn checksums_and_manifest_match_the_binary() {
    let binary = dist_binary();
    let dir = dist_dir();
    let sha256 = sha256sum(&binary);
    let size = std::fs::metadata(&binary).expect("stat").len();

    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).expect("read SHA256SUMS");
    assert!(
        sums.lines().any(|line| line == format!("{sha256}  {BIN}")),
        "SHA256SUMS has no line `{sha256}  {BIN}`:\n{sums}"
    );
    // Every line checks out, the way a user verifies a download.
    let check = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(&dir)
        .output()
        .expect("run sha256sum --check");
    assert!(
        check.status.success(),
        "sha256sum --check SHA256SUMS failed in {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("read manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    assert_eq!(manifest["name"], BIN);
    assert_eq!(manifest["target"], TARGET);
    assert_eq!(manifest["sha256"], sha256.as_str());
    assert_eq!(manifest["size"], size);
    let cargo_toml =
        std::fs::read_to_string(common::repo().join("Cargo.toml")).expect("Cargo.toml");
    let version = manifest["version"].as_str().expect("version");
    assert!(
        cargo_toml.contains(&format!("version = \"{version}\"")),
        "manifest version {version} is not the workspace version"
    );
    for key in ["git_revision", "rustc", "duckdb_version", "duckdb_crate"] {
        let value = manifest[key].as_str().unwrap_or("");
        assert!(
            !value.is_empty() && value != "unknown",
            "manifest.json: {key} = {value:?}"
        );
    }
    assert!(
        manifest["rustc"]
            .as_str()
            .is_some_and(|v| v.starts_with("rustc "))
    );
    let lock = std::fs::read_to_string(common::repo().join("Cargo.lock")).expect("Cargo.lock");
    let crate_version = manifest["duckdb_crate"]
        .as_str()
        .and_then(|v| v.strip_prefix("libduckdb-sys "))
        .expect("duckdb_crate names libduckdb-sys");
    assert!(
        lock.contains(&format!(
            "name = \"libduckdb-sys\"\nversion = \"{crate_version}\""
        )),
        "manifest's libduckdb-sys {crate_version} is not Cargo.lock's"
    );
}

/// Root is needed for chroot(2): read the effective UID without libc.
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|uids| uids.split_whitespace().nth(1))
        == Some("0")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns the status code and body.
fn http(port: u16, request: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[test]
fn serves_from_an_empty_root() {
    let binary = dist_binary();
    assert!(
        is_root(),
        "this test chroots into an empty folder and needs root: run it as root (CI does)"
    );
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::copy(&binary, root.path().join(BIN)).expect("copy the binary into the root");
    std::fs::create_dir(root.path().join("data")).expect("mkdir data");
    let entries: Vec<_> = std::fs::read_dir(root.path())
        .expect("list root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(entries.len(), 2, "the root holds only the binary and data/");

    let port = TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server(
        Command::new("chroot")
            .arg(root.path())
            .args([&format!("/{BIN}"), "serve", "--listen", &listen])
            .args(["--data-dir", "/data"])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env(
                "MALLARD_SECRET",
                "dist-test-secret-0123456789abcdefghijklmn",
            )
            .env("MALLARD_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn chroot (coreutils)"),
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::from("no answer");
    let ready = loop {
        let request =
            format!("GET /health/ready HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n");
        match http(port, &request) {
            Ok((200, body)) if body == "ready" => break true,
            Ok((status, body)) => last = format!("{status} {body:?}"),
            Err(err) => last = err.to_string(),
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        ready,
        "/health/ready did not answer 200 `ready` within 30 s in the chroot (last: {last})"
    );

    let event = r#"{"n":"pageview","u":"https://example.com/x","d":"example.com"}"#;
    let request = format!(
        "POST /api/event HTTP/1.1\r\nHost: {listen}\r\nUser-Agent: {CHROME}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{event}",
        event.len()
    );
    let (status, body) = http(port, &request).expect("POST /api/event");
    assert_eq!(status, 202, "POST /api/event answered {status} {body:?}");

    // The container's HEALTHCHECK: the binary probes itself, no curl in the empty root.
    let probe = Command::new("chroot")
        .arg(root.path())
        .args([&format!("/{BIN}"), "healthcheck", "--url"])
        .arg(format!("http://{listen}/health/ready"))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .expect("run the healthcheck in the chroot");
    assert!(
        probe.status.success(),
        "`mallard-metrics healthcheck` failed in the chroot: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    drop(server);

    let stored = std::fs::read_dir(root.path().join("data"))
        .expect("list data")
        .count();
    assert!(stored > 0, "the server wrote nothing to /data");
}

#[test]
fn docker_image_recipe_is_scratch_non_root() {
    let path = common::repo().join("images/docker/Dockerfile");
    let text = std::fs::read_to_string(&path).expect("read images/docker/Dockerfile");
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(instructions.first(), Some(&"FROM scratch"));
    assert_eq!(
        instructions
            .iter()
            .filter(|l| l.starts_with("FROM "))
            .count(),
        1,
        "one stage: nothing but the binary"
    );
    let user = instructions
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER instruction");
    let uid = user.split(':').next().expect("uid");
    assert!(
        uid.parse::<u32>().is_ok_and(|uid| uid != 0),
        "USER must be a numeric non-root UID, not {user:?}"
    );
    assert_eq!(
        instructions.last(),
        Some(&r#"ENTRYPOINT ["/mallard-metrics"]"#)
    );
    for expected in [
        "COPY --chmod=0555 mallard-metrics /mallard-metrics",
        "VOLUME /data",
        "EXPOSE 8000",
        r#"CMD ["/mallard-metrics", "healthcheck"]"#,
    ] {
        assert!(instructions.contains(&expected), "missing `{expected}`");
    }
    let env = instructions
        .iter()
        .find_map(|l| l.strip_prefix("ENV "))
        .expect("an ENV instruction");
    for setting in [
        "MALLARD_DATA_DIR=/data",
        "MALLARD_HOST=0.0.0.0",
        "MALLARD_PORT=8000",
    ] {
        assert!(
            env.split_whitespace().any(|s| s == setting),
            "ENV lacks {setting}"
        );
    }
}
