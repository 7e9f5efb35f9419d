//! `sysctl.*`: the running kernel holds every value of our sysctl.d file.

use std::path::PathBuf;

use super::facts::{SYSCTL_DROP_IN, expected_sysctl};
use super::{Check, Host};

pub fn checks(host: &dyn Host) -> Vec<Check> {
    expected_sysctl()
        .into_iter()
        .map(|setting| {
            let id = format!("sysctl.{}", setting.key);
            // /proc/sys is what the kernel enforces now; the file only applies at boot or on
            // `sysctl --system`.
            let path = PathBuf::from("/proc/sys").join(setting.key.replace('.', "/"));
            match host.read_file(&path) {
                Err(err) => Check::fail(id, err.to_string()),
                Ok(live) => {
                    // Multi-value keys are tab-separated in /proc, space-separated in files.
                    let live = live.split_whitespace().collect::<Vec<_>>().join(" ");
                    let expected = setting
                        .value
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    if live == expected {
                        Check::pass(id, format!("{} = {live}", setting.key))
                    } else {
                        Check::fail(
                            id,
                            format!(
                                "{} is {live}, expected {expected} (as in {SYSCTL_DROP_IN})",
                                setting.key
                            ),
                        )
                    }
                }
            }
        })
        .collect()
}
