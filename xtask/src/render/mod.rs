//! `cargo xtask render`: every deployment artifact from one set of templates and one typed config.

mod embedded;
mod files;
pub(crate) mod password;
pub mod settings;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use handlebars::{Handlebars, handlebars_helper};
use serde_json::json;

pub use files::{HostFile, Phase};
use settings::DnsProvider;

/// What a stock host installs before the instance phase runs.
const PACKAGES: &[&str] = &[
    "ca-certificates",
    "cron",
    "cryptsetup",
    "curl",
    "fail2ban",
    "logrotate",
    "openssl",
    "python3-systemd",
    "rsync",
    "ufw",
    "unattended-upgrades",
];

/// The limit most providers (AWS among them) put on user-data.
pub const USER_DATA_LIMIT: usize = 16 * 1024;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub settings: settings::Settings,
    /// Folder to write into (created mode 0700: some outputs carry the DNS token).
    #[arg(long, default_value = "mallard-deploy", value_name = "DIR")]
    pub out: PathBuf,
    /// Write only image-user-data.yaml: the small instance user-data for a server booted from
    /// the image of `cargo xtask image` (domains, e-mail, DNS token, SSH keys, password hash).
    #[arg(long, conflicts_with_all = ["release_url", "sums"])]
    pub for_image: bool,
}

handlebars_helper!(indent: |text: str, width: u64| {
    let pad = " ".repeat(usize::try_from(width).unwrap_or(0));
    text.lines()
        .map(|line| if line.is_empty() { String::new() } else { format!("{pad}{line}") })
        .collect::<Vec<_>>()
        .join("\n")
});
handlebars_helper!(to_json: |value: Json| value.to_string());

fn engine() -> Handlebars<'static> {
    let mut engine = Handlebars::new();
    engine.set_strict_mode(true);
    engine.register_escape_fn(handlebars::no_escape);
    engine.register_helper("indent", Box::new(indent));
    engine.register_helper("json", Box::new(to_json));
    engine
}

/// Everything the templates may refer to.
fn context(
    args: &settings::Settings,
    hash: &str,
    sums: Option<&Path>,
) -> anyhow::Result<serde_json::Value> {
    let release = match &args.release_url {
        Some(url) => {
            let sums = sums.context(
                "--release-url needs --sums FILE (the release's SHA256SUMS; `cargo xtask dist` \
                 writes one) so the binaries can be verified",
            )?;
            Some(settings::read_release(url, sums)?)
        }
        None => None,
    };
    let ssh_keys = args
        .ssh_keys
        .iter()
        .map(|key| settings::read_ssh_key(key))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION_MAJOR").to_owned() + "." + env!("CARGO_PKG_VERSION_MINOR") + "." + env!("CARGO_PKG_VERSION_PATCH"),
        "domain": args.domain,
        "extra_domains": args.extra_domains.join(" "),
        "domains": args.domains().join(", "),
        "email": args.email,
        "cloudflare": args.dns_provider == DnsProvider::Cloudflare,
        "cf_token": args.cf_token,
        "internal_ca": args.internal_ca,
        "acme_staging": args.acme_staging,
        "mask_client_ips": args.mask_client_ips,
        "retention_days": args.retention_days,
        "rate_limit": args.rate_limit,
        "volume_size": args.volume_size,
        "backup_keep": args.backup_keep,
        "geoip_db": args.geoip_db,
        // Compose mounts the data folder at /data: the same file seen from the container.
        "geoip_container_path": args
            .geoip_db
            .as_deref()
            .and_then(|path| path.strip_prefix("/srv/mallard/data/"))
            .map(|rest| format!("/data/{rest}")),
        "release": release,
        "admin_password_hash": hash,
        "ssh_keys": ssh_keys,
        "packages": PACKAGES,
    }))
}

/// The rendered artifacts, before they are written.
pub struct Rendered {
    pub host_files: Vec<HostFile>,
    /// (file name in the output folder, content, mode)
    pub outputs: Vec<(String, String, u32)>,
}

