//! The host's file set: `cloud-init/manifest.toml` plus the templates that mirror target paths.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use handlebars::Handlebars;
use serde::{Deserialize, Serialize};

/// Folders whose trees mirror the host's filesystem.
pub const TEMPLATE_ROOTS: [&str; 2] = ["cloud-init/files", "caddy/files"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The same on every host: baked into the image.
    Bake,
    /// This host's values: carried by the user-data.
    Instance,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    file: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    path: String,
    mode: String,
    phase: Phase,
    /// Written before packages are installed (apt policy), not after them.
    #[serde(default)]
    before_packages: bool,
}

/// One rendered file, ready to be written on a host.
#[derive(Clone, Debug, Serialize)]
pub struct HostFile {
    pub path: String,
    pub mode: String,
    pub phase: Phase,
    /// Must be in place before the package step (it configures apt itself).
    pub before_packages: bool,
    pub content: String,
}

/// Finds each manifest entry's template, and refuses templates the manifest does not name.
fn sources(root: &Path, manifest: &Manifest) -> anyhow::Result<Vec<(PathBuf, bool)>> {
    let mut found = Vec::new();
    for entry in &manifest.file {
        ensure!(
            entry.path.starts_with('/') && !entry.path.contains(".."),
            "manifest path {:?} must be absolute",
            entry.path
        );
        ensure!(
            matches!(
                entry.mode.as_str(),
                "0644" | "0600" | "0755" | "0700" | "0640"
            ),
            "manifest mode {:?} of {} is not one of 0644 0600 0755 0700 0640",
            entry.mode,
            entry.path
        );
        let relative = entry.path.trim_start_matches('/');
        let candidates: Vec<(PathBuf, bool)> = TEMPLATE_ROOTS
            .iter()
            .flat_map(|dir| {
                let plain = root.join(dir).join(relative);
                let template = root.join(dir).join(format!("{relative}.hbs"));
                [(plain, false), (template, true)]
            })
            .filter(|(path, _)| path.is_file())
            .collect();
        match candidates.as_slice() {
            [one] => found.push(one.clone()),
            [] => bail!("no template for {} under {TEMPLATE_ROOTS:?}", entry.path),
            _ => bail!("{} has more than one template: {candidates:?}", entry.path),
        }
    }
    let named: BTreeSet<&PathBuf> = found.iter().map(|(path, _)| path).collect();
    for dir in TEMPLATE_ROOTS {
        for file in crate::image::recipe::files_under(&root.join(dir))? {
            ensure!(
                named.contains(&file),
                "{} is not listed in cloud-init/manifest.toml",
                file.display()
            );
        }
    }
    Ok(found)
}

/// Renders every file of the manifest with `context`.
pub fn render(
    root: &Path,
    engine: &Handlebars<'_>,
    context: &serde_json::Value,
) -> anyhow::Result<Vec<HostFile>> {
    let manifest_path = root.join("cloud-init/manifest.toml");
    let manifest: Manifest = toml::from_str(
        &std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?,
    )
    .with_context(|| format!("parsing {}", manifest_path.display()))?;
    let sources = sources(root, &manifest)?;
    manifest
        .file
        .iter()
        .zip(sources)
        .map(|(entry, (source, is_template))| {
            let text = std::fs::read_to_string(&source)
                .with_context(|| format!("reading {}", source.display()))?;
            let content = if is_template {
                engine
                    .render_template(&text, context)
                    .with_context(|| format!("rendering {}", source.display()))?
            } else {
                text
            };
            ensure!(
                content.ends_with('\n') && !content.lines().any(|l| l == "MALLARD_EOF"),
                "{} must end with a newline and never contain a MALLARD_EOF line",
                source.display()
            );
            Ok(HostFile {
                path: entry.path.clone(),
                mode: entry.mode.clone(),
                phase: entry.phase,
                before_packages: entry.before_packages,
                content,
            })
        })
        .collect()
}
