//! `cargo xtask vm-test`: boots the images of `cargo xtask image` in qemu with a NoCloud seed
//! and proves the deployment from outside: the baked image with the small instance user-data,
//! and the stock Debian image with the full user-data (binaries served from this host).

mod checks;
mod flow;
mod guest;
mod host;
mod qemu;
mod serve;
mod timing;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::image::{self, tools};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// The baked image + image-user-data.yaml (boots with UEFI firmware).
    Baked,
    /// The stock Debian image + the full user-data.yaml (boots with BIOS firmware).
    Stock,
    Both,
}

#[derive(clap::Args)]
pub struct Args {
    /// Which deployment path to boot.
    #[arg(long, value_enum, default_value = "both")]
    pub path: Which,
    /// Folder of the baked image [default: $CARGO_TARGET_DIR/image/mallard-metrics-debian12-amd64].
    #[arg(long, value_name = "DIR")]
    pub image: Option<PathBuf>,
    /// Folder of the stock image [default: $CARGO_TARGET_DIR/image/debian12-stock-amd64].
    #[arg(long, value_name = "DIR")]
    pub stock_image: Option<PathBuf>,
    /// Logs, keys and disks of the run [default: $CARGO_TARGET_DIR/vm-test].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The mallard-metrics the stock path downloads from this host (served over HTTP, verified by
    /// SHA-256 in the guest) [default: $CARGO_TARGET_DIR/dist/mallard-metrics].
    #[arg(long, value_name = "PATH")]
    pub mallard_bin: Option<PathBuf>,
    /// The Caddy the stock path downloads from this host [default: Debian's /usr/bin/caddy; the
    /// test uses Caddy's local CA, so it needs no DNS module].
    #[arg(long, value_name = "PATH")]
    pub caddy_bin: Option<PathBuf>,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 2048)]
    pub memory: u32,
}

/// The `.raw` disk in an image folder, with its manifest.
fn find_image(dir: &Path) -> anyhow::Result<(PathBuf, serde_json::Value)> {
    let raw = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "{} does not exist: build it with `cargo xtask image`",
                dir.display()
            )
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "raw"))
        .with_context(|| format!("no .raw image in {}", dir.display()))?;
    let manifest_path = raw.with_extension("manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    Ok((raw, serde_json::from_str(&manifest)?))
}

pub fn run(args: &Args, root: &Path) -> anyhow::Result<()> {
    tools::require(&[
        "qemu-system-x86_64",
        "qemu-img",
        "mkfs.vfat",
        "mcopy",
        "ssh",
        "ssh-keygen",
        "curl",
        "/usr/share/ovmf/OVMF.fd",
    ])?;
    let target = image::target_dir(root);
    let out = args.out.clone().unwrap_or_else(|| target.join("vm-test"));
    std::fs::create_dir_all(&out)?;
    let mut plans = Vec::new();
    if args.path != Which::Stock {
        let dir = args
            .image
            .clone()
            .unwrap_or_else(|| target.join("image/mallard-metrics-debian12-amd64"));
        let (raw, manifest) = find_image(&dir)?;
        if manifest["bake"]["internal_ca"] != true {
            bail!(
                "{} was built without --internal-ca: its Caddy would ask a public CA for a \
                 certificate, which the VM cannot reach. Build the test image with \
                 `cargo xtask image --dns-provider none --internal-ca`",
                raw.display()
            );
        }
        plans.push(flow::Plan::baked(raw));
    }
    if args.path != Which::Baked {
        let dir = args
            .stock_image
            .clone()
            .unwrap_or_else(|| target.join("image/debian12-stock-amd64"));
        let (raw, _) = find_image(&dir)?;
        let mallard = args
            .mallard_bin
            .clone()
            .unwrap_or_else(|| target.join("dist/mallard-metrics"));
        let caddy = match &args.caddy_bin {
            Some(path) => path.clone(),
            None => tools::which("caddy")
                .context("no --caddy-bin and no Debian caddy: apt-get install caddy")?,
        };
        plans.push(flow::Plan::stock(raw, mallard, caddy));
    }

    let mut results = Vec::new();
    for plan in &plans {
        eprintln!("\n==> vm-test, {} path ({})", plan.name, plan.raw.display());
        let result = flow::run(plan, root, &out.join(plan.name), args.memory);
        results.push((plan.name, result));
    }

    eprintln!("\n==> summary (logs under {})", out.display());
    let mut failed = 0;
    let mut summary = serde_json::Map::new();
    for (name, result) in &results {
        match result {
            Ok(outcome) => {
                let failures = outcome.report.failures();
                failed += failures;
                eprintln!(
                    "   {name}: {} checks, {failures} failed; {}",
                    outcome.report.outcomes.len(),
                    outcome.timings.describe()
                );
                for o in outcome.report.outcomes.iter().filter(|o| o.result.is_err()) {
                    eprintln!("      FAIL {}", o.name);
                }
                summary.insert(name.to_string(), outcome.to_json());
            }
            Err(e) => {
                failed += 1;
                eprintln!("   {name}: did not complete: {e:#}");
                summary.insert(
                    name.to_string(),
                    serde_json::json!({"error": format!("{e:#}")}),
                );
            }
        }
    }
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    if failed > 0 {
        bail!(
            "vm-test: {failed} failure(s); serial and cloud-init logs are under {}",
            out.display()
        );
    }
    eprintln!("vm-test: every check passed");
    Ok(())
}
