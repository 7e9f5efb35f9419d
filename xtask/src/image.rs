//! `cargo xtask image`: a bootable Debian 12 disk image (raw + qcow2, BIOS and UEFI) from the
//! recipe in `images/`, with the bake phase done: packages, binaries and every bake file of
//! `cloud-init/manifest.toml`. Nothing per-instance. `--stock` builds the plain Debian image the
//! VM test pastes the full user-data into.

mod disk;
mod manifest;
pub(crate) mod recipe;
mod rootfs;
pub mod tools;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use serde_json::json;

use crate::render::{self, Phase, settings};

#[derive(clap::Args)]
pub struct Args {
    /// Build the plain Debian image of images/stock.toml (cloud-init only, nothing of Mallard
    /// Metrics) that `cargo xtask vm-test` provisions with the full user-data.
    #[arg(long)]
    pub stock: bool,
    /// The recipe [default: images/recipe.toml, or images/stock.toml with --stock].
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    /// Output folder [default: $CARGO_TARGET_DIR/image/<recipe name>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Disk size, e.g. 3G [default: the recipe's].
    #[arg(long, value_name = "SIZE")]
    pub size: Option<String>,
    /// Debian mirror for the build, e.g. a snapshot
    /// (http://snapshot.debian.org/archive/debian/20250520T000000Z) [default: the recipe's].
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Debian security mirror for the build [default: the recipe's].
    #[arg(long, value_name = "URL")]
    pub security_mirror: Option<String>,
    /// The mallard-metrics binary to bake [default: $CARGO_TARGET_DIR/dist/mallard-metrics].
    #[arg(long, value_name = "PATH")]
    pub mallard_bin: Option<PathBuf>,
    /// The Caddy binary to bake: the custom build with the Cloudflare DNS module
    /// (`cargo xtask caddy`) [default: Debian's /usr/bin/caddy, which cannot do DNS-01].
    #[arg(long, value_name = "PATH")]
    pub caddy_bin: Option<PathBuf>,
    /// How the baked Caddyfile gets certificates (as `cargo xtask render --dns-provider`).
    #[arg(long, value_enum, default_value = "cloudflare")]
    pub dns_provider: settings::DnsProvider,
    /// Bake a Caddyfile that uses Caddy's local CA (tests, private networks).
    #[arg(long)]
    pub internal_ca: bool,
    /// Bake a Caddyfile that uses Let's Encrypt's staging CA.
    #[arg(long, conflicts_with = "internal_ca")]
    pub acme_staging: bool,
    /// Size of the encrypted data volume each server creates at first boot (as
    /// `cargo xtask render --volume-size`).
    #[arg(long, default_value = "auto", value_name = "SIZE")]
    pub volume_size: String,
    /// Where mmdebstrap's downloads are kept between builds
    /// [default: ~/.cache/mallard-image/apt].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

fn step(started: Instant, n: u32, what: &str) {
    eprintln!(
        "==> [{n}/6 +{}] {what}",
        crate::dist::elapsed(started.elapsed())
    );
}

pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// The settings the bake files are rendered with. Only instance files mention the domain and
/// e-mail, and those are never baked, so placeholders serve.
fn bake_settings(args: &Args) -> settings::Settings {
    let cloudflare = args.dns_provider == settings::DnsProvider::Cloudflare;
    settings::Settings {
        domain: "image.invalid".into(),
        extra_domains: Vec::new(),
        email: "admin@image.invalid".into(),
        dns_provider: args.dns_provider,
        cf_token: cloudflare.then(|| "instance-value".into()),
        ssh_keys: Vec::new(),
        release_url: None,
        sums: None,
        acme_staging: args.acme_staging,
        internal_ca: args.internal_ca,
        mask_client_ips: false,
        retention_days: 365,
        rate_limit: 0,
        volume_size: args.volume_size.clone(),
        backup_keep: 7,
        geoip_db: None,
        admin_password_hash: None,
    }
}

fn caddy_has_cloudflare(caddy: &Path) -> bool {
    tools::output(std::process::Command::new(caddy).arg("list-modules")).is_ok_and(|modules| {
        modules
            .lines()
            .any(|m| m.trim() == "dns.providers.cloudflare")
    })
}

pub fn run(args: &Args, root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let recipe_path = args.recipe.clone().unwrap_or_else(|| {
        root.join(if args.stock {
            "images/stock.toml"
        } else {
            "images/recipe.toml"
        })
    });
    let loaded = recipe::load(&recipe_path)?;
    let recipe = &loaded.recipe;
    let size = recipe::size_bytes(args.size.as_deref().unwrap_or(&recipe.size))?;
    let mirror = args.mirror.clone().unwrap_or_else(|| recipe.mirror.clone());
    let security_mirror = args
        .security_mirror
        .clone()
        .unwrap_or_else(|| recipe.security_mirror.clone());
    let epoch: u64 = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value.parse().context("SOURCE_DATE_EPOCH is not a number")?,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| target_dir(root).join("image").join(&recipe.name));
    let work = target_dir(root)
        .join("image")
        .join(format!("{}.work", recipe.name));
    let cache = args.cache.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/mallard-image/apt")
    });

    step(
        started,
        1,
        &format!("checking tools and inputs ({})", recipe_path.display()),
    );
    tools::require(&[
        "mmdebstrap",
        "sfdisk",
        "mkfs.ext4",
        "mkfs.vfat",
        "mcopy",
        "mmd",
        "grub-mkimage",
        "/usr/lib/grub/i386-pc",
        "/usr/lib/grub/x86_64-efi",
        "qemu-img",
    ])?;
    ensure!(
        tools::output(std::process::Command::new("id").arg("-u"))?.trim() == "0",
        "cargo xtask image runs mmdebstrap in root mode: run it as root (CI does)"
    );
    let mut files: Vec<(String, Vec<u8>, u32)> = Vec::new();
    let mut binaries = Vec::new();
    for folder in &recipe.files {
        let base = loaded.path.parent().context("recipe folder")?.join(folder);
        files.extend(rootfs::folder_files(&base)?);
    }
    if !recipe.phases.is_empty() {
        let rendered = render::render(root, &bake_settings(args), "", None)?;
        for file in rendered.host_files {
            let phase = match file.phase {
                Phase::Bake => "bake",
                Phase::Instance => "instance",
            };
            if recipe.phases.iter().any(|p| p == phase) {
                files.push((
                    file.path,
                    file.content.into_bytes(),
                    u32::from_str_radix(&file.mode, 8)?,
                ));
            }
        }
    }
    if recipe.binaries {
        let mallard = args
            .mallard_bin
            .clone()
            .unwrap_or_else(|| target_dir(root).join("dist/mallard-metrics"));
        ensure!(
            mallard.is_file(),
            "{} is missing: run `cargo xtask dist` first (or pass --mallard-bin)",
            mallard.display()
        );
        let caddy = match &args.caddy_bin {
            Some(path) => path.clone(),
            None => tools::which("caddy").context(
                "no --caddy-bin and no Debian caddy: `apt-get install caddy`, or build the custom \
                 one with `cargo xtask caddy`",
            )?,
        };
        let cloudflare = caddy_has_cloudflare(&caddy);
        if args.dns_provider == settings::DnsProvider::Cloudflare && !cloudflare {
            bail!(
                "{} has no dns.providers.cloudflare module, but the baked Caddyfile would use \
                 DNS-01 through Cloudflare (--dns-provider cloudflare, the default). Pass the \
                 custom build with --caddy-bin (cargo xtask caddy), or bake HTTP-01 with \
                 --dns-provider none (or --internal-ca for tests)",
                caddy.display()
            );
        }
        if !cloudflare {
            eprintln!(
                "\n!!! NOTE: baking {} — a Caddy WITHOUT the Cloudflare DNS module. This image can \
                 only get certificates by HTTP-01/TLS-ALPN-01 (or its local CA). For DNS-01, \
                 rebuild with --caddy-bin <the custom build from `cargo xtask caddy`>.\n",
                caddy.display()
            );
        }
        for (source, name) in [(mallard, "mallard-metrics"), (caddy, "caddy")] {
            let bytes =
                std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
            binaries.push(json!({
                "path": format!("/usr/local/bin/{name}"),
                "source": source.display().to_string(),
                "sha256": crate::dist::sha256_hex(&bytes),
                "bytes": bytes.len(),
            }));
            files.push((format!("/usr/local/bin/{name}"), bytes, 0o755));
        }
        if cloudflare {
            binaries[1]["modules"] = json!(["dns.providers.cloudflare"]);
        }
    }

    step(
        started,
        2,
        &format!(
            "mmdebstrap {} ({} packages listed; cache {})",
            recipe.suite,
            recipe.packages.len(),
            cache.display()
        ),
    );
    std::fs::create_dir_all(&work)?;
    let rootfs_dir = work.join("rootfs");
    remove_tree(&rootfs_dir)?;
    let t = Instant::now();
    rootfs::debootstrap(
        recipe,
        &mirror,
        &security_mirror,
        &rootfs_dir,
        &cache,
        epoch,
    )?;
    let debootstrap_secs = t.elapsed().as_secs();

    step(
        started,
        3,
        &format!("baking {} files, removing per-instance state", files.len()),
    );
    let ids = disk::Ids::derive(&format!("{}:{}:{epoch}", loaded.hash, recipe.name));
    rootfs::bake(
        &rootfs_dir,
        &rootfs::Bake {
            files: files.clone(),
            recipe,
        },
        &ids.root_uuid,
    )?;
    disk::install_grub_files(&rootfs_dir, &ids.root_uuid)?;
    let packages = manifest::packages(&rootfs_dir)?;
    rootfs::clamp_times(&rootfs_dir, epoch)?;

    step(
        started,
        4,
        &format!(
            "disk: MBR, ESP + ext4 root ({} MiB), GRUB for BIOS and UEFI",
            size >> 20
        ),
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let raw = out.join(format!("{}.raw", recipe.name));
    let qcow2 = out.join(format!("{}.qcow2", recipe.name));
    disk::build(&rootfs_dir, &raw, size, &ids, &work, epoch)?;

    step(started, 5, "qcow2 (compressed)");
    disk::qcow2(&raw, &qcow2)?;

    step(started, 6, "manifest and SHA256SUMS");
    let mut artifacts = Vec::new();
    for path in [&raw, &qcow2] {
        artifacts.push((
            path.file_name()
                .context("name")?
                .to_string_lossy()
                .into_owned(),
            manifest::sha256_file(path)?,
            std::fs::metadata(path)?.len(),
        ));
    }
    let baked_files: Vec<_> = files
        .iter()
        .filter(|(path, _, _)| !path.starts_with("/usr/local/bin/"))
        .map(|(path, content, mode)| {
            json!({"path": path, "mode": format!("{mode:04o}"), "sha256": crate::dist::sha256_hex(content)})
        })
        .collect();
    let manifest_json = json!({
        "name": recipe.name,
        "recipe": {"path": loaded.path.strip_prefix(root).unwrap_or(&loaded.path).display().to_string(), "sha256": loaded.hash, "content": recipe},
        "source_date_epoch": epoch,
        "mirror": mirror,
        "security_mirror": security_mirror,
        "boot": {"bios": true, "uefi": true, "secure_boot": false, "partition_table": "dos", "root_fs_uuid": ids.root_uuid},
        "bake": {"dns_provider": args.dns_provider, "internal_ca": args.internal_ca, "acme_staging": args.acme_staging, "volume_size": args.volume_size, "phases": recipe.phases},
        "binaries": binaries,
        "files": baked_files,
        "packages": packages,
        "artifacts": artifacts.iter().map(|(file, sha256, bytes)| json!({"file": file, "sha256": sha256, "bytes": bytes})).collect::<Vec<_>>(),
    });
    let manifest_name = format!("{}.manifest.json", recipe.name);
    std::fs::write(
        out.join(&manifest_name),
        serde_json::to_string_pretty(&manifest_json)? + "\n",
    )?;
    let mut sums: Vec<(String, String)> = artifacts.into_iter().map(|(f, s, _)| (f, s)).collect();
    sums.push((
        manifest_name.clone(),
        manifest::sha256_file(&out.join(&manifest_name))?,
    ));
    manifest::write_sums(&out, &sums)?;
    remove_tree(&rootfs_dir)?;

    eprintln!(
        "done in {} (mmdebstrap {}s): {} packages\n  {}\n  {}\n  {}\n  {}",
        crate::dist::elapsed(started.elapsed()),
        debootstrap_secs,
        packages.len(),
        raw.display(),
        qcow2.display(),
        out.join(&manifest_name).display(),
        out.join("SHA256SUMS").display()
    );
    Ok(())
}

/// Removes a previous root file system, refusing while anything is mounted below it (a build
/// that died inside mmdebstrap may have left /proc or /dev bound there).
fn remove_tree(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let canonical = dir.canonicalize()?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = canonical.to_string_lossy().into_owned();
    if let Some(line) = mounts.lines().find(|line| {
        line.split_whitespace()
            .nth(4)
            .is_some_and(|point| point == prefix || point.starts_with(&format!("{prefix}/")))
    }) {
        bail!(
            "something is still mounted under {}: unmount it first ({line})",
            dir.display()
        );
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}
