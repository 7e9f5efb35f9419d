//! The command line as an operator meets it: help, and start-up refusals with exit code 2.

use std::process::Command;

fn mallard() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mallard-metrics"));
    command.env("MALLARD_LOG", "warn");
    command
}

#[test]
fn help_names_every_environment_variable() {
    let output = mallard().arg("--help").output().expect("run --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "MALLARD_HOST",
        "MALLARD_PORT",
        "MALLARD_LISTEN",
        "MALLARD_DATA_DIR",
        "MALLARD_SECRET",
        "MALLARD_GEOIP_DB",
        "MALLARD_FILTER_BOTS",
        "MALLARD_LOG_FORMAT",
        "MALLARD_TRUSTED_PROXIES",
        "MALLARD_COMPACT_INTERVAL",
        "MALLARD_CONFIG",
        "MALLARD_ADMIN_PASSWORD",
        "MALLARD_ADMIN_PASSWORD_HASH",
        "MALLARD_SECURE_COOKIES",
        "MALLARD_SESSION_TTL",
        "MALLARD_MAX_LOGIN_ATTEMPTS",
        "MALLARD_LOGIN_LOCKOUT",
        "MALLARD_METRICS_TOKEN",
        "MALLARD_RATE_LIMIT",
        "MALLARD_CACHE_TTL",
        "MALLARD_MAX_CONCURRENT_QUERIES",
        "MALLARD_RETENTION_DAYS",
        "MALLARD_SHUTDOWN_TIMEOUT",
    ] {
        assert!(
            help.contains(variable),
            "--help does not mention {variable}"
        );
    }
}

#[test]
fn bad_settings_exit_2_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &str, &str); 8] = [
        ("MALLARD_PORT", "http", "MALLARD_PORT"),
        ("MALLARD_LOG_FORMAT", "yaml", "MALLARD_LOG_FORMAT"),
        ("MALLARD_SECRET", "too-short", "MALLARD_SECRET"),
        ("MALLARD_SECRET", "too-short", "at least 32"),
        (
            "MALLARD_ADMIN_PASSWORD_HASH",
            "$2b$12$too-short-and-bcrypt",
            "MALLARD_ADMIN_PASSWORD_HASH",
        ),
        (
            "MALLARD_ADMIN_PASSWORD",
            "too-short",
            "MALLARD_ADMIN_PASSWORD",
        ),
        (
            "MALLARD_METRICS_TOKEN",
            "too-short",
            "MALLARD_METRICS_TOKEN",
        ),
        ("MALLARD_CACHE_TTL", "a minute", "MALLARD_CACHE_TTL"),
    ];
    for (variable, value, expected) in cases {
        let output = mallard()
            .env(variable, value)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{variable}={value}: {stderr}");
        assert!(
            !stderr.contains(value)
                || !["SECRET", "PASSWORD", "TOKEN"]
                    .iter()
                    .any(|kind| variable.contains(kind)),
            "secret echoed: {stderr}"
        );
    }
    let output = mallard().args(["--listen", "unix:"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--listen"));
}

#[test]
fn generated_secret_is_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    // An address this machine does not have stops start-up right after the store and the
    // secret are set up (binding fails locally; nothing is sent anywhere).
    let output = mallard()
        .args(["--port", "1", "--host", "192.0.2.1"])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("MALLARD_SECRET")
        .output()
        .expect("run");
    assert!(
        !output.status.success(),
        "binding a foreign address must fail"
    );
    let secret = dir.path().join(".secret");
    let mode = std::fs::metadata(&secret)
        .expect("secret file written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&secret)
            .expect("readable")
            .trim()
            .len()
            >= 32
    );
}
