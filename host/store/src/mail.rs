//! Accepting messages and filing them into mailboxes.

use crate::queue::QueueEntry;
use crate::schema::{self, INBOX, MailboxMeta};
use crate::{Result, Store, StoreError};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

pub const FLAG_SEEN: u32 = 1;
pub const FLAG_ANSWERED: u32 = 1 << 1;
pub const FLAG_FLAGGED: u32 = 1 << 2;
pub const FLAG_DELETED: u32 = 1 << 3;
pub const FLAG_DRAFT: u32 = 1 << 4;

/// One message in one mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailEntry {
    /// Filled from the key on read; not stored in the value.
    #[serde(skip)]
    pub uid: u32,
    pub blob: u64,
    /// Octets as read back: the Return-Path line plus the stored content.
    pub size: u64,
    pub flags: u32,
    pub keywords: Vec<String>,
    /// Unix seconds of delivery (IMAP INTERNALDATE).
    pub internal_date: u64,
    /// The envelope sender, written as `Return-Path:` on read (RFC 5321 4.4):
    /// kept beside the shared content so one stored copy serves the queue
    /// (which must not carry it) and every mailbox.
    pub return_path: String,
}

impl MailEntry {
    fn header(&self) -> String {
        format!("Return-Path: <{}>\r\n", self.return_path)
    }
}

/// A message to accept in one atomic step.
pub struct Incoming<'a> {
    /// The content's id, from [`Store::new_id`]: taken before acceptance so
    /// it can appear in the Received header and every log line.
    pub id: u64,
    /// The content as received, with our trace headers prepended.
    pub content: &'a [u8],
    /// The envelope sender ("" for `<>`).
    pub return_path: &'a str,
    /// Account ids to file into INBOX, one copy each.
    pub local: &'a [u64],
    /// Recipients left for the queue (remote, or to retry).
    pub queue: Option<QueueEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The content's id, shared by all references (the message id in logs).
    pub blob: u64,
    /// (account id, uid) for each local delivery.
    pub delivered: Vec<(u64, u32)>,
    pub queued: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxSummary {
    pub messages: usize,
    pub bytes: u64,
    pub uid_validity: u32,
    pub uid_next: u32,
}

pub(crate) type TxResult<T> = std::result::Result<T, ConflictableTransactionError<StoreError>>;

fn tx_decode<T: serde::de::DeserializeOwned>(tree: &'static str, v: &[u8]) -> TxResult<T> {
    schema::decode(tree, v).map_err(ConflictableTransactionError::Abort)
}

/// Allocates the next UID of a mailbox inside a transaction.
fn next_uid(mailboxes: &TransactionalTree, account: u64) -> TxResult<u32> {
    let key = schema::mailbox_key(account, INBOX);
    let raw = mailboxes.get(&key)?.ok_or_else(|| {
        ConflictableTransactionError::Abort(StoreError::NoSuchAccount(format!("account id {account}")))
    })?;
    let mut meta: MailboxMeta = tx_decode("mailboxes", &raw)?;
    let uid = meta.uid_next;
    meta.uid_next += 1;
    mailboxes.insert(key, schema::encode(&meta))?;
    Ok(uid)
}

impl Store {
    /// Stores the content once, files it into each local INBOX and queues
    /// the rest, atomically. Not yet durable: await [`Store::durable`].
    pub fn accept(&self, incoming: &Incoming<'_>) -> Result<Accepted> {
        let t = self.trees()?;
        let queued = match &incoming.queue {
            Some(_) => Some(self.new_id()?),
            None => None,
        };
        let now = crate::now_secs();
        let delivered = (&t.blobs, &t.blob_refs, &t.mailboxes, &t.mail, &t.queue, &t.schedule)
            .transaction(|trees| accept_in(trees, incoming, queued, now))?;
        Ok(Accepted { blob: incoming.id, delivered, queued })
    }

    /// Files an already-stored message into more INBOXes (delivery from the
    /// queue); the caller drops the queue's reference separately.
    pub fn deliver_stored(&self, blob: u64, return_path: &str, accounts: &[u64]) -> Result<Vec<u32>> {
        let t = self.trees()?;
        let len = self.read_blob(blob)?.len() as u64;
        let now = crate::now_secs();
        let uids = (&t.blob_refs, &t.mailboxes, &t.mail).transaction(|(blob_refs, mailboxes, mail)| {
            file_in(blob_refs, mailboxes, mail, (blob, len), return_path, accounts, now)
        })?;
        Ok(uids)
    }

