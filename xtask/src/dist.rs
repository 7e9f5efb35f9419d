//! `cargo xtask dist`: the shipped binary. A static `x86_64-unknown-linux-musl` build of
//! `mallard-metrics` (DuckDB's C++ included, linked with zig's static libc++) with the `dist`
//! profile, written with `SHA256SUMS` and `manifest.json` to `$CARGO_TARGET_DIR/dist/`.
//!
//! The C/C++ toolchain is zig (PyPI's `ziglang`) driven by `cargo-zigbuild`, which points the
//! `cc` crate (DuckDB's build script) and the final link at `zig cc`/`zig c++` for musl.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use crate::musl::{self, PROFILE, Purpose, TARGET};

const BIN: &str = "mallard-metrics";

#[derive(clap::Args)]
pub struct Args {
    /// Folder for the binary, SHA256SUMS and manifest.json
    /// [default: $CARGO_TARGET_DIR/dist, else <workspace>/target/dist].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Do not run cargo: take the binary of the last `cargo xtask dist` build, check it is
    /// static, copy it and rewrite SHA256SUMS and manifest.json.
    #[arg(long)]
    skip_build: bool,
}

pub fn run(args: &Args, root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let sh = Shell::new()?;
    sh.change_dir(root);
    let meta = Metadata::read(&sh)?;
    let out = args.out.clone().unwrap_or_else(|| meta.default_out_dir());
    let built = meta.target_dir.join(TARGET).join(PROFILE).join(BIN);

    if args.skip_build {
        step("--skip-build: reusing the last build");
    } else {
        step("checking prerequisites (zig, cargo-zigbuild, the musl target)");
        let zig = musl::check_prerequisites(&sh, "dist")?;
        eprintln!("   zig {zig}");
        step(&format!(
            "building {BIN} for {TARGET} (profile `{PROFILE}`; DuckDB's C++ takes ~30 minutes cold)"
        ));
        build(&sh, &meta)?;
    }
    if !built.is_file() {
        bail!(
            "{} does not exist: run `cargo xtask dist` without --skip-build",
            built.display()
        );
    }

    step("checking the binary is static (no ELF interpreter, no shared libraries)");
    let bytes = std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let linkage = elf_linkage(&bytes).with_context(|| format!("inspecting {}", built.display()))?;
    eprintln!("   {linkage}");

    step(&format!("writing {}", out.display()));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let dest = out.join(BIN);
    // Copy to a temporary name first: a running copy of the old binary keeps its inode.
    let partial = out.join(format!(".{BIN}.partial"));
    std::fs::copy(&built, &partial).with_context(|| format!("copying to {}", partial.display()))?;
    set_executable(&partial)?;
    std::fs::rename(&partial, &dest).with_context(|| format!("writing {}", dest.display()))?;
    let sha256 = sha256_hex(&bytes);
    record_checksum(&out, BIN, &sha256)?;

    let (duckdb_crate, duckdb_library) = duckdb_version(root)?;
    let manifest = serde_json::json!({
        "name": BIN,
        "version": meta.version,
        "git_revision": git_revision(&sh),
        "rustc": tool_version(&sh, "rustc", &["--version"]),
        "cargo_zigbuild": tool_version(&sh, "cargo-zigbuild", &["--version"]),
        "zig": musl::zig_version(&sh).unwrap_or_else(|| "unknown".into()),
        "duckdb_version": duckdb_library,
        "duckdb_crate": duckdb_crate,
        "target": TARGET,
        "profile": PROFILE,
        "linkage": linkage.to_string(),
        "size": bytes.len(),
        "sha256": sha256,
    });
    let manifest_path = out.join("manifest.json");
    std::fs::write(
        &manifest_path,
        serde_json::to_string_pretty(&manifest)? + "\n",
    )
    .with_context(|| format!("writing {}", manifest_path.display()))?;

    eprintln!(
        "\n{}\n  {} bytes ({:.1} MiB), sha256 {sha256}\n  DuckDB {duckdb_library} ({duckdb_crate})\n  {}\n  {}",
        dest.display(),
        bytes.len(),
        bytes.len() as f64 / (1024.0 * 1024.0),
        out.join("SHA256SUMS").display(),
        manifest_path.display(),
    );
    eprintln!("done in {}", elapsed(started.elapsed()));
    Ok(())
}

