//! Password hashing with argon2id. Hashing is slow on purpose: call these from `web::block`
//! or `spawn_blocking`, never on an async worker.

use std::sync::LazyLock;

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use rand::{Rng, distr::Alphanumeric};

/// Longer passwords are refused before argon2 runs, so nobody can make the server hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The shortest password accepted when one is set.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Verified in place of a real hash when the email is unknown, so both cases take as long.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash("not a real password, only for timing").expect("hashing a constant"));

/// The argon2id PHC string of `password`, with a fresh random salt (OWASP's parameters).
pub fn hash(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Whether `password` matches `hash`. With no hash (unknown user, SSO-only user) it still spends
/// the time of one verification, then says no.
pub fn verify(password: &str, hash: Option<&str>) -> bool {
    let (phc, real) = match hash {
        Some(h) => (h, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

/// Why a new password was refused.
pub fn check_new(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        ))
    } else if password.len() > MAX_PASSWORD_BYTES {
        Err(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes"
        ))
    } else {
        Ok(())
    }
}

/// A random 20-character password (about 119 bits).
pub fn generate() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&h)));
        assert!(!verify("wrong horse battery", Some(&h)));
    }

    #[test]
    fn no_hash_never_verifies() {
        assert!(!verify("not a real password, only for timing", None));
        assert!(!verify("anything", Some("not a phc string")));
    }

    #[test]
    fn new_passwords_are_bounded() {
        assert!(check_new("short").is_err());
        assert!(check_new(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(check_new(&generate()).is_ok());
        assert_ne!(generate(), generate());
    }
}
