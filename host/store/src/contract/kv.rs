//! The plugins' key-value data.

use crate::Result;

/// Small values for plugins (greylisting, rate limits), in namespaces the
/// caller builds from (tenant, plugin): a namespace is opaque bytes and
/// namespaces never see each other's keys, whatever bytes they contain.
///
/// Expiry is in whole seconds; an expired key reads as absent and may be
/// removed at any time ([`Kv::kv_sweep`]).
///
/// Writes are **visible at once and not awaited for durability**: they are
/// made durable with the backend's next commit (within a second or so on
/// the embedded backend, which never spends a disk flush on a kv write
/// alone). A power cut may lose the last moment of kv writes, never
/// half-write one. A plugin's counter that must survive everything is not
/// what this is for.
#[async_trait::async_trait]
pub trait Kv: Send + Sync {
    async fn kv_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// `ttl_secs` of `None` keeps the value until deleted.
    async fn kv_set(&self, namespace: &str, key: &[u8], value: &[u8], ttl_secs: Option<u64>) -> Result<()>;

    async fn kv_delete(&self, namespace: &str, key: &[u8]) -> Result<()>;

    /// Adds `delta` to a counter atomically (concurrent calls never lose an
    /// increment) and returns the new value. A counter is an 8-byte
    /// little-endian i64 (what a plugin reads back with `kv_get`). An
    /// expired or missing counter starts from zero with a fresh TTL; a live
    /// one keeps its expiry (a fixed window, as rate limits want).
    /// [`crate::StoreError::NotACounter`] for a live value of another shape,
    /// which stays unchanged.
    async fn kv_incr(&self, namespace: &str, key: &[u8], delta: i64, ttl_secs: Option<u64>) -> Result<i64>;

    /// Removes expired keys among at most `limit` keys, continuing after
    /// where the previous call stopped and starting over once it reached
    /// the end; returns how many went. The server calls it every few
    /// seconds, so each call's work is bounded whatever the store holds,
    /// and it never holds up other changes while it runs.
    async fn kv_sweep(&self, limit: usize) -> Result<usize>;
}