/// A progress line of an xtask command (`==> …` on stderr).
pub fn step(what: &str) {
    eprintln!("==> {what}");
}

/// What `cargo metadata` says about the workspace (it honours CARGO_TARGET_DIR and config).
pub struct Metadata {
    pub target_dir: PathBuf,
    version: String,
}

impl Metadata {
    pub fn read(sh: &Shell) -> anyhow::Result<Metadata> {
        let json = cmd!(sh, "cargo metadata --format-version 1 --no-deps --offline")
            .quiet()
            .read()
            .context("running `cargo metadata`")?;
        let value: serde_json::Value =
            serde_json::from_str(&json).context("parsing `cargo metadata` output")?;
        let target_dir = value["target_directory"]
            .as_str()
            .context("`cargo metadata` has no target_directory")?
            .into();
        let version = value["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == BIN)
            .and_then(|p| p["version"].as_str())
            .context("`cargo metadata` lists no mallard-metrics package")?
            .to_owned();
        Ok(Metadata {
            target_dir,
            version,
        })
    }

    pub fn default_out_dir(&self) -> PathBuf {
        self.target_dir.join("dist")
    }
}

fn build(sh: &Shell, meta: &Metadata) -> anyhow::Result<()> {
    let started = Instant::now();
    let build = musl::cargo(sh, &meta.target_dir, "zigbuild", Purpose::Ship).args([
        "--package",
        "mallard-metrics",
        "--bin",
        "mallard-metrics",
    ]);
    musl::run_with_heartbeat(build).context("the musl build failed (see cargo's output above)")?;
    eprintln!("   built in {}", elapsed(started.elapsed()));
    Ok(())
}

pub fn elapsed(duration: Duration) -> String {
    let secs = duration.as_secs();
    format!("{}m{:02}s", secs / 60, secs % 60)
}

/// How an ELF executable is linked, from its program headers (and dynamic section, if any).
#[derive(Debug, PartialEq)]
pub enum Linkage {
    /// No PT_INTERP, no PT_DYNAMIC: a classic static executable.
    Static,
    /// No PT_INTERP; a PT_DYNAMIC without DT_NEEDED, used only to relocate itself (ASLR).
    StaticPie,
}

impl std::fmt::Display for Linkage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Linkage::Static => "static (no interpreter, no dynamic section)",
            Linkage::StaticPie => {
                "static-pie (no interpreter, no shared libraries; self-relocating)"
            }
        })
    }
}

/// Errors unless the ELF64 little-endian executable needs no dynamic loader and no library.
pub fn elf_linkage(elf: &[u8]) -> anyhow::Result<Linkage> {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NULL: u64 = 0;
    const DT_NEEDED: u64 = 1;
    let u16_at = |at: usize| -> anyhow::Result<u64> {
        let b = elf.get(at..at + 2).context("truncated ELF")?;
        Ok(u16::from_le_bytes([b[0], b[1]]).into())
    };
    let u32_at = |at: usize| -> anyhow::Result<u32> {
        let b = elf.get(at..at + 4).context("truncated ELF")?;
        Ok(u32::from_le_bytes(b.try_into()?))
    };
    let u64_at = |at: usize| -> anyhow::Result<u64> {
        let b = elf.get(at..at + 8).context("truncated ELF")?;
        Ok(u64::from_le_bytes(b.try_into()?))
    };
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        bail!("not a little-endian ELF64 file");
    }
    let phoff = usize::try_from(u64_at(0x20)?)?;
    let phentsize = usize::try_from(u16_at(0x36)?)?;
    let phnum = usize::try_from(u16_at(0x38)?)?;
    let mut dynamic = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(ph)? {
            PT_INTERP => bail!("it has an ELF interpreter (PT_INTERP): it is dynamically linked"),
            PT_DYNAMIC => dynamic = Some((u64_at(ph + 8)?, u64_at(ph + 32)?)),
            _ => {}
        }
    }
    let Some((offset, size)) = dynamic else {
        return Ok(Linkage::Static);
    };
    let (offset, size) = (usize::try_from(offset)?, usize::try_from(size)?);
    for entry in (offset..offset + size).step_by(16) {
        match u64_at(entry)? {
            DT_NULL => break,
            DT_NEEDED => bail!("its dynamic section needs a shared library (DT_NEEDED)"),
            _ => {}
        }
    }
    Ok(Linkage::StaticPie)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sets `name`'s line in `dir/SHA256SUMS` (sha256sum's format, so `sha256sum -c SHA256SUMS`
