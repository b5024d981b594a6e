//! Decision traces: what each SMTP transaction's plugins answered and what
//! each delivery attempt came to, for `ferrymail trace`.

use crate::Result;
use crate::schema::TraceWrite;

/// Opaque trace records under string keys, each with an expiry.
///
/// A record that describes a message or a delivery attempt is not written
/// through this trait: it rides on the change itself
/// ([`crate::schema::Incoming::traces`], [`crate::contract::Queue::queue_commit`]),
/// so it is durable exactly when the message or the attempt is, at no
/// write of its own.
///
/// Records with no change to ride on (transactions refused before a
/// message existed) go through [`Traces::trace_put`], which never waits:
/// they are readable at once and become durable with the backend's next
/// commit (on the embedded backend within about a second). **They may be
/// lost in a crash**, and a backend may drop them when too many wait (a
/// flood of refusals); a trace is never worth a delay or a message.
///
/// Size is bounded by the caller (steps per record) and here: records
/// expire, and [`Traces::trace_sweep`] also trims the oldest records under
/// a prefix down to a count.
#[async_trait::async_trait]
pub trait Traces: Send + Sync {
    /// Keeps each record (replacing), until its TTL from now; see above.
    fn trace_put(&self, records: &[TraceWrite]);

    async fn trace_get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Up to `limit` live records whose key starts with `prefix`, in key order.
    async fn trace_scan(&self, prefix: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>>;

    /// Removes expired records, then the first records in key order under
    /// `trim_prefix` beyond `keep` of them; returns how many went.
    async fn trace_sweep(&self, trim_prefix: &str, keep: usize) -> Result<usize>;
}
