//! The layers a setting can come from (flag, environment, TOML file) and every setting's name
//! in each of them.

use super::ConfigError;

/// One setting's names in each layer.
pub(super) struct Key {
    pub flag: &'static str,
    pub env: &'static str,
    pub file: &'static str,
}

const fn key(flag: &'static str, env: &'static str, file: &'static str) -> Key {
    Key { flag, env, file }
}

pub(super) const HOST: Key = key("--host", "MALLARD_HOST", "host");
pub(super) const PORT: Key = key("--port", "MALLARD_PORT", "port");
pub(super) const LISTEN: Key = key("--listen", "MALLARD_LISTEN", "listen");
pub(super) const DATA_DIR: Key = key("--data-dir", "MALLARD_DATA_DIR", "data_dir");
pub(super) const SECRET: Key = key("--secret", "MALLARD_SECRET", "secret");
pub(super) const GEOIP_DB: Key = key("--geoip-db", "MALLARD_GEOIP_DB", "geoip_db");
pub(super) const FILTER_BOTS: Key = key("--filter-bots", "MALLARD_FILTER_BOTS", "filter_bots");
pub(super) const LOG_FORMAT: Key = key("--log-format", "MALLARD_LOG_FORMAT", "log_format");
pub(super) const TRUSTED_PROXIES: Key = key(
    "--trusted-proxies",
    "MALLARD_TRUSTED_PROXIES",
    "trusted_proxies",
);
pub(super) const COMPACT_INTERVAL: Key = key(
    "--compact-interval",
    "MALLARD_COMPACT_INTERVAL",
    "compact_interval",
);
pub(super) const ADMIN_PASSWORD: Key = key(
    "--admin-password",
    "MALLARD_ADMIN_PASSWORD",
    "admin_password",
);
pub(super) const ADMIN_PASSWORD_HASH: Key = key(
    "--admin-password-hash",
    "MALLARD_ADMIN_PASSWORD_HASH",
    "admin_password_hash",
);
pub(super) const SECURE_COOKIES: Key = key(
    "--secure-cookies",
    "MALLARD_SECURE_COOKIES",
    "secure_cookies",
);
pub(super) const SESSION_TTL: Key = key("--session-ttl", "MALLARD_SESSION_TTL", "session_ttl");
pub(super) const MAX_LOGIN_ATTEMPTS: Key = key(
    "--max-login-attempts",
    "MALLARD_MAX_LOGIN_ATTEMPTS",
    "max_login_attempts",
);
pub(super) const LOGIN_LOCKOUT: Key =
    key("--login-lockout", "MALLARD_LOGIN_LOCKOUT", "login_lockout");
pub(super) const METRICS_TOKEN: Key =
    key("--metrics-token", "MALLARD_METRICS_TOKEN", "metrics_token");
pub(super) const RATE_LIMIT: Key = key("--rate-limit", "MALLARD_RATE_LIMIT", "rate_limit");
pub(super) const CACHE_TTL: Key = key("--cache-ttl", "MALLARD_CACHE_TTL", "cache_ttl");
pub(super) const MAX_CONCURRENT_QUERIES: Key = key(
    "--max-concurrent-queries",
    "MALLARD_MAX_CONCURRENT_QUERIES",
    "max_concurrent_queries",
);
pub(super) const RETENTION_DAYS: Key = key(
    "--retention-days",
    "MALLARD_RETENTION_DAYS",
    "retention_days",
);
pub(super) const SHUTDOWN_TIMEOUT: Key = key(
    "--shutdown-timeout",
    "MALLARD_SHUTDOWN_TIMEOUT",
    "shutdown_timeout",
);
const FILE_KEYS: [&Key; 22] = [
    &HOST,
    &PORT,
    &LISTEN,
    &DATA_DIR,
    &SECRET,
    &GEOIP_DB,
    &FILTER_BOTS,
    &LOG_FORMAT,
    &TRUSTED_PROXIES,
    &COMPACT_INTERVAL,
    &ADMIN_PASSWORD,
    &ADMIN_PASSWORD_HASH,
    &SECURE_COOKIES,
    &SESSION_TTL,
    &MAX_LOGIN_ATTEMPTS,
    &LOGIN_LOCKOUT,
    &METRICS_TOKEN,
    &RATE_LIMIT,
    &CACHE_TTL,
    &MAX_CONCURRENT_QUERIES,
    &RETENTION_DAYS,
    &SHUTDOWN_TIMEOUT,
];

/// The value a setting got, and the name to blame if it is bad.
pub(super) struct Found {
    pub value: String,
    pub named: String,
}

pub(super) struct Layers<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub file: toml::Table,
    pub file_name: String,
}

impl Layers<'_> {
    pub fn find(&self, flag_value: &Option<String>, key: &Key) -> Option<Found> {
        if let Some(value) = flag_value {
            return Some(Found {
                value: value.clone(),
                named: key.flag.to_string(),
            });
        }
        if let Some(value) = (self.env)(key.env) {
            return Some(Found {
                value,
                named: key.env.to_string(),
            });
        }
        self.file.get(key.file).map(|value| Found {
            value: match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map_or_else(|| item.to_string(), str::to_string)
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            },
            named: format!("`{}` in {}", key.file, self.file_name),
        })
    }

    /// The setting's value (trimmed) through `parse`; an error names where the value came from.
    pub fn parse<T>(
        &self,
        flag_value: &Option<String>,
        key: &Key,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.parse_exact(flag_value, key, |value| parse(value.trim()))
    }

    /// Like [`parse`](Self::parse) without trimming: for passwords, where spaces count.
    pub fn parse_exact<T>(
        &self,
        flag_value: &Option<String>,
        key: &Key,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.find(flag_value, key) {
            None => Ok(None),
            Some(found) => parse(&found.value)
                .map(Some)
                .map_err(|reason| ConfigError::Invalid {
                    key: found.named,
                    reason,
                }),
        }
    }
}

pub(super) fn read_file(path: &std::path::Path) -> Result<toml::Table, ConfigError> {
    let fail = |reason: String| ConfigError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| fail(e.to_string()))?;
    if let Some(unknown) = table
        .keys()
        .find(|k| !FILE_KEYS.iter().any(|key| key.file == k.as_str()))
    {
        let known: Vec<&str> = FILE_KEYS.iter().map(|key| key.file).collect();
        return Err(fail(format!(
            "unknown key `{unknown}` (known keys: {})",
            known.join(", ")
        )));
    }
    Ok(table)
}
