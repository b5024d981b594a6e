//! Changes to the queue. An entry's `next_attempt` is where it sits in the
//! `schedule` tree: its due time, or its lease's end while claimed.

use super::keys::{self, T};
use super::ops_mail::{self, NewEntry};
use super::txn::Txn;
use crate::schema::{Committed, Filing, Flags, Incoming, Lease, QueueEntry};
use crate::{Result, StoreError};

/// Writes an entry and its schedule key (the caller removed any old one).
pub(crate) fn put_entry(txn: &mut Txn, entry: &QueueEntry) {
    txn.put_rec(T::Queue, &keys::u64_key(entry.id), entry);
    txn.put(T::Schedule, &keys::schedule_key(entry.next_attempt, entry.id), &[][..]);
}

fn load(txn: &Txn, id: u64) -> Result<QueueEntry> {
    txn.get_rec(T::Queue, &keys::u64_key(id))?.ok_or_else(|| StoreError::NoSuchQueueEntry(crate::schema::format_id(id)))
}

fn unschedule(txn: &mut Txn, entry: &QueueEntry) {
    txn.del(T::Schedule, &keys::schedule_key(entry.next_attempt, entry.id));
}

pub(crate) fn claim(txn: &mut Txn, owner: &str, now: u64, limit: usize, until: u64) -> Result<Vec<QueueEntry>> {
    let due = txn.range(T::Schedule, &[], Some(&keys::schedule_key(now.saturating_add(1), 0)), limit)?;
    let mut claimed = Vec::with_capacity(due.len());
    for (key, _) in due {
        txn.del(T::Schedule, &key);
        let Some((_, id)) = keys::split_schedule_key(&key) else { continue };
        // A schedule key without its entry is harmless and dropped.
        let Some(mut entry) = txn.get_rec::<QueueEntry>(T::Queue, &keys::u64_key(id))? else { continue };
        entry.lease = Some(Lease { owner: owner.to_string(), until });
        entry.next_attempt = until;
        put_entry(txn, &entry);
        claimed.push(entry);
    }
    Ok(claimed)
}

pub(crate) fn renew(txn: &mut Txn, owner: &str, id: u64, until: u64) -> Result<()> {
    let mut entry = load(txn, id)?;
    if entry.lease.as_ref().is_some_and(|l| l.owner != owner) {
        return Err(StoreError::LeaseLost(crate::schema::format_id(id)));
    }
    unschedule(txn, &entry);
    entry.lease = Some(Lease { owner: owner.to_string(), until });
    entry.next_attempt = until;
    put_entry(txn, &entry);
    Ok(())
}

/// One process owns an embedded store, so every lease is the previous
/// process's: all are dropped, and the schedule is rebuilt from the entries.
pub(crate) fn recover(txn: &mut Txn) -> Result<usize> {
    for (key, _) in txn.scan_prefix(T::Schedule, &[])? {
        txn.del(T::Schedule, &key);
    }
    let mut queued = 0;
    for (_, raw) in txn.scan_prefix(T::Queue, &[])? {
        let mut entry: QueueEntry = keys::decode("queue", &raw)?;
        entry.lease = None;
        match entry.due() {
            Some(due) => {
                entry.next_attempt = due;
                put_entry(txn, &entry);
                queued += 1;
            }
            None => {
                txn.del(T::Queue, &keys::u64_key(entry.id));
                ops_mail::add_refs(txn, entry.content, -1)?;
            }
        }
    }
    Ok(queued)
}

pub(crate) fn commit(
    txn: &mut Txn,
    entry: &QueueEntry,
    file_into: &[u64],
    new: &[Incoming],
    now: u64,
) -> Result<Committed> {
    let stored = load(txn, entry.id)?;
    if let Some(lease) = &stored.lease
        && entry.lease.as_ref().is_none_or(|mine| mine.owner != lease.owner)
    {
        return Err(StoreError::LeaseLost(crate::schema::format_id(entry.id)));
    }
    unschedule(txn, &stored);
    let mut filed = Vec::with_capacity(file_into.len());
    if !file_into.is_empty() {
        let content_len = ops_mail::content_len(txn, entry.content)?;
        for &account in file_into {
            let new = NewEntry {
                content: entry.content,
                content_len,
                return_path: Some(entry.sender.clone()),
                flags: Flags::empty(),
                keywords: Vec::new(),
                internal_date: now,
            };
            filed.push(ops_mail::file(txn, Filing::inbox(account), new)?.uid);
        }
    }
    let mut accepted = Vec::with_capacity(new.len());
    for incoming in new {
        let queue_id = match incoming.queue {
            Some(_) => Some(txn.new_id()?),
            None => None,
        };
        accepted.push(ops_mail::accept(txn, incoming, queue_id, now)?);
    }
    match entry.due() {
        None => {
            txn.del(T::Queue, &keys::u64_key(entry.id));
            ops_mail::add_refs(txn, entry.content, -1)?;
        }
        Some(due) => {
            let mut entry = entry.clone();
            entry.next_attempt = due;
            entry.lease = None;
            put_entry(txn, &entry);
        }
    }
    Ok(Committed { filed, accepted })
}
