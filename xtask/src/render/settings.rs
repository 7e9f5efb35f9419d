//! The deployment's typed settings: flags parsed and checked before anything is rendered.

use std::path::PathBuf;

use anyhow::{Context, bail, ensure};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsProvider {
    /// ACME DNS-01 through Cloudflare's API (needs the custom Caddy: cargo xtask caddy).
    Cloudflare,
    /// ACME HTTP-01/TLS-ALPN-01: port 80 or 443 must be reachable from the internet.
    None,
}

/// What the operator asks for. Everything here is checked by [`Settings::validate`].
#[derive(Clone, Debug, clap::Args)]
pub struct Settings {
    /// The name Caddy serves and requests a certificate for (an A/AAAA record must point at the
    /// host), e.g. analytics.example.com.
    #[arg(long, env = "MM_DOMAIN")]
    pub domain: String,
    /// Another name served by the same site (repeatable).
    #[arg(long = "extra-domain", value_name = "DOMAIN")]
    pub extra_domains: Vec<String>,
    /// E-mail for the ACME account (expiry notices).
    #[arg(long, env = "MM_EMAIL")]
    pub email: String,
    /// How Caddy proves control of the domain.
    #[arg(long, value_enum, default_value = "cloudflare")]
    pub dns_provider: DnsProvider,
    /// Cloudflare API token (Zone:Zone:Read + Zone:DNS:Edit); required with
    /// --dns-provider cloudflare. It is the one secret the user-data carries.
    #[arg(long, env = "MM_CF_TOKEN", hide_env_values = true)]
    pub cf_token: Option<String>,
    /// An SSH public key for the default user: the key itself or a path to a .pub file
    /// (repeatable). Without one, provisioning relies on keys the provider injects.
    #[arg(long = "ssh-key", value_name = "KEY|FILE")]
    pub ssh_keys: Vec<String>,
    /// Where a stock host downloads `mallard-metrics` and `caddy` from (a folder URL).
    #[arg(long, value_name = "URL")]
    pub release_url: Option<String>,
    /// SHA256SUMS of the release binaries, pinned into the output (default:
    /// $CARGO_TARGET_DIR/dist/SHA256SUMS when it exists).
    #[arg(long, value_name = "FILE")]
    pub sums: Option<PathBuf>,
    /// Use Let's Encrypt's staging CA (untrusted certificates, no rate-limit worries).
    #[arg(long)]
    pub acme_staging: bool,
    /// Use Caddy's own local CA instead of ACME (tests, private networks).
    #[arg(long, conflicts_with = "acme_staging")]
    pub internal_ca: bool,
    /// Keep client addresses in Caddy's access log, masked to /24 (IPv4) and /48 (IPv6);
    /// by default they are dropped.
    #[arg(long)]
    pub mask_client_ips: bool,
    /// Delete events older than this many days (0 keeps everything).
    #[arg(long, default_value_t = 365, value_name = "DAYS")]
    pub retention_days: u32,
    /// Maximum events per second per site (0 = unlimited).
    #[arg(long, default_value_t = 0, value_name = "EVENTS")]
    pub rate_limit: u32,
    /// Size of the encrypted data volume, e.g. 20G or 512M; "auto" takes 20G when the disk has
    /// room, otherwise half of the free space.
    #[arg(long, default_value = "auto", value_name = "SIZE")]
    pub volume_size: String,
    /// Daily backups kept on the encrypted volume.
    #[arg(long, default_value_t = 7, value_name = "N")]
    pub backup_keep: u32,
    /// MaxMind database path on the host, e.g. /srv/mallard/data/GeoLite2-City.mmdb.
    #[arg(long, value_name = "PATH")]
    pub geoip_db: Option<String>,
    /// Use this Argon2id PHC hash (`mallard-metrics hash-password`) instead of generating a
    /// new admin password.
    #[arg(long, value_name = "PHC")]
    pub admin_password_hash: Option<String>,
}

/// One release binary pinned by its SHA-256.
#[derive(Clone, Debug, Serialize)]
pub struct Release {
    pub url: String,
    pub mallard_sha256: String,
    pub caddy_sha256: String,
}

