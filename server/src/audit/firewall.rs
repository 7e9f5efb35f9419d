//! `ufw.*` and `fail2ban.*`: the packet filter lets in only what we serve, and SSH guessing is
//! banned.

use super::facts::{FAIL2BAN_BANTIME, FAIL2BAN_JAIL, FAIL2BAN_MAXRETRY, UFW_ALLOWED};
use super::{Check, Host, run_ok};

const EXPECTED_ACTION: &str = "ALLOW IN";

#[derive(Debug, Default)]
struct UfwStatus {
    status: Option<String>,
    /// `(direction, policy)`, e.g. `("incoming", "deny")`.
    defaults: Vec<(String, String)>,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    to: String,
    action: String,
    from: String,
}

pub fn ufw_checks(host: &dyn Host) -> Vec<Check> {
    let status = match run_ok(host, "ufw", &["status", "verbose"]) {
        Ok(output) => parse_ufw(&output.stdout),
        Err(reason) => {
            return ["ufw.active", "ufw.defaults", "ufw.rules"]
                .into_iter()
                .map(|id| Check::fail(id, &reason))
                .collect();
        }
    };
    let active = status.status.as_deref() == Some("active");
    let active_check = match &status.status {
        _ if active => Check::pass("ufw.active", "Status: active"),
        Some(other) => Check::fail("ufw.active", format!("Status: {other}")),
        None => Check::fail("ufw.active", "`ufw status verbose` printed no Status line"),
    };
    if !active {
        // An inactive ufw filters nothing, whatever rules it has stored.
        let why = "ufw is not active, so nothing is filtered";
        return vec![
            active_check,
            Check::fail("ufw.defaults", why),
            Check::fail("ufw.rules", why),
        ];
    }
    vec![active_check, defaults_check(&status), rules_check(&status)]
}

fn defaults_check(status: &UfwStatus) -> Check {
    let policy = |direction: &str| {
        status
            .defaults
            .iter()
            .find(|(dir, _)| dir == direction)
            .map(|(_, policy)| policy.as_str())
    };
    let mut problems = Vec::new();
    for (direction, expected) in [("incoming", "deny"), ("outgoing", "allow")] {
        match policy(direction) {
            Some(actual) if actual == expected => {}
            Some(actual) => problems.push(format!("{direction} is {actual}, expected {expected}")),
            None => problems.push(format!("no default for {direction}")),
        }
    }
    if problems.is_empty() {
        Check::pass("ufw.defaults", "deny (incoming), allow (outgoing)")
    } else {
        Check::fail("ufw.defaults", problems.join("; "))
    }
}

fn rules_check(status: &UfwStatus) -> Check {
    let expected: Vec<(String, &str)> = UFW_ALLOWED
        .iter()
        .flat_map(|port| {
            [
                (port.to_string(), "Anywhere"),
                (format!("{port} (v6)"), "Anywhere (v6)"),
            ]
        })
        .collect();
    let mut problems = Vec::new();
    let mut matched = vec![false; status.rules.len()];
    for (to, from) in &expected {
        let Some(index) =
            (0..status.rules.len()).find(|&i| !matched[i] && status.rules[i].to == *to)
        else {
            problems.push(format!("missing {to} {EXPECTED_ACTION} {from}"));
            continue;
        };
        matched[index] = true;
        let rule = &status.rules[index];
        if rule.action != EXPECTED_ACTION {
            problems.push(format!(
                "{to} is {}, expected {EXPECTED_ACTION}",
                rule.action
            ));
        }
        if rule.from != *from {
            problems.push(format!("{to} is from {}, expected from {from}", rule.from));
        }
    }
    for (rule, _) in status
        .rules
        .iter()
        .zip(&matched)
        .filter(|(_, seen)| !**seen)
    {
        problems.push(format!(
            "extra rule {} {} {}",
            rule.to, rule.action, rule.from
        ));
    }
    if problems.is_empty() {
        Check::pass(
            "ufw.rules",
            format!("only {} allowed in (IPv4 and IPv6)", UFW_ALLOWED.join(", ")),
        )
    } else {
        Check::fail("ufw.rules", problems.join("; "))
    }
}

fn parse_ufw(stdout: &str) -> UfwStatus {
    let mut status = UfwStatus::default();
    let mut in_rules = false;
    for line in stdout.lines() {
        let trimmed = line.trim();
        if in_rules {
            if let Some(rule) = parse_rule(trimmed) {
                status.rules.push(rule);
            }
        } else if let Some(value) = trimmed.strip_prefix("Status:") {
            status.status = Some(value.trim().to_string());
        } else if let Some(value) = trimmed.strip_prefix("Default:") {
            // "deny (incoming), allow (outgoing), disabled (routed)"
            for part in value.split(',') {
                if let Some((policy, direction)) = part.trim().split_once('(') {
                    status.defaults.push((
                        direction.trim_end_matches(')').trim().to_string(),
                        policy.trim().to_string(),
                    ));
                }
            }
        } else if trimmed.starts_with("--") {
            in_rules = true;
        }
    }
    status
}

/// `To` may contain spaces (`22/tcp (v6)`, `Anywhere on eth0`), so the action is found as the
/// first ALLOW/DENY/REJECT/LIMIT word instead of by column position.
fn parse_rule(line: &str) -> Option<Rule> {
    let line = line.split(" # ").next().unwrap_or(line);
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|word| matches!(*word, "ALLOW" | "DENY" | "REJECT" | "LIMIT"))?;
    let mut action = words[at].to_string();
    let mut from_at = at + 1;
    if let Some(direction @ ("IN" | "OUT" | "FWD")) = words.get(at + 1).copied() {
        action = format!("{action} {direction}");
        from_at += 1;
    }
    Some(Rule {
        to: words[..at].join(" "),
        action,
        from: words.get(from_at..).unwrap_or_default().join(" "),
    })
}

pub fn fail2ban_checks(host: &dyn Host) -> Vec<Check> {
    let status = match run_ok(host, "fail2ban-client", &["status", FAIL2BAN_JAIL]) {
        Err(reason) => Check::fail("fail2ban.sshd", reason),
        Ok(output)
            if output
                .stdout
                .contains(&format!("Status for the jail: {FAIL2BAN_JAIL}")) =>
        {
            let banned = output
                .stdout
                .lines()
                .find_map(|line| line.split_once("Currently banned:"))
                .map(|(_, count)| count.trim().to_string());
            match banned {
                Some(count) => Check::pass(
                    "fail2ban.sshd",
                    format!("jail {FAIL2BAN_JAIL} is active ({count} currently banned)"),
                ),
                None => Check::pass("fail2ban.sshd", format!("jail {FAIL2BAN_JAIL} is active")),
            }
        }
        Ok(_) => Check::fail(
            "fail2ban.sshd",
            format!("`fail2ban-client status {FAIL2BAN_JAIL}` does not describe the jail"),
        ),
    };
    vec![
        status,
        jail_value(host, "maxretry", FAIL2BAN_MAXRETRY),
        jail_value(host, "bantime", FAIL2BAN_BANTIME),
    ]
}

fn jail_value(host: &dyn Host, key: &str, expected: &str) -> Check {
    let id = format!("fail2ban.{key}");
    match run_ok(host, "fail2ban-client", &["get", FAIL2BAN_JAIL, key]) {
        Err(reason) => Check::fail(id, reason),
        Ok(output) => {
            let value = output.stdout.trim();
            if value == expected {
                Check::pass(id, format!("{key} {value}"))
            } else {
                Check::fail(id, format!("{key} is {value:?}, expected {expected}"))
            }
        }
    }
}
