//! `mallard-metrics audit`: runs every posture check against a [`Host`] and reports.
//!
//! Each check yields exactly one [`Check`] whatever happened on the host: a missing program, an
//! unreadable file or odd output is a FAIL with a detail saying so, never a panic or an early
//! return, so one broken piece cannot hide the state of the others.

mod facts;
mod firewall;
pub mod host;
mod http;
mod maintenance;
mod services;
mod ssh;
mod sysctl;
mod tls;
mod volume;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::SystemTime;

use serde::Serialize;

pub use facts::{Setting, expected_sshd, expected_sysctl, parse_sshd_config, parse_sysctl_conf};
pub use host::{CommandOutput, FileMeta, Host, HostError, HttpResponse, SystemHost};

/// Shown by `mallard-metrics audit --help`.
pub const HELP: &str = "\
Checks (each prints PASS, WARN or FAIL, its id and a detail):
  ssh.<keyword>         `sshd -T` shows each setting of the rendered sshd drop-in
                        (/etc/ssh/sshd_config.d/10-mallard-hardening.conf)
  sysctl.<key>          /proc/sys holds each value of /etc/sysctl.d/99-mallard-hardening.conf
  ufw.active            `ufw status verbose` says Status: active
  ufw.defaults          default policy deny (incoming), allow (outgoing)
  ufw.rules             exactly 22/tcp, 80/tcp, 443/tcp, 443/udp ALLOW IN from anywhere, for
                        IPv4 and IPv6; any other, missing or LIMIT/DENY rule fails
  fail2ban.sshd         the sshd jail is active
  fail2ban.maxretry     the sshd jail bans after 5 failures
  fail2ban.bantime      ... for 3600 seconds
  luks.active           `cryptsetup status mallard-data`: active, LUKS2
  luks.mount            /srv/mallard/data is mounted from /dev/mapper/mallard-data
  luks.keyfile          /etc/mallard-data.key is a regular file, mode 0400, owned by root
  disk.usage            /srv/mallard/data: WARN from 80 % used, FAIL from 90 %
  unit.mallard-metrics  systemd says mallard-metrics.service is active
  unit.caddy            systemd says caddy.service is active
  mallard.ready         GET /health/ready on /run/mallard/mallard.sock answers 200 `ready`
  tls.<name>            each certificate in Caddy's storage (/var/lib/caddy/certificates):
                        FAIL when expired or when under a quarter of its validity is left
                        (Caddy renews at a third, so renewal is failing); FAIL when none
  backup.age            the newest complete backup (backups/*/backup.json) is at most 36 h old
  upgrades.unattended   APT::Periodic::Unattended-Upgrade is a non-zero number
  upgrades.timer        apt-daily-upgrade.timer is enabled
  time.zone             the host runs on UTC, as the cron times assume (WARN otherwise)

Run as root: most checks read state only root may read.

Exit codes: 0 when no check failed (warnings allowed), 1 when at least one check failed,
2 for bad flags.";

#[derive(clap::Args, Debug, Clone)]
pub struct AuditArgs {
    /// Report format: one line per check, or one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: String,
    pub status: Status,
    pub detail: String,
}

impl Check {
    /// Details come from command output too; one line keeps the report one line per check.
    pub fn new(id: impl Into<String>, status: Status, detail: impl AsRef<str>) -> Self {
        let detail = detail
            .as_ref()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join(" / ");
        Self {
            id: id.into(),
            status,
            detail,
        }
    }

    pub fn pass(id: impl Into<String>, detail: impl AsRef<str>) -> Self {
        Self::new(id, Status::Pass, detail)
    }

    pub fn warn(id: impl Into<String>, detail: impl AsRef<str>) -> Self {
        Self::new(id, Status::Warn, detail)
    }

    pub fn fail(id: impl Into<String>, detail: impl AsRef<str>) -> Self {
        Self::new(id, Status::Fail, detail)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub checks: Vec<Check>,
    pub generated_at: SystemTime,
}

impl Report {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for check in &self.checks {
            match check.status {
                Status::Pass => summary.pass += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
            }
        }
        summary
    }

    pub fn get(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|check| check.id == id)
    }

    /// 1 when any check failed, else 0: warnings alone must not page anyone.
    pub fn exit_status(&self) -> u8 {
        u8::from(self.checks.iter().any(|check| check.status == Status::Fail))
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_status())
    }

    /// `STATUS  id  detail` lines, then a summary line carrying the time, since the weekly run
    /// appends to one log file.
    pub fn to_text(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|check| check.id.len())
            .max()
            .unwrap_or(0);
        let mut text = String::new();
        for check in &self.checks {
            let _ = writeln!(
                text,
                "{}  {:width$}  {}",
                check.status.label(),
                check.id,
                check.detail
            );
        }
        let summary = self.summary();
        let at = chrono::DateTime::<chrono::Utc>::from(self.generated_at);
        let _ = writeln!(
            text,
            "summary: {} pass, {} warn, {} fail ({})",
            summary.pass,
            summary.warn,
            summary.fail,
            at.format("%Y-%m-%dT%H:%M:%SZ")
        );
        text
    }

    /// `{"checks":[{"id","status","detail"}],"summary":{"pass","warn","fail"}}` on one line.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Json<'a> {
            checks: &'a [Check],
            summary: Summary,
        }
        let json = Json {
            checks: &self.checks,
            summary: self.summary(),
        };
        // Plain strings and numbers cannot fail to serialise; the fallback is still valid JSON.
        serde_json::to_string(&json).unwrap_or_else(|_| "{}".to_string()) + "\n"
    }
}

/// Every check, in report order.
pub fn run_checks(host: &dyn Host) -> Report {
    let mut checks = Vec::new();
    checks.extend(ssh::checks(host));
    checks.extend(sysctl::checks(host));
    checks.extend(firewall::ufw_checks(host));
    checks.extend(firewall::fail2ban_checks(host));
    checks.extend(volume::checks(host));
    checks.extend(services::checks(host));
    checks.extend(tls::checks(host));
    checks.extend(maintenance::checks(host));
    Report {
        checks,
        generated_at: host.now(),
    }
}

/// `mallard-metrics audit`: audits this machine and prints the report on stdout.
pub fn run(args: &AuditArgs) -> ExitCode {
    let report = run_checks(&SystemHost);
    match args.format {
        Format::Text => print!("{}", report.to_text()),
        Format::Json => print!("{}", report.to_json()),
    }
    report.exit_code()
}

/// Runs a command that must succeed; the error is a check detail naming what went wrong.
fn run_ok(host: &dyn Host, program: &str, args: &[&str]) -> Result<CommandOutput, String> {
    let output = run_any(host, program, args)?;
    if output.success() {
        Ok(output)
    } else {
        Err(failed(program, args, &output))
    }
}

/// Runs a command whose exit status the caller interprets.
fn run_any(host: &dyn Host, program: &str, args: &[&str]) -> Result<CommandOutput, String> {
    host.run(program, args).map_err(|err| err.to_string())
}

/// "`prog args` exited with N: first line of what it said".
fn failed(program: &str, args: &[&str], output: &CommandOutput) -> String {
    let command = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let said = first_line(&output.stderr)
        .or_else(|| first_line(&output.stdout))
        .unwrap_or("no output");
    match output.code {
        Some(code) => format!("`{command}` exited with {code}: {said}"),
        None => format!("`{command}` was killed by a signal: {said}"),
    }
}

fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|line| !line.is_empty())
}
