//! `mallard-metrics audit`: every check against recorded outputs of the real commands (a fake
//! `Host` fed from `tests/fixtures/audit/`), the report shapes and exit codes, the real
//! `SystemHost` pieces, and the real binary on this (unprovisioned) machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use mallard_metrics::audit::{
    Check, CommandOutput, FileMeta, Host, HostError, HttpResponse, Report, Status, SystemHost,
    expected_sshd, expected_sysctl, parse_sysctl_conf, run_checks,
};

/// 2026-11-25T18:00:00Z, the fake host's "now"; the certificate fixtures are dated around it.
const NOW_UNIX: u64 = 1_795_629_600;
const CERTS: &str = "/var/lib/caddy/certificates";
const LE: &str = "acme-v02.api.letsencrypt.org-directory";
const SITE: &str = "stats.example.com";
const BACKUPS: &str = "/srv/mallard/data/backups";
const KEYFILE: &str = "/etc/mallard-data.key";

fn fixture(name: &str) -> String {
    // The run's CARGO_MANIFEST_DIR (`cargo test` sets it): a test binary built in another clone
    // sharing the target dir (CI's) is fresh for cargo but keeps that clone's compile-time path.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || env!("CARGO_MANIFEST_DIR").into(),
        std::path::PathBuf::from,
    );
    let path = manifest_dir.join("tests/fixtures/audit").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_UNIX)
}

fn hours_ago(hours: u64) -> SystemTime {
    now() - Duration::from_secs(hours * 3600)
}

/// A machine made of recorded answers. A command it has no answer for is not installed.
struct FakeHost {
    commands: HashMap<String, CommandOutput>,
    files: HashMap<PathBuf, String>,
    metas: HashMap<PathBuf, FileMeta>,
    links: HashMap<PathBuf, PathBuf>,
    dirs: HashMap<PathBuf, Vec<String>>,
    ready: Option<HttpResponse>,
    now: SystemTime,
}

impl FakeHost {
    fn bare() -> Self {
        Self {
            commands: HashMap::new(),
            files: HashMap::new(),
            metas: HashMap::new(),
            links: HashMap::new(),
            dirs: HashMap::new(),
            ready: None,
            now: now(),
        }
    }

    /// A provisioned host in good shape: every check passes.
    fn healthy() -> Self {
        let mut host = Self::bare();
        host.answer("sshd -T", 0, &fixture("sshd-T.txt"));
        for setting in expected_sysctl() {
            host.sysctl(&setting.key, &setting.value);
        }
        host.answer("ufw status verbose", 0, &fixture("ufw-status-verbose.txt"));
        host.answer(
            "fail2ban-client status sshd",
            0,
            &fixture("fail2ban-status-sshd.txt"),
        );
        host.answer("fail2ban-client get sshd maxretry", 0, "5\n");
        host.answer("fail2ban-client get sshd bantime", 0, "3600\n");
        host.answer(
            "cryptsetup status mallard-data",
            0,
            &fixture("cryptsetup-status.txt"),
        );
        host.file("/proc/self/mountinfo", &fixture("mountinfo.txt"));
        host.meta(KEYFILE, file_meta(0o400, 0, now()));
        host.answer(
            "df --output=pcent,target /srv/mallard/data",
            0,
            &fixture("df.txt"),
        );
        host.answer("systemctl is-active mallard-metrics.service", 0, "active\n");
        host.answer("systemctl is-active caddy.service", 0, "active\n");
        host.ready = Some(HttpResponse {
            status: 200,
            body: "ready".to_string(),
        });
        host.certificate(LE, SITE, "openssl-x509-letsencrypt.txt");
        host.dir(
            BACKUPS,
            &["2026-11-24T0230Z", "2026-11-25T0230Z", "2026-11-25T1700Z"],
        );
        host.backup("2026-11-24T0230Z", hours_ago(40));
        host.backup("2026-11-25T0230Z", hours_ago(16));
        // 2026-11-25T1700Z has no backup.json: still running, so not counted.
        host.answer(
            "apt-config dump APT::Periodic::Unattended-Upgrade",
            0,
            &fixture("apt-config-unattended.txt"),
        );
        host.answer(
            "systemctl is-enabled apt-daily-upgrade.timer",
            0,
            "enabled\n",
        );
        host.links.insert(
            PathBuf::from("/etc/localtime"),
            PathBuf::from("/usr/share/zoneinfo/Etc/UTC"),
        );
        host.answer("timedatectl show -p Timezone --value", 0, "Etc/UTC\n");
        host
    }

    fn answer(&mut self, command_line: &str, code: i32, stdout: &str) {
        self.answer_full(command_line, code, stdout, "");
    }

