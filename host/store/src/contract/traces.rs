//! Decision traces: what each SMTP transaction's plugins answered and what
//! each delivery attempt came to, for `ferrymail trace`.

use crate::Result;

/// Opaque trace records under string keys, each with an expiry.
///
/// Like [`crate::contract::Kv`] writes, trace writes are **visible at once
/// and not awaited for durability**: they become durable with the
/// backend's next commit. The server writes a message's trace just before
/// the commit that accepts the message, so both reach the disk together;
/// a power cut may lose the last moment of traces, never a message.
///
/// Size is bounded by the caller (steps per record) and here: records
/// expire, and [`Traces::trace_sweep`] also trims the oldest records under
/// a prefix down to a count.
#[async_trait::async_trait]
pub trait Traces: Send + Sync {
    /// Stores each `(key, record)` (replacing), until `ttl_secs` from now.
    async fn trace_put(&self, records: &[(String, Vec<u8>)], ttl_secs: u64) -> Result<()>;

    async fn trace_get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Up to `limit` live records whose key starts with `prefix`, in key order.
    async fn trace_scan(&self, prefix: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>>;

    /// Removes expired records, then the first records in key order under
    /// `trim_prefix` beyond `keep` of them; returns how many went.
    async fn trace_sweep(&self, trim_prefix: &str, keep: usize) -> Result<usize>;
}
