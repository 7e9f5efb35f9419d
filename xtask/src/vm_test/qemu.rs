//! One qemu guest: TCG (KVM hangs guests on these machines), user-mode networking with port
//! forwards on 127.0.0.1 only, the serial console in a file, `-no-reboot` (a guest reboot ends
//! qemu; the test starts it again, which is faster than GRUB after a warm reset under TCG).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::image::tools;

/// Host ports (127.0.0.1) forwarded to the guest.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub ssh: u16,
    pub http: u16,
    pub https: u16,
    /// → guest port 9000, where the test starts a listener the firewall must hide.
    pub blocked: u16,
}

/// The guest port behind [`Ports::blocked`].
pub const BLOCKED_GUEST_PORT: u16 = 9000;

impl Ports {
    pub fn free() -> anyhow::Result<Ports> {
        let take = || -> anyhow::Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        Ok(Ports {
            ssh: take()?,
            http: take()?,
            https: take()?,
            blocked: take()?,
        })
    }
}

pub struct Config {
    pub disk: PathBuf,
    pub seed: PathBuf,
    pub uefi: bool,
    /// No route out of the guest at all (the baked path needs none).
    pub isolated: bool,
    pub memory_mib: u32,
    pub ports: Ports,
}

pub struct Vm {
    child: Child,
    pub started: Instant,
    pub serial: PathBuf,
}

impl Vm {
    pub fn launch(config: &Config, serial: &Path, qemu_log: &Path) -> anyhow::Result<Vm> {
        let p = config.ports;
        let mut netdev = format!(
            "user,id=net0,hostfwd=tcp:127.0.0.1:{}-:22,hostfwd=tcp:127.0.0.1:{}-:80,\
             hostfwd=tcp:127.0.0.1:{}-:443,hostfwd=tcp:127.0.0.1:{}-:{BLOCKED_GUEST_PORT}",
            p.ssh, p.http, p.https, p.blocked
        );
        if config.isolated {
            netdev.push_str(",restrict=on");
        }
        let log = std::fs::File::create(qemu_log)?;
        let mut cmd = tools::command("qemu-system-x86_64");
        cmd.args([
            "-accel", "tcg", "-cpu", "max", "-smp", "2", "-display", "none",
        ])
        .args(["-m", &config.memory_mib.to_string(), "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .args(["-monitor", "none"])
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=qcow2,discard=unmap",
            config.disk.display()
        ))
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=raw,readonly=on",
            config.seed.display()
        ))
        .args(["-netdev", &netdev, "-device", "virtio-net-pci,netdev=net0"])
        .args(["-device", "virtio-rng-pci"]);
        if config.uefi {
            cmd.args(["-bios", "/usr/share/ovmf/OVMF.fd"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting qemu-system-x86_64 (apt-get install qemu-system-x86)")?;
        Ok(Vm {
            child,
            started: Instant::now(),
            serial: serial.to_path_buf(),
        })
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until the serial console shows `marker`; fails early on a kernel panic, an
    /// emergency shell or qemu exiting.
    pub fn wait_serial(&mut self, marker: &str, timeout: Duration) -> anyhow::Result<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read(&self.serial).unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            if text.contains(marker) {
                return Ok(self.started.elapsed());
            }
            for fatal in [
                "Kernel panic",
                "You are in emergency mode",
                "Give root password for maintenance",
            ] {
                if text.contains(fatal) {
                    bail!("the guest failed to boot: the serial console shows {fatal:?}");
                }
            }
            if !self.running() {
                bail!("qemu exited before the serial console showed {marker:?}");
            }
            if Instant::now() > deadline {
                bail!(
                    "no {marker:?} on the serial console after {}s",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Waits for qemu to end (the guest powered off or rebooted); kills it after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.running() {
            if Instant::now() > deadline {
                self.kill();
                bail!(
                    "the guest did not shut down within {}s: killed",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        Ok(())
    }

    pub fn kill(&mut self) {
        if self.running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A NoCloud seed: a FAT disk labelled CIDATA with user-data and meta-data (no mount needed).
pub fn seed(path: &Path, user_data: &str, instance_id: &str) -> anyhow::Result<()> {
    let dir = path.parent().context("seed folder")?;
    let user = dir.join("user-data");
    let meta = dir.join("meta-data");
    std::fs::write(&user, user_data)?;
    std::fs::write(
        &meta,
        format!("instance-id: {instance_id}\nlocal-hostname: mallard-vm\n"),
    )?;
    let _ = std::fs::remove_file(path);
    tools::run(
        tools::command("mkfs.vfat")
            .args(["-n", "CIDATA", "-C"])
            .arg(path)
            .arg("2048")
            .stdout(Stdio::null()),
    )?;
    let image = path.display().to_string();
    tools::run(
        tools::command("mcopy")
            .args(["-i", &image])
            .arg(&user)
            .arg(&meta)
            .arg("::"),
    )
}

/// A copy-on-write overlay over the built image, so the image itself stays untouched.
pub fn overlay(base: &Path, overlay: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(overlay);
    tools::run(
        tools::command("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(base)
            .arg(overlay),
    )
}
