//! The disk images of `cargo xtask image`, read without booting or mounting them: checksums and
//! manifest agree with the files, the partition table and both boot loaders are there, the baked
//! image holds exactly the bake phase and the dist binary and nothing per-instance, and the
//! stock image holds nothing of Mallard Metrics. (Booting them is `cargo xtask vm-test`.)
//!
//! These tests never skip: without the images they fail, saying to run `cargo xtask image`
//! (and `cargo xtask image --stock`). They read the ext4 root with `debugfs` and the EFI system
//! partition with `mtools`, at the partitions' offsets.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::repo as workspace;

const BAKED: &str = "mallard-metrics-debian12-amd64";
const STOCK: &str = "debian12-stock-amd64";

fn target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    workspace().join(target)
}

struct Image {
    dir: PathBuf,
    name: &'static str,
}

impl Image {
    fn open(name: &'static str) -> Image {
        let dir = target_dir().join("image").join(name);
        let flag = if name == STOCK { " --stock" } else { "" };
        assert!(
            dir.join(format!("{name}.raw")).is_file(),
            "{} has no {name}.raw: run `cargo xtask image{flag}` first (same CARGO_TARGET_DIR)",
            dir.display()
        );
        Image { dir, name }
    }

    fn path(&self, extension: &str) -> PathBuf {
        self.dir.join(format!("{}.{extension}", self.name))
    }

    fn manifest(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path("manifest.json")).expect("manifest");
        serde_json::from_str(&text).expect("manifest.json is JSON")
    }

    /// Start of partition `index` (1-based) in bytes, and its type, from `sfdisk -J`.
    fn partition(&self, index: usize) -> (u64, String) {
        let json: serde_json::Value =
            serde_json::from_slice(&run(Command::new("sfdisk").arg("-J").arg(self.path("raw"))))
                .expect("sfdisk -J prints JSON");
        let part = &json["partitiontable"]["partitions"][index - 1];
        let start = part["start"].as_u64().expect("partition start") * 512;
        (start, part["type"].as_str().unwrap_or_default().to_owned())
    }

    /// Runs one `debugfs` request against the root file system (partition 2).
    fn debugfs(&self, request: &str) -> Vec<u8> {
        let (offset, _) = self.partition(2);
        let device = format!("{}?offset={offset}", self.path("raw").display());
        run(Command::new("debugfs").args(["-R", request, &device]))
    }

    fn file(&self, path: &str) -> Option<Vec<u8>> {
        let stat = String::from_utf8_lossy(&self.debugfs(&format!("stat {path}"))).into_owned();
        stat.contains("Inode:")
            .then(|| self.debugfs(&format!("cat {path}")))
    }

    /// The permission bits of `path`, as `debugfs stat` prints them (e.g. "0644").
    fn mode(&self, path: &str) -> String {
        let stat = String::from_utf8_lossy(&self.debugfs(&format!("stat {path}"))).into_owned();
        let after = stat
            .split("Mode:")
            .nth(1)
            .unwrap_or_else(|| panic!("{path} is not in the image"));
        after
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    fn list(&self, dir: &str) -> String {
        String::from_utf8_lossy(&self.debugfs(&format!("ls -p {dir}"))).into_owned()
    }
}

fn run(command: &mut Command) -> Vec<u8> {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e} (is its Debian package installed?)"));
    assert!(
        out.status.success(),
        "{command:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sha256_file(path: &Path) -> String {
    let out = String::from_utf8(run(Command::new("sha256sum").arg(path))).expect("utf-8");
    out.split_whitespace().next().unwrap_or_default().to_owned()
}

