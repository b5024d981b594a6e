//! The delivery queue: messages waiting for (re)delivery, with per-recipient
//! state and a schedule ordered by due time.

use crate::mail::release_blob;
use crate::schema;
use crate::{Result, Store, StoreError};
use serde::{Deserialize, Serialize};
use sled::Transactional;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientState {
    /// Not yet tried, or due for another try.
    Pending,
    Delivered,
    /// Tried and temporarily failed; `last_reply` says why.
    Deferred,
    /// Permanently failed; a bounce is (or was) due.
    Failed,
}

/// Where a queued recipient goes, as decided by the route hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    pub last_reply: Option<String>,
    /// A delay warning went to the sender for this recipient.
    pub warned: bool,
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
    pub next_attempt: u64,
    pub attempts: u32,
    pub recipients: Vec<QueueRecipient>,
}

impl QueueEntry {
    pub fn new(sender: &str, tenant: Option<String>, recipients: Vec<QueueRecipient>) -> Self {
        let now = crate::now_secs();
        QueueEntry { id: 0, blob: 0, sender: sender.to_string(), tenant, created: now, next_attempt: now, attempts: 0, recipients }
    }

    /// Recipients still owed a delivery attempt.
    pub fn open_recipients(&self) -> impl Iterator<Item = &QueueRecipient> {
        self.recipients.iter().filter(|r| matches!(r.state, RecipientState::Pending | RecipientState::Deferred))
    }
}

impl Store {
    pub fn queue_entry(&self, id: u64) -> Result<Option<QueueEntry>> {
        match self.trees().queue.get(id.to_be_bytes())? {
            Some(v) => Ok(Some(schema::decode("queue", &v)?)),
            None => Ok(None),
        }
    }

    pub fn queue_entries(&self) -> Result<Vec<QueueEntry>> {
        self.trees().queue.iter().values().map(|v| schema::decode("queue", &v?)).collect()
    }

    /// Entries due at or before `now`, earliest first, at most `limit`.
    pub fn queue_due(&self, now: u64, limit: usize) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        for key in self.trees().schedule.range(..schema::schedule_key(now + 1, 0)).keys() {
            if let Some((_, id)) = schema::split_schedule_key(&key?) {
                ids.push(id);
                if ids.len() >= limit {
                    break;
                }
            }
        }
        Ok(ids)
    }

    /// When the next entry is due (to sleep until then instead of polling).
    pub fn queue_next_due(&self) -> Result<Option<u64>> {
        Ok(self.trees().schedule.first()?.and_then(|(k, _)| schema::split_schedule_key(&k)).map(|(due, _)| due))
    }

    /// Writes back an entry after an attempt, moving it in the schedule.
    /// An entry with no open recipients is removed with its content reference.
    pub fn queue_update(&self, entry: &QueueEntry) -> Result<()> {
        let t = self.trees();
        let key = entry.id.to_be_bytes();
        let done = entry.open_recipients().next().is_none();
        (&t.queue, &t.schedule, &t.blob_refs, &t.blobs).transaction(|(queue, schedule, blob_refs, blobs)| {
            let Some(old) = queue.get(key)? else {
                return sled::transaction::abort(StoreError::NoSuchQueueEntry(crate::format_id(entry.id)));
            };
            let old: QueueEntry = schema::decode("queue", &old).map_err(sled::transaction::ConflictableTransactionError::Abort)?;
            schedule.remove(&schema::schedule_key(old.next_attempt, old.id))?;
            if done {
                queue.remove(&key)?;
                release_blob(blob_refs, blobs, entry.blob)?;
            } else {
                queue.insert(&key, schema::encode(entry))?;
                schedule.insert(&schema::schedule_key(entry.next_attempt, entry.id), &[])?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Removes an entry outright (operator `queue delete`).
    pub fn queue_remove(&self, id: u64) -> Result<()> {
        let mut entry = self.queue_entry(id)?.ok_or_else(|| StoreError::NoSuchQueueEntry(crate::format_id(id)))?;
        for r in &mut entry.recipients {
            r.state = RecipientState::Failed;
        }
        self.queue_update(&entry)
    }

    /// Queues an already-stored content for more recipients (a DSN, an
    /// alias expansion found at delivery time): takes a new reference.
    pub fn queue_insert_for_blob(&self, mut entry: QueueEntry) -> Result<u64> {
        let t = self.trees();
        entry.id = self.new_id()?;
        (&t.queue, &t.schedule, &t.blob_refs).transaction(|(queue, schedule, blob_refs)| {
            let key = entry.blob.to_be_bytes();
            let refs = blob_refs.get(key)?.map(|v| u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 4]))).unwrap_or(0);
            blob_refs.insert(&key, &(refs + 1).to_be_bytes())?;
            queue.insert(&entry.id.to_be_bytes(), schema::encode(&entry))?;
            schedule.insert(&schema::schedule_key(entry.next_attempt, entry.id), &[])?;
            Ok(())
        })?;
        Ok(entry.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Incoming;
    use crate::testutil::store;

    fn rcpt(addr: &str) -> QueueRecipient {
        QueueRecipient {
            address: addr.into(),
            route: QueuedRoute::Mx { domain: "far.test".into() },
            state: RecipientState::Pending,
            attempts: 0,
            last_reply: None,
            warned: false,
        }
    }

    #[test]
    fn queue_lifecycle() {
        let (_d, s) = store();
        let entry = QueueEntry::new("s@x.test", None, vec![rcpt("a@far.test"), rcpt("b@far.test")]);
        let due = entry.next_attempt;
        let acc = s.accept(&Incoming { id: s.new_id().unwrap(), content: b"x\r\n", return_path: "s@x.test", local: &[], queue: Some(entry) }).unwrap();
        let id = acc.queued.unwrap();
        assert_eq!(s.queue_due(due, 10).unwrap(), vec![id]);
        assert_eq!(s.queue_next_due().unwrap(), Some(due));
        let mut e = s.queue_entry(id).unwrap().unwrap();
        e.recipients[0].state = RecipientState::Delivered;
        e.next_attempt = due + 900;
        s.queue_update(&e).unwrap();
        assert!(s.queue_due(due, 10).unwrap().is_empty());
        assert_eq!(s.queue_due(due + 900, 10).unwrap(), vec![id]);
        e.recipients[1].state = RecipientState::Failed;
        s.queue_update(&e).unwrap();
        assert!(s.queue_entry(id).unwrap().is_none());
        assert_eq!(s.trees().blobs.len(), 0, "content freed with the last reference");
        assert!(s.queue_next_due().unwrap().is_none());
    }
}
