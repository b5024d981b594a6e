//! Schema versions of the embedded backend, and migrating older stores on
//! open.
//!
//! Version 1 (the first release) → 2: accounts keep their records; their
//! INBOX becomes mailbox 0 of the new layout with counters, a UID set and
//! modseq 1, and the default special-use folders are added; messages get
//! their UID and modseq in the record; content reference counts gain the
//! length; queue replies become typed; kv keys get a length-prefixed
//! namespace. New trees are written beside the old ones and the version is
//! switched only when they are complete, so a crash during a migration
//! just runs it again; the old trees are dropped after the switch.
//!
//! Version 2 → 3: the flag index ([`super::flagindex`]) is built from the
//! messages into two new trees; nothing else changes.
//!
//! Version 3 → 4: nothing to convert. New bodies go to segment files
//! ([`super::segments`]); those already in sled are read from there and
//! removed with their last reference.
//!
//! Version 4 → 5: nothing to convert. Commit groups are journalled in the
//! segment files and sled is flushed by checkpoints ([`super::journal`]);
//! a version-4 binary would not replay those records after a crash, so
//! the version tells it to refuse the store.

use super::keys::{self, AccountIndex, ContentRecord, T};
use super::trees::Trees;
use super::{sled_error, uidchunk};
use crate::schema::{
    Flags, INBOX, INBOX_ID, MailEntry, MailboxInfo, QueueEntry, QueueRecipient, SCHEMA_VERSION, SpecialUse,
    StoredReply, UidSet,
};
use crate::{Result, StoreError};
use serde::Deserialize;

/// Trees of version 1 that version 2 replaced.
const V1_TREES: [&str; 5] = ["mailboxes", "mail", "blob_refs", "queue", "kv"];

fn version(trees: &Trees) -> Result<Option<u32>> {
    let Some(v) = trees.tree(T::Meta).get(keys::SCHEMA_VERSION_KEY).map_err(sled_error)? else { return Ok(None) };
    let bytes: [u8; 4] = v
        .as_ref()
        .try_into()
        .map_err(|_| StoreError::Corrupt { area: "meta", detail: "schema_version is not 4 bytes".into() })?;
    Ok(Some(u32::from_be_bytes(bytes)))
}

fn set_version(trees: &Trees, version: u32) -> Result<()> {
    trees.tree(T::Meta).insert(keys::SCHEMA_VERSION_KEY, &version.to_be_bytes()).map_err(sled_error)?;
    trees.make_durable()
}

/// Brings the store to [`SCHEMA_VERSION`]; refuses a newer one.
pub(crate) fn run(trees: &Trees) -> Result<()> {
    match version(trees)? {
        None => set_version(trees, SCHEMA_VERSION),
        Some(v) if v == SCHEMA_VERSION => drop_v1_trees(trees),
        Some(1) => {
            tracing::warn!(from = 1, to = SCHEMA_VERSION, "migrating the store's schema");
            v1_to_v2(trees)?;
            super::flagindex::build(trees)?;
            set_version(trees, SCHEMA_VERSION)?;
            drop_v1_trees(trees)
        }
        Some(2) => {
            tracing::warn!(from = 2, to = SCHEMA_VERSION, "migrating the store's schema");
            super::flagindex::build(trees)?;
            set_version(trees, SCHEMA_VERSION)
        }
        // The segment trees start empty; the old bodies are read where they
        // are. Version 4 differs only in where journal records go.
        Some(3 | 4) => {
            tracing::warn!(from = 3, to = SCHEMA_VERSION, "migrating the store's schema");
            set_version(trees, SCHEMA_VERSION)
        }
        Some(found) => Err(StoreError::SchemaVersion { found, supported: SCHEMA_VERSION }),
    }
}

