//! The host checks: audit, SSH refusals, listening ports and the firewall, the LUKS volume.

use std::time::Duration;

use anyhow::{Context, ensure};

use super::checks::Report;
use super::guest::{self, Guest};
use super::qemu::BLOCKED_GUEST_PORT;

/// `mallard-metrics audit --format json`: every check must PASS. A first backup is taken
/// before (a fresh host has none yet, and the audit wants one from the last 36 hours).
pub fn audit(report: &mut Report, guest: &Guest) {
    report.check("sudo mallard-backup (first snapshot)", || {
        let out = guest.ssh("sudo mallard-backup 2>&1")?;
        Ok(out.lines().last().unwrap_or_default().to_owned())
    });
    report.check(
        "mallard-metrics audit --format json: every check PASS",
        || {
            let out = guest.ssh_raw(guest::USER, "sudo mallard-metrics audit --format json", "")?;
            let text = String::from_utf8_lossy(&out.stdout);
            let json: serde_json::Value = serde_json::from_str(text.trim()).with_context(|| {
                format!(
                    "audit output is not JSON ({}): {text}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
            let checks = json["checks"].as_array().context("no checks array")?;
            let not_pass: Vec<String> = checks
                .iter()
                .filter(|c| c["status"] != "pass")
                .map(|c| format!("{} {}: {}", c["status"], c["id"], c["detail"]))
                .collect();
            ensure!(
                not_pass.is_empty(),
                "{} of {} checks not PASS:\n      {}",
                not_pass.len(),
                checks.len(),
                not_pass.join("\n      ")
            );
            Ok(format!("{} checks, all PASS", checks.len()))
        },
    );
}

pub fn ssh_refusals(report: &mut Report, guest: &Guest) {
    report.check("SSH password login refused", || {
        let out = std::process::Command::new("ssh")
            .args(["-F", "/dev/null", "-o", "PubkeyAuthentication=no"])
            .args([
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
            ])
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .args([
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=10",
            ])
            .args(["-p", &guest.ports.ssh.to_string()])
            .arg(format!("{}@127.0.0.1", guest::USER))
            .arg("true")
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let methods = stderr
            .lines()
            .find_map(|l| {
                l.split_once("Permission denied (")
                    .map(|(_, m)| m.trim_end_matches(")."))
            })
            .with_context(|| format!("no 'Permission denied' from sshd: {stderr}"))?;
        ensure!(
            !methods.contains("password") && !methods.contains("keyboard-interactive"),
            "sshd offers {methods}"
        );
        Ok(format!("refused; sshd offers only: {methods}"))
    });
    report.check(
        "SSH root login refused (even with the authorised key)",
        || {
            let out = guest.ssh_raw("root", "true", "")?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            ensure!(
                !out.status.success() && !stdout.contains("root"),
                "root logged in: {stdout}"
            );
            Ok(format!(
                "refused: {}",
                stderr.trim().lines().last().unwrap_or_default()
            ))
        },
    );
}

/// Only 22, 80 and 443 answer from outside; a listener on another port is hidden by UFW.
pub fn ports(report: &mut Report, guest: &Guest) {
    report.check(
        "listening sockets (guest): public ones are 22/tcp, 80/tcp, 443/tcp, 443/udp",
        || {
            let out = guest.ssh("sudo ss -Hltun")?;
            let mut public = Vec::new();
            for line in out.lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (Some(proto), Some(local)) = (fields.first(), fields.get(4)) else {
                    continue;
                };
                let (address, port) = local.rsplit_once(':').unwrap_or((local, ""));
                let loopback = address.starts_with("127.")
                    || address.contains("::1]")
                    || address.contains("%lo");
                // dhclient's socket answers nothing unsolicited (and UFW drops it).
                let dhcp_client = *proto == "udp" && port == "68";
                if !loopback && !dhcp_client {
                    public.push(format!("{port}/{proto}"));
                }
            }
            public.sort();
            public.dedup();
            let allowed = ["22/tcp", "443/tcp", "443/udp", "80/tcp"];
            let extra: Vec<&String> = public
                .iter()
                .filter(|p| !allowed.contains(&p.as_str()))
                .collect();
            ensure!(
                extra.is_empty(),
                "unexpected listeners: {extra:?} (all: {public:?})"
            );
            Ok(public.join(" "))
        },
    );
    report.check(
        "from outside: 22, 80, 443 answer; a listener on 9000 is firewalled",
        || {
            let banner = guest::raw_probe(guest.ports.ssh, b"", Duration::from_secs(10));
            ensure!(
                banner.starts_with("SSH-2.0"),
                "22: no SSH banner ({banner:?})"
            );
            let http = guest::raw_probe(
                guest.ports.http,
                format!(
                    "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    guest::DOMAIN
                )
                .as_bytes(),
                Duration::from_secs(10),
            );
            ensure!(
                http.starts_with("HTTP/1.1 "),
                "80: no HTTP answer ({http:?})"
            );
            guest
                .ssh(&format!(
                    "sudo systemd-run --quiet --unit=vm-test-listener --property=DynamicUser=yes \
             python3 -m http.server {BLOCKED_GUEST_PORT} --bind 0.0.0.0 && sleep 3 && \
             curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{BLOCKED_GUEST_PORT}/"
                ))
                .context("starting a test listener on port 9000 inside the guest")?;
            let blocked = guest::raw_probe(
                guest.ports.blocked,
                b"GET / HTTP/1.0\r\n\r\n",
                Duration::from_secs(10),
            );
            let _ = guest.ssh("sudo systemctl stop vm-test-listener");
            ensure!(
                blocked.is_empty(),
                "port 9000 answered from outside: {blocked:?}"
            );
            Ok(format!(
                "22 {}, 80 {}, 9000 silent (answers inside the guest)",
                banner.trim(),
                http.lines().next().unwrap_or_default()
            ))
        },
    );
}

/// The data is on the LUKS volume, and the container holds no plaintext of what was ingested.
pub fn volume(report: &mut Report, guest: &Guest, token: &str) {
    report.check(
        "data on /dev/mapper/mallard-data (LUKS2) mounted at /srv/mallard/data",
        || {
            let mount = guest.ssh("findmnt -n -o SOURCE,FSTYPE /srv/mallard/data")?;
            ensure!(
                mount
                    .split_whitespace()
                    .eq(["/dev/mapper/mallard-data", "ext4"]),
                "mounted from {mount:?}"
            );
            let status = guest.ssh("sudo cryptsetup status mallard-data")?;
            ensure!(
                status.contains("LUKS2") && status.contains("/srv/mallard/data.img"),
                "{status}"
            );
            let dump = guest.ssh("sudo cryptsetup luksDump /srv/mallard/data.img")?;
            ensure!(
                dump.contains("aes-xts-plain64") && dump.contains("512 bits"),
                "{dump}"
            );
            let files = guest
                .ssh("sudo find /srv/mallard/data -maxdepth 1 -name '*.duckdb*' -printf '%f '")?;
            ensure!(
                !files.trim().is_empty(),
                "no DuckDB file in /srv/mallard/data"
            );
            Ok(format!(
                "LUKS2 aes-xts-plain64 512-bit, ext4; {}",
                files.trim()
            ))
        },
    );
    report.check(
        "data.img holds no plaintext of the ingested page (the volume does)",
        || {
            // The token goes through stdin: on a command line, sudo would log it to the journal.
            let count = |file: &str| -> anyhow::Result<u64> {
                let out = guest.ssh_raw(
                    guest::USER,
                    &format!("sync && sudo grep -c -a -F -f /dev/stdin {file}"),
                    token,
                )?;
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .context("grep -c output")
            };
            let plain = count("/dev/mapper/mallard-data")?;
            ensure!(
                plain > 0,
                "the token is not on the opened volume either: the check would prove nothing"
            );
            let cipher = count("/srv/mallard/data.img")?;
            ensure!(
                cipher == 0,
                "{cipher} plaintext hits in /srv/mallard/data.img"
            );
            Ok(format!(
                "{plain} hit(s) on the opened volume, 0 in data.img"
            ))
        },
    );
}

/// Provisioning again on the provisioned host: the rendered `provision.sh` (the existing-VPS
/// path, non-interactive) must find every package and file as it would write them, whichever
/// path provisioned the host, and `mallard-setup` must say that nothing changed.
pub fn rerun_provisioning(report: &mut Report, guest: &Guest, provision: &str) {
    report.check(
        "provision.sh run again on the host: nothing changed",
        || {
            guest.ssh_raw(
                guest::USER,
                "umask 077 && cat > /tmp/provision.sh",
                provision,
            )?;
            let out = guest.ssh("sudo bash /tmp/provision.sh </dev/null 2>&1; echo \"exit $?\"")?;
            let lines: Vec<&str> = out.lines().collect();
            let last = |n: usize| lines[lines.len().saturating_sub(n)..].join("\n      ");
            ensure!(lines.last() == Some(&"exit 0"), "{}", last(15));
            ensure!(
                out.contains("provision: 0 change(s) to packages and files")
                    && out.contains("nothing changed"),
                "it changed something:\n      {}",
                last(15)
            );
            Ok("0 changes to packages and files; mallard-setup: nothing changed".into())
        },
    );
}
