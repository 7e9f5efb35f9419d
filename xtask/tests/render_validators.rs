//! The rendered artifacts checked by the real tools that will read them: cloud-init, shellcheck,
//! systemd-analyze, sshd, caddy. The tools come from Debian's packages (`.ci/run` installs them);
//! a missing tool fails the test, it never skips it.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{CONFIGS, assert_ok, files_under, read, render, tool};

fn yaml(path: &Path) -> serde_norway::Value {
    serde_norway::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn user_data_passes_cloud_init_schema_and_uses_only_known_keys() {
    // cloud-init's schema accepts unknown top-level keys, so a typo would pass it silently:
    // compare the keys with the schema's own list.
    let schema: serde_json::Value = serde_json::from_str(&read(Path::new(
        "/usr/lib/python3/dist-packages/cloudinit/config/schemas/schema-cloud-config-v1.json",
    )))
    .expect("cloud-init's schema JSON");
    let mut known = BTreeSet::new();
    for definition in schema["$defs"].as_object().expect("$defs").values() {
        if let Some(properties) = definition["properties"].as_object() {
            known.extend(properties.keys().cloned());
        }
    }
    assert!(known.contains("write_files") && known.contains("runcmd"));
    for config in CONFIGS {
        let out = render(config);
        for name in ["user-data.yaml", "image-user-data.yaml"] {
            let path = out.path().join(name);
            let text = read(&path);
            assert!(text.starts_with("#cloud-config\n"), "{config}/{name}");
            assert!(
                text.len() <= 16 * 1024,
                "{config}/{name} is {} bytes",
                text.len()
            );
            let output = tool(
                "cloud-init",
                &["schema", "--config-file", path.to_str().unwrap_or_default()],
            );
            assert_ok(&output, &format!("cloud-init schema {config}/{name}"));
            let document = yaml(&path);
            for key in document.as_mapping().expect("a mapping").keys() {
                let key = key.as_str().expect("string keys");
                assert!(
                    known.contains(key),
                    "{config}/{name}: {key} is not a cloud-config key"
                );
            }
        }
    }
}

#[test]
fn user_data_carries_every_host_file_and_no_plaintext_password() {
    for config in CONFIGS {
        let out = render(config);
        let document = yaml(&out.path().join("user-data.yaml"));
        let written: Vec<(String, String, String)> = document["write_files"]
            .as_sequence()
            .expect("write_files")
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().expect("path").to_owned(),
                    f["permissions"].as_str().expect("permissions").to_owned(),
                    common::write_file_content(f),
                )
            })
            .collect();
        let host = out.path().join("host");
        let host_files = files_under(&host);
        assert_eq!(written.len(), host_files.len(), "{config}");
        for (path, mode, content) in &written {
            let on_disk = host.join(path.trim_start_matches('/'));
            assert_eq!(
                &read(&on_disk),
                content,
                "{config}: {path} differs from the host file"
            );
            if path.ends_with(".env") && path.contains("instance") || path.ends_with("caddy.env") {
                assert_eq!(mode, "0600", "{config}: {path} carries a secret");
            }
        }
        let instance = read(&host.join("etc/mallard/instance.env"));
        assert!(
            instance.contains("MALLARD_ADMIN_PASSWORD_HASH='$argon2id$"),
            "{instance}"
        );
        assert!(!read(&out.path().join("user-data.yaml")).contains("MALLARD_ADMIN_PASSWORD="));
        assert_eq!(
            document["runcmd"][0][0].as_str(),
            Some("/usr/local/sbin/mallard-setup")
        );
    }
}

