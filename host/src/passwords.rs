//! Password hashing: argon2id with the crate's defaults (RFC 9106's second
//! recommended option), PHC strings in the store.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};

pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

/// Constant-time verification; a malformed stored hash never verifies.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Verifies on the blocking pool: argon2 is deliberately slow (tens of ms)
/// and must not stall the async workers serving other sessions.
pub async fn verify_async(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || verify(&password, &phc)).await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn roundtrip() {
        let h = super::hash("s3cret pass").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("s3cret pass", &h));
        assert!(!super::verify("s3cret", &h));
        assert!(!super::verify("x", "not a hash"));
    }
}
