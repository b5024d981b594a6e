//! The delivery queue.

use crate::Result;
use crate::schema::{Committed, Incoming, QueueEntry, TraceWrite};

/// Messages waiting for (re)delivery, ordered by when they are due.
///
/// Work is claimed with a lease (owner, until): a claimed entry is not due
/// again until the lease ends, so two workers (or two nodes) never attempt
/// one entry at once, and an entry whose worker died becomes due again when
/// its lease runs out. Delivery is at least once: an attempt whose commit
/// was lost runs again.
#[async_trait::async_trait]
pub trait Queue: Send + Sync {
    async fn queue_entry(&self, id: u64) -> Result<Option<QueueEntry>>;

    /// Every entry, by id (operator listing).
    async fn queue_entries(&self) -> Result<Vec<QueueEntry>>;

    /// When the earliest entry is due (a lease's end for a claimed one), to
    /// sleep until then instead of polling.
    async fn queue_next_due(&self) -> Result<Option<u64>>;

    /// Claims up to `limit` entries due at or before `now`, earliest first,
    /// leasing each to `owner` until `lease_until`. Claims need not be
    /// durable: a lease lost in a crash only makes its entry due again.
    async fn queue_claim(&self, owner: &str, now: u64, limit: usize, lease_until: u64) -> Result<Vec<QueueEntry>>;

    /// Ticks when another process changed the queue's schedule (a new
    /// entry, a finished attempt, a node that restarted), so a scheduler
    /// sleeping until the next due entry reads the schedule again instead of
    /// polling. `None`: nobody else shares this store (the embedded
    /// backend); the server wakes its own scheduler.
    fn queue_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Extends `owner`'s lease on an entry (a long delivery).
    /// [`crate::StoreError::LeaseLost`] if another owner holds it now.
    async fn queue_renew(&self, owner: &str, id: u64, lease_until: u64) -> Result<()>;

    /// Start-up of `owner`: its leases are dropped (the attempts they
    /// covered died with the previous process), every entry goes back to its
    /// true due time, and entries with nothing left to do are removed.
    /// Returns the number of entries queued.
    async fn queue_recover(&self, owner: &str) -> Result<usize>;

    /// Ends an attempt, atomically and **durable on return**: writes back
    /// `entry` (due again at [`QueueEntry::due`], or removed with its content
    /// reference when nothing is left to do), files its content into the
    /// INBOXes of `file_into`, and accepts `new` messages (the DSNs the
    /// attempt produced) as [`crate::contract::Contents::accept`] would, and
    /// writes `traces` (the attempt's decision-trace records,
    /// [`crate::contract::Traces`]). The lease is cleared.
    /// [`crate::StoreError::NoSuchQueueEntry`] if the entry was removed
    /// meanwhile (nothing is written then).
    async fn queue_commit(
        &self,
        entry: &QueueEntry,
        file_into: &[u64],
        new: Vec<Incoming>,
        traces: Vec<TraceWrite>,
    ) -> Result<Committed>;

    /// Writes back an entry changed outside an attempt (operator commands),
    /// durable on return; removed when nothing is left to do.
    async fn queue_update(&self, entry: &QueueEntry) -> Result<()> {
        self.queue_commit(entry, &[], Vec::new(), Vec::new()).await.map(drop)
    }
}
