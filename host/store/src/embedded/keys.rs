//! The embedded backend's trees and key layouts (schema version 5).
//!
//! | tree            | key                                          | value |
//! |-----------------|----------------------------------------------|-------|
//! | `meta`          | `"schema_version"`, `"uid_validity"`         | u32 BE |
//! | `meta`          | `"journal_checkpoint"`                       | segment u64 BE ++ offset u64 BE ([`super::journal`]) |
//! | `accounts`      | normalised address                           | [`Account`](crate::schema::Account) |
//! | `account_ids`   | account u64                                  | [`AccountIndex`] |
//! | `mailbox_info`  | account u64 ++ mailbox u32                   | [`MailboxInfo`](crate::schema::MailboxInfo) (`subscribed` unused) |
//! | `mailbox_names` | account u64 ++ name                          | mailbox u32 BE |
//! | `subscriptions` | account u64 ++ name                          | empty |
//! | `messages`      | account u64 ++ mailbox u32 ++ uid u32        | [`MailEntry`](crate::schema::MailEntry) |
//! | `uid_chunks`    | account u64 ++ mailbox u32 ++ chunk u32      | [`super::uidchunk`] encoding |
//! | `contents`      | content u64                                  | [`ContentRecord`] |
//! | `blobs`         | content u64                                  | the content's bytes |
//! | `summaries`     | content u64                                  | the caller's summary bytes |
//! | `queue_entries` | queue id u64                                 | [`QueueEntry`](crate::schema::QueueEntry) |
//! | `schedule`      | due u64 ++ queue id u64                      | empty |
//! | `flag_chunks`, `keywords` | see [`super::flagindex`]         | |
//! | `search_rows`   | account u64 ++ mailbox u32 ++ uid u32        | the caller's search row (derived, kept on first use) |
//! | `plugin_kv`     | namespace length u32 ++ namespace ++ key     | expiry u64 (0 = none) ++ value |
//! | `records`       | trace key (`m/<message>`, `s/<session>/<n>`) | expiry u64 (0 = none) ++ record |
//!
//! Trees whose layout changed since version 1 have new names, so a
//! migration builds them beside the old ones ([`super::migrate`]).
//!
//! Integers are big-endian so sled's byte order is numeric order: a
//! mailbox's messages are one contiguous range in UID order, and the
//! schedule is a priority queue by due time. Names come last in their keys
//! and the kv namespace is length-prefixed, so no name or namespace can
//! reach into another's key range.

use serde::{Deserialize, Serialize};

/// The trees a write transaction may touch (the kv tree is written directly).
/// Names are stable: the commit journal names trees by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum T {
    Meta,
    Accounts,
    AccountIds,
    Mailboxes,
    MailboxNames,
    Subscriptions,
    Mail,
    UidChunks,
    Contents,
    Bodies,
    Summaries,
    Queue,
    Schedule,
    FlagChunks,
    Keywords,
    SearchRows,
    /// Decision traces ([`super::records`]).
    Records,
    /// Where each body is in the segment files ([`super::parts`]);
    /// bodies written before them are in `Bodies`.
    BodyLocs,
    /// Live bytes per segment file, for compaction ([`super::compact`]).
    BodySegments,
    /// Where each content's IMAP summary is in the segment files; those
    /// written before them are in `Summaries`.
    SummaryLocs,
}

