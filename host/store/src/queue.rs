//! The delivery queue: messages waiting for (re)delivery, with per-recipient
//! state and a schedule ordered by due time.
//!
//! # Contract
//! - An entry's `next_attempt` is where it sits in the `schedule` tree:
//!   normally [`QueueEntry::due`], or a lease time while an attempt is in
//!   flight ([`Store::queue_claim`]), so a busy entry is not claimed twice
//!   and the scheduler never spins on it.
//! - Leases are not durable promises: [`Store::queue_recover`] (at start-up)
//!   puts every entry back at its true due time, so work in flight at a
//!   crash is tried again.
//! - [`Store::queue_commit`] applies an attempt's outcome, its local
//!   filings and the DSNs it produced in one transaction: a crash never
//!   leaves a delivery recorded without its bounce, or the reverse.

use crate::mail::{AcceptTrees, Accepted, Incoming, TxResult, accept_in, file_in, release_blob};
use crate::schema;
use crate::{Result, Store, StoreError};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientState {
    /// Not yet tried.
    Pending,
    Delivered,
    /// Tried and temporarily failed; `last_reply` says why.
    Deferred,
    /// Permanently failed; a bounce is due unless `notified`.
    Failed,
}

/// Where a queued recipient goes, as decided by the route hook.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QueuedRoute {
    Local { account: String },
    Relay { host: String, port: u16 },
    Mx { domain: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecipient {
    pub address: String,
    pub route: QueuedRoute,
    pub state: RecipientState,
    pub attempts: u32,
    /// The last reply, one line: "451 4.7.1 text".
    pub last_reply: Option<String>,
    /// The host that gave `last_reply`; `None` when ferrymail made it up
    /// (DNS failure, connection refused, policy).
    pub remote_mta: Option<String>,
    /// A delay warning went to the sender for this recipient.
    pub warned: bool,
    /// Unix seconds when this recipient is due again (while open).
    pub next_attempt: u64,
    /// The sender was told of the failure, or needs not be (null sender).
    pub notified: bool,
}

impl QueueRecipient {
    /// A recipient due at once.
    pub fn new(address: &str, route: QueuedRoute) -> Self {
        QueueRecipient {
            address: address.to_string(),
            route,
            state: RecipientState::Pending,
            attempts: 0,
            last_reply: None,
            remote_mta: None,
            warned: false,
            next_attempt: 0,
            notified: false,
        }
    }

    /// A recipient refused before any attempt (policy, unknown account),
    /// kept so the sender gets a bounce.
    pub fn failed(address: &str, reply: String) -> Self {
        let mut r = QueueRecipient::new(address, QueuedRoute::Mx { domain: String::new() });
        r.state = RecipientState::Failed;
        r.last_reply = Some(reply);
        r
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, RecipientState::Pending | RecipientState::Deferred)
    }

    /// Failed, and the bounce not yet made.
    pub fn awaits_bounce(&self) -> bool {
        self.state == RecipientState::Failed && !self.notified
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Assigned by the store on insert.
    pub id: u64,
    /// The content; assigned by the store on accept.
    pub blob: u64,
    /// Envelope sender ("" for `<>`: never bounced).
    pub sender: String,
    pub tenant: Option<String>,
    pub created: u64,
    /// The schedule position (see the module contract).
    pub next_attempt: u64,
    /// Delivery attempts made for this entry (any recipient).
    pub attempts: u32,
    /// Unix seconds of the last attempt; 0 before the first.
    pub last_attempt: u64,
    pub recipients: Vec<QueueRecipient>,
}

impl QueueEntry {
    pub fn new(sender: &str, tenant: Option<String>, mut recipients: Vec<QueueRecipient>) -> Self {
        let now = crate::now_secs();
        for r in &mut recipients {
            r.next_attempt = r.next_attempt.max(now);
        }
        QueueEntry {
            id: 0,
            blob: 0,
            sender: sender.to_string(),
            tenant,
            created: now,
            next_attempt: now,
            attempts: 0,
            last_attempt: 0,
            recipients,
        }
    }

    /// Recipients still owed a delivery attempt.
    pub fn open_recipients(&self) -> impl Iterator<Item = &QueueRecipient> {
        self.recipients.iter().filter(|r| r.is_open())
    }

    /// When the entry next needs the queue: the earliest open recipient, or
    /// at once when a failure awaits its bounce; `None` when nothing is left.
    pub fn due(&self) -> Option<u64> {
        let open = self.open_recipients().map(|r| r.next_attempt).min();
        if self.recipients.iter().any(QueueRecipient::awaits_bounce) {
            Some(open.unwrap_or(self.created).min(self.created))
        } else {
            open
        }
    }

    pub fn is_done(&self) -> bool {
        self.due().is_none()
    }
}

/// What [`Store::queue_commit`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// UIDs of the entry's content filed into local mailboxes.
    pub filed: Vec<u32>,
    /// The new messages (DSNs), as [`Store::accept`] reports them.
    pub accepted: Vec<Accepted>,
}

