//! Passwords: the policy, and argon2id hashing.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// A password that meets the policy: 8 to 128 characters.
pub struct Password(String);

impl Password {
    pub fn parse(value: &str) -> Result<Self, String> {
        let n = value.chars().count();
        if !(8..=128).contains(&n) {
            return Err("must be 8 to 128 characters".into());
        }
        Ok(Self(value.to_owned()))
    }

    /// The argon2id PHC string of this password, with a random salt.
    /// Slow by design (tens of milliseconds): call it off the async runtime.
    pub fn hash(&self) -> String {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(self.0.as_bytes(), &salt)
            .map(|h| h.to_string())
            .expect("argon2id with default parameters hashes any password of the policy's length")
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// True if `candidate` matches the PHC string `hash`.
pub fn verify(candidate: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash of no one's password, verified against when an account does not
/// exist so that a miss costs as long as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| Password("not-a-real-password".into()).hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_verifies() {
        let p = Password::parse("correct horse").expect("valid");
        let h = p.hash();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert!(!verify("x", "not a hash"));
        assert!(Password::parse("short").is_err());
    }
}