impl T {
    pub const ALL: [T; 20] = [
        T::Meta,
        T::Accounts,
        T::AccountIds,
        T::Mailboxes,
        T::MailboxNames,
        T::Subscriptions,
        T::Mail,
        T::UidChunks,
        T::Contents,
        T::Bodies,
        T::Summaries,
        T::Queue,
        T::Schedule,
        T::FlagChunks,
        T::Keywords,
        T::SearchRows,
        T::Records,
        T::BodyLocs,
        T::BodySegments,
        T::SummaryLocs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            T::Meta => "meta",
            T::Accounts => "accounts",
            T::AccountIds => "account_ids",
            T::Mailboxes => "mailbox_info",
            T::MailboxNames => "mailbox_names",
            T::Subscriptions => "subscriptions",
            T::Mail => "messages",
            T::UidChunks => "uid_chunks",
            T::Contents => "contents",
            T::Bodies => "blobs",
            T::Summaries => "summaries",
            T::Queue => "queue_entries",
            T::Schedule => "schedule",
            T::FlagChunks => "flag_chunks",
            T::Keywords => "keywords",
            T::SearchRows => "search_rows",
            T::Records => "records",
            T::BodyLocs => "body_locs",
            T::BodySegments => "body_segments",
            T::SummaryLocs => "summary_locs",
        }
    }
}

pub(crate) const KV_TREE: &str = "plugin_kv";
pub(crate) const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";
pub(crate) const UID_VALIDITY_KEY: &[u8] = b"uid_validity";

/// What `account_ids` keeps per account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccountIndex {
    pub address: String,
    /// The id the account's next new mailbox gets.
    pub next_mailbox: u32,
}

/// What `contents` keeps per stored content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContentRecord {
    /// Mailbox entries and queue entries referring to it.
    pub refs: u32,
    pub len: u64,
}

pub(crate) fn u64_key(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

pub(crate) fn mailbox_key(account: u64, mailbox: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&account.to_be_bytes());
    k[8..].copy_from_slice(&mailbox.to_be_bytes());
    k
}

/// The mailbox id of a `mailboxes` key.
pub(crate) fn mailbox_of_key(key: &[u8]) -> u32 {
    key.get(8..12).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes).unwrap_or(u32::MAX)
}

/// `account ++ name`: mailbox_names and subscriptions.
pub(crate) fn name_key(account: u64, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + name.len());
    k.extend_from_slice(&account.to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

pub(crate) fn name_of_key(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key.get(8..)?).ok()
}

pub(crate) fn mail_key(account: u64, mailbox: u32, uid: u32) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..12].copy_from_slice(&mailbox_key(account, mailbox));
    k[12..].copy_from_slice(&uid.to_be_bytes());
    k
}

/// The last four bytes of a mail or uid_chunks key.
pub(crate) fn tail_u32(key: &[u8]) -> u32 {
    key.get(12..16).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes).unwrap_or(0)
}

pub(crate) fn schedule_key(due: u64, queue_id: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&due.to_be_bytes());
    k[8..].copy_from_slice(&queue_id.to_be_bytes());
    k
}

pub(crate) fn split_schedule_key(key: &[u8]) -> Option<(u64, u64)> {
    if key.len() != 16 {
        return None;
    }
    Some((u64::from_be_bytes(key[..8].try_into().ok()?), u64::from_be_bytes(key[8..].try_into().ok()?)))
}

pub(crate) fn kv_key(namespace: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + namespace.len() + key.len());
    k.extend_from_slice(&(namespace.len() as u32).to_be_bytes());
    k.extend_from_slice(namespace.as_bytes());
    k.extend_from_slice(key);
    k
}

/// The smallest key greater than every key starting with `prefix` (None:
/// no bound, the prefix is all 0xff).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

pub(crate) fn encode<R: Serialize>(record: &R) -> Vec<u8> {
    bincode::serialize(record).expect("in-memory serialisation of plain records cannot fail")
}

pub(crate) fn decode<R: serde::de::DeserializeOwned>(area: &'static str, bytes: &[u8]) -> crate::Result<R> {
    bincode::deserialize(bytes).map_err(|e| crate::StoreError::Corrupt { area, detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_namespaces_cannot_reach_into_each_other() {
        // "a" + "b\0k" and "a\0b" + "k" were one key with a separator byte.
        assert_ne!(kv_key("a", b"b\0k"), kv_key("a\0b", b"k"));
        assert_ne!(kv_key("ab", b"c"), kv_key("a", b"bc"));
    }

    #[test]
    fn prefix_end_bounds_every_key_with_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