fn drop_v1_trees(trees: &Trees) -> Result<()> {
    let names = trees.db.tree_names();
    for old in V1_TREES {
        if names.iter().any(|n| n.as_ref() == old.as_bytes()) {
            trees.db.drop_tree(old).map_err(sled_error)?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct V1Mailbox {
    _id: u32,
    uid_validity: u32,
    uid_next: u32,
}

#[derive(Deserialize)]
struct V1Entry {
    blob: u64,
    size: u64,
    flags: u32,
    keywords: Vec<String>,
    internal_date: u64,
    return_path: String,
}

#[derive(Deserialize)]
struct V1Recipient {
    address: String,
    route: crate::schema::QueuedRoute,
    state: crate::schema::RecipientState,
    attempts: u32,
    last_reply: Option<String>,
    remote_mta: Option<String>,
    warned: bool,
    next_attempt: u64,
    notified: bool,
}

#[derive(Deserialize)]
struct V1Queued {
    id: u64,
    blob: u64,
    sender: String,
    tenant: Option<String>,
    created: u64,
    next_attempt: u64,
    attempts: u32,
    last_attempt: u64,
    recipients: Vec<V1Recipient>,
}

/// "451 4.7.1 text" as version 1 kept replies.
pub(crate) fn parse_v1_reply(line: &str) -> StoredReply {
    let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).unwrap_or(451);
    let rest = line.get(4..).unwrap_or("").trim_start();
    let (first, after) = rest.split_once(' ').unwrap_or((rest, ""));
    let is_enhanced = first.split('.').count() == 3
        && first.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && first.starts_with(char::from(b'0' + (code / 100) as u8));
    match is_enhanced {
        true => StoredReply { code, enhanced: Some(first.to_string()), text: after.to_string() },
        false => StoredReply { code, enhanced: None, text: rest.to_string() },
    }
}

fn clear(trees: &Trees) -> Result<()> {
    for t in
        [T::AccountIds, T::Mailboxes, T::MailboxNames, T::Subscriptions, T::Mail, T::UidChunks, T::Contents, T::Queue]
    {
        trees.tree(t).clear().map_err(sled_error)?;
    }
    trees.kv.clear().map_err(sled_error)
}

fn put<R: serde::Serialize>(tree: &sled::Tree, key: &[u8], record: &R) -> Result<()> {
    tree.insert(key, keys::encode(record)).map_err(sled_error).map(drop)
}

fn v1_to_v2(trees: &Trees) -> Result<()> {
    clear(trees)?;
    let db = &trees.db;
    let old = |name: &str| db.open_tree(name).map_err(sled_error);
    let (v1_mailboxes, v1_mail, v1_refs, v1_queue, v1_kv) =
        (old("mailboxes")?, old("mail")?, old("blob_refs")?, old("queue")?, old("kv")?);
    let uid_validity_floor = crate::schema::now_secs() as u32;
    let mut next_validity = uid_validity_floor;
    for kv in trees.tree(T::Accounts).iter() {
        let (_, v) = kv.map_err(sled_error)?;
        let account: crate::schema::Account = keys::decode("accounts", &v)?;
        let next_mailbox = 1 + SpecialUse::DEFAULT_FOLDERS.len() as u32;
        let index = AccountIndex { address: account.address.clone(), next_mailbox };
        put(trees.tree(T::AccountIds), &keys::u64_key(account.id), &index)?;
        let meta: Option<V1Mailbox> = v1_mailboxes
            .get(keys::name_key(account.id, INBOX))
            .map_err(sled_error)?
            .map(|v| keys::decode("mailboxes", &v))
            .transpose()?;
        let mut inbox = MailboxInfo {
            id: INBOX_ID,
            name: INBOX.into(),
            special_use: None,
            subscribed: false,
            uid_validity: meta.as_ref().map_or(1, |m| m.uid_validity),
            uid_next: meta.as_ref().map_or(1, |m| m.uid_next),
            highest_modseq: 1,
            messages: 0,
            unseen: 0,
            bytes: 0,
        };
        let mut uids = UidSet::new();
        for kv in v1_mail.scan_prefix(keys::mailbox_key(account.id, INBOX_ID)) {
            let (k, v) = kv.map_err(sled_error)?;
            let uid = keys::tail_u32(&k);
            let old: V1Entry = keys::decode("mail", &v)?;
            let entry = MailEntry {
                uid,
                content: old.blob,
                size: old.size,
                flags: Flags(old.flags).known(),
                keywords: old.keywords,
                internal_date: old.internal_date,
                modseq: 1,
                return_path: Some(old.return_path),
            };
            inbox.messages += 1;
            inbox.bytes += entry.size;
            if !entry.flags.contains(Flags::SEEN) {
                inbox.unseen += 1;
            }
            inbox.uid_next = inbox.uid_next.max(uid + 1);
            uids.insert(uid);
            put(trees.tree(T::Mail), &keys::mail_key(account.id, INBOX_ID, uid), &entry)?;
        }
        write_uid_set(trees, account.id, INBOX_ID, &uids)?;
        let mut mailboxes = vec![inbox];
        for (i, (name, special_use)) in SpecialUse::DEFAULT_FOLDERS.iter().enumerate() {
            next_validity = next_validity.wrapping_add(1).max(1);
            mailboxes.push(MailboxInfo {
                id: 1 + i as u32,
                name: name.to_string(),
                special_use: Some(*special_use),
                subscribed: false,
                uid_validity: next_validity,
                uid_next: 1,
                highest_modseq: 1,
                messages: 0,
                unseen: 0,
                bytes: 0,
            });
        }
        for mb in mailboxes {
            put(trees.tree(T::Mailboxes), &keys::mailbox_key(account.id, mb.id), &mb)?;
            let name_key = keys::name_key(account.id, &mb.name);
            trees.tree(T::MailboxNames).insert(&name_key, &mb.id.to_be_bytes()).map_err(sled_error)?;
            trees.tree(T::Subscriptions).insert(&name_key, &[]).map_err(sled_error)?;
        }
    }
    trees.tree(T::Meta).insert(keys::UID_VALIDITY_KEY, &next_validity.to_be_bytes()).map_err(sled_error)?;
    for kv in v1_refs.iter() {
        let (k, v) = kv.map_err(sled_error)?;
        let refs = v.as_ref().try_into().map(u32::from_be_bytes).unwrap_or(0);
        let len = trees.tree(T::Bodies).get(&k).map_err(sled_error)?.map_or(0, |b| b.len() as u64);
        put(trees.tree(T::Contents), &k, &ContentRecord { refs, len })?;
    }
    for kv in v1_queue.iter() {
        let (_, v) = kv.map_err(sled_error)?;
        let old: V1Queued = keys::decode("queue", &v)?;
        let recipients = old
            .recipients
            .into_iter()
            .map(|r| QueueRecipient {
                address: r.address,
                route: r.route,
                state: r.state,
                attempts: r.attempts,
                last_reply: r.last_reply.as_deref().map(parse_v1_reply),
                remote_mta: r.remote_mta,
                warned: r.warned,
                next_attempt: r.next_attempt,
                notified: r.notified,
            })
            .collect();
        let entry = QueueEntry {
            id: old.id,
            content: old.blob,
            sender: old.sender,
            tenant: old.tenant,
            created: old.created,
            next_attempt: old.next_attempt,
            attempts: old.attempts,
            last_attempt: old.last_attempt,
            recipients,
            lease: None,
        };
        put(trees.tree(T::Queue), &keys::u64_key(entry.id), &entry)?;
    }
    // The schedule keeps its layout; start-up recovery rebuilds it anyway.
    for kv in v1_kv.iter() {
        let (k, v) = kv.map_err(sled_error)?;
        let Some(sep) = k.iter().position(|&b| b == 0) else { continue };
        let namespace = String::from_utf8_lossy(&k[..sep]);
        trees.kv.insert(keys::kv_key(&namespace, &k[sep + 1..]), v).map_err(sled_error)?;
    }
    Ok(())
}

pub(crate) fn write_uid_set(trees: &Trees, account: u64, mailbox: u32, uids: &UidSet) -> Result<()> {
    uidchunk::write(trees, T::UidChunks, &keys::mailbox_key(account, mailbox), uids)
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
mod tests;