pub fn render(
    root: &Path,
    args: &settings::Settings,
    hash: &str,
    sums: Option<&Path>,
) -> anyhow::Result<Rendered> {
    args.validate()?;
    let engine = engine();
    let mut context = context(args, hash, sums)?;
    let host_files = files::render(root, &engine, &context)?;

    // provision.sh fills the instance values in on the host, from prompts or MM_* variables.
    context["domains"] = json!("@MM_DOMAINS@");
    context["email"] = json!("@MM_EMAIL@");
    context["cf_token"] = json!("@CF_API_TOKEN@");
    let placeholders = files::render(root, &engine, &context)?;
    context["domains"] = json!(args.domains().join(", "));
    context["email"] = json!(args.email);
    context["cf_token"] = json!(args.cf_token);

    let template = |name: &str| -> anyhow::Result<String> {
        let path = root.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    let phase = |files: &[HostFile], phase: Phase| -> Vec<HostFile> {
        files.iter().filter(|f| f.phase == phase).cloned().collect()
    };

    let user_data = |files: Vec<HostFile>, full: bool| -> anyhow::Result<String> {
        let mut ctx = context.clone();
        ctx["files"] = json!(
            files
                .iter()
                .map(embedded::for_user_data)
                .collect::<anyhow::Result<Vec<_>>>()?
        );
        ctx["full"] = json!(full);
        engine
            .render_template(&template("cloud-init/user-data.yaml.hbs")?, &ctx)
            .context("rendering cloud-init/user-data.yaml.hbs")
    };
    let full = user_data(host_files.clone(), true)?;
    let image = user_data(phase(&host_files, Phase::Instance), false)?;
    for (name, text) in [("user-data.yaml", &full), ("image-user-data.yaml", &image)] {
        ensure!(
            text.len() <= USER_DATA_LIMIT,
            "{name} is {} bytes, over the {USER_DATA_LIMIT}-byte user-data limit of most providers",
            text.len()
        );
    }

    let mut ctx = context.clone();
    ctx["files"] = json!(phase(&host_files, Phase::Bake));
    ctx["instance_files"] = json!(phase(&placeholders, Phase::Instance));
    let provision = engine
        .render_template(&template("cloud-init/provision.sh.hbs")?, &ctx)
        .context("rendering cloud-init/provision.sh.hbs")?;
    let compose = engine
        .render_template(
            &template("images/docker/docker-compose.production.yml.hbs")?,
            &context,
        )
        .context("rendering images/docker/docker-compose.production.yml.hbs")?;
    let caddyfile = host_files
        .iter()
        .find(|f| f.path == "/etc/caddy/Caddyfile")
        .context("the manifest lists no /etc/caddy/Caddyfile")?
        .content
        .clone();

    Ok(Rendered {
        host_files,
        outputs: vec![
            ("user-data.yaml".into(), full, 0o600),
            ("image-user-data.yaml".into(), image, 0o600),
            ("provision.sh".into(), provision, 0o700),
            ("Caddyfile".into(), caddyfile, 0o644),
            ("docker-compose.production.yml".into(), compose, 0o644),
        ],
    })
}

fn write(path: &Path, content: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    // Private while it is written (an older file may have been wider): a secret is never
    // readable by others, even briefly.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(content.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

pub fn run(args: &Args, root: &Path) -> anyhow::Result<()> {
    let settings = &args.settings;
    let (hash, password) = match &settings.admin_password_hash {
        Some(hash) => (password::check_hash(hash)?, None),
        None => {
            let password = password::generate();
            (password::hash(&password)?, Some(password))
        }
    };
    let default_sums = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("dist/SHA256SUMS");
    let sums = settings
        .sums
        .clone()
        .or_else(|| default_sums.is_file().then_some(default_sums));
    let rendered = render(root, settings, &hash, sums.as_deref())?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    std::fs::set_permissions(&args.out, std::fs::Permissions::from_mode(0o700))?;
    let host_files = if args.for_image {
        &[][..]
    } else {
        &rendered.host_files[..]
    };
    for file in host_files {
        let mode = u32::from_str_radix(&file.mode, 8)?;
        write(
            &args
                .out
                .join("host")
                .join(file.path.trim_start_matches('/')),
            &file.content,
            mode,
        )?;
    }
    for (name, content, mode) in &rendered.outputs {
        if args.for_image && name != "image-user-data.yaml" {
            continue;
        }
        write(&args.out.join(name), content, *mode)?;
        println!(
            "wrote {:>6} bytes  {}",
            content.len(),
            args.out.join(name).display()
        );
    }
    if !args.for_image {
        println!(
            "wrote {} host files under {}",
            rendered.host_files.len(),
            args.out.join("host").display()
        );
    }
    if settings.release_url.is_none() && !args.for_image {
        eprintln!(
            "note: no --release-url: user-data.yaml and provision.sh expect mallard-metrics and \
             caddy in /usr/local/bin already (the image path). For a stock host, pass \
             --release-url URL and --sums SHA256SUMS."
        );
    }
    if settings.dns_provider == DnsProvider::Cloudflare {
        eprintln!(
            "note: DNS-01 needs the custom Caddy with the Cloudflare module (cargo xtask caddy)."
        );
    }
    if args.for_image {
        eprintln!(
            "note: image-user-data.yaml only: the image must have been built with the same \
             --dns-provider (its Caddyfile is baked)."
        );
    }
    if let Some(password) = password {
        println!();
        println!("Admin password (shown once; only its Argon2id hash was written):");
        println!("    {password}");
    }
    Ok(())
}
