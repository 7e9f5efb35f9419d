//! The flags of `mallard-metrics serve`: every setting as an optional string, resolved (with
//! the environment and the file) by [`ServeArgs::resolve`](super::ServeArgs::resolve).

use std::path::PathBuf;

use clap::Args;

/// Options of `mallard-metrics serve`. Every one can also come from the environment variable
/// named in its help, or from the TOML file given with `--config` (key = option name with `_`).
#[derive(Debug, Default, Clone, Args)]
pub struct ServeArgs {
    /// TOML file with settings (keys: the option names below with `_`, e.g. data_dir,
    /// admin_password_hash, session_ttl). Flags and environment win.
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
    /// Admin password (≥ 12 characters), hashed at start-up and never stored
    /// [env: MALLARD_ADMIN_PASSWORD]. Prefer the environment (a flag shows in `ps`) or the hash.
    #[arg(long, value_name = "PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Argon2id PHC string of the admin password, from `mallard-metrics hash-password`
    /// [env: MALLARD_ADMIN_PASSWORD_HASH]. Neither set: the first visitor of / chooses one.
    #[arg(long, value_name = "PHC", hide_env_values = true)]
    pub admin_password_hash: Option<String>,
    /// Send the session cookie over HTTPS only; set it behind a TLS proxy
    /// [env: MALLARD_SECURE_COOKIES] [default: false].
    #[arg(long, value_name = "BOOL")]
    pub secure_cookies: Option<String>,
    /// Seconds a login session lasts [env: MALLARD_SESSION_TTL] [default: 86400].
    #[arg(long, value_name = "SECONDS")]
    pub session_ttl: Option<String>,
    /// Failed logins from one address before it is locked out
    /// [env: MALLARD_MAX_LOGIN_ATTEMPTS] [default: 5].
    #[arg(long, value_name = "N")]
    pub max_login_attempts: Option<String>,
    /// Seconds a locked-out address must wait [env: MALLARD_LOGIN_LOCKOUT] [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub login_lockout: Option<String>,
    /// Bearer token (16 to 1024 visible characters) Prometheus sends to GET /metrics
    /// [env: MALLARD_METRICS_TOKEN]. Unset: /metrics answers 404.
    #[arg(long, value_name = "TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Events per second accepted per site id, 0 = unlimited; excess gets 429 + Retry-After
    /// [env: MALLARD_RATE_LIMIT] [default: 0].
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<String>,
    /// Seconds a stats answer is cached (new events may show this much later); 0 disables
    /// the cache [env: MALLARD_CACHE_TTL] [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub cache_ttl: Option<String>,
    /// Stats queries running at once; more wait up to 2 s, then get 503
    /// [env: MALLARD_MAX_CONCURRENT_QUERIES] [default: 10].
    #[arg(long, value_name = "N")]
    pub max_concurrent_queries: Option<String>,
    /// Delete events older than this many days, checked daily; 0 keeps everything
    /// [env: MALLARD_RETENTION_DAYS] [default: 0].
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<String>,
    /// Seconds to finish open requests and commit buffered events after SIGTERM/SIGINT
    /// [env: MALLARD_SHUTDOWN_TIMEOUT] [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub shutdown_timeout: Option<String>,
}
