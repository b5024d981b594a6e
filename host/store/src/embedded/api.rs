//! The storage traits, implemented by the embedded backend: changes go to
//! the writer thread, reads to the blocking pool.

use super::{EmbeddedStore, kv, ops_accounts, ops_mail, ops_mailboxes, ops_queue, reads, records};
use crate::contract::{Accounts, ChangeFeed, Contents, FlagsOutcome, Kv, Mailboxes, Queue, Store, Traces};
use crate::schema::{
    Accepted, Account, Append, Appended, Committed, CopyResult, FlagChange, FlagIndex, Incoming, MailEntry,
    MailboxInfo, MailboxState, QueueEntry, SearchRows, SpecialUse, TraceWrite, UidSet, now_secs,
};
use crate::{Result, StoreError};
use async_trait::async_trait;
use bytes::Bytes;

#[async_trait]
impl Contents for EmbeddedStore {
    async fn new_id(&self) -> Result<u64> {
        self.take_id().await
    }

    async fn accept(&self, incoming: Incoming) -> Result<Accepted> {
        self.change(true, move |txn| {
            let queue_id = match incoming.queue {
                Some(_) => Some(txn.new_id()?),
                None => None,
            };
            ops_mail::accept(txn, &incoming, queue_id, now_secs())
        })
        .await
    }

    async fn read_content(&self, content: u64) -> Result<Bytes> {
        self.read(move |t| reads::content(t, content)).await
    }

    async fn read_contents(&self, contents: &[u64]) -> Result<Vec<Option<Bytes>>> {
        let contents = contents.to_vec();
        self.read(move |t| {
            contents
                .iter()
                .map(|&id| match reads::content(t, id) {
                    Ok(c) => Ok(Some(c)),
                    Err(StoreError::NoSuchMessage(_)) => Ok(None),
                    Err(e) => Err(e),
                })
                .collect()
        })
        .await
    }

    async fn read_content_range(&self, content: u64, offset: u64, len: u64) -> Result<Bytes> {
        self.read(move |t| reads::content_range(t, content, offset, len)).await
    }

    async fn summary(&self, content: u64) -> Result<Option<Bytes>> {
        Ok(self.summaries(&[content]).await?.pop().flatten())
    }

    async fn summaries(&self, contents: &[u64]) -> Result<Vec<Option<Bytes>>> {
        let contents = contents.to_vec();
        self.read(move |t| reads::summaries(t, &contents)).await
    }