    /// The messages of one mailbox in UID order.
    pub fn mailbox_entries(&self, account: u64, mailbox: u32) -> Result<Vec<MailEntry>> {
        self.trees()?
            .mail
            .scan_prefix(schema::mail_prefix(account, mailbox))
            .map(|kv| {
                let (k, v) = kv?;
                let mut e: MailEntry = schema::decode("mail", &v)?;
                e.uid = schema::uid_of_mail_key(&k);
                Ok(e)
            })
            .collect()
    }

    pub fn mailbox_summary(&self, account: u64, mailbox: &str) -> Result<Option<MailboxSummary>> {
        let Some(raw) = self.trees()?.mailboxes.get(schema::mailbox_key(account, mailbox))? else {
            return Ok(None);
        };
        let meta: MailboxMeta = schema::decode("mailboxes", &raw)?;
        let entries = self.mailbox_entries(account, meta.id)?;
        Ok(Some(MailboxSummary {
            messages: entries.len(),
            bytes: entries.iter().map(|e| e.size).sum(),
            uid_validity: meta.uid_validity,
            uid_next: meta.uid_next,
        }))
    }

    /// The message as a mail client sees it: Return-Path, then the content.
    pub fn read_mail(&self, entry: &MailEntry) -> Result<Vec<u8>> {
        let content = self.read_blob(entry.blob)?;
        let header = entry.header();
        let mut out = Vec::with_capacity(header.len() + content.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&content);
        Ok(out)
    }

    /// The stored content (as queued: no Return-Path).
    pub fn read_blob(&self, blob: u64) -> Result<sled::IVec> {
        self.trees()?
            .blobs
            .get(blob.to_be_bytes())?
            .ok_or_else(|| StoreError::Corrupt { tree: "blobs", detail: format!("missing blob {blob}") })
    }

    pub fn set_flags(&self, account: u64, mailbox: u32, uid: u32, flags: u32) -> Result<()> {
        let key = schema::mail_key(account, mailbox, uid);
        self.trees()?.mail.fetch_and_update(key, |old| {
            old.and_then(|v| schema::decode::<MailEntry>("mail", v).ok()).map(|mut e| {
                e.flags = flags;
                schema::encode(&e)
            })
        })?;
        Ok(())
    }

    /// Removes messages from a mailbox, dropping contents nobody references.
    pub fn expunge(&self, account: u64, mailbox: u32, uids: &[u32]) -> Result<usize> {
        let t = self.trees()?;
        let removed = (&t.mail, &t.blob_refs, &t.blobs).transaction(|(mail, blob_refs, blobs)| {
            let mut removed = 0;
            for &uid in uids {
                let Some(raw) = mail.remove(&schema::mail_key(account, mailbox, uid))? else { continue };
                let entry: MailEntry = tx_decode("mail", &raw)?;
                release_blob(blob_refs, blobs, entry.blob)?;
                removed += 1;
            }
            Ok(removed)
        })?;
        Ok(removed)
    }

    /// Takes back a message whose durability failed: its client was told
    /// to retry, so a copy must not stay behind. Removes its mailbox entries
    /// and queue entry now if the store is open, and again when it reopens
    /// (a copy may have reached the disk before the failure); an error only
    /// says it could not be done now.
    pub fn withdraw(&self, accepted: &Accepted) -> Result<()> {
        self.inner.slot.withdraw(accepted, |trees| withdraw_in(trees, accepted))
    }
}

