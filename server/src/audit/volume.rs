//! `luks.*` and `disk.usage`: the data lives on the open, mounted LUKS volume, its keyfile is
//! root's alone, and the volume has room left.

use std::path::Path;

use super::facts::{
    DATA_MOUNT, DISK_FAIL_PERCENT, DISK_WARN_PERCENT, LUKS_DEVICE, LUKS_KEYFILE, LUKS_KEYFILE_MODE,
    LUKS_NAME, MOUNTINFO,
};
use super::{Check, Host, HostError, failed, run_any, run_ok};

pub fn checks(host: &dyn Host) -> Vec<Check> {
    vec![active(host), mount(host), keyfile(host), disk_usage(host)]
}

fn active(host: &dyn Host) -> Check {
    let id = "luks.active";
    let args = ["status", LUKS_NAME];
    let output = match run_any(host, "cryptsetup", &args) {
        Ok(output) => output,
        Err(reason) => return Check::fail(id, reason),
    };
    if !output.success() || !output.stdout.contains("is active") {
        return Check::fail(id, failed("cryptsetup", &args, &output));
    }
    let field = |name: &str| {
        output.stdout.lines().find_map(|line| {
            let (key, value) = line.trim().split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    match field("type").as_deref() {
        Some("LUKS2") => {
            let cipher = field("cipher").unwrap_or_else(|| "cipher unknown".to_string());
            Check::pass(id, format!("{LUKS_DEVICE} is active (LUKS2, {cipher})"))
        }
        Some(other) => Check::fail(id, format!("{LUKS_DEVICE} is {other}, expected LUKS2")),
        None => Check::fail(
            id,
            format!("`cryptsetup status` shows no type for {LUKS_NAME}"),
        ),
    }
}

/// Reads mountinfo rather than asking `findmnt`, whose SOURCE may be `/dev/dm-N` for the same
/// device; when mountinfo also names `dm-N`, sysfs tells which mapping that is.
fn mount(host: &dyn Host) -> Check {
    let id = "luks.mount";
    let mountinfo = match host.read_file(Path::new(MOUNTINFO)) {
        Ok(text) => text,
        Err(err) => return Check::fail(id, err.to_string()),
    };
    // The last entry for a mount point is the one on top, the one paths resolve to.
    let Some(entry) = mountinfo
        .lines()
        .filter_map(parse_mountinfo_line)
        .rfind(|entry| entry.mount_point == DATA_MOUNT)
    else {
        return Check::fail(id, format!("{DATA_MOUNT} is not a mount point"));
    };
    if entry.source == LUKS_DEVICE {
        return Check::pass(
            id,
            format!(
                "{DATA_MOUNT} is mounted from {LUKS_DEVICE} ({})",
                entry.fs_type
            ),
        );
    }
    let dm_name = host
        .read_file(
            &Path::new("/sys/dev/block")
                .join(&entry.device)
                .join("dm/name"),
        )
        .map(|name| name.trim().to_string());
    match dm_name {
        Ok(name) if name == LUKS_NAME => Check::pass(
            id,
            format!(
                "{DATA_MOUNT} is mounted from {} = {LUKS_DEVICE} ({})",
                entry.source, entry.fs_type
            ),
        ),
        _ => Check::fail(
            id,
            format!(
                "{DATA_MOUNT} is mounted from {}, expected {LUKS_DEVICE}",
                entry.source
            ),
        ),
    }
}

struct MountEntry {
    device: String,
    mount_point: String,
    fs_type: String,
    source: String,
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw` (proc(5)).
fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (before, after) = line.split_once(" - ")?;
    let before: Vec<&str> = before.split_whitespace().collect();
    let mut after = after.split_whitespace();
    Some(MountEntry {
        device: before.get(2)?.to_string(),
        mount_point: unescape_octal(before.get(4)?),
        fs_type: after.next()?.to_string(),
        source: unescape_octal(after.next()?),
    })
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal escapes.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)))
            .and_then(|digits| u8::from_str_radix(&String::from_utf8_lossy(digits), 8).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn keyfile(host: &dyn Host) -> Check {
    let id = "luks.keyfile";
    let meta = match host.metadata(Path::new(LUKS_KEYFILE)) {
        Ok(meta) => meta,
        Err(HostError::NotFound(_)) => {
            return Check::fail(id, format!("{LUKS_KEYFILE} is missing"));
        }
        Err(err) => return Check::fail(id, err.to_string()),
    };
    let mut problems = Vec::new();
    if meta.is_symlink {
        problems.push("is a symbolic link, expected a regular file".to_string());
    } else if !meta.is_file {
        problems.push("is not a regular file".to_string());
    }
    if meta.mode != LUKS_KEYFILE_MODE {
        problems.push(format!(
            "has mode {:04o}, expected {LUKS_KEYFILE_MODE:04o}",
            meta.mode
        ));
    }
    if meta.uid != 0 {
        problems.push(format!("is owned by uid {}, expected 0 (root)", meta.uid));
    }
    if problems.is_empty() {
        Check::pass(
            id,
            format!("{LUKS_KEYFILE}: regular file, mode 0400, owned by root"),
        )
    } else {
        Check::fail(id, format!("{LUKS_KEYFILE} {}", problems.join(", ")))
    }
}

fn disk_usage(host: &dyn Host) -> Check {
    let id = "disk.usage";
    let output = match run_ok(host, "df", &["--output=pcent,target", DATA_MOUNT]) {
        Ok(output) => output,
        Err(reason) => return Check::fail(id, reason),
    };
    // "Use% Mounted on" then " 23% /srv/mallard/data".
    let usage = output.stdout.lines().nth(1).and_then(|line| {
        let (percent, target) = line.trim().split_once(char::is_whitespace)?;
        let percent = percent.strip_suffix('%')?.parse::<u32>().ok()?;
        Some((percent, target.trim().to_string()))
    });
    let Some((percent, target)) = usage else {
        return Check::fail(
            id,
            format!("cannot read a usage from `df`: {:?}", output.stdout.trim()),
        );
    };
    let detail = if target == DATA_MOUNT {
        format!("{percent} % used on {DATA_MOUNT}")
    } else {
        // Not mounted: df answers for the filesystem underneath; luks.mount reports that.
        format!("{percent} % used on {target} (holding {DATA_MOUNT})")
    };
    if percent >= DISK_FAIL_PERCENT {
        Check::fail(id, format!("{detail}, at or above {DISK_FAIL_PERCENT} %"))
    } else if percent >= DISK_WARN_PERCENT {
        Check::warn(id, format!("{detail}, at or above {DISK_WARN_PERCENT} %"))
    } else {
        Check::pass(id, detail)
    }
}
