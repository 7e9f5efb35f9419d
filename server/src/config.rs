//! Server settings: one typed `Config`, layered flag > environment > TOML file > default.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    /// A Unix socket: the production deployment puts Caddy in front of it.
    Unix(PathBuf),
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(addr) => write!(f, "http://{addr}"),
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Fully resolved server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub data_dir: PathBuf,
    /// `MALLARD_SECRET`; when absent the store generates and persists one.
    pub secret: Option<String>,
    pub geoip_db: Option<PathBuf>,
    pub filter_bots: bool,
    pub log_format: LogFormat,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// How often hot rows are moved to Parquet.
    pub compact_interval: Duration,
}

impl Config {
    /// Defaults with a given data directory: what tests and the quick start use.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], 8000))),
            data_dir: data_dir.into(),
            secret: None,
            geoip_db: None,
            filter_bots: true,
            log_format: LogFormat::Text,
            trusted_proxies: default_trusted_proxies(),
            compact_interval: Duration::from_secs(300),
        }
    }
}

fn default_trusted_proxies() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect()
}

/// Options of `mallard-metrics serve`. Every one can also come from the environment variable
/// named in its help, or from the TOML file given with `--config` (key = option name with `_`).
#[derive(Debug, Default, Clone, Args)]
pub struct ServeArgs {
    /// TOML file with settings (keys: host, port, listen, data_dir, secret, geoip_db,
    /// filter_bots, log_format, trusted_proxies, compact_interval). Flags and environment win.
    #[arg(long, value_name = "FILE", env = "MALLARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to bind [env: MALLARD_HOST] [default: 127.0.0.1]. Use 0.0.0.0 to accept
    /// remote clients directly; production listens on a Unix socket behind Caddy instead.
    #[arg(long, value_name = "ADDR")]
    pub host: Option<String>,
    /// TCP port [env: MALLARD_PORT] [default: 8000].
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,
    /// Listen on `unix:/path.sock` or `HOST:PORT` instead of --host/--port [env: MALLARD_LISTEN].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory holding mallard.duckdb and the Parquet files [env: MALLARD_DATA_DIR]
    /// [default: ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Secret (≥ 32 bytes) the daily visitor-hash salt derives from [env: MALLARD_SECRET].
    /// Unset: one is generated once and kept in DATA_DIR/.secret (mode 0600).
    #[arg(long, value_name = "SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// MaxMind GeoLite2/GeoIP2 City or Country database for country, region and city
    /// [env: MALLARD_GEOIP_DB]. Unset: no location is recorded.
    #[arg(long, value_name = "FILE")]
    pub geoip_db: Option<String>,
    /// Drop events from known bots and crawlers (answered 202, not stored)
    /// [env: MALLARD_FILTER_BOTS] [default: true].
    #[arg(long, value_name = "BOOL")]
    pub filter_bots: Option<String>,
    /// Log format: `text` or `json` [env: MALLARD_LOG_FORMAT] [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Comma-separated CIDRs whose X-Forwarded-For / X-Real-IP are trusted; a Unix-socket peer
    /// is always trusted [env: MALLARD_TRUSTED_PROXIES] [default: 127.0.0.0/8,::1/128].
    #[arg(long, value_name = "CIDRS")]
    pub trusted_proxies: Option<String>,
    /// Seconds between moves of recent events into Parquet files
    /// [env: MALLARD_COMPACT_INTERVAL] [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub compact_interval: Option<String>,
}

/// A setting that could not be used; the message names the setting and the problem.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid value for {key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
}

/// One setting's names in each layer.
struct Key {
    flag: &'static str,
    env: &'static str,
    file: &'static str,
}

const fn key(flag: &'static str, env: &'static str, file: &'static str) -> Key {
    Key { flag, env, file }
}

const HOST: Key = key("--host", "MALLARD_HOST", "host");
const PORT: Key = key("--port", "MALLARD_PORT", "port");
const LISTEN: Key = key("--listen", "MALLARD_LISTEN", "listen");
const DATA_DIR: Key = key("--data-dir", "MALLARD_DATA_DIR", "data_dir");
const SECRET: Key = key("--secret", "MALLARD_SECRET", "secret");
const GEOIP_DB: Key = key("--geoip-db", "MALLARD_GEOIP_DB", "geoip_db");
const FILTER_BOTS: Key = key("--filter-bots", "MALLARD_FILTER_BOTS", "filter_bots");
const LOG_FORMAT: Key = key("--log-format", "MALLARD_LOG_FORMAT", "log_format");
const TRUSTED_PROXIES: Key = key(
    "--trusted-proxies",
    "MALLARD_TRUSTED_PROXIES",
    "trusted_proxies",
);
const COMPACT_INTERVAL: Key = key(
    "--compact-interval",
    "MALLARD_COMPACT_INTERVAL",
    "compact_interval",
);
const FILE_KEYS: [&Key; 10] = [
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
];