impl Store {
    pub fn queue_entry(&self, id: u64) -> Result<Option<QueueEntry>> {
        match self.trees()?.queue.get(id.to_be_bytes())? {
            Some(v) => Ok(Some(schema::decode("queue", &v)?)),
            None => Ok(None),
        }
    }

    pub fn queue_entries(&self) -> Result<Vec<QueueEntry>> {
        self.trees()?.queue.iter().values().map(|v| schema::decode("queue", &v?)).collect()
    }

    /// Entries due at or before `now`, earliest first, at most `limit`.
    pub fn queue_due(&self, now: u64, limit: usize) -> Result<Vec<u64>> {
        let keys = self.trees()?.schedule.range(..schema::schedule_key(now.saturating_add(1), 0)).keys();
        let mut ids = Vec::new();
        for key in keys.take(limit) {
            if let Some((_, id)) = schema::split_schedule_key(&key?) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// When the next entry is due (to sleep until then instead of polling).
    pub fn queue_next_due(&self) -> Result<Option<u64>> {
        Ok(self.trees()?.schedule.first()?.and_then(|(k, _)| schema::split_schedule_key(&k)).map(|(due, _)| due))
    }

    /// Takes up to `limit` due entries for an attempt, moving each to
    /// `lease_until` in the schedule. Not flushed: a crash forgets leases.
    pub fn queue_claim(&self, now: u64, limit: usize, lease_until: u64) -> Result<Vec<QueueEntry>> {
        let t = self.trees()?;
        let mut claimed = Vec::new();
        let keys: Vec<_> = t
            .schedule
            .range(..schema::schedule_key(now.saturating_add(1), 0))
            .keys()
            .take(limit)
            .collect::<std::result::Result<_, _>>()?;
        for key in keys {
            let Some((_, id)) = schema::split_schedule_key(&key) else { continue };
            let entry = (&t.queue, &t.schedule).transaction(|(queue, schedule)| {
                schedule.remove(&key)?;
                let Some(raw) = queue.get(id.to_be_bytes())? else {
                    // A schedule key without its entry: harmless, dropped.
                    return Ok(None);
                };
                let mut entry: QueueEntry =
                    schema::decode("queue", &raw).map_err(ConflictableTransactionError::Abort)?;
                entry.next_attempt = lease_until;
                schedule.insert(&schema::schedule_key(lease_until, id), &[])?;
                queue.insert(&id.to_be_bytes(), schema::encode(&entry))?;
                Ok(Some(entry))
            })?;
            claimed.extend(entry);
        }
        Ok(claimed)
    }

    /// Start-up: puts every entry back at its true due time (dropping leases
    /// of attempts a crash interrupted) and rebuilds the schedule from the
    /// entries. Returns the number of entries queued.
    pub fn queue_recover(&self) -> Result<usize> {
        let t = self.trees()?;
        t.schedule.clear()?;
        let mut n = 0;
        for entry in self.queue_entries()? {
            match entry.due() {
                Some(due) => {
                    let mut entry = entry;
                    entry.next_attempt = due;
                    t.queue.insert(entry.id.to_be_bytes(), schema::encode(&entry))?;
                    t.schedule.insert(schema::schedule_key(due, entry.id), &[])?;
                    n += 1;
                }
                None => self.queue_commit(&entry, &[], &[]).map(drop)?,
            }
        }
        Ok(n)
    }

    /// Writes back `entry` after an attempt, in one transaction with filing
    /// its content into the `file_into` accounts and accepting `new`
    /// messages (DSNs). The entry goes to `entry.due()` in the schedule, or
    /// is removed with its content reference when nothing is left to do.
    pub fn queue_commit(&self, entry: &QueueEntry, file_into: &[u64], new: &[Incoming<'_>]) -> Result<Committed> {
        let t = self.trees()?;
        let len = if file_into.is_empty() { 0 } else { self.read_blob(entry.blob)?.len() as u64 };
        let queued: Vec<Option<u64>> =
            new.iter().map(|m| m.queue.as_ref().map(|_| self.new_id()).transpose()).collect::<Result<_>>()?;
        let now = crate::now_secs();
        let due = entry.due();
        let trees = (&t.blobs, &t.blob_refs, &t.mailboxes, &t.mail, &t.queue, &t.schedule);
        let (filed, delivered) = trees.transaction(|trees: &AcceptTrees| {
            let (blobs, blob_refs, mailboxes, mail, queue, schedule) = trees;
            let key = entry.id.to_be_bytes();
            let Some(old) = queue.get(key)? else {
                return sled::transaction::abort(StoreError::NoSuchQueueEntry(crate::format_id(entry.id)));
            };
            let old: QueueEntry = schema::decode("queue", &old).map_err(ConflictableTransactionError::Abort)?;
            schedule.remove(&schema::schedule_key(old.next_attempt, old.id))?;
            let filed = file_in(blob_refs, mailboxes, mail, (entry.blob, len), &entry.sender, file_into, now)?;
            let mut delivered = Vec::with_capacity(new.len());
            for (incoming, id) in new.iter().zip(&queued) {
                delivered.push(accept_in(trees, incoming, *id, now)?);
            }
            match due {
                None => {
                    queue.remove(&key)?;
                    release_blob(blob_refs, blobs, entry.blob)?;
                }
                Some(due) => {
                    let mut entry = entry.clone();
                    entry.next_attempt = due;
                    queue.insert(&key, schema::encode(&entry))?;
                    schedule.insert(&schema::schedule_key(due, entry.id), &[])?;
                }
            }
            TxResult::Ok((filed, delivered))
        })?;
        let accepted = new
            .iter()
            .zip(queued)
            .zip(delivered)
            .map(|((m, queued), delivered)| Accepted { blob: m.id, delivered, queued })
            .collect();
        Ok(Committed { filed, accepted })
    }

    /// Writes back an entry after an attempt (no filings, no DSNs).
    pub fn queue_update(&self, entry: &QueueEntry) -> Result<()> {
        self.queue_commit(entry, &[], &[]).map(drop)
    }

    /// Reads, changes and writes back one entry (operator commands). The
    /// caller makes sure no attempt is in flight for it.
    pub fn queue_modify(&self, id: u64, change: impl FnOnce(&mut QueueEntry)) -> Result<QueueEntry> {
        let mut entry = self.queue_entry(id)?.ok_or_else(|| StoreError::NoSuchQueueEntry(crate::format_id(id)))?;
        change(&mut entry);
        self.queue_update(&entry)?;
        Ok(entry)
    }

    /// Removes an entry outright, with no bounce (operator `queue delete`).
    pub fn queue_remove(&self, id: u64) -> Result<()> {
        self.queue_modify(id, |entry| {
            for r in &mut entry.recipients {
                r.state = RecipientState::Failed;
                r.notified = true;
            }
        })
        .map(drop)
    }

    /// Queues an already-stored content for more recipients (an alias
    /// expansion found at delivery time): takes a new reference.
    pub fn queue_insert_for_blob(&self, mut entry: QueueEntry) -> Result<u64> {
        let t = self.trees()?;
        entry.id = self.new_id()?;
        entry.next_attempt = entry.due().unwrap_or(entry.created);
        (&t.queue, &t.schedule, &t.blob_refs).transaction(|(queue, schedule, blob_refs)| {
            let key = entry.blob.to_be_bytes();
            let refs =
                blob_refs.get(key)?.map(|v| u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 4]))).unwrap_or(0);
            blob_refs.insert(&key, &(refs + 1).to_be_bytes())?;
            queue.insert(&entry.id.to_be_bytes(), schema::encode(&entry))?;
            schedule.insert(&schema::schedule_key(entry.next_attempt, entry.id), &[])?;
            Ok(())
        })?;
        Ok(entry.id)
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