/// works in `dir`), keeping the other lines whose files still exist.
pub fn record_checksum(dir: &Path, name: &str, sha256: &str) -> anyhow::Result<()> {
    let path = dir.join("SHA256SUMS");
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let mut entries: Vec<(String, String)> = existing
        .lines()
        .filter_map(|line| {
            let (hash, file) = line.split_once(' ')?;
            let file = file.trim_start_matches([' ', '*']);
            Some((file.to_owned(), hash.to_owned()))
        })
        .filter(|(file, _)| file != name && dir.join(file).is_file())
        .collect();
    entries.push((name.to_owned(), sha256.to_owned()));
    entries.sort();
    let text: String = entries
        .iter()
        .map(|(file, hash)| format!("{hash}  {file}\n"))
        .collect();
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

pub fn set_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod 755 {}", path.display()))
}

/// DuckDB as compiled in: the `libduckdb-sys` crate version from Cargo.lock, and the library
/// version it bundles, decoded from the crate's `1.MAJOR_MINOR_PATCH.x` scheme
/// (1.20000.1: DuckDB 2.0.0, the crate's second release for it).
fn duckdb_version(root: &Path) -> anyhow::Result<(String, String)> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    let version = loop {
        let line = lines
            .next()
            .context("Cargo.lock has no libduckdb-sys package")?;
        if line == r#"name = "libduckdb-sys""# {
            break lines
                .next()
                .and_then(|l| l.strip_prefix(r#"version = ""#))
                .and_then(|l| l.strip_suffix('"'))
                .context("Cargo.lock: no version after libduckdb-sys")?;
        }
    };
    let encoded: u32 = version
        .split('.')
        .nth(1)
        .and_then(|part| part.parse().ok())
        .with_context(|| format!("unexpected libduckdb-sys version {version}"))?;
    let library = format!(
        "{}.{}.{}",
        encoded / 10_000,
        (encoded / 100) % 100,
        encoded % 100
    );
    Ok((format!("libduckdb-sys {version}"), library))
}

fn git_revision(sh: &Shell) -> String {
    let Ok(head) = cmd!(sh, "git rev-parse HEAD")
        .quiet()
        .ignore_stderr()
        .read()
    else {
        return "unknown".into();
    };
    let dirty = cmd!(sh, "git status --porcelain --untracked-files=no")
        .quiet()
        .read()
        .map(|status| !status.trim().is_empty())
        .unwrap_or(true);
    if dirty { format!("{head}-dirty") } else { head }
}

fn tool_version(sh: &Shell, program: &str, args: &[&str]) -> String {
    cmd!(sh, "{program} {args...}")
        .quiet()
        .ignore_stderr()
        .read()
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf() {
        assert!(elf_linkage(b"#!/bin/sh\n").is_err());
    }

    #[test]
    fn this_test_binary_is_dynamic() {
        // Test binaries are built for the host (glibc): they have an interpreter.
        let exe = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
        let err = elf_linkage(&exe).expect_err("a glibc executable is dynamic");
        assert!(err.to_string().contains("PT_INTERP"), "{err}");
    }

    #[test]
    fn checksums_keep_other_existing_files() {
        let dir = std::env::temp_dir().join(format!("xtask-sums-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("caddy"), b"x").expect("write");
        std::fs::write(
            dir.join("SHA256SUMS"),
            "aa  caddy\nbb  gone\ncc  mallard-metrics\n",
        )
        .expect("write");
        record_checksum(&dir, "mallard-metrics", "dd").expect("record");
        let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).expect("read");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(sums, "aa  caddy\ndd  mallard-metrics\n");
    }
}
