//! The storage traits, implemented by the PostgreSQL backend: changes in
//! one transaction each ([`in_txn!`]), reads on a pooled connection.

use super::error::{Fail, pool_error};
use super::{PostgresStore, accounts, blobs, in_txn, kv, mail, mailboxes, queue};
use crate::contract::{Accounts, ChangeFeed, Contents, FlagsOutcome, Kv, Mailboxes, Queue, Store, Traces};
use crate::schema::{
    Accepted, Account, Append, Appended, Committed, CopyResult, FlagChange, FlagIndex, Incoming, MailEntry,
    MailboxInfo, QueueEntry, SearchRows, SpecialUse, TraceWrite, UidSet, format_id, now_secs,
};
use crate::{Result, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::Object;

impl PostgresStore {
    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn lazy_client(&self) -> Result<Object> {
        self.lazy.get().await.map_err(pool_error)
    }

    /// Queue ids for the messages among `new` that are queued.
    async fn queue_ids(&self, new: Vec<Incoming>) -> Result<Vec<(Incoming, Option<u64>)>> {
        let mut out = Vec::with_capacity(new.len());
        for incoming in new {
            let id = match incoming.queue {
                Some(_) => Some(self.take_id().await?),
                None => None,
            };
            out.push((incoming, id));
        }
        Ok(out)
    }
}

fn store(e: Fail) -> StoreError {
    e.into_store()
}

#[async_trait]
impl Contents for PostgresStore {
    async fn new_id(&self) -> Result<u64> {
        self.take_id().await
    }

    async fn accept(&self, incoming: Incoming) -> Result<Accepted> {
        let queue_id = match incoming.queue {
            Some(_) => Some(self.take_id().await?),
            None => None,
        };
        in_txn!(self, |tx, ann| {
            let now = now_secs();
            // Before the filing: from its first mailbox UPDATE to the commit
            // the mailbox is locked, and this write need not be inside that.
            kv::trace_write(&tx, &incoming.traces, now).await?;
            let accepted = mail::accept(&tx, &mut ann, &incoming, queue_id, now).await?;
            if queue_id.is_some() {
                ann.queue_changed();
            }
            accepted
        })
    }

    async fn read_content(&self, content: u64) -> Result<Bytes> {
        let c = self.client().await?;
        blobs::get(&c, content as i64)
            .await
            .map_err(store)?
            .ok_or_else(|| StoreError::NoSuchMessage(format_id(content)))
    }

    async fn read_contents(&self, contents: &[u64]) -> Result<Vec<Option<Bytes>>> {
        let c = self.client().await?;
        let ids: Vec<i64> = contents.iter().map(|&id| id as i64).collect();
        let found = blobs::get_many(&c, &ids).await.map_err(store)?;
        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
    }

    async fn read_content_range(&self, content: u64, offset: u64, len: u64) -> Result<Bytes> {
        let c = self.client().await?;
        blobs::range(&c, content as i64, offset, len)
            .await
            .map_err(store)?
            .ok_or_else(|| StoreError::NoSuchMessage(format_id(content)))
    }

    async fn summary(&self, content: u64) -> Result<Option<Bytes>> {
        Ok(self.summaries(&[content]).await?.pop().flatten())
    }

    async fn summaries(&self, contents: &[u64]) -> Result<Vec<Option<Bytes>>> {
        let c = self.client().await?;
        let ids: Vec<i64> = contents.iter().map(|&id| id as i64).collect();
        let found = c
            .query("SELECT id, summary FROM contents WHERE id = ANY($1) AND summary IS NOT NULL", &[&ids])
            .await
            .map_err(super::error::pg_error)?;
        let found: std::collections::HashMap<i64, Bytes> =
            found.iter().map(|r| (r.get(0), Bytes::from(r.get::<_, Vec<u8>>(1)))).collect();
        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
    }

    async fn set_summary(&self, content: u64, summary: Bytes) -> Result<()> {
        let c = self.lazy_client().await?;
        let n = c
            .execute("UPDATE contents SET summary = $2 WHERE id = $1", &[&(content as i64), &summary.as_ref()])
            .await
            .map_err(super::error::pg_error)?;
        if n == 0 {
            return Err(StoreError::NoSuchMessage(format_id(content)));
        }
        Ok(())
    }
}

#[async_trait]
impl Accounts for PostgresStore {
    async fn add_account(&self, address: &str, password_hash: &str) -> Result<Account> {
        in_txn!(self, |tx, ann| { accounts::add(&tx, &mut ann, address, password_hash, now_secs()).await? })
    }

    async fn account(&self, address: &str) -> Result<Option<Account>> {
        accounts::by_address(&self.client().await?, address).await.map_err(store)
    }

    async fn account_by_id(&self, id: u64) -> Result<Option<Account>> {
        accounts::by_id(&self.client().await?, id).await.map_err(store)
    }

    async fn accounts(&self) -> Result<Vec<Account>> {
        accounts::list(&self.client().await?).await.map_err(store)
    }

    async fn set_password(&self, address: &str, password_hash: &str) -> Result<()> {
        in_txn!(self, |tx, ann| { accounts::set_password(&tx, address, password_hash).await? })
    }

    async fn delete_account(&self, address: &str) -> Result<()> {
        in_txn!(self, |tx, ann| { accounts::delete(&tx, &mut ann, address).await? })
    }
}

#[async_trait]
impl Mailboxes for PostgresStore {
    async fn mailboxes(&self, account: u64) -> Result<Vec<MailboxInfo>> {
        mailboxes::list(&self.client().await?, account).await.map_err(store)
    }

    async fn mailbox(&self, account: u64, name: &str) -> Result<Option<MailboxInfo>> {
        mailboxes::by_name(&self.client().await?, account, name).await.map_err(store)
    }

    async fn mailbox_by_id(&self, account: u64, id: u32) -> Result<Option<MailboxInfo>> {
        mailboxes::by_id(&self.client().await?, account, id).await.map_err(store)
    }

    async fn create_mailbox(&self, account: u64, name: &str, special_use: Option<SpecialUse>) -> Result<MailboxInfo> {
        in_txn!(self, |tx, ann| { mailboxes::create_with(&tx, &mut ann, account, name, special_use, None).await? })
    }

    async fn delete_mailbox(&self, account: u64, name: &str) -> Result<()> {
        in_txn!(self, |tx, ann| { mailboxes::delete(&tx, &mut ann, account, name).await? })
    }

    async fn rename_mailbox(&self, account: u64, from: &str, to: &str) -> Result<()> {
        in_txn!(self, |tx, ann| { mailboxes::rename(&tx, &mut ann, account, from, to).await? })
    }

    async fn subscriptions(&self, account: u64) -> Result<Vec<String>> {
        mailboxes::subscriptions(&self.client().await?, account).await.map_err(store)
    }

    async fn set_subscribed(&self, account: u64, name: &str, subscribed: bool) -> Result<()> {
        in_txn!(self, |tx, ann| { mailboxes::subscribe(&tx, &mut ann, account, name, subscribed).await? })
    }

    async fn uids(&self, account: u64, mailbox: u32) -> Result<UidSet> {
        mail::uids(&self.client().await?, account, mailbox).await.map_err(store)
    }

    async fn flag_index(&self, account: u64, mailbox: u32) -> Result<FlagIndex> {
        mail::flag_index(&self.client().await?, account, mailbox).await.map_err(store)
    }

    async fn entries(&self, account: u64, mailbox: u32, uids: &UidSet) -> Result<Vec<MailEntry>> {
        mail::entries(&self.client().await?, account, mailbox, uids).await.map_err(store)
    }

    async fn search_rows(&self, account: u64, mailbox: u32, uids: &UidSet) -> Result<SearchRows> {
        mail::search_rows(&self.client().await?, account, mailbox, uids).await.map_err(store)
    }

    async fn keep_search_rows(&self, account: u64, mailbox: u32, rows: Vec<(u32, Bytes)>) -> Result<()> {
        // Derived data: on the lazy pool, durable with a later commit.
        let mut client = self.lazy_client().await?;
        let run = async {
            let tx = client.transaction().await?;
            mail::keep_search_rows(&tx, account, mailbox, &rows).await?;
            tx.commit().await?;
            Ok::<(), Fail>(())
        };
        run.await.map_err(store)
    }

    async fn append(&self, account: u64, mailbox: u32, message: Append) -> Result<Appended> {
        let id = self.take_id().await?;
        in_txn!(self, |tx, ann| { mail::append(&tx, &mut ann, account, mailbox, id, message.clone()).await? })
    }

    async fn set_flags(&self, account: u64, mailbox: u32, uids: &UidSet, change: &FlagChange) -> Result<FlagsOutcome> {
        in_txn!(self, |tx, ann| { mail::set_flags(&tx, &mut ann, account, mailbox, uids, change).await? })
    }

    async fn copy(&self, account: u64, from: u32, uids: &UidSet, to: u32) -> Result<CopyResult> {
        in_txn!(self, |tx, ann| { mail::copy(&tx, &mut ann, account, from, uids, to).await? })
    }

    async fn move_messages(&self, account: u64, from: u32, uids: &UidSet, to: u32) -> Result<CopyResult> {
        in_txn!(self, |tx, ann| {
            let copied = mail::copy(&tx, &mut ann, account, from, uids, to).await?;
            let moved: UidSet = copied.mapping.iter().map(|&(src, _)| src).collect();
            mail::expunge(&tx, &mut ann, account, from, &moved).await?;
            copied
        })
    }

    async fn expunge(&self, account: u64, mailbox: u32, uids: &UidSet) -> Result<Vec<u32>> {
        in_txn!(self, |tx, ann| { mail::expunge(&tx, &mut ann, account, mailbox, uids).await? })
    }

    fn watch(&self, account: u64) -> ChangeFeed {
        self.hub.watch(account)
    }
}

#[async_trait]
impl Queue for PostgresStore {
    async fn queue_entry(&self, id: u64) -> Result<Option<QueueEntry>> {
        queue::get(&self.client().await?, id).await.map_err(store)
    }

    async fn queue_entries(&self) -> Result<Vec<QueueEntry>> {
        queue::list(&self.client().await?).await.map_err(store)
    }

    async fn queue_next_due(&self) -> Result<Option<u64>> {
        queue::next_due(&self.client().await?).await.map_err(store)
    }

    async fn queue_claim(&self, owner: &str, now: u64, limit: usize, lease_until: u64) -> Result<Vec<QueueEntry>> {
        in_txn!(self, |tx, ann| { queue::claim(&tx, owner, now, limit, lease_until).await? })
    }

    async fn queue_renew(&self, owner: &str, id: u64, lease_until: u64) -> Result<()> {
        in_txn!(self, |tx, ann| { queue::renew(&tx, owner, id, lease_until).await? })
    }

    fn queue_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.heard.queue.subscribe())
    }

    async fn queue_recover(&self, owner: &str) -> Result<usize> {
        // The leases dropped make entries due now, for every node.
        in_txn!(self, |tx, ann| {
            ann.queue_changed();
            queue::recover(&tx, owner).await?
        })
    }

    async fn queue_commit(
        &self,
        entry: &QueueEntry,
        file_into: &[u64],
        new: Vec<Incoming>,
        traces: Vec<TraceWrite>,
    ) -> Result<Committed> {
        let new = self.queue_ids(new).await?;
        in_txn!(self, |tx, ann| {
            let now = now_secs();
            let committed = queue::commit(&tx, &mut ann, entry, file_into, &new, now).await?;
            // Rescheduled, removed, or new DSNs: other nodes' next due time may change.
            ann.queue_changed();
            kv::trace_write(&tx, &traces, now).await?;
            for (incoming, _) in &new {
                kv::trace_write(&tx, &incoming.traces, now).await?;
            }
            committed
        })
    }
}

