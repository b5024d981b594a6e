//! Transactions of the embedded backend: the one place changes are staged.
//!
//! Every change runs on the writer thread ([`super::writer`]) as a function
//! of a [`Txn`]. A `Txn` reads through two overlays onto sled — its own
//! writes, then the writes of earlier changes in the same commit group — so
//! a change sees everything staged before it, and writes only into its own
//! overlay. If the change fails, its overlay is dropped and nothing of it
//! remains; if it succeeds, its overlay joins the group's, which the writer
//! makes durable as one unit. sled itself only ever receives whole groups.

use super::keys::{self, T};
use super::trees::Trees;
use crate::Result;
use crate::schema::Change;
use serde::{Serialize, de::DeserializeOwned};
use sled::IVec;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Staged writes: `None` deletes the key.
pub(crate) type Staged = BTreeMap<(T, Vec<u8>), Option<IVec>>;

pub(crate) struct Txn<'a> {
    trees: &'a Trees,
    group: &'a Staged,
    own: Staged,
    /// Announcements (account, change) to make once the group is durable.
    changes: Vec<(u64, Change)>,
    /// Content bytes written, for the free-space check.
    grows: u64,
}

impl<'a> Txn<'a> {
    pub fn new(trees: &'a Trees, group: &'a Staged) -> Self {
        Txn { trees, group, own: Staged::new(), changes: Vec::new(), grows: 0 }
    }

    pub fn into_parts(self) -> (Staged, Vec<(u64, Change)>) {
        (self.own, self.changes)
    }

    pub fn get(&self, t: T, key: &[u8]) -> Result<Option<IVec>> {
        let k = (t, key.to_vec());
        if let Some(v) = self.own.get(&k) {
            return Ok(v.clone());
        }
        if let Some(v) = self.group.get(&k) {
            return Ok(v.clone());
        }
        self.trees.tree(t).get(key).map_err(super::sled_error)
    }

    pub fn put(&mut self, t: T, key: &[u8], value: impl Into<IVec>) {
        self.own.insert((t, key.to_vec()), Some(value.into()));
    }

    pub fn del(&mut self, t: T, key: &[u8]) {
        self.own.insert((t, key.to_vec()), None);
    }

    pub fn get_rec<R: DeserializeOwned>(&self, t: T, key: &[u8]) -> Result<Option<R>> {
        self.get(t, key)?.map(|v| keys::decode(t.name(), &v)).transpose()
    }

    pub fn put_rec<R: Serialize>(&mut self, t: T, key: &[u8], record: &R) {
        self.put(t, key, keys::encode(record));
    }

    /// A new id, unique for the life of the store (sled's counter, which
    /// persists itself; an id taken by a failed change is simply skipped).
    pub fn new_id(&self) -> Result<u64> {
        self.trees.db.generate_id().map_err(super::sled_error)
    }

    /// The body segment files, to stage the bodies of new contents.
    pub fn segments(&self) -> &'a super::segments::Segments {
        &self.trees.segments
    }

    pub fn announce(&mut self, account: u64, change: Change) {
        self.changes.push((account, change));
    }

    pub fn add_growth(&mut self, bytes: u64) {
        self.grows += bytes;
    }

    pub fn growth(&self) -> u64 {
        self.grows
    }

    /// Keys and values with `prefix`, in key order, as this change sees them.
    pub fn scan_prefix(&self, t: T, prefix: &[u8]) -> Result<Vec<(Vec<u8>, IVec)>> {
        let hi = keys::prefix_end(prefix);
        self.range(t, prefix, hi.as_deref(), usize::MAX)
    }

    /// At most `limit` entries with `lo <= key < hi` (no `hi`: to the end).
    pub fn range(&self, t: T, lo: &[u8], hi: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, IVec)>> {
        // The overlays of this range, own writes over the group's: small.
        let bounds = |v: &Staged| -> Vec<(Vec<u8>, Option<IVec>)> {
            let upper = match hi {
                Some(hi) => Bound::Excluded((t, hi.to_vec())),
                None => Bound::Unbounded,
            };
            v.range((Bound::Included((t, lo.to_vec())), upper))
                .take_while(|((tree, _), _)| *tree == t)
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect()
        };
        let mut over: BTreeMap<Vec<u8>, Option<IVec>> = bounds(self.group).into_iter().collect();
        over.extend(bounds(&self.own));
        let tree = self.trees.tree(t);
        let disk = match hi {
            Some(hi) => tree.range(lo.to_vec()..hi.to_vec()),
            None => tree.range(lo.to_vec()..),
        };
        let mut disk = disk.peekable();
        let mut over = over.into_iter().peekable();
        let mut out = Vec::new();
        while out.len() < limit {
            let next_disk = match disk.peek() {
                Some(Ok((k, _))) => Some(k.to_vec()),
                Some(Err(_)) => return Err(super::sled_error(disk.next().and_then(|r| r.err()).expect("peeked"))),
                None => None,
            };
            let next_over = over.peek().map(|(k, _)| k.clone());
            match (next_disk, next_over) {
                (None, None) => break,
                (Some(d), o) if o.as_ref().is_none_or(|o| d < *o) => {
                    let (k, v) = disk.next().expect("peeked").map_err(super::sled_error)?;
                    out.push((k.to_vec(), v));
                }
                (d, Some(o)) => {
                    if d.as_ref() == Some(&o) {
                        disk.next();
                    }
                    let (k, v) = over.next().expect("peeked");
                    if let Some(v) = v {
                        out.push((k, v));
                    }
                }
                (Some(_), None) => unreachable!("covered by the first arm"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_own_writes_over_the_group_over_disk_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let trees = Trees::open_at(dir.path(), &Default::default(), None).unwrap();
        let meta = trees.tree(T::Meta);
        for k in [b"a1", b"a3", b"a5", b"b1"] {
            meta.insert(k, &b"disk"[..]).unwrap();
        }
        let mut group = Staged::new();
        group.insert((T::Meta, b"a2".to_vec()), Some(IVec::from(&b"group"[..])));
        group.insert((T::Meta, b"a3".to_vec()), None);
        group.insert((T::Mail, b"a4".to_vec()), Some(IVec::from(&b"other tree"[..])));
        let mut txn = Txn::new(&trees, &group);
        txn.put(T::Meta, b"a5", &b"own"[..]);
        txn.put(T::Meta, b"a0", &b"own"[..]);
        txn.del(T::Meta, b"a1");
        let got: Vec<(Vec<u8>, Vec<u8>)> =
            txn.scan_prefix(T::Meta, b"a").unwrap().into_iter().map(|(k, v)| (k, v.to_vec())).collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> = [(b"a0", &b"own"[..]), (b"a2", b"group"), (b"a5", b"own")]
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(txn.range(T::Meta, b"a", None, 2).unwrap().len(), 2, "the limit holds");
        assert_eq!(txn.get(T::Meta, b"a3").unwrap(), None, "a group delete hides the disk value");
        assert_eq!(txn.get(T::Meta, b"b1").unwrap().as_deref(), Some(&b"disk"[..]));
    }
}
