//! The bootable disk, without loop devices or mounts: an MBR partition table (EFI system
//! partition + ext4 root made from the folder by `mkfs.ext4 -d`), GRUB for BIOS (boot.img in
//! the MBR, core.img in the gap before the first partition) and for UEFI (the removable-media
//! path `\EFI\BOOT\BOOTX64.EFI`). GRUB finds the root by its file system UUID.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, ensure};

use super::tools;

const SECTOR: u64 = 512;
/// The EFI system partition: 1 MiB to 65 MiB.
const ESP_START: u64 = 2048;
const ESP_SECTORS: u64 = 64 * 2048;
const ROOT_START: u64 = ESP_START + ESP_SECTORS;
/// GRUB modules both embedded images need before they can read the root file system.
const GRUB_MODULES: &[&str] = &[
    "part_msdos",
    "ext2",
    "search",
    "search_fs_uuid",
    "normal",
    "configfile",
    "linux",
    "serial",
    "terminal",
    "echo",
    "test",
];
/// What each firmware adds: BIOS disk access; UEFI's GPT, FAT and video drivers.
const BIOS_EXTRA_MODULES: &[&str] = &["biosdisk"];
const EFI_EXTRA_MODULES: &[&str] = &["part_gpt", "fat", "efi_gop", "all_video"];

/// Identifiers derived from the recipe hash and the epoch, so a rebuild gives the same disk.
pub struct Ids {
    pub root_uuid: String,
    pub esp_serial: String,
    pub disk_id: String,
}

