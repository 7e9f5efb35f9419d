//! `ssh.*`: sshd's effective configuration (`sshd -T`) holds every setting of our drop-in.

use std::collections::HashMap;

use super::facts::{SSHD_DROP_IN, expected_sshd};
use super::{Check, Host, run_ok};

pub fn checks(host: &dyn Host) -> Vec<Check> {
    // The effective configuration, not the drop-in file: a file read before ours, or a later
    // edit of sshd_config, can override what we wrote.
    let effective = run_ok(host, "sshd", &["-T"]).map(|output| parse_sshd_t(&output.stdout));
    expected_sshd()
        .into_iter()
        .map(|setting| {
            let id = format!("ssh.{}", setting.key);
            match &effective {
                Err(reason) => Check::fail(id, reason),
                Ok(values) => match values.get(&setting.key) {
                    None => Check::fail(id, format!("`sshd -T` does not list {}", setting.key)),
                    Some(value) if value.eq_ignore_ascii_case(&setting.value) => {
                        Check::pass(id, format!("{} {value}", setting.key))
                    }
                    Some(value) => Check::fail(
                        id,
                        format!(
                            "{} is {value}, expected {} (as in {SSHD_DROP_IN})",
                            setting.key, setting.value
                        ),
                    ),
                },
            }
        })
        .collect()
}

/// Lowercase keyword → value; the first line wins for keywords sshd prints more than once.
fn parse_sshd_t(stdout: &str) -> HashMap<String, String> {
    let mut values = HashMap::new();
    for line in stdout
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        let (keyword, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        values
            .entry(keyword.to_ascii_lowercase())
            .or_insert_with(|| value.trim().to_string());
    }
    values
}
