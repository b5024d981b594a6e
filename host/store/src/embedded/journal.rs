//! The commit journal: what makes a commit group atomic and durable with
//! one `fdatasync`.
//!
//! A group's sled writes become one journal record, appended to the active
//! segment file ([`super::segments`]) after the group's new bodies and
//! summaries; the group's one `pwrite` and `fdatasync` of that file is its
//! commit. Only then are the writes applied to sled, with plain inserts
//! and no flush of sled: sled is made durable every
//! [`super::writer::CHECKPOINT_EVERY`] (a checkpoint), which first records
//! in sled where the journal records it covers end ([`CHECKPOINT_KEY`]).
//!
//! Opening the store ([`replay`]) applies every record after the last
//! checkpoint, oldest first, before anything reads. sled recovers a prefix
//! of what it was given, so it may hold some writes of those groups, even
//! of later ones than an earlier record: applying all of them again, in
//! order, ends in the state of the last one (applying a record again sets
//! the same values). The walk stops at the first record that is torn or
//! fails its checksum: the group it belongs to never completed its sync,
//! so no caller heard it succeeded. Before this layout (schema 4) the
//! record went into a sled tree and sled was flushed per group; a record
//! left there by a crash is applied on open too ([`replay_legacy`]).
//!
//! A segment may only be deleted once a checkpoint lies past it (the
//! writer checks before compaction removes one), so no record after the
//! checkpoint is ever missing. A group that failed after its record was
//! written (a sync or sled error; the callers were told) must not come
//! back on the next open: the writer reopens the store with the walk
//! stopping at that group, and takes a checkpoint past it at once.

use super::keys::T;
use super::segments::{Pos, Segments};
use super::sled_error;
use super::txn::Staged;
use crate::{Result, StoreError};
use serde::{Deserialize, Serialize};

/// sled's tree of journal records of schema 4, keyed by a big-endian
/// sequence number.
pub(crate) const JOURNAL_TREE: &str = "commit_journal";

/// In the meta tree: the [`Pos`] just past the last journal record whose
/// writes a sled flush made durable. Absent: the store was last opened by
/// schema 4 or earlier, and has no records in its segments.
pub(crate) const CHECKPOINT_KEY: &[u8] = b"journal_checkpoint";

/// The tag bit of journal records in the segment files (bit 63 marks
/// summaries; content ids never reach bit 62).
const JOURNAL_BIT: u64 = 1 << 62;

/// The tag of group `seq`'s record (the number only helps debugging).
pub(crate) fn tag(seq: u64) -> u64 {
    JOURNAL_BIT | (seq & (JOURNAL_BIT - 1))
}

pub(crate) fn is_journal(tag: u64) -> bool {
    tag & (JOURNAL_BIT | 1 << 63) == JOURNAL_BIT
}

/// One write of a group: the tree by name (stable across versions), key,
/// and the new value (`None`: removed).
#[derive(Serialize, Deserialize)]
struct Write<'a> {
    tree: &'a str,
    key: &'a [u8],
    #[serde(borrow)]
    value: Option<&'a [u8]>,
}

/// The journal record of `group`: every write, in order.
pub(crate) fn record(group: &Staged) -> Vec<u8> {
    let writes: Vec<Write> =
        group.iter().map(|((t, k), v)| Write { tree: t.name(), key: k, value: v.as_deref() }).collect();
    bincode::serialize(&writes).expect("serializing to memory")
}

fn tree_named(name: &str) -> Result<T> {
    T::ALL
        .into_iter()
        .find(|t| t.name() == name)
        .ok_or_else(|| StoreError::Corrupt { area: "journal", detail: format!("unknown tree {name:?}") })
}

fn apply(raw: &[u8], trees: &[sled::Tree]) -> Result<()> {
    let writes: Vec<Write> = bincode::deserialize(raw)
        .map_err(|e| StoreError::Corrupt { area: "journal", detail: format!("record: {e}") })?;
    for w in writes {
        let tree = &trees[tree_named(w.tree)? as usize];
        match w.value {
            Some(v) => tree.insert(w.key, v).map_err(sled_error)?,
            None => tree.remove(w.key).map_err(sled_error)?,
        };
    }
    Ok(())
}

/// The last checkpoint, if the store has one.
pub(crate) fn checkpoint(meta: &sled::Tree) -> Result<Option<Pos>> {
    meta.get(CHECKPOINT_KEY).map_err(sled_error)?.map(|raw| Pos::decode(&raw)).transpose()
}

/// Applies, oldest first, the records of the segment files from the last
/// checkpoint on, stopping at the first torn one and before any that
/// starts at or after `until` (a failed group's). Durable with the
/// caller's next checkpoint. Returns how many were applied.
pub(crate) fn replay(segments: &Segments, trees: &[sled::Tree], until: Option<Pos>) -> Result<usize> {
    let Some(from) = checkpoint(&trees[T::Meta as usize])? else { return Ok(0) };
    let mut n = 0;
    for (_, loc, raw) in segments.records_from(from, is_journal)? {
        if until.is_some_and(|until| Pos { segment: loc.segment, offset: loc.offset } >= until) {
            break;
        }
        apply(&raw, trees)?;
        n += 1;
    }
    Ok(n)
}