#[async_trait]
impl Kv for PostgresStore {
    async fn kv_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        kv::get(&self.lazy_client().await?, namespace, key, now_secs()).await.map_err(store)
    }

    async fn kv_set(&self, namespace: &str, key: &[u8], value: &[u8], ttl_secs: Option<u64>) -> Result<()> {
        kv::set(&self.lazy_client().await?, namespace, key, value, ttl_secs, now_secs()).await.map_err(store)
    }

    async fn kv_delete(&self, namespace: &str, key: &[u8]) -> Result<()> {
        kv::delete(&self.lazy_client().await?, namespace, key).await.map_err(store)
    }

    async fn kv_incr(&self, namespace: &str, key: &[u8], delta: i64, ttl_secs: Option<u64>) -> Result<i64> {
        kv::incr(&self.lazy_client().await?, namespace, key, delta, ttl_secs, now_secs()).await.map_err(store)
    }

    async fn kv_sweep(&self, limit: usize) -> Result<usize> {
        kv::sweep(&self.lazy_client().await?, limit, now_secs()).await.map_err(store)
    }
}

#[async_trait]
impl Traces for PostgresStore {
    fn trace_put(&self, records: &[TraceWrite]) {
        self.traces.put(records, now_secs());
    }

    async fn trace_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = now_secs();
        if let Some(waiting) = self.traces.get(key, now) {
            return Ok(waiting);
        }
        kv::trace_get(&self.lazy_client().await?, key, now).await.map_err(store)
    }

    async fn trace_scan(&self, prefix: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let now = now_secs();
        // Waiting records first, the database second: a record the writer
        // takes out of memory was committed before it went, so the later
        // read finds it. (The other order lost a record written between
        // the two reads: the battery's traces_without_a_change_read_at_once
        // failed once in CI.)
        let waiting = self.traces.under(prefix, now);
        let stored = kv::trace_scan(&self.lazy_client().await?, prefix, limit, now).await.map_err(store)?;
        // Records still waiting to be written replace (or hide, if expired)
        // what the database holds under their keys.
        let mut merged: std::collections::BTreeMap<String, Option<Vec<u8>>> =
            stored.into_iter().map(|(k, v)| (k, Some(v))).collect();
        merged.extend(waiting);
        Ok(merged.into_iter().filter_map(|(k, v)| Some((k, v?))).take(limit).collect())
    }

    async fn trace_sweep(&self, trim_prefix: &str, keep: usize) -> Result<usize> {
        kv::trace_sweep(&self.lazy_client().await?, trim_prefix, keep, now_secs()).await.map_err(store)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn size_on_disk(&self) -> Result<u64> {
        let c = self.client().await?;
        let row =
            c.query_one("SELECT pg_database_size(current_database())", &[]).await.map_err(super::error::pg_error)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn close(&self) -> Result<()> {
        self.stop_tasks();
        self.pool.close();
        self.lazy.close();
        Ok(())
    }
}
