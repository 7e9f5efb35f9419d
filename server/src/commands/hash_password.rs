//! `mallard-metrics hash-password`: an Argon2id PHC string for MALLARD_ADMIN_PASSWORD_HASH,
//! from a password read on standard input (never from the command line, where `ps` shows it).

use std::io::Read;
use std::process::ExitCode;

use argon2::password_hash::{PasswordHasher, SaltString};

/// Print the Argon2id hash of the password given on standard input (one line).
#[derive(Debug, clap::Args)]
pub struct HashPasswordArgs {}

/// Passwords shorter than this are refused: the hash travels in user-data.
pub const MIN_PASSWORD_LEN: usize = 12;

pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

pub fn run(_: &HashPasswordArgs) -> ExitCode {
    let mut input = String::new();
    if let Err(err) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("error: reading the password from standard input: {err}");
        return ExitCode::FAILURE;
    }
    let password = input.trim_end_matches(['\r', '\n']);
    if password.chars().count() < MIN_PASSWORD_LEN {
        eprintln!("error: the password must have at least {MIN_PASSWORD_LEN} characters");
        return ExitCode::from(2);
    }
    match hash(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: hashing failed: {err}");
            ExitCode::FAILURE
        }
    }
}
