//! `cargo xtask render` as an operator meets it: the password shown once, private outputs, and
//! clear refusals of bad input.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{SSH_KEY, TOKEN, files_under, read, xtask};

fn args(out: &std::path::Path, extra: &[&str]) -> Vec<String> {
    ["render", "--out", &out.display().to_string()]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn prints_a_new_admin_password_once_and_writes_only_its_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("deploy");
    let output = xtask(&args(
        &out,
        &[
            "--domain",
            "analytics.example.com",
            "--email",
            "admin@example.com",
            "--cf-token",
            TOKEN,
        ],
    ));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let password = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Admin password"))
        .nth(1)
        .map(str::trim)
        .expect("the password is printed");
    assert_eq!(password.len(), 24);
    assert_eq!(stdout.matches(password).count(), 1, "shown exactly once");
    for file in files_under(&out) {
        let text = read(&out.join(&file));
        assert!(
            !text.contains(password),
            "{} contains the plaintext password",
            file.display()
        );
    }
    let instance = read(&out.join("host/etc/mallard/instance.env"));
    assert!(instance.contains("$argon2id$v=19$"), "{instance}");
    // Outputs that carry the token or the hash are private.
    let mode = |path: &str| {
        std::fs::metadata(out.join(path))
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700);
    assert_eq!(mode("user-data.yaml"), 0o600);
    assert_eq!(mode("image-user-data.yaml"), 0o600);
    assert_eq!(mode("host/etc/caddy/caddy.env"), 0o600);
    assert_eq!(mode("host/etc/mallard/instance.env"), 0o600);
    assert_eq!(mode("host/usr/local/sbin/mallard-setup"), 0o755);
    assert!(read(&out.join("user-data.yaml")).contains(&format!("CF_API_TOKEN='{TOKEN}'")));
    // provision.sh asks for the token on the host; it never carries it.
    assert!(!read(&out.join("provision.sh")).contains(TOKEN));
    // Without --release-url the operator is told what a stock host would need.
    assert!(String::from_utf8_lossy(&output.stderr).contains("--release-url"));
}

#[test]
fn bad_input_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("deploy");
    let sums = common::fixture("SHA256SUMS").display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--domain",
                "analytics.example.com",
                "--email",
                "admin@example.com",
            ],
            "--cf-token",
        ),
        (
            vec![
                "--domain",
                "not a domain",
                "--email",
                "a@example.com",
                "--dns-provider",
                "none",
            ],
            "--domain",
        ),
        (
            vec![
                "--domain",
                "a.example.com",
                "--email",
                "nobody",
                "--dns-provider",
                "none",
            ],
            "--email",
        ),
        (
            vec![
                "--domain",
                "a.example.com",
                "--email",
                "a@example.com",
                "--dns-provider",
                "none",
                "--cf-token",
                TOKEN,
            ],
            "--cf-token",
        ),
        (
            vec![
                "--domain",
                "a.example.com",
                "--email",
                "a@example.com",
                "--dns-provider",
                "none",
                "--release-url",
                "https://releases.example.com/x",
                "--sums",
                "/nonexistent/SUMS",
            ],
            "--sums",
        ),
        (
            vec![
                "--domain",
                "a.example.com",
                "--email",
                "a@example.com",
                "--dns-provider",
                "none",
                "--ssh-key",
                "not-a-key",
            ],
            "--ssh-key",
        ),
        (
            vec![
                "--domain",
                "a.example.com",
                "--email",
                "a@example.com",
                "--dns-provider",
                "none",
                "--volume-size",
                "lots",
            ],
            "--volume-size",
        ),
        (
            vec![
                "--domain",
                "a.example.com",
                "--email",
                "a@example.com",
                "--dns-provider",
                "none",
                "--admin-password-hash",
                "hunter2",
            ],
            "--admin-password-hash",
        ),
        (
            vec![
                "--domain",
                "a.example.com",
                "--email",
                "a@example.com",
                "--dns-provider",
                "none",
                "--internal-ca",
                "--acme-staging",
            ],
            "--acme-staging",
        ),
    ];
    for (flags, named) in cases {
        let output = xtask(&args(&out, &flags));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flags:?} was accepted");
        assert!(
            stderr.contains(named),
            "{flags:?}: the error does not name {named}:\n{stderr}"
        );
    }
    assert!(
        !out.exists(),
        "nothing is written when the input is refused"
    );
    let _ = sums;
}

#[test]
fn user_data_over_16_kib_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys: Vec<String> = (0..150).map(|i| format!("{SSH_KEY}-{i}")).collect();
    let mut flags = vec![
        "--domain",
        "a.example.com",
        "--email",
        "a@example.com",
        "--dns-provider",
        "none",
    ];
    for key in &keys {
        flags.extend(["--ssh-key", key.as_str()]);
    }
    let output = xtask(&args(&dir.path().join("deploy"), &flags));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("user-data.yaml") && stderr.contains("16384"),
        "{stderr}"
    );
}

#[test]
fn for_image_writes_only_the_small_instance_user_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("deploy");
    let output = xtask(&args(
        &out,
        &[
            "--for-image",
            "--domain",
            "analytics.example.com",
            "--email",
            "admin@example.com",
            "--cf-token",
            TOKEN,
            "--ssh-key",
            SSH_KEY,
        ],
    ));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written: Vec<_> = files_under(&out);
    assert_eq!(
        written,
        [std::path::PathBuf::from("image-user-data.yaml")],
        "only the instance user-data"
    );
    let user_data = read(&out.join("image-user-data.yaml"));
    for wanted in [
        "MM_DOMAINS='analytics.example.com'",
        "MM_EMAIL='admin@example.com'",
        &format!("CF_API_TOKEN='{TOKEN}'"),
        "MALLARD_ADMIN_PASSWORD_HASH='$argon2id$",
        "ssh_authorized_keys:",
        "/usr/local/sbin/mallard-setup",
    ] {
        assert!(user_data.contains(wanted), "no {wanted} in:\n{user_data}");
    }
    // Nothing the image already has: no packages, no bake files.
    assert!(!user_data.contains("packages:"), "{user_data}");
    assert!(!user_data.contains("sshd_config.d"), "{user_data}");
    assert!(user_data.len() < 4096, "{} bytes", user_data.len());
    // A release URL makes no sense for the image path.
    let refused = xtask(&args(
        &out,
        &[
            "--for-image",
            "--domain",
            "a.example.com",
            "--email",
            "a@example.com",
            "--dns-provider",
            "none",
            "--release-url",
            "https://example.com/r",
        ],
    ));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--release-url"));
}

#[test]
fn help_explains_the_options() {
    let output = xtask(&["render".into(), "--help".into()]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--domain",
        "--extra-domain",
        "--email",
        "--dns-provider",
        "--cf-token",
        "--ssh-key",
        "--release-url",
        "--sums",
        "--acme-staging",
        "--internal-ca",
        "--retention-days",
        "--rate-limit",
        "--volume-size",
        "--out",
        "--for-image",
        "MM_CF_TOKEN",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
}