    fn answer_full(&mut self, command_line: &str, code: i32, stdout: &str, stderr: &str) {
        self.commands.insert(
            command_line.to_string(),
            CommandOutput {
                code: Some(code),
                stdout: stdout.to_string(),
                stderr: stderr.to_string(),
            },
        );
    }

    fn uninstall(&mut self, program: &str) {
        self.commands
            .retain(|line, _| line.split(' ').next() != Some(program));
    }

    fn file(&mut self, path: &str, text: &str) {
        self.files.insert(PathBuf::from(path), text.to_string());
    }

    fn meta(&mut self, path: &str, meta: FileMeta) {
        self.metas.insert(PathBuf::from(path), meta);
    }

    fn dir(&mut self, path: &str, names: &[&str]) {
        self.dirs.insert(
            PathBuf::from(path),
            names.iter().map(|name| name.to_string()).collect(),
        );
    }

    fn sysctl(&mut self, key: &str, value: &str) {
        self.file(
            &format!("/proc/sys/{}", key.replace('.', "/")),
            &format!("{value}\n"),
        );
    }

    fn backup(&mut self, name: &str, written: SystemTime) {
        self.meta(
            &format!("{BACKUPS}/{name}/backup.json"),
            file_meta(0o600, 0, written),
        );
    }

    /// Caddy's layout `<issuer>/<name>/<name>.crt`, and openssl's answer for it.
    fn certificate(&mut self, issuer: &str, name: &str, openssl_fixture: &str) {
        let mut issuers = self.dirs.get(Path::new(CERTS)).cloned().unwrap_or_default();
        if !issuers.iter().any(|known| known == issuer) {
            issuers.push(issuer.to_string());
        }
        self.dirs.insert(PathBuf::from(CERTS), issuers);
        let issuer_dir = format!("{CERTS}/{issuer}");
        let mut names = self
            .dirs
            .get(Path::new(&issuer_dir))
            .cloned()
            .unwrap_or_default();
        names.push(name.to_string());
        self.dirs.insert(PathBuf::from(&issuer_dir), names);
        let crt = format!("{issuer_dir}/{name}/{name}.crt");
        self.meta(&crt, file_meta(0o600, 999, now()));
        self.answer(
            &format!("openssl x509 -noout -startdate -enddate -in {crt}"),
            0,
            &fixture(openssl_fixture),
        );
    }

    fn audit(&self) -> Report {
        run_checks(self)
    }
}

fn file_meta(mode: u32, uid: u32, modified: SystemTime) -> FileMeta {
    FileMeta {
        is_file: true,
        mode,
        uid,
        modified: Some(modified),
        ..FileMeta::default()
    }
}

impl Host for FakeHost {
    fn run(&self, program: &str, args: &[&str]) -> Result<CommandOutput, HostError> {
        let line = std::iter::once(program)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        self.commands
            .get(&line)
            .cloned()
            .ok_or_else(|| HostError::CommandNotFound(program.to_string()))
    }

    fn read_file(&self, path: &Path) -> Result<String, HostError> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| HostError::NotFound(path.to_path_buf()))
    }

    fn metadata(&self, path: &Path) -> Result<FileMeta, HostError> {
        if let Some(meta) = self.metas.get(path) {
            return Ok(*meta);
        }
        if self.dirs.contains_key(path) {
            return Ok(FileMeta {
                is_dir: true,
                mode: 0o755,
                ..FileMeta::default()
            });
        }
        Err(HostError::NotFound(path.to_path_buf()))
    }

    fn read_link(&self, path: &Path) -> Result<PathBuf, HostError> {
        self.links
            .get(path)
            .cloned()
            .ok_or_else(|| HostError::NotFound(path.to_path_buf()))
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>, HostError> {
        self.dirs
            .get(path)
            .cloned()
            .ok_or_else(|| HostError::NotFound(path.to_path_buf()))
    }

    fn http_get_unix(&self, socket: &Path, path: &str) -> Result<HttpResponse, HostError> {
        assert_eq!(socket, Path::new("/run/mallard/mallard.sock"));
        assert_eq!(path, "/health/ready");
        self.ready
            .clone()
            .ok_or_else(|| HostError::NotFound(socket.to_path_buf()))
    }

    fn now(&self) -> SystemTime {
        self.now
    }
}

fn check<'a>(report: &'a Report, id: &str) -> &'a Check {
    report
        .get(id)
        .unwrap_or_else(|| panic!("no check {id} in\n{}", report.to_text()))
}

/// `id` has `status` and a detail containing `needle`; every other check passes.
fn only(report: &Report, id: &str, status: Status, needle: &str) {
    let found = check(report, id);
    assert_eq!(found.status, status, "{id}: {}", found.detail);
    assert!(
        found.detail.contains(needle),
        "{id}: {:?} does not contain {needle:?}",
        found.detail
    );
    for other in report.checks.iter().filter(|check| check.id != id) {
        assert_eq!(other.status, Status::Pass, "{}: {}", other.id, other.detail);
    }
}