#[test]
fn every_script_passes_shellcheck() {
    for config in CONFIGS {
        let out = render(config);
        let mut scripts = vec![out.path().join("provision.sh")];
        for file in files_under(&out.path().join("host")) {
            let path = out.path().join("host").join(file);
            if read(&path).starts_with("#!") {
                scripts.push(path);
            }
        }
        // Scripts as the user-data carries them, and its runcmd as one script.
        let document = yaml(&out.path().join("user-data.yaml"));
        let extracted = tempfile::tempdir().expect("tempdir");
        for (i, file) in document["write_files"]
            .as_sequence()
            .expect("files")
            .iter()
            .enumerate()
        {
            let content = common::write_file_content(file);
            if content.starts_with("#!") {
                let path = extracted.path().join(format!("embedded-{i}.sh"));
                std::fs::write(&path, content).expect("write");
                scripts.push(path);
            }
        }
        let runcmd: Vec<String> = document["runcmd"]
            .as_sequence()
            .expect("runcmd")
            .iter()
            .map(|step| match step {
                serde_norway::Value::Sequence(argv) => argv
                    .iter()
                    .map(|a| format!("'{}'", a.as_str().expect("string argument")))
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.as_str().expect("string command").to_owned(),
            })
            .collect();
        let runcmd_path = extracted.path().join("runcmd.sh");
        std::fs::write(&runcmd_path, format!("#!/bin/sh\n{}\n", runcmd.join("\n"))).expect("write");
        scripts.push(runcmd_path);
        assert!(scripts.len() >= 6, "{config}: {scripts:?}");
        for script in &scripts {
            let output = tool(
                "shellcheck",
                &["--severity=style", script.to_str().unwrap_or_default()],
            );
            assert_ok(
                &output,
                &format!("shellcheck {config}: {}", script.display()),
            );
        }
    }
}

