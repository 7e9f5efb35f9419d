use super::*;
use std::collections::HashMap;

fn resolve(args: ServeArgs, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    args.resolve_with(&move |name| env.get(name).cloned())
}

#[test]
fn defaults_listen_on_localhost_8000_with_data_in_cwd() {
    let config = resolve(ServeArgs::default(), &[]).expect("defaults are valid");
    assert_eq!(
        config.listen,
        Listen::Tcp("127.0.0.1:8000".parse().expect("addr"))
    );
    assert_eq!(config.data_dir, PathBuf::from("./data"));
    assert!(config.filter_bots);
    assert_eq!(config.log_format, LogFormat::Text);
}

#[test]
fn flag_beats_environment_beats_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mallard.toml");
    std::fs::write(
        &file,
        "port = 7000\nhost = \"0.0.0.0\"\nlog_format = \"json\"\n",
    )
    .expect("write");
    let args = ServeArgs {
        config: Some(file),
        port: Some("9000".into()),
        ..Default::default()
    };
    let config = resolve(
        args,
        &[("MALLARD_PORT", "8500"), ("MALLARD_HOST", "127.0.0.2")],
    )
    .expect("valid");
    assert_eq!(
        config.listen,
        Listen::Tcp("127.0.0.2:9000".parse().expect("addr"))
    );
    assert_eq!(
        config.log_format,
        LogFormat::Json,
        "the file fills what flags and env leave"
    );
}

#[test]
fn unix_listen_overrides_host_and_port() {
    let config = resolve(
        ServeArgs::default(),
        &[("MALLARD_LISTEN", "unix:/run/mallard/m.sock")],
    )
    .expect("valid");
    assert_eq!(config.listen, Listen::Unix("/run/mallard/m.sock".into()));
}

#[test]
fn bad_values_name_the_key_that_carried_them() {
    let err = resolve(ServeArgs::default(), &[("MALLARD_PORT", "eighty")]).expect_err("bad port");
    assert_eq!(
        err.to_string(),
        "invalid value for MALLARD_PORT: \"eighty\" is not a port number (1-65535)"
    );

    let args = ServeArgs {
        filter_bots: Some("maybe".into()),
        ..Default::default()
    };
    let err = resolve(args, &[]).expect_err("bad bool");
    assert!(
        err.to_string()
            .starts_with("invalid value for --filter-bots:"),
        "{err}"
    );

    let err = resolve(ServeArgs::default(), &[("MALLARD_LOG_FORMAT", "xml")]).expect_err("bad fmt");
    assert!(err.to_string().contains("MALLARD_LOG_FORMAT"), "{err}");

    let err = resolve(
        ServeArgs::default(),
        &[("MALLARD_TRUSTED_PROXIES", "10.0.0.0/8,nope")],
    )
    .expect_err("bad cidr");
    assert!(err.to_string().contains("\"nope\""), "{err}");
}

#[test]
fn short_secret_is_refused_without_echoing_it() {
    let err = resolve(ServeArgs::default(), &[("MALLARD_SECRET", "hunter2")]).expect_err("short");
    let message = err.to_string();
    assert!(
        message.contains("MALLARD_SECRET") && message.contains("at least 32"),
        "{message}"
    );
    assert!(
        !message.contains("hunter2"),
        "a secret must never be echoed: {message}"
    );
}

#[test]
fn unknown_file_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mallard.toml");
    std::fs::write(&file, "prot = 7000\n").expect("write");
    let args = ServeArgs {
        config: Some(file),
        ..Default::default()
    };
    let err = resolve(args, &[]).expect_err("typo");
    assert!(err.to_string().contains("unknown key `prot`"), "{err}");
}

#[test]
fn bad_file_value_names_the_file_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mallard.toml");
    std::fs::write(&file, "port = 0\n").expect("write");
    let args = ServeArgs {
        config: Some(file.clone()),
        ..Default::default()
    };
    let err = resolve(args, &[]).expect_err("port 0");
    assert!(
        err.to_string()
            .contains(&format!("`port` in {}", file.display())),
        "{err}"
    );
}

#[test]
fn auth_settings_default_and_layer_like_the_others() {
    let config = resolve(ServeArgs::default(), &[]).expect("defaults");
    assert_eq!(
        config.admin_password_hash, None,
        "no password: first-run setup"
    );
    assert!(!config.secure_cookies);
    assert_eq!(config.session_ttl, Duration::from_secs(86_400));
    assert_eq!(config.max_login_attempts, 5);
    assert_eq!(config.login_lockout, Duration::from_secs(300));

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mallard.toml");
    std::fs::write(
        &file,
        "secure_cookies = true\nsession_ttl = 3600\nmax_login_attempts = 9\n",
    )
    .expect("write");
    let args = ServeArgs {
        config: Some(file),
        login_lockout: Some("60".into()),
        ..Default::default()
    };
    let config = resolve(args, &[("MALLARD_MAX_LOGIN_ATTEMPTS", "3")]).expect("valid");
    assert!(config.secure_cookies);
    assert_eq!(config.session_ttl, Duration::from_secs(3600));
    assert_eq!(
        config.max_login_attempts, 3,
        "the environment beats the file"
    );
    assert_eq!(config.login_lockout, Duration::from_secs(60));

    for (variable, value) in [
        ("MALLARD_SESSION_TTL", "0"),
        ("MALLARD_SESSION_TTL", "18446744073709551615"),
        ("MALLARD_MAX_LOGIN_ATTEMPTS", "none"),
        ("MALLARD_LOGIN_LOCKOUT", "-5"),
        ("MALLARD_SECURE_COOKIES", "maybe"),
    ] {
        let err = resolve(ServeArgs::default(), &[(variable, value)]).expect_err(variable);
        assert!(err.to_string().contains(variable), "{err}");
    }
}

