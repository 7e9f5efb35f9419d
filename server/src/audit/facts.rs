//! What a provisioned host looks like: every path, name and expected value the checks use.

use std::time::Duration;

/// The rendered templates themselves, so the audit can never expect something other than what
/// provisioning writes.
const SSHD_TEMPLATE: &str =
    include_str!("../../../cloud-init/files/etc/ssh/sshd_config.d/10-mallard-hardening.conf");
const SYSCTL_TEMPLATE: &str =
    include_str!("../../../cloud-init/files/etc/sysctl.d/99-mallard-hardening.conf");

pub const SSHD_DROP_IN: &str = "/etc/ssh/sshd_config.d/10-mallard-hardening.conf";
pub const SYSCTL_DROP_IN: &str = "/etc/sysctl.d/99-mallard-hardening.conf";

/// Ports allowed in from anywhere, each for IPv4 and IPv6; nothing else may be open.
pub const UFW_ALLOWED: [&str; 4] = ["22/tcp", "80/tcp", "443/tcp", "443/udp"];

/// From `cloud-init/files/etc/fail2ban/jail.d/mallard-sshd.local` (`bantime = 1h`).
pub const FAIL2BAN_JAIL: &str = "sshd";
pub const FAIL2BAN_MAXRETRY: &str = "5";
pub const FAIL2BAN_BANTIME: &str = "3600";

pub const LUKS_NAME: &str = "mallard-data";
pub const LUKS_DEVICE: &str = "/dev/mapper/mallard-data";
pub const LUKS_KEYFILE: &str = "/etc/mallard-data.key";
pub const LUKS_KEYFILE_MODE: u32 = 0o400;
pub const DATA_MOUNT: &str = "/srv/mallard/data";
pub const MOUNTINFO: &str = "/proc/self/mountinfo";
pub const DISK_WARN_PERCENT: u32 = 80;
pub const DISK_FAIL_PERCENT: u32 = 90;

pub const UNITS: [&str; 2] = ["mallard-metrics.service", "caddy.service"];
pub const MALLARD_SOCKET: &str = "/run/mallard/mallard.sock";
pub const READY_PATH: &str = "/health/ready";

pub const CADDY_CERTIFICATES: &str = "/var/lib/caddy/certificates";

pub const BACKUPS: &str = "/srv/mallard/data/backups";
/// Written last by the backup job, so its presence marks a complete backup.
pub const BACKUP_MARKER: &str = "backup.json";
/// The backup runs daily; 36 h tolerates one late run, not a missed one.
pub const BACKUP_MAX_AGE: Duration = Duration::from_secs(36 * 3600);

pub const UNATTENDED_UPGRADE_KEY: &str = "APT::Periodic::Unattended-Upgrade";
pub const UPGRADE_TIMER: &str = "apt-daily-upgrade.timer";

pub const LOCALTIME: &str = "/etc/localtime";
/// tzdata's names for UTC; any of them keeps the cron times in `/etc/cron.d/mallard` right.
pub const UTC_NAMES: [&str; 10] = [
    "UTC",
    "Etc/UTC",
    "UCT",
    "Etc/UCT",
    "Universal",
    "Etc/Universal",
    "Zulu",
    "Etc/Zulu",
    "Etc/GMT",
    "GMT",
];

/// One expected setting: a key (sshd keywords lowercased, as `sshd -T` prints them) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

/// The keyword/value lines of the rendered sshd drop-in.
pub fn expected_sshd() -> Vec<Setting> {
    parse_sshd_config(SSHD_TEMPLATE)
}

/// The `key = value` lines of the rendered sysctl.d file.
pub fn expected_sysctl() -> Vec<Setting> {
    parse_sysctl_conf(SYSCTL_TEMPLATE)
}

pub fn parse_sshd_config(text: &str) -> Vec<Setting> {
    let mut settings = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, value) = line
            .split_once(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or((line, ""));
        // Lines after a Match apply only to some connections; `sshd -T` shows the global ones.
        if keyword.eq_ignore_ascii_case("match") {
            break;
        }
        settings.push(Setting {
            key: keyword.to_ascii_lowercase(),
            value: value.trim().trim_start_matches('=').trim().to_string(),
        });
    }
    settings
}

pub fn parse_sysctl_conf(text: &str) -> Vec<Setting> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with(';'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| Setting {
            // A leading '-' only tells sysctl to ignore a failure to set the key.
            key: key.trim().trim_start_matches('-').to_string(),
            value: value.trim().to_string(),
        })
        .collect()
}