fn fails(report: &Report, id: &str, needle: &str) {
    let found = check(report, id);
    assert_eq!(found.status, Status::Fail, "{id}: {}", found.detail);
    assert!(
        found.detail.contains(needle),
        "{id}: {:?} does not contain {needle:?}",
        found.detail
    );
}

// ── expectations ─────────────────────────────────────────────────────────────────────────────

#[test]
fn expectations_are_parsed_from_the_rendered_templates() {
    let sshd = expected_sshd();
    assert!(sshd.len() >= 9, "{sshd:?}");
    let has = |key: &str, value: &str| sshd.iter().any(|s| s.key == key && s.value == value);
    assert!(has("passwordauthentication", "no"), "{sshd:?}");
    assert!(has("permitrootlogin", "no"), "{sshd:?}");
    assert!(has("maxauthtries", "3"), "{sshd:?}");
    assert!(
        sshd.iter()
            .all(|s| s.key == s.key.to_lowercase() && !s.value.is_empty())
    );

    let sysctl = expected_sysctl();
    assert!(sysctl.len() >= 10, "{sysctl:?}");
    assert!(
        sysctl
            .iter()
            .any(|s| s.key == "kernel.dmesg_restrict" && s.value == "1"),
        "{sysctl:?}"
    );
    assert!(
        sysctl
            .iter()
            .all(|s| !s.key.contains(' ') && !s.value.is_empty())
    );

    // fail2ban's expectations are constants; they must say what the rendered jail says.
    let jail = parse_sysctl_conf(include_str!(
        "../../cloud-init/files/etc/fail2ban/jail.d/mallard-sshd.local"
    ));
    let jail_value = |key: &str| jail.iter().find(|s| s.key == key).map(|s| s.value.as_str());
    assert_eq!(jail_value("maxretry"), Some("5"));
    assert_eq!(
        jail_value("bantime"),
        Some("1h"),
        "the audit expects 3600 s"
    );
}

#[test]
fn a_healthy_host_passes_every_check() {
    let report = FakeHost::healthy().audit();
    for check in &report.checks {
        assert_eq!(check.status, Status::Pass, "{}: {}", check.id, check.detail);
    }
    assert_eq!(report.exit_status(), 0);
    let ids: Vec<&str> = report
        .checks
        .iter()
        .map(|check| check.id.as_str())
        .collect();
    for id in [
        "ssh.permitrootlogin",
        "ssh.passwordauthentication",
        "ssh.kbdinteractiveauthentication",
        "ssh.maxauthtries",
        "ssh.logingracetime",
        "ssh.clientaliveinterval",
        "ssh.allowagentforwarding",
        "ssh.allowtcpforwarding",
        "ssh.x11forwarding",
        "sysctl.kernel.dmesg_restrict",
        "sysctl.net.ipv4.tcp_syncookies",
        "ufw.active",
        "ufw.defaults",
        "ufw.rules",
        "fail2ban.sshd",
        "fail2ban.maxretry",
        "fail2ban.bantime",
        "luks.active",
        "luks.mount",
        "luks.keyfile",
        "disk.usage",
        "unit.mallard-metrics",
        "unit.caddy",
        "mallard.ready",
        "tls.stats.example.com",
        "backup.age",
        "upgrades.unattended",
        "upgrades.timer",
        "time.zone",
    ] {
        assert!(ids.contains(&id), "missing {id} in {ids:?}");
    }
    assert_eq!(
        ids.len(),
        expected_sshd().len() + expected_sysctl().len() + 18,
        "{ids:?}"
    );
    let backup = check(&report, "backup.age");
    assert!(
        backup.detail.contains("2026-11-25T0230Z is 16 h old"),
        "{}",
        backup.detail
    );
    assert!(
        check(&report, "fail2ban.sshd")
            .detail
            .contains("1 currently banned")
    );
}

// ── ssh.* and sysctl.* ───────────────────────────────────────────────────────────────────────

#[test]
fn ssh_password_authentication_yes_fails() {
    let mut host = FakeHost::healthy();
    host.answer("sshd -T", 0, &fixture("sshd-T-password-yes.txt"));
    let report = host.audit();
    only(
        &report,
        "ssh.passwordauthentication",
        Status::Fail,
        "passwordauthentication is yes, expected no",
    );
    assert!(
        check(&report, "ssh.permitrootlogin")
            .detail
            .contains("permitrootlogin no")
    );
}

