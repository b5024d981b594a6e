//! The per-mailbox flag index (schema version 3): for each system flag, and
//! for "has a keyword", the UIDs carrying it, chunked like the mailbox's UID
//! set ([`super::uidchunk`]); and the mailbox's keywords by name. Every
//! change to a message's flags updates it in the same transaction, so it is
//! exact; SELECT reads it instead of every message.
//!
//! | tree          | key                                                  | value |
//! |---------------|------------------------------------------------------|-------|
//! | `flag_chunks` | account u64 ++ mailbox u32 ++ flag u8 ++ chunk u32   | [`super::uidchunk`] encoding |
//! | `keywords`    | account u64 ++ mailbox u32 ++ lower-case keyword     | the keyword as first set |
//!
//! Flag numbers 0..=4 are the bits of [`Flags`]; [`WITH_KEYWORDS`] is "has
//! at least one keyword". A delivered message has no flags: filing it
//! touches neither tree.

use super::keys::{self, T};
use super::trees::Trees;
use super::txn::Txn;
use super::{sled_error, uidchunk};
use crate::Result;
use crate::schema::{FlagIndex, Flags, MailEntry, UidSet};

/// The pseudo-flag "has at least one keyword".
const WITH_KEYWORDS: u8 = Flags::COUNT as u8;

fn flag_prefix(account: u64, mailbox: u32, flag: u8) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..12].copy_from_slice(&keys::mailbox_key(account, mailbox));
    k[12] = flag;
    k
}

fn keyword_key(account: u64, mailbox: u32, keyword: &str) -> Vec<u8> {
    let mut k = keys::mailbox_key(account, mailbox).to_vec();
    k.extend_from_slice(keyword.to_ascii_lowercase().as_bytes());
    k
}

/// The index's flag numbers a message with these flags and keywords has.
fn flag_numbers(flags: Flags, has_keywords: bool) -> impl Iterator<Item = u8> {
    (0..Flags::COUNT as u8).filter(move |&bit| flags.0 & (1 << bit) != 0).chain(has_keywords.then_some(WITH_KEYWORDS))
}

/// Flag changes of one transaction, applied per flag in UID order.
#[derive(Default)]
pub(crate) struct Pending {
    /// (flag, uid, set or cleared)
    changes: Vec<(u8, u32, bool)>,
    keywords: Vec<String>,
}

impl Pending {
    /// A message gains `flags`/`keywords` (new in the mailbox).
    pub fn added(&mut self, uid: u32, flags: Flags, keywords: &[String]) {
        self.changes.extend(flag_numbers(flags, !keywords.is_empty()).map(|f| (f, uid, true)));
        self.keywords.extend(keywords.iter().cloned());
    }

    /// A message leaves the mailbox.
    pub fn removed(&mut self, entry: &MailEntry) {
        let numbers = flag_numbers(entry.flags, !entry.keywords.is_empty());
        self.changes.extend(numbers.map(|f| (f, entry.uid, false)));
    }

    /// A message's flags change from `before` to `after`.
    pub fn changed(&mut self, uid: u32, before: (Flags, bool), after: (Flags, &[String])) {
        let old: Vec<u8> = flag_numbers(before.0, before.1).collect();
        let new: Vec<u8> = flag_numbers(after.0, !after.1.is_empty()).collect();
        self.changes.extend(old.iter().filter(|f| !new.contains(f)).map(|&f| (f, uid, false)));
        self.changes.extend(new.iter().filter(|f| !old.contains(f)).map(|&f| (f, uid, true)));
        self.keywords.extend(after.1.iter().cloned());
    }

    pub fn apply(mut self, txn: &mut Txn, account: u64, mailbox: u32) -> Result<()> {
        self.changes.sort_unstable();
        for group in self.changes.chunk_by(|a, b| a.0 == b.0 && a.2 == b.2) {
            let (flag, _, set) = group[0];
            let uids: Vec<u32> = group.iter().map(|c| c.1).collect();
            uidchunk::update(txn, T::FlagChunks, &flag_prefix(account, mailbox, flag), &uids, set)?;
        }
        for keyword in self.keywords {
            let key = keyword_key(account, mailbox, &keyword);
            if txn.get(T::Keywords, &key)?.is_none() {
                txn.put(T::Keywords, &key, keyword.as_bytes());
            }
        }
        Ok(())
    }
}

/// Forgets a removed mailbox's keywords (its flag chunks went with its
/// messages).
pub(crate) fn clear(txn: &mut Txn, account: u64, mailbox: u32) -> Result<()> {
    for t in [T::FlagChunks, T::Keywords] {
        for (key, _) in txn.scan_prefix(t, &keys::mailbox_key(account, mailbox))? {
            txn.del(t, &key);
        }
    }
    Ok(())
}

pub(crate) fn read(trees: &Trees, account: u64, mailbox: u32) -> Result<FlagIndex> {
    let mut index = FlagIndex::default();
    for (bit, set) in index.system.iter_mut().enumerate() {
        *set = uidchunk::read(trees, T::FlagChunks, &flag_prefix(account, mailbox, bit as u8))?;
    }
    index.with_keywords = uidchunk::read(trees, T::FlagChunks, &flag_prefix(account, mailbox, WITH_KEYWORDS))?;
    for v in trees.tree(T::Keywords).scan_prefix(keys::mailbox_key(account, mailbox)).values() {
        index.keywords.push(String::from_utf8_lossy(&v.map_err(sled_error)?).into_owned());
    }
    Ok(index)
}

/// Builds the index of every mailbox from its messages (the migration to
/// version 3; nothing else runs yet). Starts from empty trees, so a crash
/// half-way just builds it again.
pub(crate) fn build(trees: &Trees) -> Result<()> {
    for t in [T::FlagChunks, T::Keywords] {
        trees.tree(t).clear().map_err(sled_error)?;
    }
    let mut current: Option<(u64, u32)> = None;
    let mut sets: Vec<UidSet> = vec![UidSet::new(); Flags::COUNT + 1];
    let flush = |at: (u64, u32), sets: &mut Vec<UidSet>| -> Result<()> {
        for (flag, set) in sets.iter_mut().enumerate() {
            uidchunk::write(trees, T::FlagChunks, &flag_prefix(at.0, at.1, flag as u8), set)?;
            *set = UidSet::new();
        }
        Ok(())
    };
    for kv in trees.tree(T::Mail).iter() {
        let (k, v) = kv.map_err(sled_error)?;
        let account = k.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes).unwrap_or(0);
        let at = (account, keys::mailbox_of_key(&k));
        if current.is_some_and(|c| c != at) {
            flush(current.expect("checked"), &mut sets)?;
        }
        current = Some(at);
        let entry: MailEntry = keys::decode("mail", &v)?;
        for f in flag_numbers(entry.flags, !entry.keywords.is_empty()) {
            sets[f as usize].insert(entry.uid);
        }
        for keyword in &entry.keywords {
            let key = keyword_key(at.0, at.1, keyword);
            if trees.tree(T::Keywords).get(&key).map_err(sled_error)?.is_none() {
                trees.tree(T::Keywords).insert(key, keyword.as_bytes()).map_err(sled_error)?;
            }
        }
    }
    if let Some(at) = current {
        flush(at, &mut sets)?;
    }
    Ok(())
}
