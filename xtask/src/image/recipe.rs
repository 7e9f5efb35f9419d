//! The image recipe (`images/recipe.toml`, `images/stock.toml`) and its hash.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub name: String,
    pub suite: String,
    pub variant: String,
    pub mirror: String,
    pub security_mirror: String,
    pub target_mirror: String,
    pub target_security_mirror: String,
    pub components: Vec<String>,
    pub size: String,
    pub files: Vec<String>,
    pub phases: Vec<String>,
    pub binaries: bool,
    pub packages: Vec<String>,
}

/// A recipe as read, with where it came from and the hash of everything it names.
pub struct Loaded {
    pub recipe: Recipe,
    pub path: PathBuf,
    /// sha256 over the recipe file and every file of its `files` folders (path and content).
    pub hash: String,
}

pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let recipe: Recipe =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    ensure!(
        recipe
            .phases
            .iter()
            .all(|phase| phase == "bake" || phase == "instance"),
        "{}: phases may only name \"bake\" (\"instance\" files are per server)",
        path.display()
    );
    ensure!(
        !recipe.phases.iter().any(|phase| phase == "instance"),
        "{}: instance files carry this server's values and secrets: they are never baked",
        path.display()
    );
    ensure!(
        !recipe.name.is_empty()
            && recipe
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "{}: name must be letters, digits, '-', '_' and '.'",
        path.display()
    );
    size_bytes(&recipe.size).with_context(|| format!("{}: size", path.display()))?;
    let base = path.parent().context("recipe path has a folder")?;
    let mut hasher = Sha256::new();
    hasher.update(text.as_bytes());
    for folder in &recipe.files {
        for file in files_under(&base.join(folder))? {
            let relative = file.strip_prefix(base).unwrap_or(&file);
            hasher.update(relative.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?,
            );
        }
    }
    Ok(Loaded {
        recipe,
        path: path.to_path_buf(),
        hash: format!("{:x}", hasher.finalize()),
    })
}

/// Every regular file under `dir`, sorted (so the hash does not depend on directory order).
pub fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// "3G", "512M", "3072K" → bytes.
pub fn size_bytes(text: &str) -> anyhow::Result<u64> {
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    let factor: u64 = match unit {
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => anyhow::bail!("{text:?}: expected a size such as 3G or 2048M"),
    };
    let number: u64 = digits
        .parse()
        .with_context(|| format!("{text:?}: expected a size such as 3G or 2048M"))?;
    ensure!(number > 0, "{text:?}: the size must not be zero");
    Ok(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size_bytes("3G").expect("3G"), 3 << 30);
        assert_eq!(size_bytes("512M").expect("512M"), 512 << 20);
        assert!(size_bytes("3").is_err());
        assert!(size_bytes("0G").is_err());
        assert!(size_bytes("G").is_err());
    }

    #[test]
    fn the_shipped_recipes_load() {
        let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images");
        for name in ["recipe.toml", "stock.toml"] {
            let loaded = load(&images.join(name)).expect(name);
            assert_eq!(loaded.hash.len(), 64);
            assert!(loaded.recipe.packages.contains(&"cloud-init".to_owned()));
            assert!(
                loaded
                    .recipe
                    .packages
                    .contains(&"linux-image-amd64".to_owned())
            );
        }
    }
}