#[test]
fn ssh_checks_fail_one_by_one_when_sshd_cannot_answer() {
    let mut host = FakeHost::healthy();
    host.uninstall("sshd");
    let report = host.audit();
    for setting in expected_sshd() {
        fails(
            &report,
            &format!("ssh.{}", setting.key),
            "`sshd` is not installed",
        );
    }
    let mut host = FakeHost::healthy();
    host.answer_full(
        "sshd -T",
        255,
        "",
        "Missing privilege separation directory: /run/sshd\n",
    );
    let report = host.audit();
    fails(
        &report,
        "ssh.x11forwarding",
        "exited with 255: Missing privilege separation",
    );
    // A setting absent from the output is not assumed to be right.
    let mut host = FakeHost::healthy();
    let without = fixture("sshd-T.txt").replace("maxauthtries 3\n", "");
    host.answer("sshd -T", 0, &without);
    only(
        &host.audit(),
        "ssh.maxauthtries",
        Status::Fail,
        "does not list maxauthtries",
    );
}

#[test]
fn sysctl_drift_and_missing_keys_fail() {
    let mut host = FakeHost::healthy();
    host.sysctl("kernel.dmesg_restrict", "0");
    only(
        &host.audit(),
        "sysctl.kernel.dmesg_restrict",
        Status::Fail,
        "kernel.dmesg_restrict is 0, expected 1",
    );
    let mut host = FakeHost::healthy();
    host.files
        .remove(Path::new("/proc/sys/net/ipv6/conf/all/accept_redirects"));
    only(
        &host.audit(),
        "sysctl.net.ipv6.conf.all.accept_redirects",
        Status::Fail,
        "/proc/sys/net/ipv6/conf/all/accept_redirects does not exist",
    );
}

// ── ufw.* and fail2ban.* ─────────────────────────────────────────────────────────────────────

#[test]
fn ufw_inactive_fails_all_three() {
    let mut host = FakeHost::healthy();
    host.answer("ufw status verbose", 0, &fixture("ufw-status-inactive.txt"));
    let report = host.audit();
    fails(&report, "ufw.active", "Status: inactive");
    fails(&report, "ufw.defaults", "not active");
    fails(&report, "ufw.rules", "not active");
}

#[test]
fn ufw_rule_drift_fails_naming_the_rule() {
    let cases = [
        (
            "ufw-status-extra-8080.txt",
            "extra rule 8080/tcp ALLOW IN Anywhere",
        ),
        (
            "ufw-status-missing-443udp.txt",
            "missing 443/udp ALLOW IN Anywhere",
        ),
        (
            "ufw-status-limit-ssh.txt",
            "22/tcp is LIMIT IN, expected ALLOW IN",
        ),
    ];
    for (fixture_name, needle) in cases {
        let mut host = FakeHost::healthy();
        host.answer("ufw status verbose", 0, &fixture(fixture_name));
        only(&host.audit(), "ufw.rules", Status::Fail, needle);
    }
    let mut host = FakeHost::healthy();
    host.answer(
        "ufw status verbose",
        0,
        &fixture("ufw-status-limit-ssh.txt"),
    );
    assert!(
        check(&host.audit(), "ufw.rules")
            .detail
            .contains("22/tcp (v6) is LIMIT IN")
    );
}

#[test]
fn ufw_defaults_and_errors_fail() {
    let mut host = FakeHost::healthy();
    host.answer(
        "ufw status verbose",
        0,
        &fixture("ufw-status-allow-incoming.txt"),
    );
    only(
        &host.audit(),
        "ufw.defaults",
        Status::Fail,
        "incoming is allow, expected deny",
    );

    let mut host = FakeHost::healthy();
    host.answer_full("ufw status verbose", 1, "", &fixture("ufw-not-root.stderr"));
    let report = host.audit();
    for id in ["ufw.active", "ufw.defaults", "ufw.rules"] {
        fails(&report, id, "You need to be root");
    }
    let mut host = FakeHost::healthy();
    host.uninstall("ufw");
    fails(&host.audit(), "ufw.rules", "`ufw` is not installed");
}

#[test]
fn fail2ban_missing_jail_and_wrong_values_fail() {
    let mut host = FakeHost::healthy();
    let stderr = fixture("fail2ban-jail-missing.stderr");
    host.answer_full("fail2ban-client status sshd", 255, "", &stderr);
    host.answer_full("fail2ban-client get sshd maxretry", 255, "", &stderr);
    host.answer_full("fail2ban-client get sshd bantime", 255, "", &stderr);
    let report = host.audit();
    fails(&report, "fail2ban.sshd", "exited with 255");
    fails(&report, "fail2ban.sshd", "NOK: ('sshd',)");
    fails(&report, "fail2ban.maxretry", "exited with 255");
    fails(&report, "fail2ban.bantime", "exited with 255");

    let mut host = FakeHost::healthy();
    host.answer("fail2ban-client get sshd maxretry", 0, "10\n");
    only(
        &host.audit(),
        "fail2ban.maxretry",
        Status::Fail,
        "maxretry is \"10\", expected 5",
    );
    let mut host = FakeHost::healthy();
    host.answer("fail2ban-client get sshd bantime", 0, "600\n");
    only(
        &host.audit(),
        "fail2ban.bantime",
        Status::Fail,
        "expected 3600",
    );
    let mut host = FakeHost::healthy();
    host.uninstall("fail2ban-client");
    fails(
        &host.audit(),
        "fail2ban.sshd",
        "`fail2ban-client` is not installed",
    );
}

