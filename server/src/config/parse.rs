//! Parsers of single setting values. Each error says what is wrong; the caller adds which
//! setting carried it. Secrets are never echoed.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::Listen;
use crate::auth::password;

pub(super) fn not_an(what: &str, value: &str) -> String {
    format!("{value:?} is not a valid {what}")
}

pub(super) fn parse_port(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("{value:?} is not a port number (1-65535)")),
    }
}

pub(super) fn parse_listen(value: &str) -> Result<Listen, String> {
    if let Some(path) = value.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("`unix:` needs a socket path, e.g. unix:/run/mallard/mallard.sock".into());
        }
        return Ok(Listen::Unix(PathBuf::from(path)));
    }
    value
        .parse::<SocketAddr>()
        .map(Listen::Tcp)
        .map_err(|_| format!("{value:?} is neither `unix:/path.sock` nor `HOST:PORT`"))
}

pub(super) fn parse_path(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("the path is empty".into());
    }
    Ok(PathBuf::from(value))
}

pub(super) fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{value:?} is not a boolean (true/false)")),
    }
}

/// Never echoes the value: it is a secret.
pub(super) fn parse_secret(value: &str) -> Result<String, String> {
    if value.len() < 32 {
        return Err(format!(
            "the secret is {} bytes long; it must be at least 32 (generate one with `openssl rand -hex 32`)",
            value.len()
        ));
    }
    Ok(value.to_string())
}

pub(super) fn parse_cidrs(value: &str) -> Result<Vec<IpNet>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| not_an("CIDR or IP address", part))
        })
        .collect()
}

pub(super) fn parse_seconds(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(format!("{value:?} is not a whole number of seconds ≥ 1")),
    }
}

/// Seconds between 1 and a year: session lifetimes and lockouts (longer is surely a typo, and
/// would overflow a deadline).
pub(super) fn parse_period(value: &str) -> Result<Duration, String> {
    const YEAR: u64 = 366 * 86_400;
    match value.parse::<u64>() {
        Ok(secs) if (1..=YEAR).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "{value:?} is not a whole number of seconds from 1 to {YEAR} (a year)"
        )),
    }
}

pub(super) fn parse_count(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(format!("{value:?} is not a whole number ≥ 1")),
    }
}

/// A whole number from `min` to `max`.
pub(super) fn parse_in(value: &str, min: u64, max: u64) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{value:?} is not a whole number from {min} to {max}"
        )),
    }
}

/// A bearer token: 16 to 1024 visible ASCII characters (it travels in an HTTP header). Never
/// echoed.
pub(super) fn parse_token(value: &str) -> Result<String, String> {
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the token may hold only visible ASCII characters (no spaces)".into());
    }
    if !(16..=1024).contains(&value.len()) {
        return Err(format!(
            "the token is {} characters long; it must have 16 to 1024 (generate one with `openssl rand -hex 32`)",
            value.len()
        ));
    }
    Ok(value.to_string())
}

/// An Argon2id PHC string, checked but never echoed.
pub(super) fn parse_password_hash(value: &str) -> Result<String, String> {
    password::check_phc(value).map_err(|reason| {
        format!(
            "not an Argon2id PHC string like $argon2id$v=19$m=…,t=…,p=…$salt$hash ({reason}); \
             make one with `mallard-metrics hash-password`"
        )
    })?;
    Ok(value.to_string())
}

/// A plaintext password: checked, then hashed at once; only the hash is kept.
pub(super) fn hash_admin_password(value: &str) -> Result<String, String> {
    password::check_new(value)?;
    crate::commands::hash_password::hash(value).map_err(|e| format!("hashing failed: {e}"))
}
