//! Every tree, key layout and record type of the store. Bump
//! [`SCHEMA_VERSION`] when any of them changes and add a migration in
//! [`check_version`].
//!
//! | tree        | key                                    | value                       |
//! |-------------|----------------------------------------|-----------------------------|
//! | `meta`      | `"schema_version"`                     | u32 BE                      |
//! | `accounts`  | lowercased address                     | [`crate::Account`]          |
//! | `mailboxes` | account id u64 BE ++ mailbox name      | [`MailboxMeta`]             |
//! | `mail`      | account id u64 ++ mailbox id u32 ++ uid u32 (BE) | [`crate::MailEntry`] |
//! | `blobs`     | blob id u64 BE                         | message bytes               |
//! | `blob_refs` | blob id u64 BE                         | reference count u32 BE      |
//! | `queue`     | queue id u64 BE                        | [`crate::QueueEntry`]       |
//! | `schedule`  | due unix secs u64 BE ++ queue id u64 BE | empty                      |
//! | `kv`        | namespace ++ 0x00 ++ key               | expiry unix secs u64 BE ++ value (0 = none) |
//!
//! Big-endian integers keep sled's lexicographic order numeric, so a
//! mailbox is one contiguous range in UID order and the schedule is a
//! priority queue by due time.

use crate::{Result, StoreError};
use serde::{Serialize, de::DeserializeOwned};

pub const SCHEMA_VERSION: u32 = 1;

pub struct Trees {
    pub meta: sled::Tree,
    pub accounts: sled::Tree,
    pub mailboxes: sled::Tree,
    pub mail: sled::Tree,
    pub blobs: sled::Tree,
    pub blob_refs: sled::Tree,
    pub queue: sled::Tree,
    pub schedule: sled::Tree,
    pub kv: sled::Tree,
}

impl Trees {
    pub fn open(db: &sled::Db) -> Result<Trees> {
        Ok(Trees {
            meta: db.open_tree("meta")?,
            accounts: db.open_tree("accounts")?,
            mailboxes: db.open_tree("mailboxes")?,
            mail: db.open_tree("mail")?,
            blobs: db.open_tree("blobs")?,
            blob_refs: db.open_tree("blob_refs")?,
            queue: db.open_tree("queue")?,
            schedule: db.open_tree("schedule")?,
            kv: db.open_tree("kv")?,
        })
    }
}

pub fn check_version(trees: &Trees) -> Result<()> {
    match trees.meta.get("schema_version")? {
        None => {
            trees.meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            Ok(())
        }
        Some(v) => {
            let found =
                u32::from_be_bytes(v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "meta",
                    detail: "schema_version is not 4 bytes".into(),
                })?);
            if found == SCHEMA_VERSION {
                Ok(())
            } else {
                Err(StoreError::SchemaVersion { found, expected: SCHEMA_VERSION })
            }
        }
    }
}

/// Per-mailbox counters (RFC 3501 2.3.1.1: UIDs strictly ascend; UIDVALIDITY
/// changes if they ever must be reassigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailboxMeta {
    pub id: u32,
    pub uid_validity: u32,
    pub uid_next: u32,
}

pub const INBOX: &str = "INBOX";
/// INBOX always has mailbox id 0, so delivery never needs a name look-up.
pub const INBOX_ID: u32 = 0;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).expect("in-memory serialisation of plain records cannot fail")
}

pub fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T> {
    bincode::deserialize(bytes).map_err(|e| StoreError::Corrupt { tree, detail: e.to_string() })
}

pub fn mailbox_key(account: u64, name: &str) -> Vec<u8> {
    let mut k = account.to_be_bytes().to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

pub fn mail_key(account: u64, mailbox: u32, uid: u32) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&account.to_be_bytes());
    k[8..12].copy_from_slice(&mailbox.to_be_bytes());
    k[12..].copy_from_slice(&uid.to_be_bytes());
    k
}

pub fn mail_prefix(account: u64, mailbox: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&account.to_be_bytes());
    k[8..].copy_from_slice(&mailbox.to_be_bytes());
    k
}

pub fn uid_of_mail_key(key: &[u8]) -> u32 {
    u32::from_be_bytes(key[12..16].try_into().unwrap_or([0; 4]))
}

pub fn schedule_key(due: u64, queue_id: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&due.to_be_bytes());
    k[8..].copy_from_slice(&queue_id.to_be_bytes());
    k
}

pub fn split_schedule_key(key: &[u8]) -> Option<(u64, u64)> {
    if key.len() != 16 {
        return None;
    }
    Some((u64::from_be_bytes(key[..8].try_into().ok()?), u64::from_be_bytes(key[8..].try_into().ok()?)))
}

pub fn kv_key(namespace: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(namespace.len() + 1 + key.len());
    k.extend_from_slice(namespace.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}
