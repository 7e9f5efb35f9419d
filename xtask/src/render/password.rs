//! The admin password: generated here, shown once, and only its Argon2id hash leaves this machine.

use anyhow::{Context, ensure};
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use rand::Rng;

/// 24 characters from 62: about 143 bits, and easy to paste.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Argon2id with the crate's defaults (the OWASP-recommended m=19 MiB, t=2, p=1).
pub fn hash(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the admin password: {e}"))?
        .to_string())
}

/// Accepts a given hash only when it is an Argon2id PHC string.
pub fn check_hash(hash: &str) -> anyhow::Result<String> {
    let parsed = PasswordHash::new(hash)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context(
            "--admin-password-hash is not a PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)",
        )?;
    ensure!(
        parsed.algorithm.as_str() == "argon2id",
        "--admin-password-hash: expected an argon2id hash, got {}",
        parsed.algorithm
    );
    ensure!(
        !hash.contains('\''),
        "--admin-password-hash must not contain quotes"
    );
    Ok(hash.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[test]
    fn generated_password_verifies_against_its_hash() {
        let password = generate();
        assert_eq!(password.len(), 24);
        assert_ne!(password, generate());
        let hash = hash(&password).expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$"));
        let parsed = PasswordHash::new(&hash).expect("parse");
        assert!(
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        );
        assert!(
            argon2::Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
        assert!(check_hash(&hash).is_ok());
        assert!(check_hash("plaintext").is_err());
    }
}