/// The body of [`Store::withdraw`]. Idempotent, and touches only entries
/// that still refer to the message's content: after a reopen, UIDs or a
/// queue id of a message that never reached the disk may not exist.
pub(crate) fn withdraw_in(t: &schema::Trees, accepted: &Accepted) -> Result<()> {
    (&t.mail, &t.blob_refs, &t.blobs, &t.queue, &t.schedule).transaction(
        |(mail, blob_refs, blobs, queue, schedule)| {
            for &(account, uid) in &accepted.delivered {
                let key = schema::mail_key(account, schema::INBOX_ID, uid);
                let Some(raw) = mail.get(key)? else { continue };
                if tx_decode::<MailEntry>("mail", &raw)?.blob == accepted.blob {
                    mail.remove(&key)?;
                    release_blob(blob_refs, blobs, accepted.blob)?;
                }
            }
            if let Some(id) = accepted.queued
                && let Some(raw) = queue.get(id.to_be_bytes())?
            {
                let entry: QueueEntry = tx_decode("queue", &raw)?;
                if entry.blob == accepted.blob {
                    queue.remove(&id.to_be_bytes())?;
                    schedule.remove(&schema::schedule_key(entry.next_attempt, id))?;
                    release_blob(blob_refs, blobs, accepted.blob)?;
                }
            }
            // Content nobody refers to (nothing was filed or queued).
            let key = accepted.blob.to_be_bytes();
            if blob_refs.get(key)?.is_none_or(|refs| refs.as_ref() == 0u32.to_be_bytes()) {
                blob_refs.remove(&key)?;
                blobs.remove(&key)?;
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// The trees [`Store::accept`] writes, as a transaction sees them:
/// (blobs, blob_refs, mailboxes, mail, queue, schedule).
pub(crate) type AcceptTrees =
    (TransactionalTree, TransactionalTree, TransactionalTree, TransactionalTree, TransactionalTree, TransactionalTree);

/// The body of [`Store::accept`], reusable inside a larger transaction (the
/// queue commits a delivery attempt and its DSNs in one step).
pub(crate) fn accept_in(
    trees: &AcceptTrees,
    incoming: &Incoming<'_>,
    queued: Option<u64>,
    now: u64,
) -> TxResult<Vec<(u64, u32)>> {
    let (blobs, blob_refs, mailboxes, mail, queue, schedule) = trees;
    let blob = incoming.id;
    let key = blob.to_be_bytes();
    blobs.insert(&key, incoming.content)?;
    // The queue's reference; file_in adds one per mailbox.
    blob_refs.insert(&key, &u32::from(queued.is_some()).to_be_bytes())?;
    let len = incoming.content.len() as u64;
    let uids = file_in(blob_refs, mailboxes, mail, (blob, len), incoming.return_path, incoming.local, now)?;
    let delivered = incoming.local.iter().copied().zip(uids).collect();
    if let (Some(id), Some(entry)) = (queued, &incoming.queue) {
        let mut entry = entry.clone();
        entry.id = id;
        entry.blob = blob;
        queue.insert(&id.to_be_bytes(), schema::encode(&entry))?;
        schedule.insert(&schema::schedule_key(entry.next_attempt, id), &[])?;
    }
    Ok(delivered)
}

/// The body of [`Store::deliver_stored`]: files stored content `(blob, len)`
/// into more INBOXes, taking one reference each.
pub(crate) fn file_in(
    blob_refs: &TransactionalTree,
    mailboxes: &TransactionalTree,
    mail: &TransactionalTree,
    (blob, len): (u64, u64),
    return_path: &str,
    accounts: &[u64],
    now: u64,
) -> TxResult<Vec<u32>> {
    let key = blob.to_be_bytes();
    let refs = blob_refs.get(key)?.map(|v| u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 4]))).unwrap_or(0);
    blob_refs.insert(&key, &(refs + accounts.len() as u32).to_be_bytes())?;
    let header_len = format!("Return-Path: <{return_path}>\r\n").len() as u64;
    let mut uids = Vec::new();
    for &account in accounts {
        let uid = next_uid(mailboxes, account)?;
        let entry = MailEntry {
            uid,
            blob,
            size: header_len + len,
            flags: 0,
            keywords: Vec::new(),
            internal_date: now,
            return_path: return_path.to_string(),
        };
        mail.insert(&schema::mail_key(account, schema::INBOX_ID, uid), schema::encode(&entry))?;
        uids.push(uid);
    }
    Ok(uids)
}

/// Drops one reference to a blob inside a transaction.
pub(crate) fn release_blob(blob_refs: &TransactionalTree, blobs: &TransactionalTree, blob: u64) -> TxResult<()> {
    let key = blob.to_be_bytes();
    let refs = blob_refs.get(key)?.map(|v| u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 4]))).unwrap_or(0);
    if refs <= 1 {
        blob_refs.remove(&key)?;
        blobs.remove(&key)?;
    } else {
        blob_refs.insert(&key, &(refs - 1).to_be_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::store;

    #[tokio::test]
    async fn accept_files_one_copy_into_each_inbox() {
        let (_d, s) = store();
        let a = s.add_account("a@x.test", "h").unwrap();
        let b = s.add_account("b@x.test", "h").unwrap();
        let acc = s
            .accept(&Incoming {
                id: s.new_id().unwrap(),
                content: b"Subject: hi\r\n\r\nbody\r\n",
                return_path: "s@y.test",
                local: &[a.id, b.id],
                queue: None,
            })
            .unwrap();
        s.durable().await.unwrap();
        assert_eq!(acc.delivered, vec![(a.id, 1), (b.id, 1)]);
        let entries = s.mailbox_entries(a.id, 0).unwrap();
        assert_eq!(entries.len(), 1);
        let text = s.read_mail(&entries[0]).unwrap();
        assert_eq!(text, b"Return-Path: <s@y.test>\r\nSubject: hi\r\n\r\nbody\r\n");
        assert_eq!(entries[0].size, text.len() as u64);
        assert_eq!(s.trees().unwrap().blobs.len(), 1, "content stored once");
        s.expunge(a.id, 0, &[1]).unwrap();
        assert_eq!(s.trees().unwrap().blobs.len(), 1, "b still references it");
        s.expunge(b.id, 0, &[1]).unwrap();
        assert_eq!(s.trees().unwrap().blobs.len(), 0, "last reference frees the content");
    }

    #[test]
    fn uids_ascend_and_survive_expunge() {
        let (_d, s) = store();
        let a = s.add_account("a@x.test", "h").unwrap();
        for _ in 0..3 {
            s.accept(&Incoming {
                id: s.new_id().unwrap(),
                content: b"x\r\n",
                return_path: "",
                local: &[a.id],
                queue: None,
            })
            .unwrap();
        }
        s.expunge(a.id, 0, &[3]).unwrap();
        s.accept(&Incoming {
            id: s.new_id().unwrap(),
            content: b"x\r\n",
            return_path: "",
            local: &[a.id],
            queue: None,
        })
        .unwrap();
        let uids: Vec<u32> = s.mailbox_entries(a.id, 0).unwrap().iter().map(|e| e.uid).collect();
        assert_eq!(uids, [1, 2, 4], "RFC 3501 2.3.1.1: UIDs are never reused");
        let sum = s.mailbox_summary(a.id, "INBOX").unwrap().unwrap();
        assert_eq!((sum.messages, sum.uid_next), (3, 5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_withdrawn_message_stays_gone_across_a_reopen() {
        let (_d, s) = store();
        let a = s.add_account("a@x.test", "h").unwrap();
        let keep = s
            .accept(&Incoming {
                id: s.new_id().unwrap(),
                content: b"keep\r\n",
                return_path: "",
                local: &[a.id],
                queue: None,
            })
            .unwrap();
        let rcpt = crate::QueueRecipient::new("r@far.test", crate::QueuedRoute::Mx { domain: "far.test".into() });
        let queue = Some(QueueEntry::new("s@x.test", None, vec![rcpt]));
        let gone = s
            .accept(&Incoming { id: s.new_id().unwrap(), content: b"gone\r\n", return_path: "", local: &[a.id], queue })
            .unwrap();
        s.durable().await.unwrap();
        s.withdraw(&gone).unwrap();
        // The reopen applies it again (a no-op now) before anything reads.
        let slot = s.inner.slot.clone();
        tokio::task::spawn_blocking(move || slot.recover(withdraw_in)).await.unwrap().unwrap();
        let entries = s.mailbox_entries(a.id, 0).unwrap();
        assert_eq!(entries.iter().map(|e| e.blob).collect::<Vec<_>>(), [keep.blob]);
        assert!(s.queue_entries().unwrap().is_empty());
        assert_eq!(s.trees().unwrap().blobs.len(), 1, "only the kept content is left");
        assert_eq!(s.read_mail(&entries[0]).unwrap(), b"Return-Path: <>\r\nkeep\r\n");
        assert_eq!(s.inner.slot.withdrawals_pending(), 0);
    }

    #[test]
    fn reopen_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let s = Store::open(dir.path(), &Default::default()).unwrap();
            let a = s.add_account("a@x.test", "h").unwrap();
            s.accept(&Incoming {
                id: s.new_id().unwrap(),
                content: b"x\r\n",
                return_path: "",
                local: &[a.id],
                queue: None,
            })
            .unwrap();
            s.flush_now().unwrap();
            a.id
        };
        let s = Store::open(dir.path(), &Default::default()).unwrap();
        assert_eq!(s.mailbox_entries(id, 0).unwrap().len(), 1);
    }
}
