//! Running the system tools the image build and the VM test need, with errors that name the
//! Debian package to install when a tool is missing.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, bail};

/// Program (or file) → the Debian package that provides it.
const PACKAGES: &[(&str, &str)] = &[
    ("mmdebstrap", "mmdebstrap"),
    ("sfdisk", "fdisk"),
    ("mkfs.ext4", "e2fsprogs"),
    ("mkfs.vfat", "dosfstools"),
    ("mcopy", "mtools"),
    ("mmd", "mtools"),
    ("grub-mkimage", "grub-common"),
    ("/usr/lib/grub/i386-pc", "grub-pc-bin"),
    ("/usr/lib/grub/x86_64-efi", "grub-efi-amd64-bin"),
    ("qemu-img", "qemu-utils"),
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("/usr/share/ovmf/OVMF.fd", "ovmf"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("curl", "curl"),
    ("caddy", "caddy"),
];

/// The package that provides `tool`, for messages.
pub fn package_of(tool: &str) -> &str {
    PACKAGES
        .iter()
        .find(|(name, _)| *name == tool)
        .map_or(tool, |(_, package)| package)
}

/// Fails naming the packages to install when any program or file is missing.
pub fn require(tools: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| {
            if tool.starts_with('/') {
                !Path::new(tool).exists()
            } else {
                which(tool).is_none()
            }
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|tool| package_of(tool)).collect();
    packages.dedup();
    bail!(
        "missing {}: install with `apt-get install {}`",
        missing.join(", "),
        packages.join(" ")
    )
}

/// The full path of a program on PATH (or the sbin folders, which a non-login root may lack).
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(Into::into))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A command for `program`, found on PATH or in the sbin folders.
pub fn command(program: &str) -> Command {
    Command::new(which(program).unwrap_or_else(|| program.into()))
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn spawn_error(cmd: &Command, error: std::io::Error) -> anyhow::Error {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let name = Path::new(&program)
        .file_name()
        .map_or(program.clone(), |n| n.to_string_lossy().into_owned());
    if error.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "{name} not found: install it with `apt-get install {}`",
            package_of(&name)
        )
    } else {
        anyhow::anyhow!("running {name}: {error}")
    }
}

/// Runs a command with its output going to ours; fails with the command line on a non-zero exit.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(|e| spawn_error(cmd, e))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Runs a command and returns its stdout; fails with its stderr on a non-zero exit.
pub fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = capture(cmd)?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("output of `{}`", describe(cmd)))
}

/// Runs a command and returns everything, whatever its exit status.
pub fn capture(cmd: &mut Command) -> anyhow::Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(cmd, e))
}