// ── luks.* and disk.usage ────────────────────────────────────────────────────────────────────

#[test]
fn luks_volume_inactive_or_wrong_type_fails() {
    let mut host = FakeHost::healthy();
    host.answer(
        "cryptsetup status mallard-data",
        4,
        &fixture("cryptsetup-status-inactive.txt"),
    );
    only(
        &host.audit(),
        "luks.active",
        Status::Fail,
        "mallard-data is inactive",
    );
    let mut host = FakeHost::healthy();
    let luks1 = fixture("cryptsetup-status.txt").replace("LUKS2", "LUKS1");
    host.answer("cryptsetup status mallard-data", 0, &luks1);
    only(
        &host.audit(),
        "luks.active",
        Status::Fail,
        "is LUKS1, expected LUKS2",
    );
    assert!(
        check(&FakeHost::healthy().audit(), "luks.active")
            .detail
            .contains("aes-xts-plain64")
    );
}

#[test]
fn data_not_mounted_from_the_luks_device_fails() {
    let mut host = FakeHost::healthy();
    host.file("/proc/self/mountinfo", &fixture("mountinfo-unmounted.txt"));
    only(
        &host.audit(),
        "luks.mount",
        Status::Fail,
        "/srv/mallard/data is not a mount point",
    );
    let mut host = FakeHost::healthy();
    host.file("/proc/self/mountinfo", &fixture("mountinfo-vdb.txt"));
    only(
        &host.audit(),
        "luks.mount",
        Status::Fail,
        "mounted from /dev/vdb, expected /dev/mapper/mallard-data",
    );
    // Mounted through its dm-N name: sysfs says which mapping that is.
    let mut host = FakeHost::healthy();
    host.file("/proc/self/mountinfo", &fixture("mountinfo-dm-0.txt"));
    fails(&host.audit(), "luks.mount", "/dev/dm-0");
    host.file("/sys/dev/block/253:0/dm/name", "mallard-data\n");
    only(&host.audit(), "luks.mount", Status::Pass, "/dev/dm-0");
}

#[test]
fn keyfile_must_be_root_only() {
    let cases = [
        (file_meta(0o644, 0, now()), "has mode 0644, expected 0400"),
        (
            file_meta(0o400, 1000, now()),
            "owned by uid 1000, expected 0",
        ),
        (
            FileMeta {
                is_symlink: true,
                ..file_meta(0o777, 0, now())
            },
            "symbolic link",
        ),
    ];
    for (meta, needle) in cases {
        let mut host = FakeHost::healthy();
        host.meta(KEYFILE, meta);
        only(&host.audit(), "luks.keyfile", Status::Fail, needle);
    }
    let mut host = FakeHost::healthy();
    host.metas.remove(Path::new(KEYFILE));
    only(
        &host.audit(),
        "luks.keyfile",
        Status::Fail,
        "/etc/mallard-data.key is missing",
    );
}

#[test]
fn disk_usage_warns_from_80_and_fails_from_90_percent() {
    let df = "df --output=pcent,target /srv/mallard/data";
    let mut host = FakeHost::healthy();
    host.answer(df, 0, &fixture("df-95.txt"));
    only(
        &host.audit(),
        "disk.usage",
        Status::Fail,
        "95 % used on /srv/mallard/data",
    );
    let mut host = FakeHost::healthy();
    host.answer(df, 0, &fixture("df-84.txt"));
    let report = host.audit();
    only(&report, "disk.usage", Status::Warn, "84 %");
    assert_eq!(
        report.exit_status(),
        0,
        "a warning alone does not fail the audit"
    );
    let mut host = FakeHost::healthy();
    host.answer_full(
        df,
        1,
        "",
        "df: /srv/mallard/data: No such file or directory\n",
    );
    only(
        &host.audit(),
        "disk.usage",
        Status::Fail,
        "No such file or directory",
    );
    assert!(
        check(&FakeHost::healthy().audit(), "disk.usage")
            .detail
            .starts_with("23 % used")
    );
}

// ── unit.* and mallard.ready ─────────────────────────────────────────────────────────────────

