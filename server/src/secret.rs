//! The server secret the daily visitor salt derives from: configured, or generated once and kept
//! in `<data>/.secret` readable by the owner only.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub const SECRET_FILE: &str = ".secret";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path} holds a secret shorter than 32 bytes; remove it or set MALLARD_SECRET")]
    TooShort { path: String },
}

/// Returns the configured secret, else the persisted one, else a new one it persists (0600).
pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> Result<Vec<u8>, SecretError> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join(SECRET_FILE);
    let fail = |e: std::io::Error| SecretError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = text.trim();
            if secret.len() < 32 {
                return Err(SecretError::TooShort {
                    path: path.display().to_string(),
                });
            }
            let mode = std::fs::metadata(&path).map_err(fail)?.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(fail)?;
            }
            Ok(secret.as_bytes().to_vec())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let secret = hex::encode(rand::random::<[u8; 32]>());
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(fail)?;
            file.write_all(secret.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(fail)?;
            tracing::warn!(
                file = %path.display(),
                "MALLARD_SECRET is not set; generated one and saved it (keep it with your backups: \
                 visitor counts of the current day depend on it)"
            );
            Ok(secret.into_bytes())
        }
        Err(err) => Err(fail(err)),
    }
}
