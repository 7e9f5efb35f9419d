//! `unit.*` and `mallard.ready`: Mallard and Caddy run, and Mallard answers on its socket.

use std::path::Path;

use super::facts::{MALLARD_SOCKET, READY_PATH, UNITS};
use super::{Check, Host, first_line, run_any};

pub fn checks(host: &dyn Host) -> Vec<Check> {
    let mut checks: Vec<Check> = UNITS.iter().map(|unit| unit_active(host, unit)).collect();
    checks.push(ready(host));
    checks
}

fn unit_active(host: &dyn Host, unit: &str) -> Check {
    let id = format!("unit.{}", unit.trim_end_matches(".service"));
    // is-active exits non-zero for every state but active, and still prints the state.
    match run_any(host, "systemctl", &["is-active", unit]) {
        Err(reason) => Check::fail(id, reason),
        Ok(output) => match first_line(&output.stdout) {
            Some("active") => Check::pass(id, format!("{unit} is active")),
            Some(state) => Check::fail(id, format!("{unit} is {state}")),
            None => Check::fail(
                id,
                format!(
                    "`systemctl is-active {unit}` said nothing: {}",
                    first_line(&output.stderr).unwrap_or("no output")
                ),
            ),
        },
    }
}

/// The unit can be active while the store is broken; readiness runs a real query.
fn ready(host: &dyn Host) -> Check {
    let id = "mallard.ready";
    match host.http_get_unix(Path::new(MALLARD_SOCKET), READY_PATH) {
        Err(err) => Check::fail(id, err.to_string()),
        Ok(response) if response.status == 200 && response.body.trim() == "ready" => Check::pass(
            id,
            format!("GET {READY_PATH} on {MALLARD_SOCKET}: 200 ready"),
        ),
        Ok(response) => Check::fail(
            id,
            format!(
                "GET {READY_PATH} on {MALLARD_SOCKET}: {} {}",
                response.status,
                // An error page can be long; its start says enough.
                response.body.trim().chars().take(200).collect::<String>()
            ),
        ),
    }
}
