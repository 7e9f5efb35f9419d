//! Server settings: one typed `Config`, layered flag > environment > TOML file > default.

mod args;
mod layers;
mod parse;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

pub use args::ServeArgs;
use layers::*;
use parse::*;

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
    /// Argon2id PHC string of the admin password: `MALLARD_ADMIN_PASSWORD_HASH`, or the hash
    /// of `MALLARD_ADMIN_PASSWORD` made at start-up (the plaintext is not kept). `None`: the
    /// one chosen at first-run setup, if any (`<data>/.admin-password`).
    pub admin_password_hash: Option<String>,
    /// Mark the session cookie `Secure` (HTTPS only).
    pub secure_cookies: bool,
    /// Lifetime of a login session (and the cookie's Max-Age).
    pub session_ttl: Duration,
    /// Failed logins from one client address before it is locked out.
    pub max_login_attempts: u32,
    /// How long a locked-out address is refused.
    pub login_lockout: Duration,
    /// Bearer token of `GET /metrics`; `None`: the endpoint answers 404.
    pub metrics_token: Option<String>,
    /// Events per second per site id; 0 = unlimited.
    pub rate_limit: u32,
    /// How long a stats answer is reused; zero disables the cache.
    pub cache_ttl: Duration,
    /// Stats queries running at once.
    pub max_concurrent_queries: u32,
    /// Days of events kept; 0 = keep everything.
    pub retention_days: u32,
    /// How long shutdown may take to finish requests and commit buffered events.
    pub shutdown_timeout: Duration,
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
            admin_password_hash: None,
            secure_cookies: false,
            session_ttl: Duration::from_secs(86_400),
            max_login_attempts: 5,
            login_lockout: Duration::from_secs(300),
            metrics_token: None,
            rate_limit: 0,
            cache_ttl: Duration::from_secs(60),
            max_concurrent_queries: 10,
            retention_days: 0,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

fn default_trusted_proxies() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect()
}

/// A setting that could not be used; the message names the setting and the problem.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid value for {key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
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
            .parse(&self.compact_interval, &COMPACT_INTERVAL, parse_seconds)?
            .unwrap_or(defaults.compact_interval);
        let admin_password_hash = self.admin_password_hash(&layers)?;
        let secure_cookies = layers
            .parse(&self.secure_cookies, &SECURE_COOKIES, parse_bool)?
            .unwrap_or(defaults.secure_cookies);
        let session_ttl = layers
            .parse(&self.session_ttl, &SESSION_TTL, parse_period)?
            .unwrap_or(defaults.session_ttl);
        let max_login_attempts = layers
            .parse(&self.max_login_attempts, &MAX_LOGIN_ATTEMPTS, parse_count)?
            .unwrap_or(defaults.max_login_attempts);
        let login_lockout = layers
            .parse(&self.login_lockout, &LOGIN_LOCKOUT, parse_period)?
            .unwrap_or(defaults.login_lockout);
        let metrics_token = layers.parse_exact(&self.metrics_token, &METRICS_TOKEN, parse_token)?;
        let rate_limit = layers
            .parse(&self.rate_limit, &RATE_LIMIT, |v| parse_in(v, 0, 1_000_000))?
            .map_or(defaults.rate_limit, |n| n as u32);
        let cache_ttl = layers
            .parse(&self.cache_ttl, &CACHE_TTL, |v| parse_in(v, 0, 86_400))?
            .map_or(defaults.cache_ttl, Duration::from_secs);
        let max_concurrent_queries = layers
            .parse(&self.max_concurrent_queries, &MAX_CONCURRENT_QUERIES, |v| {
                parse_in(v, 1, 1_000)
            })?
            .map_or(defaults.max_concurrent_queries, |n| n as u32);
        let retention_days = layers
            .parse(&self.retention_days, &RETENTION_DAYS, |v| {
                parse_in(v, 0, 36_500)
            })?
            .map_or(defaults.retention_days, |n| n as u32);
        let shutdown_timeout = layers
            .parse(&self.shutdown_timeout, &SHUTDOWN_TIMEOUT, |v| {
                parse_in(v, 1, 3_600)
            })?
            .map_or(defaults.shutdown_timeout, Duration::from_secs);

        Ok(Config {
            listen,
            data_dir,
            secret,
            geoip_db,
            filter_bots,
            log_format,
            trusted_proxies,
            compact_interval,
            admin_password_hash,
            secure_cookies,
            session_ttl,
            max_login_attempts,
            login_lockout,
            metrics_token,
            rate_limit,
            cache_ttl,
            max_concurrent_queries,
            retention_days,
            shutdown_timeout,
        })
    }

    /// The admin password as a hash: the configured hash, or the configured password hashed
    /// now. Both at once is refused (which one would win is not obvious).
    fn admin_password_hash(&self, layers: &Layers<'_>) -> Result<Option<String>, ConfigError> {
        let plain = layers.find(&self.admin_password, &ADMIN_PASSWORD);
        let hash = layers.find(&self.admin_password_hash, &ADMIN_PASSWORD_HASH);
        if let (Some(plain), Some(hash)) = (&plain, &hash) {
            return Err(ConfigError::Invalid {
                key: hash.named.clone(),
                reason: format!("set either it or {}, not both", plain.named),
            });
        }
        if hash.is_some() {
            return layers.parse(
                &self.admin_password_hash,
                &ADMIN_PASSWORD_HASH,
                parse_password_hash,
            );
        }
        layers.parse_exact(&self.admin_password, &ADMIN_PASSWORD, hash_admin_password)
    }
}

#[cfg(test)]
mod tests;
