//! The root file system: mmdebstrap into a folder, then the baked files and binaries, then
//! everything per-instance removed (SSH host keys, machine-id, cloud-init state, logs).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};

use super::recipe::Recipe;
use super::tools;

/// What goes into the root file system besides the packages.
pub struct Bake<'a> {
    /// (absolute target path, content, mode)
    pub files: Vec<(String, Vec<u8>, u32)>,
    pub recipe: &'a Recipe,
}

fn is_snapshot(url: &str) -> bool {
    url.contains("snapshot.debian.org") || url.contains("/snapshot/")
}

/// Runs mmdebstrap (root mode, into `target`), reusing and refreshing `cache`'s .deb files.
pub fn debootstrap(
    recipe: &Recipe,
    mirror: &str,
    security_mirror: &str,
    target: &Path,
    cache: &Path,
    epoch: u64,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let components = recipe.components.join(" ");
    let suite = &recipe.suite;
    let mut cmd = tools::command("mmdebstrap");
    cmd.env("SOURCE_DATE_EPOCH", epoch.to_string())
        .arg("--mode=root")
        .arg("--format=directory")
        .arg(format!("--variant={}", recipe.variant))
        .arg(format!("--include={}", recipe.packages.join(",")))
        .arg("--aptopt=Acquire::Retries \"3\"")
        // Documentation and translations are not needed on a server; licences stay.
        .arg("--dpkgopt=path-exclude=/usr/share/man/*")
        .arg("--dpkgopt=path-exclude=/usr/share/info/*")
        .arg("--dpkgopt=path-exclude=/usr/share/doc/*")
        .arg("--dpkgopt=path-include=/usr/share/doc/*/copyright")
        .arg("--dpkgopt=path-exclude=/usr/share/locale/*")
        // The downloads are kept in `cache` (outside the clone) and offered to the next build.
        .arg("--skip=download/empty")
        .arg("--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives")
        .arg(format!(
            "--setup-hook=sync-in {} /var/cache/apt/archives/",
            cache.display()
        ))
        .arg(format!(
            "--customize-hook=sync-out /var/cache/apt/archives {}",
            cache.display()
        ))
        .arg("--customize-hook=rm -f \"$1\"/var/cache/apt/archives/*.deb");
    if is_snapshot(mirror) || is_snapshot(security_mirror) {
        // Snapshots keep their Release files, whose Valid-Until has long passed.
        cmd.arg("--aptopt=Acquire::Check-Valid-Until \"false\"");
    }
    cmd.arg(suite)
        .arg(target)
        .arg(format!("deb {mirror} {suite} {components}"))
        .arg(format!("deb {mirror} {suite}-updates {components}"))
        .arg(format!(
            "deb {security_mirror} {suite}-security {components}"
        ));
    tools::run(&mut cmd)
}

fn write(root: &Path, path: &str, content: &[u8], mode: u32) -> anyhow::Result<()> {
    let dest = root.join(path.trim_start_matches('/'));
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    // A package may have shipped a symbolic link there: replace it, never write through it.
    if dest.symlink_metadata().is_ok() {
        std::fs::remove_file(&dest).with_context(|| format!("replacing {}", dest.display()))?;
    }
    std::fs::write(&dest, content).with_context(|| format!("writing {}", dest.display()))?;
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", dest.display()))
}

/// Writes the baked files, the image's apt sources and fstab, and removes what is per-instance.
pub fn bake(root: &Path, bake: &Bake<'_>, root_uuid: &str) -> anyhow::Result<()> {
    for (path, content, mode) in &bake.files {
        write(root, path, content, *mode)?;
    }
    let recipe = bake.recipe;
    let components = recipe.components.join(" ");
    let suite = &recipe.suite;
    let sources = format!(
        "Types: deb\nURIs: {}\nSuites: {suite} {suite}-updates\nComponents: {components}\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
         Types: deb\nURIs: {}\nSuites: {suite}-security\nComponents: {components}\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
        recipe.target_mirror, recipe.target_security_mirror
    );
    remove(root, "/etc/apt/sources.list")?;
    write(
        root,
        "/etc/apt/sources.list.d/debian.sources",
        sources.as_bytes(),
        0o644,
    )?;
    let fstab = format!(
        "# <file system> <mount point> <type> <options> <dump> <pass>\n\
         UUID={root_uuid} / ext4 errors=remount-ro 0 1\n"
    );
    write(root, "/etc/fstab", fstab.as_bytes(), 0o644)?;
    write(root, "/etc/hostname", b"localhost\n", 0o644)?;
    write(
        root,
        "/etc/hosts",
        b"127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
        0o644,
    )?;

    // Per-instance state: every server makes its own on first boot.
    for path in [
        "/etc/resolv.conf",
        "/var/lib/dbus/machine-id",
        "/var/log/bootstrap.log",
        "/var/log/dpkg.log",
        "/var/log/alternatives.log",
        "/var/cache/debconf/config.dat-old",
        "/var/cache/debconf/templates.dat-old",
    ] {
        remove(root, path)?;
    }
    // An empty machine-id: systemd generates one at first boot (and runs first-boot units).
    write(root, "/etc/machine-id", b"", 0o444)?;
    for entry in std::fs::read_dir(root.join("etc/ssh")).context("listing /etc/ssh")? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("ssh_host_"))
        {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    for dir in [
        "var/lib/cloud",
        "var/log/apt",
        "var/log/journal",
        "tmp",
        "var/tmp",
    ] {
        let dir = root.join(dir);
        if dir.is_dir() {
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.is_dir() && !path.is_symlink() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                }
                .with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    // The kernel and initrd GRUB boots: Debian keeps /vmlinuz and /initrd.img pointing at the
    // newest kernel, so kernel updates need no boot loader change.
    for link in ["vmlinuz", "initrd.img"] {
        ensure!(
            root.join(link).exists(),
            "the root file system has no /{link}: is linux-image-amd64 in the recipe?"
        );
    }
    Ok(())
}

fn remove(root: &Path, path: &str) -> anyhow::Result<()> {
    let path = root.join(path.trim_start_matches('/'));
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Sets every time stamp newer than `epoch` to `epoch` (SOURCE_DATE_EPOCH: the file system
/// image then does not depend on when it was built).
pub fn clamp_times(root: &Path, epoch: u64) -> anyhow::Result<()> {
    tools::run(
        Command::new("find")
            .arg(root)
            .arg("-newermt")
            .arg(format!("@{epoch}"))
            .args(["-exec", "touch", "--no-dereference", "--date"])
            .arg(format!("@{epoch}"))
            .args(["{}", "+"]),
    )
}

/// The copy of an image folder file, with its mode, as (target path, content, mode).
pub fn folder_files(base: &Path) -> anyhow::Result<Vec<(String, Vec<u8>, u32)>> {
    super::recipe::files_under(base)?
        .into_iter()
        .map(|file| {
            let relative: PathBuf = file.strip_prefix(base)?.to_path_buf();
            let mode = std::fs::metadata(&file)?.permissions().mode() & 0o777;
            let content =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            Ok((format!("/{}", relative.display()), content, mode))
        })
        .collect()
}
