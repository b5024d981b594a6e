//! Reads of the embedded backend, straight from sled (which holds whole
//! commit groups only). Run on the blocking pool.

use super::keys::{self, AccountIndex, ContentRecord, T};
use super::parts::{self, Part};
use super::trees::Trees;
use super::{sled_error, uidchunk};
use crate::schema::{Account, MailEntry, MailboxInfo, QueueEntry, SearchRows, UidSet, normalize_address};
use crate::{Result, StoreError};
use bytes::Bytes;
use std::collections::HashSet;

fn get(trees: &Trees, t: T, key: &[u8]) -> Result<Option<sled::IVec>> {
    trees.tree(t).get(key).map_err(sled_error)
}

fn get_rec<R: serde::de::DeserializeOwned>(trees: &Trees, t: T, key: &[u8]) -> Result<Option<R>> {
    get(trees, t, key)?.map(|v| keys::decode(t.name(), &v)).transpose()
}

fn scan<R: serde::de::DeserializeOwned>(trees: &Trees, t: T, prefix: &[u8]) -> Result<Vec<R>> {
    trees.tree(t).scan_prefix(prefix).values().map(|v| keys::decode(t.name(), &v.map_err(sled_error)?)).collect()
}

pub(crate) fn account(trees: &Trees, address: &str) -> Result<Option<Account>> {
    get_rec(trees, T::Accounts, normalize_address(address).as_bytes())
}

pub(crate) fn account_by_id(trees: &Trees, id: u64) -> Result<Option<Account>> {
    let Some(index) = get_rec::<AccountIndex>(trees, T::AccountIds, &keys::u64_key(id))? else { return Ok(None) };
    account(trees, &index.address)
}

pub(crate) fn accounts(trees: &Trees) -> Result<Vec<Account>> {
    scan(trees, T::Accounts, &[])
}

fn subscribed(trees: &Trees, account: u64) -> Result<HashSet<String>> {
    let mut names = HashSet::new();
    for key in trees.tree(T::Subscriptions).scan_prefix(keys::u64_key(account)).keys() {
        if let Some(name) = keys::name_of_key(&key.map_err(sled_error)?) {
            names.insert(name.to_string());
        }
    }
    Ok(names)
}

pub(crate) fn subscriptions(trees: &Trees, account: u64) -> Result<Vec<String>> {
    let mut names: Vec<String> = subscribed(trees, account)?.into_iter().collect();
    names.sort();
    Ok(names)
}

pub(crate) fn mailboxes(trees: &Trees, account: u64) -> Result<Vec<MailboxInfo>> {
    let subs = subscribed(trees, account)?;
    let mut list: Vec<MailboxInfo> = scan(trees, T::Mailboxes, &keys::u64_key(account))?;
    for mb in &mut list {
        mb.subscribed = subs.contains(&mb.name);
    }
    Ok(list)
}

pub(crate) fn mailbox_by_id(trees: &Trees, account: u64, id: u32) -> Result<Option<MailboxInfo>> {
    let Some(mut mb) = get_rec::<MailboxInfo>(trees, T::Mailboxes, &keys::mailbox_key(account, id))? else {
        return Ok(None);
    };
    mb.subscribed = get(trees, T::Subscriptions, &keys::name_key(account, &mb.name))?.is_some();
    Ok(Some(mb))
}

pub(crate) fn mailbox(trees: &Trees, account: u64, name: &str) -> Result<Option<MailboxInfo>> {
    let name = match super::ops_mailboxes::canonical_name(name) {
        Ok(n) => n,
        // A name the store would refuse names no mailbox.
        Err(StoreError::MailboxRefused(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(id) = get(trees, T::MailboxNames, &keys::name_key(account, &name))? else { return Ok(None) };
    let id = id
        .as_ref()
        .try_into()
        .map(u32::from_be_bytes)
        .map_err(|_| StoreError::Corrupt { area: "mailbox_names", detail: format!("id of {name:?} is not 4 bytes") })?;
    mailbox_by_id(trees, account, id)
}

pub(crate) fn uids(trees: &Trees, account: u64, mailbox: u32) -> Result<UidSet> {
    uidchunk::read(trees, T::UidChunks, &keys::mailbox_key(account, mailbox))
}

pub(crate) fn entries(trees: &Trees, account: u64, mailbox: u32, uids: &UidSet) -> Result<Vec<MailEntry>> {
    let tree = trees.tree(T::Mail);
    let mut out = Vec::new();
    for &(a, b) in uids.runs() {
        let lo = keys::mail_key(account, mailbox, a).to_vec();
        let range = match b.checked_add(1) {
            Some(end) => tree.range(lo..keys::mail_key(account, mailbox, end).to_vec()),
            None => match keys::prefix_end(&keys::mailbox_key(account, mailbox)) {
                Some(hi) => tree.range(lo..hi),
                None => tree.range(lo..),
            },
        };
        for v in range.values() {
            out.push(keys::decode("mail", &v.map_err(sled_error)?)?);
        }
    }
    Ok(out)
}

/// The kept search rows of `uids`, copied into one buffer (no allocation
/// per message: a header SEARCH of a big mailbox is a pass over this).
pub(crate) fn search_rows(trees: &Trees, account: u64, mailbox: u32, uids: &UidSet) -> Result<SearchRows> {
    let tree = trees.tree(T::SearchRows);
    let mut out = SearchRows::default();
    for &(a, b) in uids.runs() {
        let lo = keys::mail_key(account, mailbox, a).to_vec();
        let range = match b.checked_add(1) {
            Some(end) => tree.range(lo..keys::mail_key(account, mailbox, end).to_vec()),
            None => match keys::prefix_end(&keys::mailbox_key(account, mailbox)) {
                Some(hi) => tree.range(lo..hi),
                None => tree.range(lo..),
            },
        };
        for kv in range {
            let (k, v) = kv.map_err(sled_error)?;
            out.push(keys::tail_u32(&k), &v);
        }
    }
    Ok(out)
}

pub(crate) fn content(trees: &Trees, id: u64) -> Result<Bytes> {
    body(trees, id, None)
}

pub(crate) fn content_range(trees: &Trees, id: u64, offset: u64, len: u64) -> Result<Bytes> {
    body(trees, id, Some((offset, len)))
}

fn body(trees: &Trees, id: u64, range: Option<(u64, u64)>) -> Result<Bytes> {
    parts::read(trees, Part::Body, id, range)?.ok_or_else(|| StoreError::NoSuchMessage(crate::schema::format_id(id)))
}

pub(crate) fn content_exists(trees: &Trees, id: u64) -> Result<bool> {
    Ok(get_rec::<ContentRecord>(trees, T::Contents, &keys::u64_key(id))?.is_some())
}

pub(crate) fn summaries(trees: &Trees, ids: &[u64]) -> Result<Vec<Option<Bytes>>> {
    ids.iter().map(|id| parts::read(trees, Part::Summary, *id, None)).collect()
}

pub(crate) fn queue_entry(trees: &Trees, id: u64) -> Result<Option<QueueEntry>> {
    get_rec(trees, T::Queue, &keys::u64_key(id))
}

pub(crate) fn queue_entries(trees: &Trees) -> Result<Vec<QueueEntry>> {
    scan(trees, T::Queue, &[])
}

pub(crate) fn queue_next_due(trees: &Trees) -> Result<Option<u64>> {
    let first = trees.tree(T::Schedule).first().map_err(sled_error)?;
    Ok(first.and_then(|(k, _)| keys::split_schedule_key(&k)).map(|(due, _)| due))
}
