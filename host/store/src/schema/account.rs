//! Accounts: who has a mailbox here.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Internal id, unique for the life of the store; never reused, so a
    /// deleted and re-created account is a new incarnation.
    pub id: u64,
    /// The address, normalised by [`normalize_address`].
    pub address: String,
    /// PHC-format hash (argon2id). The store never sees a plaintext password.
    pub password_hash: String,
    /// Unix seconds.
    pub created: u64,
}

/// Addresses are case-insensitive here: RFC 5321 2.4 lets the local part be
/// case-sensitive, but every deployed mail system treats it otherwise.
pub fn normalize_address(address: &str) -> String {
    address.trim().to_lowercase()
}
