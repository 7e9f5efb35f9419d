//! One deployment path from power-on to the reboot check: seed, boot, wait for cloud-init, the
//! checks, reboot, the checks that must survive it, logs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use super::checks::{self, Report};
use super::guest::{self, Guest};
use super::qemu::{self, Vm};
use super::timing::{Outcome, Timings, Watcher};
use super::{host, serve};
use crate::render::{self, password, settings};

/// cloud-init's final_message in the rendered user-data.
const MARKER: &str = "mallard-metrics: provisioning finished after";

pub struct Plan {
    pub name: &'static str,
    pub raw: PathBuf,
    pub uefi: bool,
    /// (mallard-metrics, caddy) served to the guest: the stock path.
    pub release: Option<(PathBuf, PathBuf)>,
    pub first_boot_timeout: Duration,
}

impl Plan {
    pub fn baked(raw: PathBuf) -> Plan {
        Plan {
            name: "baked",
            raw,
            uefi: true,
            release: None,
            first_boot_timeout: Duration::from_secs(900),
        }
    }

    pub fn stock(raw: PathBuf, mallard: PathBuf, caddy: PathBuf) -> Plan {
        Plan {
            name: "stock",
            raw,
            uefi: false,
            release: Some((mallard, caddy)),
            first_boot_timeout: Duration::from_secs(2400),
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Copies the guest's logs into `dir` (best effort: the guest may be half up).
fn collect_logs(guest: &Guest, dir: &Path, boot: u32) {
    for (file, command) in [
        ("cloud-init.log", "sudo cat /var/log/cloud-init.log"),
        (
            "cloud-init-output.log",
            "sudo cat /var/log/cloud-init-output.log",
        ),
        (
            "cloud-init-result.json",
            "sudo cat /run/cloud-init/result.json",
        ),
        (
            "journal",
            "sudo journalctl -b --no-pager -o short-monotonic",
        ),
        (
            "units",
            "systemctl --failed --no-pager; systemctl status --no-pager mallard-metrics caddy fail2ban ssh",
        ),
    ] {
        if let Ok(out) = guest.ssh_raw(guest::USER, command, "") {
            let name = format!("boot{boot}-{file}");
            std::fs::write(dir.join(name), [out.stdout, out.stderr].concat()).ok();
        }
    }
}

pub fn run(plan: &Plan, root: &Path, dir: &Path, memory_mib: u32) -> anyhow::Result<Outcome> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let key = guest::keygen(dir)?;
    let admin_password = password::generate();
    let hash = password::hash(&admin_password)?;
    let token = format!(
        "p{}",
        &crate::dist::sha256_hex(password::generate().as_bytes())[..20]
    );

    // The release folder and its server (stock path only).
    let mut server = None;
    let mut sums = None;
    if let Some((mallard, caddy)) = &plan.release {
        let release = dir.join("release");
        std::fs::create_dir_all(&release)?;
        let mut lines = String::new();
        for (source, name) in [(mallard, "mallard-metrics"), (caddy, "caddy")] {
            let bytes =
                std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
            std::fs::write(release.join(name), &bytes)?;
            lines.push_str(&format!("{}  {name}\n", crate::dist::sha256_hex(&bytes)));
        }
        std::fs::write(release.join("SHA256SUMS"), &lines)?;
        sums = Some(release.join("SHA256SUMS"));
        server = Some(serve::start(&release)?);
    }
    let settings = settings::Settings {
        domain: guest::DOMAIN.into(),
        extra_domains: Vec::new(),
        email: format!("admin@{}", guest::DOMAIN),
        dns_provider: settings::DnsProvider::None,
        cf_token: None,
        ssh_keys: vec![key.with_extension("pub").display().to_string()],
        release_url: server
            .as_ref()
            .map(|s| format!("http://10.0.2.2:{}", s.port)),
        sums: sums.clone(),
        acme_staging: false,
        internal_ca: true,
        mask_client_ips: false,
        retention_days: 365,
        rate_limit: 0,
        volume_size: "auto".into(),
        backup_keep: 7,
        geoip_db: None,
        admin_password_hash: Some(hash.clone()),
    };
    let rendered = render::render(root, &settings, &hash, sums.as_deref())?;
    let wanted = if plan.release.is_some() {
        "user-data.yaml"
    } else {
        "image-user-data.yaml"
    };
    let user_data = &rendered
        .outputs
        .iter()
        .find(|(name, _, _)| name == wanted)
        .context("render wrote no user-data")?
        .1;
    eprintln!("   user-data: {wanted}, {} bytes", user_data.len());
    let provision = &rendered
        .outputs
        .iter()
        .find(|(name, _, _)| name == "provision.sh")
        .context("render wrote no provision.sh")?
        .1;
    std::fs::write(dir.join("provision.sh"), provision)?;
    let seed = dir.join("seed.img");
    qemu::seed(&seed, user_data, &format!("vm-test-{}", &token[1..13]))?;
    let disk = dir.join("disk.qcow2");
    qemu::overlay(&plan.raw.canonicalize()?, &disk)?;
    let config = qemu::Config {
        disk: disk.clone(),
        seed,
        uefi: plan.uefi,
        isolated: plan.release.is_none(),
        memory_mib,
        ports: qemu::Ports::free()?,
    };
    let mut guest = Guest {
        ports: config.ports,
        key,
        known_hosts: dir.join("known_hosts"),
        ca: None,
    };
    let mut report = Report::default();
    let mut timings = Timings::default();

    let result = boot_and_check(
        plan,
        dir,
        &config,
        &mut guest,
        &mut report,
        &mut timings,
        &admin_password,
        &token,
        server.as_ref(),
    );
    if let Some(server) = &server {
        let log = server
            .requests
            .lock()
            .map(|l| l.join("\n"))
            .unwrap_or_default();
        std::fs::write(dir.join("release-server.log"), log + "\n").ok();
    }
    if let Err(e) = &result {
        report.check("the run completed", || Err(anyhow::anyhow!("{e:#}")));
    }
    if report.failures() > 0 {
        for file in [
            "serial-1.log",
            "serial-2.log",
            "boot1-cloud-init-output.log",
        ] {
            let path = dir.join(file);
            if path.exists() {
                eprintln!(
                    "   --- last lines of {} ---\n{}\n   ---",
                    path.display(),
                    tail(&path, 60)
                );
            }
        }
    }
    Ok(Outcome { report, timings })
}

#[allow(clippy::too_many_arguments)]
fn boot_and_check(
    plan: &Plan,
    dir: &Path,
    config: &qemu::Config,
    guest: &mut Guest,
    report: &mut Report,
    timings: &mut Timings,
    password: &str,
    token: &str,
    server: Option<&serve::Server>,
) -> anyhow::Result<()> {
    let mut vm = Vm::launch(config, &dir.join("serial-1.log"), &dir.join("qemu-1.log"))?;
    eprintln!(
        "   booting ({}, TCG); serial console: {}",
        if plan.uefi { "UEFI" } else { "BIOS" },
        vm.serial.display()
    );
    let watcher = Watcher::start(guest, &vm);
    let waited = vm.wait_serial(MARKER, plan.first_boot_timeout);
    let seen = watcher.finish(if waited.is_ok() {
        Duration::from_secs(120)
    } else {
        Duration::ZERO
    });
    (timings.first_kernel, timings.first_healthy) = (seen.kernel, seen.healthy);
    timings.cloud_init_done = Some(waited?);
    eprintln!(
        "   cloud-init finished after {}s",
        vm.started.elapsed().as_secs()
    );
    guest.wait_ssh(Duration::from_secs(180))?;
    let first = first_boot_checks(dir, guest, report, password, token, server);
    collect_logs(guest, dir, 1);
    first?;

    // Reboot: the volume must unlock by itself and the events must still be counted.
    let cookie = checks::login(guest, password)?;
    let before = checks::pageviews(guest, &cookie)?;
    let rebooted = Instant::now();
    let _ = guest.ssh_raw(guest::USER, "sudo systemctl reboot", "");
    vm.wait_exit(Duration::from_secs(180))?;
    let mut vm = Vm::launch(config, &dir.join("serial-2.log"), &dir.join("qemu-2.log"))?;
    let watcher = Watcher::start(guest, &vm);
    checks::wait_healthy(guest, Duration::from_secs(600))?;
    timings.reboot_healthy = Some(vm.started.elapsed());
    timings.reboot_kernel = watcher.finish(Duration::ZERO).kernel;
    timings.reboot_total = Some(rebooted.elapsed());
    eprintln!(
        "   healthy again {}s after power-on",
        vm.started.elapsed().as_secs()
    );
    guest.wait_ssh(Duration::from_secs(180))?;
    report.check("after reboot: volume unlocked and mounted, services active", || {
        let mount = guest.ssh("findmnt -n -o SOURCE /srv/mallard/data")?;
        ensure!(mount.trim() == "/dev/mapper/mallard-data", "mounted from {mount:?}");
        let active = guest.ssh("systemctl is-active mallard-metrics caddy fail2ban ufw")?;
        ensure!(active.lines().all(|l| l == "active"), "{active}");
        Ok("mallard-data mounted; mallard-metrics, caddy, fail2ban, ufw active; SSH host key unchanged".into())
    });
    report.check("after reboot: the earlier events are still counted", || {
        let cookie = checks::login(guest, password)?;
        let after = checks::pageviews(guest, &cookie)?;
        ensure!(
            after >= before && before >= 2,
            "{before} pageviews before, {after} after"
        );
        ensure!(
            checks::pages(guest, &cookie)?.contains(token),
            "the page is gone"
        );
        Ok(format!("{before} pageviews before, {after} after"))
    });
    collect_logs(guest, dir, 2);
    let _ = guest.ssh_raw(guest::USER, "sudo systemctl poweroff", "");
    vm.wait_exit(Duration::from_secs(180))?;
    report.check(
        "the VM's disk holds no plaintext of the page (host-side scan)",
        || {
            let hits = crate::image::tools::capture(
                std::process::Command::new("grep")
                    .args(["-c", "-a", "-F", token])
                    .arg(&config.disk),
            )?;
            let count: u64 = String::from_utf8_lossy(&hits.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            ensure!(count == 0, "{count} hit(s) in {}", config.disk.display());
            Ok(format!("0 hits in {}", config.disk.display()))
        },
    );
    Ok(())
}

fn first_boot_checks(
    dir: &Path,
    guest: &mut Guest,
    report: &mut Report,
    password: &str,
    token: &str,
    server: Option<&serve::Server>,
) -> anyhow::Result<()> {
    report.check("cloud-init: status done, no errors", || {
        let status = guest.ssh("sudo cloud-init status --wait --long")?;
        ensure!(status.contains("status: done"), "{status}");
        let result: serde_json::Value =
            serde_json::from_str(&guest.ssh("sudo cat /run/cloud-init/result.json")?)?;
        let errors = &result["v1"]["errors"];
        ensure!(
            errors.as_array().is_some_and(Vec::is_empty),
            "errors: {errors}"
        );
        let setup =
            guest.ssh("sudo grep 'mallard-setup: healthy' /var/log/cloud-init-output.log")?;
        Ok(format!("done, errors [], {}", setup.trim()))
    });
    let ca = guest.ssh("sudo cat /var/lib/caddy/pki/authorities/local/root.crt")?;
    std::fs::write(dir.join("root.crt"), &ca)?;
    guest.ca = Some(dir.join("root.crt"));
    checks::wait_healthy(guest, Duration::from_secs(120))?;
    if let Some(server) = server {
        report.check(
            "stock: binaries downloaded from the host and SHA-256 verified",
            || {
                let sums = std::fs::read_to_string(dir.join("release/SHA256SUMS"))?;
                let installed =
                    guest.ssh("sha256sum /usr/local/bin/mallard-metrics /usr/local/bin/caddy")?;
                for line in sums.lines() {
                    let (sha, name) = line.split_once("  ").context("SHA256SUMS line")?;
                    ensure!(
                        installed.contains(&format!("{sha}  /usr/local/bin/{name}")),
                        "{name}: {installed}"
                    );
                }
                let log = server
                    .requests
                    .lock()
                    .map(|l| l.join("; "))
                    .unwrap_or_default();
                ensure!(
                    log.contains("GET /mallard-metrics") && log.contains("GET /caddy"),
                    "requests: {log}"
                );
                Ok(format!("both match SHA256SUMS; served: {log}"))
            },
        );
    }
    checks::web(report, guest, password, token);
    host::audit(report, guest);
    host::ssh_refusals(report, guest);
    host::ports(report, guest);
    host::rerun_provisioning(
        report,
        guest,
        &std::fs::read_to_string(dir.join("provision.sh"))?,
    );
    host::volume(report, guest, token);
    Ok(())
}