#[test]
fn checksums_and_manifest_match_the_artifacts() {
    for image in [Image::open(BAKED), Image::open(STOCK)] {
        let sums = std::fs::read_to_string(image.dir.join("SHA256SUMS")).expect("SHA256SUMS");
        let manifest = image.manifest();
        let artifacts = manifest["artifacts"].as_array().expect("artifacts");
        for extension in ["raw", "qcow2", "manifest.json"] {
            let file = image.path(extension);
            let name = file.file_name().and_then(|n| n.to_str()).expect("name");
            let actual = sha256_file(&file);
            assert!(
                sums.lines().any(|l| l == format!("{actual}  {name}")),
                "SHA256SUMS has no line `{actual}  {name}`:\n{sums}"
            );
            if extension != "manifest.json" {
                let listed = artifacts
                    .iter()
                    .find(|a| a["file"] == name)
                    .unwrap_or_else(|| panic!("manifest lists no {name}"));
                assert_eq!(listed["sha256"], actual.as_str(), "{name}");
                let bytes = std::fs::metadata(&file).expect("size").len();
                assert_eq!(listed["bytes"], bytes, "{name}");
            }
        }
        // The compressed qcow2 holds the same disk as the raw file.
        run(Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "qcow2"])
            .arg(image.path("raw"))
            .arg(image.path("qcow2")));
        assert_eq!(manifest["name"], image.name);
    }
}

#[test]
fn both_images_boot_by_bios_and_by_uefi() {
    for image in [Image::open(BAKED), Image::open(STOCK)] {
        let raw = std::fs::read(image.path("raw")).map(|mut b| {
            b.truncate(512);
            b
        });
        let mbr = raw.expect("reading the MBR");
        assert_eq!(&mbr[510..512], &[0x55, 0xaa], "no MBR boot signature");
        assert!(
            mbr.windows(4).any(|w| w == b"GRUB"),
            "the MBR holds no GRUB boot code"
        );
        let (esp, esp_type) = image.partition(1);
        assert_eq!(esp_type, "ef", "partition 1 is not an EFI system partition");
        let listing = String::from_utf8_lossy(&run(Command::new("mdir")
            .arg("-i")
            .arg(format!("{}@@{esp}", image.path("raw").display()))
            .arg("::/EFI/BOOT")))
        .into_owned();
        assert!(
            listing.contains("BOOTX64  EFI"),
            "no \\EFI\\BOOT\\BOOTX64.EFI (the removable-media path UEFI firmware boots):\n{listing}"
        );
        let grub_cfg = image
            .file("/boot/grub/grub.cfg")
            .expect("/boot/grub/grub.cfg");
        let grub_cfg = String::from_utf8_lossy(&grub_cfg);
        assert!(
            grub_cfg.contains("console=ttyS0"),
            "the serial console is not on the kernel command line:\n{grub_cfg}"
        );
        assert!(
            image.list("/boot").contains("vmlinuz-"),
            "no kernel in /boot"
        );
        assert!(
            image.list("/boot").contains("initrd.img-"),
            "no initrd in /boot"
        );
    }
}

#[test]
fn the_baked_image_holds_nothing_per_instance() {
    let image = Image::open(BAKED);
    let ssh = image.list("/etc/ssh");
    assert!(
        !ssh.contains("ssh_host_"),
        "SSH host keys are baked (every server would share them):\n{ssh}"
    );
    assert_eq!(
        image.file("/etc/machine-id").map(|b| b.len()),
        Some(0),
        "/etc/machine-id must exist and be empty (systemd makes one at first boot)"
    );
    for path in [
        "/var/lib/cloud/instance",
        "/var/lib/cloud/instances",
        "/etc/mallard-data.key",
        "/etc/mallard/instance.env",
        "/etc/caddy/caddy.env",
        "/srv/mallard/data.img",
        "/var/lib/mallard/.secret",
    ] {
        assert!(image.file(path).is_none(), "{path} is baked into the image");
    }
    // Instance values would show up as the placeholders the bake renderer used.
    let manifest = image.manifest();
    for file in manifest["files"].as_array().expect("files") {
        let path = file["path"].as_str().expect("path");
        let content = image.file(path).unwrap_or_default();
        let text = String::from_utf8_lossy(&content);
        assert!(
            !text.contains("image.invalid") && !text.contains("instance-value"),
            "{path} carries a per-instance value"
        );
    }
}