    async fn set_summary(&self, content: u64, summary: Bytes) -> Result<()> {
        if !self.read(move |t| reads::content_exists(t, content)).await? {
            return Err(StoreError::NoSuchMessage(crate::schema::format_id(content)));
        }
        self.change(true, move |txn| {
            ops_mail::content_len(txn, content)?;
            super::parts::put(txn, super::parts::Part::Summary, content, &summary)?;
            txn.add_growth(summary.len() as u64);
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Accounts for EmbeddedStore {
    async fn add_account(&self, address: &str, password_hash: &str) -> Result<Account> {
        let (address, hash) = (address.to_string(), password_hash.to_string());
        self.change(false, move |txn| ops_accounts::add(txn, &address, &hash)).await
    }

    /// A point read of the small, always-cached accounts tree, on the
    /// calling task: every RCPT to a local address and every login makes
    /// one or two, and the trip to the blocking pool and back costs more
    /// than the read (see the `Kv` impl below).
    async fn account(&self, address: &str) -> Result<Option<Account>> {
        reads::account(&*self.shared.trees()?, address)
    }

    async fn account_by_id(&self, id: u64) -> Result<Option<Account>> {
        reads::account_by_id(&*self.shared.trees()?, id)
    }

    async fn accounts(&self) -> Result<Vec<Account>> {
        self.read(reads::accounts).await
    }

    async fn set_password(&self, address: &str, password_hash: &str) -> Result<()> {
        let (address, hash) = (address.to_string(), password_hash.to_string());
        self.change(false, move |txn| ops_accounts::set_password(txn, &address, &hash)).await
    }

    async fn delete_account(&self, address: &str) -> Result<()> {
        let address = address.to_string();
        self.change(false, move |txn| ops_accounts::delete(txn, &address)).await
    }
}

#[async_trait]
impl Mailboxes for EmbeddedStore {
    async fn mailboxes(&self, account: u64) -> Result<Vec<MailboxInfo>> {
        self.read(move |t| reads::mailboxes(t, account)).await
    }

    async fn mailbox(&self, account: u64, name: &str) -> Result<Option<MailboxInfo>> {
        let name = name.to_string();
        self.read(move |t| reads::mailbox(t, account, &name)).await
    }

    async fn mailbox_by_id(&self, account: u64, id: u32) -> Result<Option<MailboxInfo>> {
        self.read(move |t| reads::mailbox_by_id(t, account, id)).await
    }

    async fn create_mailbox(&self, account: u64, name: &str, special_use: Option<SpecialUse>) -> Result<MailboxInfo> {
        let name = name.to_string();
        self.change(false, move |txn| ops_mailboxes::create(txn, account, &name, special_use)).await
    }

    async fn delete_mailbox(&self, account: u64, name: &str) -> Result<()> {
        let name = name.to_string();
        self.change(false, move |txn| ops_mailboxes::delete(txn, account, &name)).await
    }

    async fn rename_mailbox(&self, account: u64, from: &str, to: &str) -> Result<()> {
        let (from, to) = (from.to_string(), to.to_string());
        self.change(false, move |txn| ops_mailboxes::rename(txn, account, &from, &to)).await
    }

    async fn subscriptions(&self, account: u64) -> Result<Vec<String>> {
        self.read(move |t| reads::subscriptions(t, account)).await
    }

    async fn set_subscribed(&self, account: u64, name: &str, subscribed: bool) -> Result<()> {
        let name = name.to_string();
        self.change(false, move |txn| ops_mailboxes::subscribe(txn, account, &name, subscribed)).await
    }

    async fn uids(&self, account: u64, mailbox: u32) -> Result<UidSet> {
        self.read(move |t| reads::uids(t, account, mailbox)).await
    }

    async fn flag_index(&self, account: u64, mailbox: u32) -> Result<FlagIndex> {
        self.read(move |t| super::flagindex::read(t, account, mailbox)).await
    }

    async fn mailbox_state(&self, account: u64, name: &str) -> Result<Option<MailboxState>> {
        // On the calling task, as kv and account look-ups are: the trip to
        // the blocking pool and back is two cross-CPU wake-ups, which made
        // a warm SELECT of a 10,000-message mailbox take 0.4-0.6 ms against
        // Dovecot's 0.2 (system calls, not reads, were 90 % of the time).
        // A mailbox so large that its UID set and flag index take
        // milliseconds to read still goes to the pool.
        let trees = self.shared.trees()?;
        let Some(info) = reads::mailbox(&trees, account, name)? else { return Ok(None) };
        fn state(t: &super::trees::Trees, account: u64, info: MailboxInfo) -> Result<Option<MailboxState>> {
            let uids = reads::uids(t, account, info.id)?;
            let flags = super::flagindex::read(t, account, info.id)?;
            Ok(Some(MailboxState { info, uids, flags }))
        }
        if info.messages > INLINE_SELECT_MESSAGES {
            return self.read(move |t| state(t, account, info)).await;
        }
        state(&trees, account, info)
    }

    async fn entries(&self, account: u64, mailbox: u32, uids: &UidSet) -> Result<Vec<MailEntry>> {
        let uids = uids.clone();
        self.read(move |t| reads::entries(t, account, mailbox, &uids)).await
    }

    async fn search_rows(&self, account: u64, mailbox: u32, uids: &UidSet) -> Result<SearchRows> {
        let uids = uids.clone();
        self.read(move |t| reads::search_rows(t, account, mailbox, &uids)).await
    }

    async fn keep_search_rows(&self, account: u64, mailbox: u32, rows: Vec<(u32, Bytes)>) -> Result<()> {
        self.change(true, move |txn| ops_mail::keep_search_rows(txn, account, mailbox, &rows)).await
    }

    async fn append(&self, account: u64, mailbox: u32, message: Append) -> Result<Appended> {
        self.change(true, move |txn| ops_mail::append(txn, account, mailbox, message)).await
    }

    async fn set_flags(&self, account: u64, mailbox: u32, uids: &UidSet, change: &FlagChange) -> Result<FlagsOutcome> {
        let (uids, change) = (uids.clone(), change.clone());
        self.change(false, move |txn| ops_mail::set_flags(txn, account, mailbox, &uids, &change)).await
    }

    async fn copy(&self, account: u64, from: u32, uids: &UidSet, to: u32) -> Result<CopyResult> {
        let uids = uids.clone();
        self.change(false, move |txn| ops_mail::copy(txn, account, from, &uids, to)).await
    }

    async fn move_messages(&self, account: u64, from: u32, uids: &UidSet, to: u32) -> Result<CopyResult> {
        let uids = uids.clone();
        self.change(false, move |txn| {
            let copied = ops_mail::copy(txn, account, from, &uids, to)?;
            let moved: UidSet = copied.mapping.iter().map(|&(src, _)| src).collect();
            ops_mail::expunge(txn, account, from, &moved)?;
            Ok(copied)
        })
        .await
    }

    async fn expunge(&self, account: u64, mailbox: u32, uids: &UidSet) -> Result<Vec<u32>> {
        let uids = uids.clone();
        self.change(false, move |txn| ops_mail::expunge(txn, account, mailbox, &uids)).await
    }

    fn watch(&self, account: u64) -> ChangeFeed {
        self.shared.hub.watch(account)
    }
}

#[async_trait]
impl Queue for EmbeddedStore {
    async fn queue_entry(&self, id: u64) -> Result<Option<QueueEntry>> {
        self.read(move |t| reads::queue_entry(t, id)).await
    }

    async fn queue_entries(&self) -> Result<Vec<QueueEntry>> {
        self.read(reads::queue_entries).await
    }

    async fn queue_next_due(&self) -> Result<Option<u64>> {
        self.read(reads::queue_next_due).await
    }

    async fn queue_claim(&self, owner: &str, now: u64, limit: usize, lease_until: u64) -> Result<Vec<QueueEntry>> {
        let owner = owner.to_string();
        self.change(false, move |txn| ops_queue::claim(txn, &owner, now, limit, lease_until)).await
    }

    async fn queue_renew(&self, owner: &str, id: u64, lease_until: u64) -> Result<()> {
        let owner = owner.to_string();
        self.change(false, move |txn| ops_queue::renew(txn, &owner, id, lease_until)).await
    }

    async fn queue_recover(&self, _owner: &str) -> Result<usize> {
        self.change(false, ops_queue::recover).await
    }

    async fn queue_commit(
        &self,
        entry: &QueueEntry,
        file_into: &[u64],
        new: Vec<Incoming>,
        traces: Vec<TraceWrite>,
    ) -> Result<Committed> {
        let (entry, file_into) = (entry.clone(), file_into.to_vec());
        self.change(!new.is_empty(), move |txn| {
            let now = now_secs();
            let committed = ops_queue::commit(txn, &entry, &file_into, &new, now)?;
            for t in &traces {
                records::stage(txn, t, now);
            }
            Ok(committed)
        })
        .await
    }
}

/// Mailboxes up to this many messages have their state read on the
/// calling task (a UID set of at most ~50 chunks and the flag index).
const INLINE_SELECT_MESSAGES: u32 = 50_000;

/// Plugin kv calls run on the calling task, not on the blocking pool as
/// other reads do: each is a few microseconds of work on sled's in-memory
/// tree (no flush: kv writes are not synced, see `contract::Kv`), while the
/// trip to the pool and back is two thread wake-ups, which on a loaded
/// 2-CPU machine cost more than the call itself, once or twice per message
/// for a rate-limit or greylist plugin (`benches/benches/store.rs`,
/// `store_kv`).
#[async_trait]
impl Kv for EmbeddedStore {
    async fn kv_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        kv::get(&*self.shared.trees()?, namespace, key, now_secs())
    }

    async fn kv_set(&self, namespace: &str, key: &[u8], value: &[u8], ttl_secs: Option<u64>) -> Result<()> {
        kv::set(&*self.shared.trees()?, namespace, key, value, ttl_secs, now_secs())?;
        self.kv_written();
        Ok(())
    }

    async fn kv_delete(&self, namespace: &str, key: &[u8]) -> Result<()> {
        kv::delete(&*self.shared.trees()?, namespace, key)?;
        self.kv_written();
        Ok(())
    }

    async fn kv_incr(&self, namespace: &str, key: &[u8], delta: i64, ttl_secs: Option<u64>) -> Result<i64> {
        let n = kv::incr(&*self.shared.trees()?, namespace, key, delta, ttl_secs, now_secs())?;
        self.kv_written();
        Ok(n)
    }

    async fn kv_sweep(&self, limit: usize) -> Result<usize> {
        let shared = self.shared.clone();
        let n = self
            .read(move |t| {
                let mut cursor = shared.kv_sweep_cursor.lock().unwrap_or_else(|e| e.into_inner());
                let (removed, next) = kv::sweep(t, cursor.as_deref(), limit, now_secs())?;
                *cursor = next;
                Ok(removed)
            })
            .await?;
        if n > 0 {
            self.kv_written();
        }
        Ok(n)
    }
}

#[async_trait]
impl Traces for EmbeddedStore {
    fn trace_put(&self, records: &[TraceWrite]) {
        if self.shared.traces.put(records, now_secs()) == records::Put::KeptWake
            && let Ok(writer) = self.submitter()
        {
            // A group of their own now, not after the writer's idle second.
            writer.nudge();
        }
    }

    async fn trace_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let (key, shared) = (key.to_string(), self.shared.clone());
        self.read(move |t| records::get(t, &shared.traces, &key, now_secs())).await
    }

    async fn trace_scan(&self, prefix: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let (prefix, shared) = (prefix.to_string(), self.shared.clone());
        self.read(move |t| records::scan(t, &shared.traces, &prefix, limit, now_secs())).await
    }

    async fn trace_sweep(&self, trim_prefix: &str, keep: usize) -> Result<usize> {
        let prefix = trim_prefix.to_string();
        let n = self.read(move |t| records::sweep(t, &prefix, keep, now_secs())).await?;
        self.kv_written();
        Ok(n)
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn size_on_disk(&self) -> Result<u64> {
        self.read(|t| Ok(t.db.size_on_disk().map_err(super::sled_error)? + t.segments.on_disk()?)).await
    }

    async fn close(&self) -> Result<()> {
        let writer = self.writer.write().unwrap_or_else(|e| e.into_inner()).take();
        drop(writer);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?
                .map_err(|_| StoreError::Unavailable("the store writer panicked".into()))?;
        }
        Ok(())
    }
}