#[test]
fn a_plaintext_admin_password_is_hashed_at_once() {
    let password = "correct horse battery staple";
    let config = resolve(
        ServeArgs::default(),
        &[("MALLARD_ADMIN_PASSWORD", password)],
    )
    .expect("valid");
    let hash = config.admin_password_hash.clone().expect("hashed");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(crate::auth::password::verify_blocking(&hash, password));
    assert!(
        !format!("{config:?}").contains(password),
        "the plaintext is not kept"
    );

    let err = resolve(
        ServeArgs::default(),
        &[("MALLARD_ADMIN_PASSWORD", "hunter2")],
    )
    .expect_err("short");
    let message = err.to_string();
    assert!(
        message.contains("MALLARD_ADMIN_PASSWORD") && message.contains("12"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "never echoed: {message}");
}

#[test]
fn an_admin_password_hash_must_be_argon2id() {
    let good = crate::commands::hash_password::hash("correct horse battery staple").expect("hash");
    let config = resolve(
        ServeArgs::default(),
        &[("MALLARD_ADMIN_PASSWORD_HASH", good.as_str())],
    )
    .expect("valid");
    assert_eq!(config.admin_password_hash.as_deref(), Some(good.as_str()));

    let bcrypt = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
    for bad in [
        "plaintext-password",
        bcrypt,
        &good.replacen("$argon2id$", "$argon2i$", 1),
    ] {
        let err = resolve(
            ServeArgs::default(),
            &[("MALLARD_ADMIN_PASSWORD_HASH", bad)],
        )
        .expect_err("not argon2id");
        let message = err.to_string();
        assert!(
            message.contains("MALLARD_ADMIN_PASSWORD_HASH") && message.contains("hash-password"),
            "{message}"
        );
        assert!(!message.contains(bad), "never echoed: {message}");
    }

    let err = resolve(
        ServeArgs::default(),
        &[
            ("MALLARD_ADMIN_PASSWORD_HASH", good.as_str()),
            ("MALLARD_ADMIN_PASSWORD", "correct horse battery staple"),
        ],
    )
    .expect_err("both");
    assert!(err.to_string().contains("not both"), "{err}");
}

#[test]
fn operations_settings_default_layer_and_name_themselves() {
    let config = resolve(ServeArgs::default(), &[]).expect("defaults");
    assert_eq!(config.metrics_token, None);
    assert_eq!(config.rate_limit, 0, "unlimited");
    assert_eq!(config.cache_ttl, Duration::from_secs(60));
    assert_eq!(config.max_concurrent_queries, 10);
    assert_eq!(config.retention_days, 0, "keep everything");
    assert_eq!(config.shutdown_timeout, Duration::from_secs(10));

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mallard.toml");
    let toml = "rate_limit = 50\ncache_ttl = 0\nretention_days = 365\nshutdown_timeout = 3\n\
                max_concurrent_queries = 4\nmetrics_token = \"0123456789abcdef-file\"\n";
    std::fs::write(&file, toml).expect("write");
    let args = ServeArgs {
        config: Some(file),
        rate_limit: Some("7".into()),
        ..Default::default()
    };
    let config = resolve(args, &[("MALLARD_CACHE_TTL", "5")]).expect("valid");
    assert_eq!(config.rate_limit, 7, "the flag beats the file");
    assert_eq!(
        config.cache_ttl,
        Duration::from_secs(5),
        "env beats the file"
    );
    assert_eq!(config.retention_days, 365);
    assert_eq!(config.shutdown_timeout, Duration::from_secs(3));
    assert_eq!(config.max_concurrent_queries, 4);
    assert_eq!(
        config.metrics_token.as_deref(),
        Some("0123456789abcdef-file")
    );

    for (variable, value) in [
        ("MALLARD_RATE_LIMIT", "-1"),
        ("MALLARD_CACHE_TTL", "forever"),
        ("MALLARD_MAX_CONCURRENT_QUERIES", "0"),
        ("MALLARD_RETENTION_DAYS", "1e3"),
        ("MALLARD_SHUTDOWN_TIMEOUT", "0"),
        ("MALLARD_METRICS_TOKEN", "short-token"),
        ("MALLARD_METRICS_TOKEN", "has a space in it, sixteen+"),
    ] {
        let err = resolve(ServeArgs::default(), &[(variable, value)]).expect_err(variable);
        let message = err.to_string();
        assert!(message.contains(variable), "{message}");
        if variable == "MALLARD_METRICS_TOKEN" {
            assert!(
                !message.contains(value),
                "a token is never echoed: {message}"
            );
        }
    }
}