#[test]
fn the_baked_image_holds_the_bake_phase_the_binaries_and_the_packages() {
    let image = Image::open(BAKED);
    let manifest = image.manifest();
    let bake: Vec<String> = std::fs::read_to_string(workspace().join("cloud-init/manifest.toml"))
        .expect("cloud-init/manifest.toml")
        .parse::<toml::Table>()
        .expect("manifest.toml is TOML")["file"]
        .as_array()
        .expect("[[file]]")
        .iter()
        .filter(|f| f["phase"].as_str() == Some("bake"))
        .map(|f| f["path"].as_str().expect("path").to_owned())
        .collect();
    let files = manifest["files"].as_array().expect("files");
    for path in &bake {
        let listed = files
            .iter()
            .find(|f| f["path"] == path.as_str())
            .unwrap_or_else(|| panic!("the bake file {path} is not in the image manifest"));
        let content = image
            .file(path)
            .unwrap_or_else(|| panic!("{path} is missing"));
        assert_eq!(
            listed["sha256"],
            sha256(&content).as_str(),
            "{path} content"
        );
        assert!(
            listed["mode"]
                .as_str()
                .is_some_and(|m| image.mode(path).ends_with(m.trim_start_matches('0'))),
            "{path}: mode {} in the image, {} in the manifest",
            image.mode(path),
            listed["mode"]
        );
    }

    let dist = target_dir().join("dist/mallard-metrics");
    let baked = image
        .file("/usr/local/bin/mallard-metrics")
        .expect("/usr/local/bin/mallard-metrics");
    assert_eq!(
        sha256(&baked),
        sha256_file(&dist),
        "the baked binary is not the current `cargo xtask dist` build: rebuild the image"
    );
    assert_eq!(image.mode("/usr/local/bin/mallard-metrics"), "0755");
    assert!(image.file("/usr/local/bin/caddy").is_some(), "no caddy");

    let packages: Vec<&str> = manifest["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for wanted in [
        "linux-image-amd64",
        "cloud-init",
        "openssh-server",
        "cryptsetup",
        "ufw",
        "fail2ban",
        "python3-systemd",
        "unattended-upgrades",
        "cron",
        "rsync",
        "logrotate",
        "curl",
    ] {
        assert!(
            packages.contains(&wanted),
            "package {wanted} is not in the image"
        );
    }
    assert!(
        !packages.iter().any(|p| p.starts_with("exim4")),
        "an MTA was installed (Recommends leaked in)"
    );
    let datasources = image
        .file("/etc/cloud/cloud.cfg.d/90_mallard_image.cfg")
        .expect("the cloud-init datasource list");
    let datasources = String::from_utf8_lossy(&datasources);
    for name in [
        "ConfigDrive",
        "NoCloud",
        "Hetzner",
        "DigitalOcean",
        "OpenStack",
        "Ec2",
    ] {
        assert!(
            datasources.contains(name),
            "datasource {name} is not enabled"
        );
    }
}

#[test]
fn the_stock_image_holds_nothing_of_mallard() {
    let image = Image::open(STOCK);
    for path in [
        "/usr/local/bin/mallard-metrics",
        "/usr/local/bin/caddy",
        "/usr/local/sbin/mallard-setup",
        "/etc/mallard",
        "/etc/ssh/sshd_config.d/10-mallard-hardening.conf",
    ] {
        assert!(image.file(path).is_none(), "the stock image has {path}");
    }
    assert!(
        !image.list("/etc/ssh").contains("ssh_host_"),
        "stock image has host keys"
    );
    let packages = image.manifest()["packages"].to_string();
    for absent in ["\"ufw\"", "\"fail2ban\"", "\"cryptsetup\""] {
        assert!(
            !packages.contains(absent),
            "the stock image already has {absent}: the user-data must install it"
        );
    }
}