impl Settings {
    /// Every domain, primary first.
    pub fn domains(&self) -> Vec<&str> {
        std::iter::once(self.domain.as_str())
            .chain(self.extra_domains.iter().map(String::as_str))
            .collect()
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        for domain in self.domains() {
            check_domain(domain).with_context(|| format!("--domain/--extra-domain {domain:?}"))?;
        }
        check_email(&self.email).with_context(|| format!("--email {:?}", self.email))?;
        match (self.dns_provider, &self.cf_token) {
            (DnsProvider::Cloudflare, None) => bail!(
                "--cf-token (or MM_CF_TOKEN) is required with --dns-provider cloudflare; \
                 use --dns-provider none for HTTP-01"
            ),
            (DnsProvider::Cloudflare, Some(token)) => ensure!(
                !token.is_empty()
                    && token
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)),
                "--cf-token: a Cloudflare API token is letters, digits, '-' and '_'"
            ),
            (DnsProvider::None, Some(_)) => {
                bail!("--cf-token is only used with --dns-provider cloudflare")
            }
            (DnsProvider::None, None) => {}
        }
        ensure!(
            self.volume_size == "auto" || is_size(&self.volume_size),
            "--volume-size {:?}: expected auto or a size such as 20G or 512M",
            self.volume_size
        );
        ensure!(
            self.backup_keep >= 1,
            "--backup-keep: keep at least one backup"
        );
        if let Some(url) = &self.release_url {
            ensure!(
                (url.starts_with("https://") || url.starts_with("http://"))
                    && !url.contains(char::is_whitespace)
                    && !url.contains(['\'', '"', '$', '`']),
                "--release-url {url:?}: expected an http(s) URL"
            );
        }
        if let Some(path) = &self.geoip_db {
            ensure!(
                path.starts_with('/') && !path.contains(char::is_whitespace),
                "--geoip-db {path:?}: expected an absolute path without spaces"
            );
        }
        Ok(())
    }
}

fn check_domain(domain: &str) -> anyhow::Result<()> {
    let labels: Vec<&str> = domain.split('.').collect();
    ensure!(
        domain.len() <= 253 && labels.len() >= 2,
        "expected a fully qualified name such as analytics.example.com"
    );
    for (i, label) in labels.iter().enumerate() {
        let wildcard = i == 0 && *label == "*";
        ensure!(
            wildcard
                || (!label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')),
            "label {label:?} is not a valid DNS label"
        );
    }
    Ok(())
}

fn check_email(email: &str) -> anyhow::Result<()> {
    let (local, host) = email
        .split_once('@')
        .context("expected an address such as admin@example.com")?;
    ensure!(
        !local.is_empty() && !local.contains(|c: char| c.is_whitespace() || "'\"`$\\".contains(c)),
        "the part before @ is empty or has quotes, spaces or '$'"
    );
    check_domain(host)
}

fn is_size(text: &str) -> bool {
    let digits = text.trim_end_matches(['K', 'M', 'G', 'T']);
    digits.len() + 1 == text.len()
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Reads a sha256sum-format file and returns the pinned release, naming what is missing.
pub fn read_release(url: &str, sums: &std::path::Path) -> anyhow::Result<Release> {
    let text = std::fs::read_to_string(sums)
        .with_context(|| format!("reading --sums {}", sums.display()))?;
    let find = |name: &str| -> anyhow::Result<String> {
        text.lines()
            .filter_map(|line| line.split_once(char::is_whitespace))
            .find(|(_, file)| file.trim().trim_start_matches('*') == name)
            .map(|(hash, _)| hash.to_ascii_lowercase())
            .filter(|hash| hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .with_context(|| format!("{} has no SHA-256 line for {name}", sums.display()))
    };
    Ok(Release {
        url: url.trim_end_matches('/').to_owned(),
        mallard_sha256: find("mallard-metrics")?,
        caddy_sha256: find("caddy")?,
    })
}

/// An SSH key given inline or as a path to a `.pub` file, checked for the usual shape.
pub fn read_ssh_key(value: &str) -> anyhow::Result<String> {
    let key = if std::path::Path::new(value).is_file() {
        std::fs::read_to_string(value).with_context(|| format!("reading --ssh-key {value}"))?
    } else {
        value.to_owned()
    };
    let key = key.trim().to_owned();
    let kind = key.split_whitespace().next().unwrap_or_default();
    ensure!(
        key.lines().count() == 1
            && (kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-")),
        "--ssh-key {value:?}: expected a public key (ssh-ed25519 AAAA… comment) or a .pub file"
    );
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_emails() {
        assert!(check_domain("analytics.example.com").is_ok());
        assert!(check_domain("*.example.com").is_ok());
        assert!(check_domain("localhost").is_err());
        assert!(check_domain("bad_label.example.com").is_err());
        assert!(check_domain("-x.example.com").is_err());
        assert!(check_email("admin@example.com").is_ok());
        assert!(check_email("admin.example.com").is_err());
        assert!(check_email("a'b@example.com").is_err());
    }

    #[test]
    fn sizes() {
        assert!(is_size("20G"));
        assert!(is_size("512M"));
        assert!(!is_size("20"));
        assert!(!is_size("G"));
        assert!(!is_size("2.5G"));
    }
}