#[test]
fn inactive_units_and_unready_mallard_fail() {
    let mut host = FakeHost::healthy();
    host.answer("systemctl is-active caddy.service", 3, "inactive\n");
    only(
        &host.audit(),
        "unit.caddy",
        Status::Fail,
        "caddy.service is inactive",
    );
    let mut host = FakeHost::healthy();
    host.answer("systemctl is-active mallard-metrics.service", 3, "failed\n");
    only(
        &host.audit(),
        "unit.mallard-metrics",
        Status::Fail,
        "is failed",
    );

    let mut host = FakeHost::healthy();
    host.ready = Some(HttpResponse {
        status: 503,
        body: "not ready".to_string(),
    });
    only(
        &host.audit(),
        "mallard.ready",
        Status::Fail,
        "503 not ready",
    );
    let mut host = FakeHost::healthy();
    host.ready = None;
    only(
        &host.audit(),
        "mallard.ready",
        Status::Fail,
        "/run/mallard/mallard.sock does not exist",
    );
}

// ── tls.* ────────────────────────────────────────────────────────────────────────────────────

#[test]
fn certificate_with_most_of_its_validity_passes_in_days() {
    let report = FakeHost::healthy().audit();
    let cert = check(&report, "tls.stats.example.com");
    assert_eq!(cert.status, Status::Pass);
    assert!(cert.detail.contains("65 days left"), "{}", cert.detail);
    assert!(cert.detail.contains(LE), "{}", cert.detail);
}

#[test]
fn expired_or_unrenewed_certificates_fail() {
    let cases = [
        ("openssl-x509-expired.txt", "expired 25 days ago"),
        (
            "openssl-x509-ten-percent-left.txt",
            "9 days left of 90 days, under a quarter",
        ),
    ];
    for (fixture_name, needle) in cases {
        let mut host = FakeHost::healthy();
        host.certificate("local", "old.example.com", fixture_name);
        let report = host.audit();
        only(&report, "tls.old.example.com", Status::Fail, needle);
        assert_eq!(report.exit_status(), 1);
    }
}

#[test]
fn twelve_hour_internal_certificate_with_ten_hours_left_passes() {
    let mut host = FakeHost::healthy();
    host.certificate(
        "local",
        "mallard.internal",
        "openssl-x509-internal-10h-left.txt",
    );
    only(
        &host.audit(),
        "tls.mallard.internal",
        Status::Pass,
        "10 hours left",
    );
}

#[test]
fn no_certificate_or_unreadable_certificate_fails() {
    let mut host = FakeHost::healthy();
    host.dir(CERTS, &[]);
    only(
        &host.audit(),
        "tls.certificates",
        Status::Fail,
        "no certificate in",
    );
    let mut host = FakeHost::healthy();
    host.dirs.retain(|path, _| !path.starts_with(CERTS));
    only(
        &host.audit(),
        "tls.certificates",
        Status::Fail,
        "does not exist",
    );
    let mut host = FakeHost::healthy();
    host.uninstall("openssl");
    only(
        &host.audit(),
        "tls.stats.example.com",
        Status::Fail,
        "`openssl` is not installed",
    );
    let mut host = FakeHost::healthy();
    let crt = format!("{CERTS}/{LE}/{SITE}/{SITE}.crt");
    host.answer(
        &format!("openssl x509 -noout -startdate -enddate -in {crt}"),
        0,
        "garbage\n",
    );
    only(
        &host.audit(),
        "tls.stats.example.com",
        Status::Fail,
        "cannot read the validity",
    );
}

// ── backup.age, upgrades.*, time.zone ────────────────────────────────────────────────────────

#[test]
fn old_or_missing_backups_fail() {
    let mut host = FakeHost::healthy();
    host.dir(BACKUPS, &["2026-11-22T0230Z"]);
    host.backup("2026-11-22T0230Z", hours_ago(72));
    only(
        &host.audit(),
        "backup.age",
        Status::Fail,
        "is 3 days old, more than 36 h",
    );

    let mut host = FakeHost::healthy();
    host.dir(BACKUPS, &[]);
    only(
        &host.audit(),
        "backup.age",
        Status::Fail,
        "no complete backup",
    );
    // Folders without backup.json are unfinished backups.
    let mut host = FakeHost::healthy();
    host.dir(BACKUPS, &["2026-11-25T1700Z"]);
    only(
        &host.audit(),
        "backup.age",
        Status::Fail,
        "no complete backup",
    );
    let mut host = FakeHost::healthy();
    host.dirs.remove(Path::new(BACKUPS));
    only(
        &host.audit(),
        "backup.age",
        Status::Fail,
        "backups does not exist",
    );

    let mut host = FakeHost::healthy();
    host.dir(BACKUPS, &["b"]);
    host.backup("b", hours_ago(36));
    only(&host.audit(), "backup.age", Status::Pass, "36 h old");
}