/// Applies the records a crash left in the journal tree of schema 4,
/// oldest first, and removes them; durable with the caller's next flush.
pub(crate) fn replay_legacy(journal: &sled::Tree, trees: &[sled::Tree]) -> Result<usize> {
    let mut n = 0;
    for entry in journal.iter() {
        let (key, raw) = entry.map_err(sled_error)?;
        apply(&raw, trees)?;
        journal.remove(key).map_err(sled_error)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sled::IVec;

    /// One write: tree, key, new value (None: removed).
    type W<'a> = (T, &'a [u8], Option<&'a [u8]>);

    fn open(dir: &std::path::Path) -> (sled::Db, Vec<sled::Tree>) {
        let db = sled::Config::new().path(dir).open().unwrap();
        let trees = T::ALL.iter().map(|t| db.open_tree(t.name()).unwrap()).collect();
        (db, trees)
    }

    fn group(writes: &[W]) -> Staged {
        writes.iter().map(|(t, k, v)| ((*t, k.to_vec()), v.map(IVec::from))).collect()
    }

    #[test]
    fn a_record_left_in_the_schema_4_tree_is_applied_once_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let (db, trees) = open(dir.path());
        let journal = db.open_tree(JOURNAL_TREE).unwrap();
        trees[T::Meta as usize].insert(b"gone", &b"before"[..]).unwrap();
        let g = group(&[(T::Mail, b"m", Some(b"entry")), (T::Meta, b"gone", None)]);
        journal.insert(7u64.to_be_bytes(), record(&g)).unwrap();
        // The crash lost the writes after the record.
        assert_eq!(replay_legacy(&journal, &trees).unwrap(), 1);
        assert_eq!(trees[T::Mail as usize].get(b"m").unwrap().as_deref(), Some(&b"entry"[..]));
        assert_eq!(trees[T::Meta as usize].get(b"gone").unwrap(), None);
        assert!(journal.is_empty());
        // Applying again changes nothing.
        assert_eq!(replay_legacy(&journal, &trees).unwrap(), 0);
    }

    #[test]
    fn records_after_the_checkpoint_are_applied_in_order_up_to_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, trees) = open(&dir.path().join("db"));
        let segments = Segments::open(dir.path(), 1 << 20).unwrap();
        let meta = &trees[T::Meta as usize];
        // Before the checkpoint: already in sled, never applied again.
        segments.stage(tag(0), &record(&group(&[(T::Mail, b"a", Some(b"old"))]))).unwrap();
        segments.sync().unwrap();
        meta.insert(CHECKPOINT_KEY, &segments.end().encode()[..]).unwrap();
        trees[T::Mail as usize].insert(b"a", &b"newer"[..]).unwrap();
        segments.stage(7, b"a body between records").unwrap();
        segments.stage(tag(1), &record(&group(&[(T::Mail, b"b", Some(b"1")), (T::Mail, b"c", Some(b"1"))]))).unwrap();
        segments.stage(tag(2), &record(&group(&[(T::Mail, b"b", Some(b"2")), (T::Mail, b"c", None)]))).unwrap();
        segments.sync().unwrap();
        // sled kept a later group's write but not an earlier one's.
        trees[T::Mail as usize].insert(b"c", &b"1"[..]).unwrap();
        assert_eq!(replay(&segments, &trees, None).unwrap(), 2);
        let mail = &trees[T::Mail as usize];
        assert_eq!(mail.get(b"a").unwrap().as_deref(), Some(&b"newer"[..]), "before the checkpoint");
        assert_eq!(mail.get(b"b").unwrap().as_deref(), Some(&b"2"[..]), "the last group wins");
        assert_eq!(mail.get(b"c").unwrap(), None);

        // A third group whose record was torn by the crash, and one after it.
        let third = segments.stage(tag(3), &record(&group(&[(T::Mail, b"d", Some(b"3"))]))).unwrap();
        segments.stage(tag(4), &record(&group(&[(T::Mail, b"e", Some(b"4"))]))).unwrap();
        segments.sync().unwrap();
        let path = dir.path().join(super::super::segments::SEGMENT_DIR).join(format!("{:016x}.seg", third.segment));
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"X", third.offset + super::super::segments::HEADER).unwrap();
        assert_eq!(replay(&segments, &trees, None).unwrap(), 2, "the walk ends at the torn record");
        assert_eq!(mail.get(b"d").unwrap(), None);
        assert_eq!(mail.get(b"e").unwrap(), None, "nothing after a torn record is applied");
    }

    #[test]
    fn the_walk_stops_before_a_failed_group() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, trees) = open(&dir.path().join("db"));
        let segments = Segments::open(dir.path(), 1 << 20).unwrap();
        trees[T::Meta as usize].insert(CHECKPOINT_KEY, &segments.end().encode()[..]).unwrap();
        segments.stage(tag(0), &record(&group(&[(T::Mail, b"ok", Some(b"1"))]))).unwrap();
        let failed = segments.end();
        segments.stage(9, b"the failed group's body").unwrap();
        segments.stage(tag(1), &record(&group(&[(T::Mail, b"failed", Some(b"1"))]))).unwrap();
        segments.sync().unwrap();
        assert_eq!(replay(&segments, &trees, Some(failed)).unwrap(), 1);
        assert!(trees[T::Mail as usize].get(b"ok").unwrap().is_some());
        assert_eq!(trees[T::Mail as usize].get(b"failed").unwrap(), None, "its callers were told it failed");
    }

    #[test]
    fn journal_tags_are_neither_bodies_nor_summaries() {
        use super::super::parts::Part;
        for content in [1u64, 42, (1 << 40) + 3] {
            assert!(!is_journal(Part::Body.tag(content)));
            assert!(!is_journal(Part::Summary.tag(content)));
        }
        assert!(is_journal(tag(0)) && is_journal(tag(u64::MAX)));
    }
}
