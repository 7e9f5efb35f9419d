//! `backup.age`, `upgrades.*` and `time.zone`: the jobs that keep the host safe over time run.

use std::path::Path;
use std::time::Duration;

use super::facts::{
    BACKUP_MARKER, BACKUP_MAX_AGE, BACKUPS, LOCALTIME, UNATTENDED_UPGRADE_KEY, UPGRADE_TIMER,
    UTC_NAMES,
};
use super::{Check, Host, HostError, first_line, run_any, run_ok};

pub fn checks(host: &dyn Host) -> Vec<Check> {
    vec![
        backup_age(host),
        unattended_upgrades(host),
        upgrade_timer(host),
        time_zone(host),
    ]
}

fn backup_age(host: &dyn Host) -> Check {
    let id = "backup.age";
    let names = match host.list_dir(Path::new(BACKUPS)) {
        Ok(names) => names,
        Err(HostError::NotFound(_)) => {
            return Check::fail(id, format!("no backup: {BACKUPS} does not exist"));
        }
        Err(err) => return Check::fail(id, err.to_string()),
    };
    // A folder without its marker is a backup still running or one that died half-way.
    let newest = names
        .iter()
        .filter_map(|name| {
            let marker = Path::new(BACKUPS).join(name).join(BACKUP_MARKER);
            let meta = host.metadata(&marker).ok()?;
            Some((meta.modified?, name)).filter(|_| meta.is_file)
        })
        .max_by_key(|(modified, _)| *modified);
    let Some((modified, name)) = newest else {
        return Check::fail(
            id,
            format!("no complete backup ({BACKUP_MARKER}) in {BACKUPS}"),
        );
    };
    // A clock step can put the marker in the future; that is not an old backup.
    let age = host
        .now()
        .duration_since(modified)
        .unwrap_or(Duration::ZERO);
    let detail = format!("newest backup {name} is {} old", age_text(age));
    if age <= BACKUP_MAX_AGE {
        Check::pass(id, detail)
    } else {
        let limit = BACKUP_MAX_AGE.as_secs() / 3600;
        Check::fail(id, format!("{detail}, more than {limit} h"))
    }
}

fn age_text(age: Duration) -> String {
    let hours = age.as_secs() / 3600;
    if hours >= 48 {
        format!("{} days", hours / 24)
    } else {
        format!("{hours} h")
    }
}

fn unattended_upgrades(host: &dyn Host) -> Check {
    let id = "upgrades.unattended";
    let output = match run_ok(host, "apt-config", &["dump", UNATTENDED_UPGRADE_KEY]) {
        Ok(output) => output,
        Err(reason) => return Check::fail(id, reason),
    };
    // `APT::Periodic::Unattended-Upgrade "1";`
    let value = output.stdout.lines().find_map(|line| {
        let (key, value) = line.trim().split_once(char::is_whitespace)?;
        (key == UNATTENDED_UPGRADE_KEY).then(|| {
            value
                .trim()
                .trim_end_matches(';')
                .trim_matches('"')
                .to_string()
        })
    });
    match value {
        None => Check::fail(id, format!("{UNATTENDED_UPGRADE_KEY} is not set")),
        Some(value) if value.parse::<u64>().is_ok_and(|days| days > 0) => {
            Check::pass(id, format!("{UNATTENDED_UPGRADE_KEY} \"{value}\""))
        }
        Some(value) => Check::fail(
            id,
            format!("{UNATTENDED_UPGRADE_KEY} is \"{value}\": unattended upgrades are off"),
        ),
    }
}

fn upgrade_timer(host: &dyn Host) -> Check {
    let id = "upgrades.timer";
    // is-enabled exits non-zero for disabled units, and still prints the state.
    match run_any(host, "systemctl", &["is-enabled", UPGRADE_TIMER]) {
        Err(reason) => Check::fail(id, reason),
        Ok(output) => match first_line(&output.stdout) {
            Some("enabled") => Check::pass(id, format!("{UPGRADE_TIMER} is enabled")),
            Some(state) => Check::fail(id, format!("{UPGRADE_TIMER} is {state}")),
            None => Check::fail(
                id,
                format!(
                    "`systemctl is-enabled {UPGRADE_TIMER}` said nothing: {}",
                    first_line(&output.stderr).unwrap_or("no output")
                ),
            ),
        },
    }
}

/// A warning only: a wrong zone shifts the maintenance times, it does not expose anything.
fn time_zone(host: &dyn Host) -> Check {
    let id = "time.zone";
    let from_link = host.read_link(Path::new(LOCALTIME)).map(|target| {
        let target = target.to_string_lossy().into_owned();
        // "/usr/share/zoneinfo/Etc/UTC" or "../usr/share/zoneinfo/UTC" → the zone name.
        match target.split_once("zoneinfo/") {
            Some((_, zone)) => zone.to_string(),
            None => target,
        }
    });
    if let Ok(zone) = &from_link
        && UTC_NAMES.contains(&zone.as_str())
    {
        return Check::pass(id, format!("{zone} ({LOCALTIME})"));
    }
    let from_timedatectl = run_ok(host, "timedatectl", &["show", "-p", "Timezone", "--value"])
        .map(|output| output.stdout.trim().to_string());
    if let Ok(zone) = &from_timedatectl
        && UTC_NAMES.contains(&zone.as_str())
    {
        return Check::pass(id, format!("{zone} (timedatectl)"));
    }
    let seen = match (from_link, from_timedatectl) {
        (Ok(zone), _) => format!("{LOCALTIME} is {zone}"),
        (Err(_), Ok(zone)) if !zone.is_empty() => format!("timedatectl says {zone}"),
        (Err(link), Ok(_)) => format!("{link}; timedatectl printed no zone"),
        (Err(link), Err(reason)) => format!("{link}; {reason}"),
    };
    Check::warn(
        id,
        format!("{seen}; the cron times in /etc/cron.d/mallard assume UTC"),
    )
}