#[test]
fn units_verify_and_meet_the_exposure_targets() {
    let out = render("cloudflare");
    let units = out.path().join("host/etc/systemd/system");
    // `systemd-analyze verify` resolves dependencies and ExecStart programs: give it a root with
    // this machine's unit tree, stand-in binaries and our units, and take any remark as failure
    // (it reports unknown keys on stderr but still exits 0).
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(root.path().join("lib")).expect("mkdir");
    let lib = root.path().join("lib").display().to_string() + "/";
    assert_ok(
        &tool("cp", &["-r", "/lib/systemd", &lib]),
        "copying the unit tree",
    );
    let bin = root.path().join("usr/local/bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for program in ["mallard-metrics", "caddy"] {
        std::fs::write(bin.join(program), "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(
            bin.join(program),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
    }
    let system = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&system).expect("mkdir");
    for (unit, threshold) in [("mallard-metrics.service", "20"), ("caddy.service", "25")] {
        let path = units.join(unit);
        std::fs::copy(&path, system.join(unit)).expect("copy unit");
        let path = path.to_str().unwrap_or_default();
        let output = tool(
            "systemd-analyze",
            &[
                "security",
                "--offline=yes",
                &format!("--threshold={threshold}"),
                path,
            ],
        );
        assert_ok(
            &output,
            &format!("systemd-analyze security {unit} (threshold {threshold})"),
        );
        let report = String::from_utf8_lossy(&output.stdout);
        let score: f64 = report
            .lines()
            .find_map(|l| l.split("exposure level for ").nth(1))
            .and_then(|rest| rest.split(": ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
        let limit: f64 = threshold.parse::<f64>().expect("threshold") / 10.0;
        assert!(score <= limit, "{unit}: exposure {score} > {limit}");
        let root_arg = format!("--root={}", root.path().display());
        let unit_path = format!("/etc/systemd/system/{unit}");
        let output = tool(
            "systemd-analyze",
            &["verify", "--man=no", &root_arg, &unit_path],
        );
        assert_ok(&output, &format!("systemd-analyze verify {unit}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.trim().is_empty(),
            "systemd-analyze verify {unit}:\n{stderr}"
        );
    }
}

#[test]
fn sshd_applies_every_hardening_setting_over_cloud_inits_drop_in() {
    let out = render("cloudflare");
    let drop_in = read(
        &out.path()
            .join("host/etc/ssh/sshd_config.d/10-mallard-hardening.conf"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let conf_d = dir.path().join("sshd_config.d");
    std::fs::create_dir(&conf_d).expect("mkdir");
    std::fs::write(conf_d.join("10-mallard-hardening.conf"), &drop_in).expect("write");
    // What cloud-init writes when a provider enables password logins: ours must still win.
    std::fs::write(
        conf_d.join("50-cloud-init.conf"),
        "PasswordAuthentication yes\nPermitRootLogin yes\nX11Forwarding yes\n",
    )
    .expect("write");
    let main = dir.path().join("sshd_config");
    std::fs::write(
        &main,
        format!(
            "Include {}/*.conf\nKbdInteractiveAuthentication yes\nUsePAM yes\n",
            conf_d.display()
        ),
    )
    .expect("write");
    let key = dir.path().join("host_key");
    assert_ok(
        &tool(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                key.to_str().unwrap_or_default(),
            ],
        ),
        "ssh-keygen",
    );
    std::fs::create_dir_all("/run/sshd").expect("sshd needs /run/sshd");
    let output = tool(
        "/usr/sbin/sshd",
        &[
            "-T",
            "-f",
            main.to_str().unwrap_or_default(),
            "-h",
            key.to_str().unwrap_or_default(),
        ],
    );
    assert_ok(&output, "sshd -T");
    let effective: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_lowercase)
        .collect();
    let settings: Vec<String> = drop_in
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        })
        .collect();
    assert!(settings.len() >= 8, "{settings:?}");
    for expected in [
        "permitrootlogin no",
        "passwordauthentication no",
        "maxauthtries 3",
        "logingracetime 30",
        "clientaliveinterval 300",
        "allowagentforwarding no",
        "allowtcpforwarding no",
        "x11forwarding no",
    ] {
        assert!(
            settings.contains(&expected.to_string()),
            "the drop-in lacks {expected}"
        );
    }
    for setting in &settings {
        assert!(
            effective.contains(setting),
            "sshd -T does not show {setting}"
        );
    }
}

/// Debian's caddy lacks the Cloudflare module, so the DNS-01 variant is checked in two parts:
/// the module's one line must be exactly `acme_dns cloudflare {env.CF_API_TOKEN}` inside the
/// global options block, and the file without that line must adapt and validate. `caddy fmt`
/// (which needs no modules) checks the whole file's layout.
#[test]
fn caddyfiles_adapt_and_validate() {
    const DNS_LINE: &str = "\tacme_dns cloudflare {env.CF_API_TOKEN}";
    for config in CONFIGS {
        let out = render(config);
        let caddyfile = read(&out.path().join("Caddyfile"));
        let fmt = tool(
            "caddy",
            &[
                "fmt",
                out.path().join("Caddyfile").to_str().unwrap_or_default(),
            ],
        );
        assert_ok(&fmt, "caddy fmt");
        assert_eq!(
            String::from_utf8_lossy(&fmt.stdout),
            caddyfile,
            "{config}: not caddy-fmt formatted"
        );

        let dns_lines: Vec<usize> = caddyfile
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains("acme_dns"))
            .map(|(i, _)| i)
            .collect();
        let global_end = caddyfile
            .lines()
            .position(|l| l == "}")
            .expect("global block");
        let checked = if config == "nodns" {
            assert!(dns_lines.is_empty(), "{config} must use HTTP-01");
            caddyfile.clone()
        } else {
            assert_eq!(dns_lines.len(), 1, "{config}: one acme_dns line");
            let line = caddyfile.lines().nth(dns_lines[0]).unwrap_or_default();
            assert_eq!(line, DNS_LINE);
            assert!(caddyfile.starts_with('#') && dns_lines[0] < global_end);
            caddyfile.replace(&format!("{DNS_LINE}\n"), "")
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("Caddyfile");
        std::fs::write(&file, checked).expect("write");
        let env = [
            ("MM_DOMAINS", "analytics.example.com, stats.example.net"),
            ("MM_EMAIL", "admin@example.com"),
            ("CF_API_TOKEN", "unused"),
            (
                "MM_ACCESS_LOG",
                &*dir.path().join("access.log").display().to_string(),
            ),
            ("XDG_DATA_HOME", &*dir.path().display().to_string()),
            ("XDG_CONFIG_HOME", &*dir.path().display().to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        for verb in ["adapt", "validate"] {
            let output = std::process::Command::new("caddy")
                .args([
                    verb,
                    "--config",
                    file.to_str().unwrap_or_default(),
                    "--adapter",
                    "caddyfile",
                ])
                .envs(env.clone())
                .output()
                .expect("caddy is needed (apt-get install caddy)");
            assert_ok(&output, &format!("caddy {verb} {config}"));
            if verb == "adapt" {
                let json: serde_json::Value =
                    serde_json::from_slice(&output.stdout).expect("adapted JSON");
                let text = json.to_string();
                assert!(
                    text.contains("unix//run/mallard/mallard.sock"),
                    "{config}: upstream"
                );
                assert!(text.contains("/health/ready"), "{config}: health check");
                assert!(text.contains("\"h3\""), "{config}: HTTP/3");
                assert!(
                    text.contains("\"Strict-Transport-Security\""),
                    "{config}: headers"
                );
                assert_eq!(
                    text.contains("acme-staging"),
                    config == "nodns",
                    "{config}: staging"
                );
                let client_ip =
                    &json["logging"]["logs"]["log0"]["encoder"]["fields"]["request>client_ip"];
                let expected = if config == "multidomain" {
                    "ip_mask"
                } else {
                    "delete"
                };
                assert_eq!(
                    client_ip["filter"].as_str(),
                    Some(expected),
                    "{config}: client IPs"
                );
            }
        }
    }
}

#[test]
fn compose_file_has_the_container_posture() {
    let out = render("cloudflare");
    let compose = yaml(&out.path().join("docker-compose.production.yml"));
    let services = compose["services"].as_mapping().expect("services");
    assert_eq!(services.len(), 2);
    for (name, service) in services {
        let name = name.as_str().expect("name");
        assert_eq!(
            service["read_only"].as_bool(),
            Some(true),
            "{name}: read-only root"
        );
        assert_eq!(
            service["cap_drop"][0].as_str(),
            Some("ALL"),
            "{name}: capabilities"
        );
        assert_eq!(
            service["security_opt"][0].as_str(),
            Some("no-new-privileges:true"),
            "{name}"
        );
        assert!(
            service["healthcheck"]["test"].as_sequence().is_some(),
            "{name}: healthcheck"
        );
        assert!(
            service["mem_limit"].as_str().is_some(),
            "{name}: memory limit"
        );
        assert_eq!(
            service["logging"]["options"]["max-size"].as_str(),
            Some("10m"),
            "{name}"
        );
        let networks = service["networks"].as_sequence().expect("networks");
        assert!(
            networks.iter().any(|n| n.as_str() == Some("proxy")),
            "{name}"
        );
        if name == "mallard" {
            assert!(service.get("ports").is_none(), "only Caddy publishes ports");
            assert_eq!(networks.len(), 1, "Mallard is on the internal network only");
        } else {
            let ports: Vec<&str> = service["ports"]
                .as_sequence()
                .expect("ports")
                .iter()
                .filter_map(|p| p.as_str())
                .collect();
            assert_eq!(ports, ["80:80", "443:443", "443:443/udp"]);
            assert_eq!(service["cap_add"][0].as_str(), Some("NET_BIND_SERVICE"));
        }
    }
    assert_eq!(
        compose["networks"]["proxy"]["internal"].as_bool(),
        Some(true)
    );
}
