//! Password hashing: argon2id with the crate's defaults (RFC 9106's second
//! recommended option), PHC strings in the store.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use std::sync::OnceLock;

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

/// A hash with this build's parameters that no password matches, made once.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let secret = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(secret.as_str().as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

/// The answer for an account that does not exist, after the same argon2
/// work as a real check: an unknown name must not answer faster than a
/// known one with a wrong password, or timing tells which accounts exist
/// (issue 16 item 5: 1.002 s against 1.076 s over POP3).
pub async fn verify_unknown_async(password: String) -> bool {
    let _ = tokio::task::spawn_blocking(move || verify(&password, dummy_hash())).await;
    false
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

    /// The dummy is a real hash of this build's parameters, so checking
    /// against it costs what a real check costs.
    #[test]
    fn the_dummy_costs_what_a_real_check_costs() {
        let real = super::hash("pw").unwrap();
        let dummy = super::dummy_hash();
        let params = |phc: &str| phc.rsplitn(3, '$').nth(2).unwrap().to_string();
        assert_eq!(params(dummy), params(&real));
        assert!(!super::verify("", dummy));
    }
}
