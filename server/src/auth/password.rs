//! The admin password, only ever as an Argon2id PHC string: from the configuration
//! (`MALLARD_ADMIN_PASSWORD_HASH`, or `MALLARD_ADMIN_PASSWORD` hashed at start-up), else from
//! `<data>/.admin-password`, written once by the first-run setup.
//!
//! Invariant: the file is written (mode 0600, synced, renamed into place) only while no
//! password is configured anywhere, and never replaced by the server.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use parking_lot::RwLock;

pub use crate::commands::hash_password::MIN_PASSWORD_LEN;

pub const PASSWORD_FILE: &str = ".admin-password";
/// Longer passwords are refused before hashing (Argon2 would accept them; nobody types them).
pub const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error(
        "{path} does not hold an Argon2id hash ({reason}); remove it to choose the password again"
    )]
    BadFile { path: String, reason: String },
    #[error("an admin password is already set")]
    AlreadySet,
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Checks that `phc` is an Argon2id PHC string with a salt, a hash and valid parameters.
pub fn check_phc(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc).map_err(|e| format!("not a PHC string: {e}"))?;
    if hash.algorithm.as_str() != "argon2id" {
        return Err(format!("the algorithm is {}, not argon2id", hash.algorithm));
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("the salt or the hash is missing".into());
    }
    argon2::Params::try_from(&hash).map_err(|e| format!("bad Argon2 parameters: {e}"))?;
    Ok(())
}

/// Why a candidate password cannot be chosen, if it cannot (the error names `password`).
pub fn check_new(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if chars > MAX_PASSWORD_LEN {
        return Err(format!(
            "the password must have at most {MAX_PASSWORD_LEN} characters"
        ));
    }
    Ok(())
}

/// True when `password` matches the PHC string. Slow on purpose: call it off the async threads.
pub fn verify_blocking(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

pub struct AdminPassword {
    hash: RwLock<Option<Arc<str>>>,
    file: PathBuf,
    /// Serialises first-run setups.
    setup: tokio::sync::Mutex<()>,
}

impl AdminPassword {
    /// The configured hash, else the one in `<data_dir>/.admin-password`, else none (setup).
    pub fn load(configured: Option<&str>, data_dir: &Path) -> Result<Self, PasswordError> {
        let file = data_dir.join(PASSWORD_FILE);
        let io = |e: std::io::Error| PasswordError::Io {
            path: file.display().to_string(),
            message: e.to_string(),
        };
        let hash = match configured {
            Some(hash) => {
                if file.exists() {
                    tracing::info!(file = %file.display(), "the configured admin password wins over the one chosen at setup");
                }
                Some(hash.to_string())
            }
            None => match std::fs::read_to_string(&file) {
                Ok(text) => {
                    let hash = text.trim();
                    check_phc(hash).map_err(|reason| PasswordError::BadFile {
                        path: file.display().to_string(),
                        reason,
                    })?;
                    Some(hash.to_string())
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io(e)),
            },
        };
        if hash.is_none() {
            tracing::warn!(
                "no admin password is set: the first visitor of / chooses it; set MALLARD_ADMIN_PASSWORD_HASH to close that door"
            );
        }
        Ok(Self {
            hash: RwLock::new(hash.map(Arc::from)),
            file,
            setup: tokio::sync::Mutex::new(()),
        })
    }

    /// The current hash; `None` while setup is required.
    pub fn current(&self) -> Option<Arc<str>> {
        self.hash.read().clone()
    }

    pub fn is_set(&self) -> bool {
        self.hash.read().is_some()
    }

    /// First-run setup: hashes `password` and persists it. Refused once a password is set.
    pub async fn setup(&self, password: String) -> Result<(), PasswordError> {
        let _one_at_a_time = self.setup.lock().await;
        if self.is_set() {
            return Err(PasswordError::AlreadySet);
        }
        let file = self.file.clone();
        let hash = tokio::task::spawn_blocking(move || {
            let hash =
                crate::commands::hash_password::hash(&password).map_err(PasswordError::Hash)?;
            write_new(&file, &hash)?;
            Ok::<_, PasswordError>(hash)
        })
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))??;
        *self.hash.write() = Some(Arc::from(hash));
        tracing::info!(file = %self.file.display(), "admin password set");
        Ok(())
    }
}

/// Writes `hash` to `path` atomically: a 0600 temporary file, synced, renamed, folder synced.
fn write_new(path: &Path, hash: &str) -> Result<(), PasswordError> {
    let io = |p: &Path, e: std::io::Error| PasswordError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    if path.exists() {
        return Err(PasswordError::AlreadySet);
    }
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|e| io(&temporary, e))?;
    file.write_all(format!("{hash}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io(&temporary, e))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(|e| io(path, e))?;
    if let Some(folder) = path.parent() {
        std::fs::File::open(folder)
            .and_then(|f| f.sync_all())
            .map_err(|e| io(folder, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_argon2id_phc_strings_pass() {
        let good = crate::commands::hash_password::hash("correct horse battery").expect("hash");
        assert_eq!(check_phc(&good), Ok(()));
        assert!(verify_blocking(&good, "correct horse battery"));
        assert!(!verify_blocking(&good, "wrong horse battery"));
        let argon2i = good.replacen("$argon2id$", "$argon2i$", 1);
        assert!(check_phc(&argon2i).is_err());
        assert!(check_phc("correct horse battery").is_err());
        assert!(check_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ").is_err());
    }

    #[test]
    fn new_passwords_need_twelve_characters() {
        assert!(check_new("elevenchars").is_err());
        assert!(check_new("twelve chars").is_ok());
        assert!(check_new("ünïcödé-12ch").is_ok(), "characters, not bytes");
    }
}