/// The value a setting got, and the name to blame if it is bad.
struct Found {
    value: String,
    named: String,
}

struct Layers<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file: toml::Table,
    file_name: String,
}

impl Layers<'_> {
    fn find(&self, flag_value: &Option<String>, key: &Key) -> Option<Found> {
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

    fn parse<T>(
        &self,
        flag_value: &Option<String>,
        key: &Key,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.find(flag_value, key) {
            None => Ok(None),
            Some(found) => {
                parse(found.value.trim())
                    .map(Some)
                    .map_err(|reason| ConfigError::Invalid {
                        key: found.named,
                        reason,
                    })
            }
        }
    }
}

impl ServeArgs {
    /// Resolves the configuration from these flags, the process environment and the file.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        self.resolve_with(&|name| std::env::var(name).ok())
    }

    /// Same as [`resolve`](Self::resolve) with an explicit environment (for tests).
    pub fn resolve_with(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file_path = self.config.clone();
        let (file, file_name) = match &file_path {
            None => (toml::Table::new(), String::new()),
            Some(path) => (read_file(path)?, path.display().to_string()),
        };
        let layers = Layers {
            env,
            file,
            file_name,
        };
        let defaults = Config::for_data_dir("./data");

        let host = layers
            .parse(&self.host, &HOST, |v| {
                v.parse::<IpAddr>().map_err(|_| not_an("IP address", v))
            })?
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let port = layers.parse(&self.port, &PORT, parse_port)?.unwrap_or(8000);
        let listen = layers
            .parse(&self.listen, &LISTEN, parse_listen)?
            .unwrap_or(Listen::Tcp(SocketAddr::new(host, port)));
        let data_dir = layers
            .parse(&self.data_dir, &DATA_DIR, parse_path)?
            .unwrap_or(defaults.data_dir);
        let secret = layers.parse(&self.secret, &SECRET, parse_secret)?;
        let geoip_db = layers.parse(&self.geoip_db, &GEOIP_DB, parse_path)?;
        let filter_bots = layers
            .parse(&self.filter_bots, &FILTER_BOTS, parse_bool)?
            .unwrap_or(defaults.filter_bots);
        let log_format = layers
            .parse(&self.log_format, &LOG_FORMAT, |v| match v {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err(format!(
                    "{v:?} is not a log format (expected `text` or `json`)"
                )),
            })?
            .unwrap_or(defaults.log_format);
        let trusted_proxies = layers
            .parse(&self.trusted_proxies, &TRUSTED_PROXIES, parse_cidrs)?
            .unwrap_or(defaults.trusted_proxies);
        let compact_interval = layers
            .parse(&self.compact_interval, &COMPACT_INTERVAL, |v| {
                match v.parse::<u64>() {
                    Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
                    _ => Err(format!("{v:?} is not a whole number of seconds ≥ 1")),
                }
            })?
            .unwrap_or(defaults.compact_interval);

        Ok(Config {
            listen,
            data_dir,
            secret,
            geoip_db,
            filter_bots,
            log_format,
            trusted_proxies,
            compact_interval,
        })
    }
}

fn read_file(path: &std::path::Path) -> Result<toml::Table, ConfigError> {
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

fn not_an(what: &str, value: &str) -> String {
    format!("{value:?} is not a valid {what}")
}

fn parse_port(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("{value:?} is not a port number (1-65535)")),
    }
}

fn parse_listen(value: &str) -> Result<Listen, String> {
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

fn parse_path(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("the path is empty".into());
    }
    Ok(PathBuf::from(value))
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{value:?} is not a boolean (true/false)")),
    }
}

/// Never echoes the value: it is a secret.
fn parse_secret(value: &str) -> Result<String, String> {
    if value.len() < 32 {
        return Err(format!(
            "the secret is {} bytes long; it must be at least 32 (generate one with `openssl rand -hex 32`)",
            value.len()
        ));
    }
    Ok(value.to_string())
}

fn parse_cidrs(value: &str) -> Result<Vec<IpNet>, String> {
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

#[cfg(test)]
mod tests;