impl Ids {
    pub fn derive(seed: &str) -> Ids {
        let hex = crate::dist::sha256_hex(seed.as_bytes());
        let uuid = format!(
            "{}-{}-4{}-8{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        );
        Ids {
            root_uuid: uuid,
            esp_serial: hex[32..40].to_owned(),
            disk_id: format!("0x{}", &hex[40..48]),
        }
    }
}

/// The kernel command line: serial console for the providers' consoles and the VM test.
pub fn grub_cfg(uuid: &str) -> String {
    format!(
        "# Written by `cargo xtask image`. /vmlinuz and /initrd.img always name the newest kernel.\n\
         set timeout=1\n\
         if serial --unit=0 --speed=115200; then\n\
         \tterminal_input console serial\n\
         \tterminal_output console serial\n\
         fi\n\
         search --no-floppy --fs-uuid --set=root {uuid}\n\
         menuentry 'Debian GNU/Linux 12 (Mallard Metrics image)' {{\n\
         \tlinux /vmlinuz root=UUID={uuid} ro console=tty0 console=ttyS0,115200n8 consoleblank=0\n\
         \tinitrd /initrd.img\n\
         }}\n"
    )
}

/// Puts GRUB's configuration and module folders into the root file system.
pub fn install_grub_files(rootfs: &Path, uuid: &str) -> anyhow::Result<()> {
    let grub = rootfs.join("boot/grub");
    std::fs::create_dir_all(&grub)?;
    std::fs::write(grub.join("grub.cfg"), grub_cfg(uuid))?;
    for platform in ["i386-pc", "x86_64-efi"] {
        let dest = grub.join(platform);
        std::fs::create_dir_all(&dest)?;
        for entry in std::fs::read_dir(Path::new("/usr/lib/grub").join(platform))? {
            let path = entry?.path();
            let keep = path
                .extension()
                .is_some_and(|e| e == "mod" || e == "lst" || e == "img");
            if keep {
                std::fs::copy(&path, dest.join(path.file_name().context("file name")?))
                    .with_context(|| format!("copying {}", path.display()))?;
            }
        }
    }
    Ok(())
}

fn mkimage(format: &str, out: &Path, early: &Path, extra: &[&str]) -> anyhow::Result<()> {
    tools::run(
        tools::command("grub-mkimage")
            .args(["-O", format, "-p", "/boot/grub", "-c"])
            .arg(early)
            .arg("-o")
            .arg(out)
            .args(GRUB_MODULES)
            .args(extra),
    )
}

fn write_at(disk: &Path, offset: u64, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .with_context(|| format!("opening {}", disk.display()))?;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", disk.display()))
}

/// Builds `disk` (raw, `size` bytes) from the root file system folder.
pub fn build(
    rootfs: &Path,
    disk: &Path,
    size: u64,
    ids: &Ids,
    work: &Path,
    epoch: u64,
) -> anyhow::Result<()> {
    ensure!(
        size.is_multiple_of(1 << 20),
        "the disk size must be whole MiB"
    );
    let total = size / SECTOR;
    let root_sectors = total - ROOT_START;
    let _ = std::fs::remove_file(disk);
    std::fs::File::create(disk)
        .and_then(|f| f.set_len(size))
        .with_context(|| format!("creating {}", disk.display()))?;

    // Partition table: the ESP (type ef) and the bootable root (83), growable to the disk's end.
    let table = format!(
        "label: dos\nlabel-id: {}\nunit: sectors\n\n\
         start={ESP_START}, size={ESP_SECTORS}, type=ef\n\
         start={ROOT_START}, size={root_sectors}, type=83, bootable\n",
        ids.disk_id
    );
    let mut sfdisk = tools::command("sfdisk");
    sfdisk
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(disk);
    run_with_stdin(&mut sfdisk, &table)?;

    // Root file system straight into its partition (offset), populated from the folder.
    let e2fs_time = epoch.to_string();
    tools::run(
        tools::command("mkfs.ext4")
            .env("E2FSPROGS_FAKE_TIME", &e2fs_time)
            .args(["-q", "-F", "-L", "rootfs", "-U", &ids.root_uuid])
            .arg("-E")
            .arg(format!(
                "offset={},hash_seed={},root_owner=0:0",
                ROOT_START * SECTOR,
                ids.root_uuid
            ))
            // Features GRUB 2.06 cannot read.
            .args(["-O", "^metadata_csum_seed,^orphan_file"])
            .arg("-d")
            .arg(rootfs)
            .arg(disk)
            .arg(format!("{}k", root_sectors * SECTOR / 1024)),
    )?;

    // GRUB: an embedded first config finds the root by UUID, then reads /boot/grub/grub.cfg.
    let early = work.join("grub-early.cfg");
    std::fs::write(
        &early,
        format!(
            "search --no-floppy --fs-uuid --set=root {}\nset prefix=($root)/boot/grub\n",
            ids.root_uuid
        ),
    )?;
    let core = work.join("core.img");
    mkimage("i386-pc", &core, &early, BIOS_EXTRA_MODULES)?;
    let core_bytes = std::fs::read(&core)?;
    ensure!(
        (core_bytes.len() as u64) < (ESP_START - 1) * SECTOR,
        "GRUB's core.img ({} bytes) does not fit before the first partition",
        core_bytes.len()
    );
    let boot = std::fs::read("/usr/lib/grub/i386-pc/boot.img")
        .context("reading /usr/lib/grub/i386-pc/boot.img (apt-get install grub-pc-bin)")?;
    ensure!(boot.len() == 512, "boot.img is not one sector");
    // The boot code only: bytes 440.. hold the disk id and the partition table.
    write_at(disk, 0, &boot[..440])?;
    write_at(disk, SECTOR, &core_bytes)?;

    let efi = work.join("BOOTX64.EFI");
    mkimage("x86_64-efi", &efi, &early, EFI_EXTRA_MODULES)?;
    let esp = work.join("esp.img");
    let _ = std::fs::remove_file(&esp);
    tools::run(
        tools::command("mkfs.vfat")
            .args([
                "-C",
                "--invariant",
                "-F",
                "32",
                "-n",
                "EFI",
                "-i",
                &ids.esp_serial,
            ])
            .arg(&esp)
            .arg((ESP_SECTORS * SECTOR / 1024).to_string())
            .stdout(std::process::Stdio::null()),
    )?;
    let image = format!("{}", esp.display());
    tools::run(
        std::process::Command::new("touch")
            .arg("--date")
            .arg(format!("@{epoch}"))
            .arg(&efi),
    )?;
    tools::run(
        tools::command("mmd")
            .env("SOURCE_DATE_EPOCH", &e2fs_time)
            .args(["-i", &image, "::/EFI", "::/EFI/BOOT"]),
    )?;
    tools::run(
        tools::command("mcopy")
            .env("SOURCE_DATE_EPOCH", &e2fs_time)
            .args(["-m", "-i", &image])
            .arg(&efi)
            .arg("::/EFI/BOOT/BOOTX64.EFI"),
    )?;
    write_at(disk, ESP_START * SECTOR, &std::fs::read(&esp)?)?;
    Ok(())
}

fn run_with_stdin(cmd: &mut std::process::Command, input: &str) -> anyhow::Result<()> {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.as_bytes())?;
    let status = child.wait()?;
    ensure!(
        status.success(),
        "{:?} failed ({status})",
        cmd.get_program()
    );
    Ok(())
}

/// raw → qcow2 (compressed: the upload format most providers take).
pub fn qcow2(raw: &Path, out: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(out);
    tools::run(
        tools::command("qemu-img")
            .args(["convert", "-c", "-f", "raw", "-O", "qcow2"])
            .arg(raw)
            .arg(out),
    )
}
