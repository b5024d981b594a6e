//! Accounts.

use crate::Result;
use crate::schema::Account;

/// Who has mailboxes here. Addresses are matched after
/// [`crate::schema::normalize_address`]; passwords arrive already hashed.
#[async_trait::async_trait]
pub trait Accounts: Send + Sync {
    /// Creates the account with its INBOX (id [`crate::schema::INBOX_ID`])
    /// and the special-use folders of
    /// [`crate::schema::SpecialUse::DEFAULT_FOLDERS`], all subscribed.
    /// Durable on return. [`crate::StoreError::AccountExists`] if taken.
    async fn add_account(&self, address: &str, password_hash: &str) -> Result<Account>;

    async fn account(&self, address: &str) -> Result<Option<Account>>;

    async fn account_by_id(&self, id: u64) -> Result<Option<Account>>;

    /// Every account, by address.
    async fn accounts(&self) -> Result<Vec<Account>>;

    /// Durable on return. [`crate::StoreError::NoSuchAccount`] if absent.
    async fn set_password(&self, address: &str, password_hash: &str) -> Result<()>;

    /// Removes the account, its mailboxes, subscriptions and mail (contents
    /// nobody else references are freed). Durable on return. Queue entries
    /// routed to it stay and fail at delivery (the sender gets a bounce).
    async fn delete_account(&self, address: &str) -> Result<()>;
}
