//! What a run measured: times from power-on (the serial console's first kernel line, the first
//! healthy answer through Caddy, cloud-init's marker) and the outcome written to summary.json.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::checks::Report;
use super::guest::Guest;
use super::qemu::Vm;

#[derive(Default)]
pub struct Timings {
    pub first_kernel: Option<Duration>,
    pub first_healthy: Option<Duration>,
    pub cloud_init_done: Option<Duration>,
    pub reboot_healthy: Option<Duration>,
    pub reboot_kernel: Option<Duration>,
    pub reboot_total: Option<Duration>,
}

impl Timings {
    pub fn describe(&self) -> String {
        let s = |d: Option<Duration>| d.map_or("–".into(), |d| format!("{}s", d.as_secs()));
        format!(
            "first boot: power-on → kernel {}, → healthy {}, → cloud-init done {}; reboot: \
             power-on → kernel {}, → healthy {} ({} from the reboot command)",
            s(self.first_kernel),
            s(self.first_healthy),
            s(self.cloud_init_done),
            s(self.reboot_kernel),
            s(self.reboot_healthy),
            s(self.reboot_total)
        )
    }
}

pub struct Outcome {
    pub report: Report,
    pub timings: Timings,
}

impl Outcome {
    pub fn to_json(&self) -> serde_json::Value {
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs());
        json!({
            "seconds": {
                "power_on_to_kernel": secs(self.timings.first_kernel),
                "power_on_to_healthy": secs(self.timings.first_healthy),
                "power_on_to_cloud_init_done": secs(self.timings.cloud_init_done),
                "reboot_power_on_to_kernel": secs(self.timings.reboot_kernel),
                "reboot_power_on_to_healthy": secs(self.timings.reboot_healthy),
                "reboot_command_to_healthy": secs(self.timings.reboot_total),
            },
            "checks": self.report.outcomes.iter().map(|o| json!({
                "name": o.name,
                "pass": o.result.is_ok(),
                "detail": match &o.result { Ok(d) | Err(d) => d },
            })).collect::<Vec<_>>(),
        })
    }
}

/// What the watcher saw, in time since power-on.
#[derive(Clone, Copy, Default)]
pub struct Seen {
    pub kernel: Option<Duration>,
    pub healthy: Option<Duration>,
}

/// From power-on, watches the serial console for the kernel's first line and polls
/// /health/ready (without verifying TLS: the CA is not known yet) until it answers `ready`.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Seen>,
}

impl Watcher {
    pub fn start(guest: &Guest, vm: &Vm) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let mut guest = guest.clone();
        guest.ca = None;
        let (started, serial) = (vm.started, vm.serial.clone());
        let handle = std::thread::spawn(move || {
            let mut seen = Seen::default();
            let mut tick = 0u32;
            while !flag.load(Ordering::Relaxed) && seen.healthy.is_none() {
                if seen.kernel.is_none()
                    && String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default())
                        .contains("Linux version")
                {
                    seen.kernel = Some(started.elapsed());
                }
                if tick.is_multiple_of(2)
                    && let Ok(a) = guest.https("/health/ready", &["--max-time", "10"])
                    && a.status == 200
                    && a.body.trim() == "ready"
                {
                    seen.healthy = Some(started.elapsed());
                }
                tick += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            seen
        });
        Watcher { stop, handle }
    }

    /// Waits up to `grace` for the first healthy answer, then stops watching.
    pub fn finish(self, grace: Duration) -> Seen {
        let deadline = Instant::now() + grace;
        while !self.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}