#[test]
fn unattended_upgrades_off_fails() {
    let key = "apt-config dump APT::Periodic::Unattended-Upgrade";
    let mut host = FakeHost::healthy();
    host.answer(key, 0, &fixture("apt-config-unattended-0.txt"));
    only(
        &host.audit(),
        "upgrades.unattended",
        Status::Fail,
        "is \"0\"",
    );
    let mut host = FakeHost::healthy();
    host.answer(key, 0, "");
    only(
        &host.audit(),
        "upgrades.unattended",
        Status::Fail,
        "is not set",
    );
    let mut host = FakeHost::healthy();
    host.answer(
        "systemctl is-enabled apt-daily-upgrade.timer",
        1,
        "disabled\n",
    );
    only(
        &host.audit(),
        "upgrades.timer",
        Status::Fail,
        "apt-daily-upgrade.timer is disabled",
    );
    let mut host = FakeHost::healthy();
    host.uninstall("apt-config");
    only(
        &host.audit(),
        "upgrades.unattended",
        Status::Fail,
        "`apt-config` is not installed",
    );
}

#[test]
fn a_time_zone_other_than_utc_only_warns() {
    let mut host = FakeHost::healthy();
    host.links.insert(
        PathBuf::from("/etc/localtime"),
        PathBuf::from("/usr/share/zoneinfo/Europe/Berlin"),
    );
    host.answer("timedatectl show -p Timezone --value", 0, "Europe/Berlin\n");
    let report = host.audit();
    only(&report, "time.zone", Status::Warn, "Europe/Berlin");
    assert_eq!(report.exit_status(), 0);

    // No symlink (a copied zone file): timedatectl decides.
    let mut host = FakeHost::healthy();
    host.links.clear();
    only(
        &host.audit(),
        "time.zone",
        Status::Pass,
        "Etc/UTC (timedatectl)",
    );
    host.uninstall("timedatectl");
    only(
        &host.audit(),
        "time.zone",
        Status::Warn,
        "`timedatectl` is not installed",
    );
}

// ── the whole report ─────────────────────────────────────────────────────────────────────────

#[test]
fn a_host_with_nothing_installed_fails_every_check_without_panicking() {
    let report = FakeHost::bare().audit();
    assert!(report.checks.len() > 20);
    for check in &report.checks {
        let expected = if check.id == "time.zone" {
            Status::Warn
        } else {
            Status::Fail
        };
        assert_eq!(check.status, expected, "{}: {}", check.id, check.detail);
        assert!(!check.detail.is_empty(), "{}", check.id);
    }
    assert_eq!(report.exit_status(), 1);
    fails(&report, "ssh.permitrootlogin", "`sshd` is not installed");
    fails(&report, "luks.active", "`cryptsetup` is not installed");
    fails(&report, "unit.caddy", "`systemctl` is not installed");
    fails(&report, "disk.usage", "`df` is not installed");
}

#[test]
fn text_report_is_one_line_per_check_then_a_summary() {
    let mut host = FakeHost::healthy();
    host.answer("sshd -T", 0, &fixture("sshd-T-password-yes.txt"));
    host.answer(
        "df --output=pcent,target /srv/mallard/data",
        0,
        &fixture("df-84.txt"),
    );
    let report = host.audit();
    let text = report.to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), report.checks.len() + 1, "{text}");
    for (line, check) in lines.iter().zip(&report.checks) {
        let mut words = line.split_whitespace();
        let label = match check.status {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        assert_eq!(words.next(), Some(label), "{line}");
        assert_eq!(words.next(), Some(check.id.as_str()), "{line}");
        assert!(line.ends_with(&check.detail), "{line}");
    }
    assert!(text.contains("FAIL  ssh.passwordauthentication"), "{text}");
    let summary = lines.last().copied().unwrap_or_default();
    let passes = report.checks.len() - 2;
    assert_eq!(
        summary,
        format!("summary: {passes} pass, 1 warn, 1 fail (2026-11-25T18:00:00Z)")
    );
    assert_eq!(report.exit_status(), 1);
}

#[test]
fn json_report_has_checks_and_summary() {
    let mut host = FakeHost::healthy();
    host.ready = None;
    let report = host.audit();
    let json = report.to_json();
    assert_eq!(
        json.lines().count(),
        1,
        "one line per run in an appended log"
    );
    let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let object = value.as_object().expect("an object");
    assert_eq!(object.len(), 2, "{json}");
    let checks = value["checks"].as_array().expect("checks array");
    assert_eq!(checks.len(), report.checks.len());
    for item in checks {
        let item = item.as_object().expect("check object");
        assert_eq!(item.len(), 3, "{item:?}");
        assert!(item["id"].is_string() && item["detail"].is_string());
        assert!(["pass", "warn", "fail"].contains(&item["status"].as_str().unwrap_or("")));
    }
    let ready = checks
        .iter()
        .find(|item| item["id"] == "mallard.ready")
        .expect("mallard.ready");
    assert_eq!(ready["status"], "fail");
    assert_eq!(value["summary"]["fail"], 1);
    assert_eq!(value["summary"]["warn"], 0);
    assert_eq!(value["summary"]["pass"], report.checks.len() - 1);
}

