//! Decision traces in the `records` tree. Values are expiry u64 BE ++ the
//! record, as in kv.
//!
//! Two ways in, neither a write of its own:
//! - a message's record rides on the change that accepts the message (or
//!   ends a delivery attempt): [`stage`] puts it in that change's
//!   transaction, so it is in the same journal record and the same flush;
//! - a record with no change to ride on (a refused transaction) waits in
//!   [`Pending`], in memory, and the writer adds it to the next commit
//!   group it makes anyway, or to a group of its own after a second of
//!   idleness. Such a record may be lost in a crash; the buffer is
//!   bounded ([`MAX_PENDING`]) and drops what does not fit.
//!
//! Reads see the buffer as well as the tree, so a record is readable as
//! soon as it is put.

use super::keys::T;
use super::kv::{join, live, split};
use super::sled_error;
use super::trees::Trees;
use super::txn::{Staged, Txn};
use crate::Result;
use crate::schema::TraceWrite;
use sled::IVec;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Records waiting for a commit group at most: past this, new ones are
/// dropped (a flood of refusals must not grow memory without bound).
pub(crate) const MAX_PENDING: usize = 20_000;
/// Pending records at which the writer is woken to make a group of them
/// rather than wait for its idle second.
pub(crate) const WAKE_AT: usize = 512;

/// Stages `write` in the change's transaction.
pub(crate) fn stage(txn: &mut Txn, write: &TraceWrite, now: u64) {
    let expires = now.saturating_add(write.ttl_secs.max(1));
    txn.put(T::Records, write.key.as_bytes(), join(expires, &write.record));
}

/// Records put without a change of their own, on their way to the tree.
#[derive(Default)]
pub(crate) struct Pending {
    inner: Mutex<Buffers>,
}

#[derive(Default)]
struct Buffers {
    /// Put since the writer last took them.
    waiting: BTreeMap<String, IVec>,
    /// Taken by the writer for the group it is committing: still read
    /// from here until the group is in the tree.
    in_flight: BTreeMap<String, IVec>,
    /// The writer was woken for the records waiting.
    woken: bool,
    /// Records dropped since the last warning.
    dropped: u64,
}

/// What [`Pending::put`] asks of the caller.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Put {
    Kept,
    /// Kept; wake the writer.
    KeptWake,
    /// The buffer is full: dropped.
    Dropped,
}

impl Pending {
    pub fn put(&self, records: &[TraceWrite], now: u64) -> Put {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if b.waiting.len() + records.len() > MAX_PENDING {
            if b.dropped == 0 {
                tracing::warn!(
                    pending = b.waiting.len(),
                    "trace: too many records waiting for the store; dropping traces of refused transactions"
                );
            }
            b.dropped += records.len() as u64;
            return Put::Dropped;
        }
        for r in records {
            let expires = now.saturating_add(r.ttl_secs.max(1));
            b.waiting.insert(r.key.clone(), join(expires, &r.record).into());
        }
        if b.waiting.len() >= WAKE_AT && !b.woken {
            b.woken = true;
            return Put::KeptWake;
        }
        Put::Kept
    }

    pub fn is_empty(&self) -> bool {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).waiting.is_empty()
    }

    /// The writer takes what waits into `group` (earlier than the group's
    /// own changes, which win on the same key).
    pub fn take_into(&self, group: &mut Staged) {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let taken = std::mem::take(&mut b.waiting);
        for (k, v) in &taken {
            group.insert((T::Records, k.as_bytes().to_vec()), Some(v.clone()));
        }
        b.in_flight.extend(taken);
        b.woken = false;
        if b.dropped > 0 {
            tracing::warn!(dropped = b.dropped, "trace: records of refused transactions were dropped");
            b.dropped = 0;
        }
    }

    /// The group that took them is in the tree (or failed: they are lost).
    pub fn landed(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).in_flight.clear();
    }

    fn get(&self, key: &str) -> Option<IVec> {
        let b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        b.waiting.get(key).or_else(|| b.in_flight.get(key)).cloned()
    }

    fn scan(&self, prefix: &str) -> Vec<(String, IVec)> {
        let b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: BTreeMap<String, IVec> = BTreeMap::new();
        for map in [&b.in_flight, &b.waiting] {
            for (k, v) in map.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix)) {
                out.insert(k.clone(), v.clone());
            }
        }
        out.into_iter().collect()
    }
}

pub(crate) fn get(trees: &Trees, pending: &Pending, key: &str, now: u64) -> Result<Option<Vec<u8>>> {
    let raw = match pending.get(key) {
        Some(raw) => Some(raw),
        None => trees.tree(T::Records).get(key.as_bytes()).map_err(sled_error)?,
    };
    Ok(raw.and_then(|raw| {
        let (exp, v) = split(&raw);
        live(exp, now).then(|| v.to_vec())
    }))
}

pub(crate) fn scan(
    trees: &Trees,
    pending: &Pending,
    prefix: &str,
    limit: usize,
    now: u64,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut all: BTreeMap<String, IVec> = BTreeMap::new();
    for item in trees.tree(T::Records).scan_prefix(prefix.as_bytes()) {
        let (k, v) = item.map_err(sled_error)?;
        if live(split(&v).0, now) {
            all.insert(String::from_utf8_lossy(&k).into_owned(), v);
            if all.len() >= limit {
                break;
            }
        }
    }
    // Newer than the tree's.
    all.extend(pending.scan(prefix));
    Ok(all
        .into_iter()
        .filter_map(|(k, v)| {
            let (exp, record) = split(&v);
            live(exp, now).then(|| (k, record.to_vec()))
        })
        .take(limit)
        .collect())
}

