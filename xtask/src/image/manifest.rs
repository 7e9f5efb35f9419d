//! What an image holds, for review and verification: the packages with versions (from the root
//! file system's dpkg status), the baked files and binaries, every artifact's sha256.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
}

/// The installed packages of a root file system, sorted by name.
pub fn packages(rootfs: &Path) -> anyhow::Result<Vec<Package>> {
    let path = rootfs.join("var/lib/dpkg/status");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse_status(&text))
}

fn parse_status(text: &str) -> Vec<Package> {
    let mut packages: Vec<Package> = text
        .split("\n\n")
        .filter_map(|stanza| {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
                    .map(str::to_owned)
            };
            let installed = field("Status").is_some_and(|s| s.ends_with(" installed"));
            installed.then(|| Package {
                name: field("Package").unwrap_or_default(),
                version: field("Version").unwrap_or_default(),
                architecture: field("Architecture").unwrap_or_default(),
            })
        })
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    packages
}

/// sha256 of a file of any size, streamed.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Writes `SHA256SUMS` (sha256sum's format: `sha256sum -c SHA256SUMS` checks it) for `files`.
pub fn write_sums(dir: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    let text: String = files
        .iter()
        .map(|(name, sha)| format!("{sha}  {name}\n"))
        .collect();
    std::fs::write(dir.join("SHA256SUMS"), text).context("writing SHA256SUMS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_installed_packages_are_listed() {
        let status = "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\n\
                      Version: 1:1.2.13.dfsg-1\n\n\
                      Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                      Package: apt\nStatus: install ok installed\nArchitecture: amd64\n\
                      Version: 2.6.1\nDescription: x\n";
        let packages = parse_status(status);
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].name, "apt");
        assert_eq!(packages[0].version, "2.6.1");
        assert_eq!(packages[1].version, "1:1.2.13.dfsg-1");
    }
}
