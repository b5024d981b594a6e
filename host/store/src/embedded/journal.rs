//! The commit journal: what makes a commit group atomic without a sled
//! transaction.
//!
//! A sled transaction (or batch) costs two log writes of its own, each
//! followed by a `sync_file_range`: it rolls sled's io buffer and writes its
//! batch manifest alone (`pin_log`). It also switches every later sled read
//! and write, for the life of the process, onto one global read-write lock.
//! Instead:
//! 1. the group's new message bodies are inserted under fresh keys, which
//!    nothing refers to yet;
//! 2. everything else the group writes becomes one journal record, one
//!    plain insert, which sled keeps or loses whole;
//! 3. the group's writes are applied to their trees with plain inserts;
//! 4. one flush (and `fdatasync`, [`super::durable`]) makes all of it durable;
//!    the record is then removed (durable with the next flush).
//!
//! After a crash, sled recovers a prefix of the log it was given: if a
//! record survived, so did the bodies inserted before it, while some of the
//! writes after it may be lost. Opening the store ([`replay`]) applies every
//! record left (applying one again sets the same values) before anything
//! reads, then removes it. A record left can only be the last group's:
//! its removal precedes every write of the next group in the log, so
//! nothing newer than it can have survived when it did.
//!
//! A crash between steps 1 and 2 reaching the disk leaves bodies no record
//! refers to, of messages whose senders were never answered: space lost,
//! at most one group's, never content a reader can reach.

use super::keys::T;
use super::sled_error;
use super::txn::Staged;
use crate::{Result, StoreError};
use serde::{Deserialize, Serialize};
use sled::IVec;

/// sled's tree of journal records, keyed by a big-endian sequence number.
pub(crate) const JOURNAL_TREE: &str = "commit_journal";

/// One write of a group: the tree by name (stable across versions), key,
/// and the new value (`None`: removed).
#[derive(Serialize, Deserialize)]
struct Write<'a> {
    tree: &'a str,
    key: &'a [u8],
    #[serde(borrow)]
    value: Option<&'a [u8]>,
}

/// Whether a write goes straight to its tree before the record (step 1):
/// a new body. Bodies are written once under a fresh id and only removed
/// afterwards, so a `Some` is always a new one.
pub(crate) fn is_new_body(t: T, value: &Option<IVec>) -> bool {
    t == T::Bodies && value.is_some()
}

/// The journal record of `group`: every write but the new bodies.
pub(crate) fn record(group: &Staged) -> Vec<u8> {
    let writes: Vec<Write> = group
        .iter()
        .filter(|((t, _), v)| !is_new_body(*t, v))
        .map(|((t, k), v)| Write { tree: t.name(), key: k, value: v.as_deref() })
        .collect();
    bincode::serialize(&writes).expect("serializing to memory")
}

fn tree_named(name: &str) -> Result<T> {
    T::ALL
        .into_iter()
        .find(|t| t.name() == name)
        .ok_or_else(|| StoreError::Corrupt { area: "journal", detail: format!("unknown tree {name:?}") })
}

/// Applies the records left by a crash, oldest first, and removes them;
/// durable with the caller's next flush (after which a record can no longer
/// be there without its writes). Returns how many there were.
pub(crate) fn replay(journal: &sled::Tree, trees: &[sled::Tree]) -> Result<usize> {
    let mut n = 0;
    for entry in journal.iter() {
        let (key, raw) = entry.map_err(sled_error)?;
        let writes: Vec<Write> = bincode::deserialize(&raw)
            .map_err(|e| StoreError::Corrupt { area: "journal", detail: format!("record: {e}") })?;
        for w in writes {
            let tree = &trees[tree_named(w.tree)? as usize];
            match w.value {
                Some(v) => tree.insert(w.key, v).map_err(sled_error)?,
                None => tree.remove(w.key).map_err(sled_error)?,
            };
        }
        journal.remove(key).map_err(sled_error)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_left_by_a_crash_is_applied_once_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let trees: Vec<sled::Tree> = T::ALL.iter().map(|t| db.open_tree(t.name()).unwrap()).collect();
        let journal = db.open_tree(JOURNAL_TREE).unwrap();
        trees[T::Meta as usize].insert(b"gone", &b"before"[..]).unwrap();
        let mut group = Staged::new();
        group.insert((T::Mail, b"m".to_vec()), Some(IVec::from(&b"entry"[..])));
        group.insert((T::Meta, b"gone".to_vec()), None);
        group.insert((T::Bodies, b"b".to_vec()), Some(IVec::from(&b"body"[..])));
        journal.insert(7u64.to_be_bytes(), record(&group)).unwrap();
        // The crash lost the writes after the record.
        assert_eq!(replay(&journal, &trees).unwrap(), 1);
        assert_eq!(trees[T::Mail as usize].get(b"m").unwrap().as_deref(), Some(&b"entry"[..]));
        assert_eq!(trees[T::Meta as usize].get(b"gone").unwrap(), None);
        assert_eq!(
            trees[T::Bodies as usize].get(b"b").unwrap(),
            None,
            "bodies are written before, not from, the record"
        );
        assert!(journal.is_empty());
        // Applying again changes nothing.
        assert_eq!(replay(&journal, &trees).unwrap(), 0);
    }
}