#[test]
fn exit_status_is_1_exactly_when_a_check_fails() {
    let report = |statuses: &[Status]| Report {
        checks: statuses
            .iter()
            .enumerate()
            .map(|(i, status)| Check::new(format!("c{i}"), *status, "detail\nsecond line"))
            .collect(),
        generated_at: now(),
    };
    assert_eq!(report(&[]).exit_status(), 0);
    assert_eq!(report(&[Status::Pass, Status::Pass]).exit_status(), 0);
    assert_eq!(report(&[Status::Pass, Status::Warn]).exit_status(), 0);
    assert_eq!(report(&[Status::Warn, Status::Fail]).exit_status(), 1);
    assert_eq!(report(&[Status::Fail]).exit_status(), 1);
    // A multi-line detail (command output) stays on the check's one line.
    assert_eq!(
        report(&[Status::Pass]).checks[0].detail,
        "detail / second line"
    );
}

// ── the real host ────────────────────────────────────────────────────────────────────────────

#[test]
fn system_host_runs_commands_and_reports_missing_ones() {
    let output = SystemHost
        .run("sh", &["-c", "echo out; echo err >&2; exit 3"])
        .expect("sh runs");
    assert_eq!(output.code, Some(3));
    assert_eq!(output.stdout, "out\n");
    assert_eq!(output.stderr, "err\n");
    match SystemHost.run("mallard-no-such-program", &[]) {
        Err(err @ HostError::CommandNotFound(_)) => {
            assert!(
                err.to_string()
                    .contains("`mallard-no-such-program` is not installed")
            );
        }
        other => panic!("expected CommandNotFound, got {other:?}"),
    }
    assert!(matches!(
        SystemHost.read_file(Path::new("/nonexistent/mallard")),
        Err(HostError::NotFound(_))
    ));
}

#[test]
fn system_host_speaks_http_over_a_unix_socket() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("mallard.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    let server = std::thread::spawn(move || {
        let answers = [
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nready",
            "HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n4\r\nnot \r\n5\r\nready\r\n0\r\n\r\n",
        ];
        let mut requests = Vec::new();
        for answer in answers {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(answer.as_bytes()).expect("write");
            requests.push(String::from_utf8_lossy(&request).into_owned());
        }
        requests
    });
    let first = SystemHost
        .http_get_unix(&socket, "/health/ready")
        .expect("200");
    assert_eq!((first.status, first.body.as_str()), (200, "ready"));
    let second = SystemHost
        .http_get_unix(&socket, "/health/ready")
        .expect("503");
    assert_eq!((second.status, second.body.as_str()), (503, "not ready"));
    let requests = server.join().expect("server thread");
    assert!(
        requests[0].starts_with("GET /health/ready HTTP/1.1\r\n"),
        "{}",
        requests[0]
    );
    assert!(requests[0].contains("Connection: close"), "{}", requests[0]);
    assert!(matches!(
        SystemHost.http_get_unix(&dir.path().join("absent.sock"), "/health/ready"),
        Err(HostError::NotFound(_))
    ));
}

fn mallard() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mallard-metrics"));
    command.env("MALLARD_LOG", "warn");
    command
}

/// This machine is not a provisioned host: the audit must say so, completely and as JSON.
#[test]
fn the_binary_audits_this_unprovisioned_machine_without_panicking() {
    let output = mallard()
        .args(["audit", "--format", "json"])
        .output()
        .expect("run audit");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let value: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    let checks = value["checks"].as_array().expect("checks");
    let status = |id: &str| {
        checks
            .iter()
            .find(|item| item["id"] == id)
            .map(|item| item["status"].clone())
            .unwrap_or_else(|| panic!("no {id} in {stdout}"))
    };
    for id in [
        "luks.active",
        "luks.mount",
        "luks.keyfile",
        "mallard.ready",
        "backup.age",
    ] {
        assert_eq!(status(id), "fail", "{id} in {stdout}");
    }
    assert!(
        value["summary"]["fail"].as_u64().unwrap_or(0) >= 5,
        "{stdout}"
    );
    assert!(checks.len() > 20, "{stdout}");
}

#[test]
fn audit_help_explains_checks_and_exit_codes_and_bad_flags_exit_2() {
    let output = mallard().args(["audit", "--help"]).output().expect("run");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "ssh.<keyword>",
        "sysctl.<key>",
        "ufw.rules",
        "fail2ban.sshd",
        "luks.keyfile",
        "disk.usage",
        "mallard.ready",
        "tls.<name>",
        "backup.age",
        "upgrades.unattended",
        "time.zone",
        "Exit codes",
        "--format",
    ] {
        assert!(
            help.contains(needle),
            "audit --help lacks {needle}:\n{help}"
        );
    }
    let output = mallard()
        .args(["audit", "--format", "yaml"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--format"));
}