pub(crate) fn sweep(trees: &Trees, trim_prefix: &str, keep: usize, now: u64) -> Result<usize> {
    let records = trees.tree(T::Records);
    let mut removed = 0;
    let mut remove = |k: &sled::IVec, v: sled::IVec| -> Result<()> {
        // Only if unchanged since read (a concurrent put wins).
        if records.compare_and_swap(k, Some(v), None::<&[u8]>).map_err(sled_error)?.is_ok() {
            removed += 1;
        }
        Ok(())
    };
    for item in records.iter() {
        let (k, v) = item.map_err(sled_error)?;
        if !live(split(&v).0, now) {
            remove(&k, v)?;
        }
    }
    let under = records.scan_prefix(trim_prefix.as_bytes()).count();
    if under > keep {
        for item in records.scan_prefix(trim_prefix.as_bytes()).take(under - keep) {
            let (k, v) = item.map_err(sled_error)?;
            remove(&k, v)?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: &str, record: &[u8], ttl_secs: u64) -> TraceWrite {
        TraceWrite { key: key.into(), record: record.to_vec(), ttl_secs }
    }

    /// Puts through the buffer and lands it in the tree, as the writer does.
    fn land(trees: &Trees, pending: &Pending, records: &[TraceWrite], now: u64) {
        assert_ne!(pending.put(records, now), Put::Dropped);
        let mut group = Staged::new();
        pending.take_into(&mut group);
        for ((t, k), v) in group {
            trees.tree(t).insert(k, v.unwrap()).unwrap();
        }
        pending.landed();
    }

    #[test]
    fn records_expire_and_the_oldest_are_trimmed_to_a_count() {
        let dir = tempfile::tempdir().unwrap();
        let trees = Trees::open_at(dir.path(), &Default::default(), None).unwrap();
        let pending = Pending::default();
        land(&trees, &pending, &[write("m/1", b"one", 10), write("s/a/0", b"@m/1", 10)], 100);
        for n in 0..5 {
            land(&trees, &pending, &[write(&format!("s/b/{n}"), b"refused", 1000)], 100);
        }
        assert_eq!(get(&trees, &pending, "s/a/0", 105).unwrap(), Some(b"@m/1".to_vec()), "each key its own record");
        assert_eq!(get(&trees, &pending, "m/1", 110).unwrap(), None, "expired at its deadline");
        assert_eq!(scan(&trees, &pending, "s/b/", 3, 105).unwrap().len(), 3, "at most the limit");
        // m/1 and s/a/0 expired (2), then s/ keeps its last 3 of 5 (2 more).
        assert_eq!(sweep(&trees, "s/", 3, 200).unwrap(), 4);
        let left: Vec<String> = scan(&trees, &pending, "s/", 10, 200).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(left, ["s/b/2", "s/b/3", "s/b/4"]);
    }

    #[test]
    fn a_pending_record_reads_before_it_reaches_the_tree_and_the_buffer_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let trees = Trees::open_at(dir.path(), &Default::default(), None).unwrap();
        let pending = Pending::default();
        land(&trees, &pending, &[write("s/a/0", b"old", 100)], 1);
        assert_eq!(pending.put(&[write("s/a/0", b"new", 100), write("s/a/1", b"two", 100)], 1), Put::Kept);
        assert_eq!(get(&trees, &pending, "s/a/0", 2).unwrap(), Some(b"new".to_vec()), "the buffer is newer");
        let seen: Vec<_> = scan(&trees, &pending, "s/a/", 10, 2).unwrap();
        assert_eq!(seen, [("s/a/0".to_string(), b"new".to_vec()), ("s/a/1".to_string(), b"two".to_vec())]);
        // Taken by the writer, not yet applied: still readable.
        let mut group = Staged::new();
        pending.take_into(&mut group);
        assert_eq!(group.len(), 2);
        assert_eq!(get(&trees, &pending, "s/a/1", 2).unwrap(), Some(b"two".to_vec()));
        pending.landed();
        assert!(pending.is_empty());

        let many: Vec<TraceWrite> = (0..WAKE_AT).map(|n| write(&format!("s/c/{n:05}"), b"x", 100)).collect();
        assert_eq!(pending.put(&many[..WAKE_AT - 1], 1), Put::Kept);
        assert_eq!(pending.put(&many[WAKE_AT - 1..], 1), Put::KeptWake, "wakes the writer once");
        assert_eq!(pending.put(&[write("s/d/0", b"x", 100)], 1), Put::Kept);
        let full: Vec<TraceWrite> = (0..MAX_PENDING).map(|n| write(&format!("s/e/{n:05}"), b"x", 100)).collect();
        assert_eq!(pending.put(&full, 1), Put::Dropped);
        assert_eq!(get(&trees, &pending, "s/e/00000", 2).unwrap(), None, "nothing of a dropped put is kept");
    }
}
