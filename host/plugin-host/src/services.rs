//! What the server provides to plugins: the capabilities behind the
//! `kv`, `dns` and `directory` imports. The server implements this over its
//! store and resolver; tests use [`crate::testing::MemoryHost`].

use async_trait::async_trait;
use std::net::IpAddr;
use std::time::Duration;

/// A capability call that failed. Plugins see the text (never a panic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The look-up or store gave up waiting.
    #[error("timed out")]
    Timeout,
    /// Anything else, described for the plugin's log.
    #[error("{0}")]
    Failed(String),
}

/// Services the server offers to plugins.
///
/// Contract: every method returns in bounded time (the runtime also cuts
/// each call at `sandbox.host_call_timeout`), never panics, and is safe to
/// call concurrently. Key-value calls take a namespace the runtime builds
/// from (tenant, plugin): implementations keep namespaces strictly apart and
/// never interpret them.
#[async_trait]
pub trait HostServices: Send + Sync + 'static {
    /// An account with this address exists (case-insensitive).
    async fn account_exists(&self, address: &str) -> Result<bool, ServiceError>;

    /// The password is right for the account. Hashing is slow by design:
    /// do it off the async threads.
    async fn verify_password(&self, address: &str, password: &str) -> Result<bool, ServiceError>;

    /// The server delivers this domain locally (`local_domains`). Tenant
    /// domains count as local without being listed here.
    fn is_local_domain(&self, domain: &str) -> bool;

    /// The client address is in `relay_networks`.
    fn client_may_relay(&self, ip: IpAddr) -> bool;

    /// The value under `key`, unless absent or expired.
    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, ServiceError>;

    /// Store `value`; it expires after `ttl` when given.
    async fn kv_set(&self, namespace: &str, key: &str, value: &[u8], ttl: Option<Duration>)
    -> Result<(), ServiceError>;

    /// Add `delta` to the i64 counter at `key` (absent or expired counts as
    /// 0, a non-counter value is an error) and return the new value; `ttl`
    /// applies only when this call creates the entry. Atomic per key.
    async fn kv_incr(&self, namespace: &str, key: &str, delta: i64, ttl: Option<Duration>)
    -> Result<i64, ServiceError>;

    /// Remove the entry; absent is fine.
    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), ServiceError>;

    /// TXT records, each record's strings concatenated. NXDOMAIN and
    /// no-data are empty lists, not errors.
    async fn dns_txt(&self, name: &str) -> Result<Vec<String>, ServiceError>;
    /// A records (same empty-list rule).
    async fn dns_a(&self, name: &str) -> Result<Vec<IpAddr>, ServiceError>;
    /// AAAA records (same empty-list rule).
    async fn dns_aaaa(&self, name: &str) -> Result<Vec<IpAddr>, ServiceError>;
    /// MX records as (preference, exchange) (same empty-list rule).
    async fn dns_mx(&self, name: &str) -> Result<Vec<(u16, String)>, ServiceError>;
}
