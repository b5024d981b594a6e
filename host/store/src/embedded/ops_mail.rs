//! Changes to messages: acceptance, filing, APPEND, flags, COPY/MOVE,
//! EXPUNGE, and the reference counts of contents. Each function runs inside
//! one [`Txn`] and keeps the mailbox counters, UID chunks and modseq exact.

use super::flagindex;
use super::keys::{self, ContentRecord, T};
use super::parts::{self, Part};
use super::txn::Txn;
use super::uidchunk;
use crate::schema::{
    Accepted, Append, Appended, Change, ChangeKind, CopyResult, Filed, Filing, FlagChange, FlagOp, FlagUpdate, Flags,
    Incoming, MailEntry, MailboxInfo, UidSet, mail::return_path_line,
};
use crate::{Result, StoreError};
use bytes::Bytes;

pub(crate) fn load_mailbox(txn: &Txn, account: u64, mailbox: u32) -> Result<MailboxInfo> {
    txn.get_rec(T::Mailboxes, &keys::mailbox_key(account, mailbox))?
        .ok_or_else(|| StoreError::NoSuchMailbox(format!("{mailbox} of account {account}")))
}

pub(crate) fn save_mailbox(txn: &mut Txn, account: u64, mb: &MailboxInfo) {
    txn.put_rec(T::Mailboxes, &keys::mailbox_key(account, mb.id), mb);
}

/// The entries of `uids` that exist, in UID order, as the change sees them.
pub(crate) fn entries_in(txn: &Txn, account: u64, mailbox: u32, uids: &UidSet) -> Result<Vec<MailEntry>> {
    let mut out = Vec::new();
    for &(a, b) in uids.runs() {
        let lo = keys::mail_key(account, mailbox, a);
        let hi = match b.checked_add(1) {
            Some(end) => Some(keys::mail_key(account, mailbox, end).to_vec()),
            None => keys::prefix_end(&keys::mailbox_key(account, mailbox)),
        };
        for (_, v) in txn.range(T::Mail, &lo, hi.as_deref(), usize::MAX)? {
            out.push(keys::decode("mail", &v)?);
        }
    }
    Ok(out)
}

fn chunk_update(txn: &mut Txn, account: u64, mailbox: u32, uids: &[u32], insert: bool) -> Result<()> {
    uidchunk::update(txn, T::UidChunks, &keys::mailbox_key(account, mailbox), uids, insert)
}

/// Stores a new content with no references yet.
pub(crate) fn store_content(txn: &mut Txn, id: u64, content: &Bytes, summary: Option<&Bytes>) -> Result<()> {
    let key = keys::u64_key(id);
    if txn.get(T::Contents, &key)?.is_some() {
        return Err(StoreError::Corrupt { area: "contents", detail: format!("content id {id} is taken") });
    }
    txn.put_rec(T::Contents, &key, &ContentRecord { refs: 0, len: content.len() as u64 });
    parts::put(txn, Part::Body, id, content)?;
    if let Some(s) = summary {
        parts::put(txn, Part::Summary, id, s)?;
    }
    txn.add_growth(content.len() as u64 + summary.map_or(0, |s| s.len() as u64));
    Ok(())
}

pub(crate) fn content_len(txn: &Txn, id: u64) -> Result<u64> {
    let rec: ContentRecord = txn
        .get_rec(T::Contents, &keys::u64_key(id))?
        .ok_or_else(|| StoreError::NoSuchMessage(crate::schema::format_id(id)))?;
    Ok(rec.len)
}

/// Adds `delta` references; the content goes with its last reference.
pub(crate) fn add_refs(txn: &mut Txn, id: u64, delta: i64) -> Result<()> {
    let key = keys::u64_key(id);
    let Some(mut rec) = txn.get_rec::<ContentRecord>(T::Contents, &key)? else {
        return Err(StoreError::NoSuchMessage(crate::schema::format_id(id)));
    };
    let refs = (rec.refs as i64 + delta).max(0);
    if refs == 0 {
        txn.del(T::Contents, &key);
        parts::remove(txn, Part::Body, id)?;
        parts::remove(txn, Part::Summary, id)?;
    } else {
        rec.refs = refs as u32;
        txn.put_rec(T::Contents, &key, &rec);
    }
    Ok(())
}

/// What a new mailbox entry carries besides its place.
pub(crate) struct NewEntry {
    pub content: u64,
    pub content_len: u64,
    pub return_path: Option<String>,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub internal_date: u64,
}

/// Files one message into an already loaded mailbox (the caller saves it).
fn file_into(txn: &mut Txn, account: u64, mb: &mut MailboxInfo, new: NewEntry) -> Result<Filed> {
    let uid = mb.uid_next;
    mb.uid_next = uid
        .checked_add(1)
        .ok_or_else(|| StoreError::MailboxRefused(format!("mailbox {} has used every UID", mb.name)))?;
    let entry = MailEntry {
        uid,
        content: new.content,
        size: return_path_line(new.return_path.as_deref()).len() as u64 + new.content_len,
        flags: new.flags.known(),
        keywords: new.keywords,
        internal_date: new.internal_date,
        modseq: mb.highest_modseq,
        return_path: new.return_path,
    };
    mb.messages += 1;
    mb.bytes += entry.size;
    if !entry.flags.contains(Flags::SEEN) {
        mb.unseen += 1;
    }
    if entry.flags != Flags::empty() || !entry.keywords.is_empty() {
        let mut index = flagindex::Pending::default();
        index.added(uid, entry.flags, &entry.keywords);
        index.apply(txn, account, mb.id)?;
    }
    txn.put_rec(T::Mail, &keys::mail_key(account, mb.id, uid), &entry);
    chunk_update(txn, account, mb.id, &[uid], true)?;
    add_refs(txn, entry.content, 1)?;
    txn.announce(account, Change { mailbox: mb.id, kind: ChangeKind::Appended { uid, modseq: entry.modseq } });
    Ok(Filed { account, mailbox: mb.id, uid })
}

/// Files one message into a mailbox, taking its next UID and a new modseq.
pub(crate) fn file(txn: &mut Txn, filing: Filing, new: NewEntry) -> Result<Filed> {
    let mut mb = load_mailbox(txn, filing.account, filing.mailbox).map_err(|e| match e {
        StoreError::NoSuchMailbox(_) if filing.mailbox == crate::schema::INBOX_ID => {
            StoreError::NoSuchAccount(format!("account id {}", filing.account))
        }
        e => e,
    })?;
    mb.highest_modseq += 1;
    let filed = file_into(txn, filing.account, &mut mb, new)?;
    save_mailbox(txn, filing.account, &mb);
    Ok(filed)
}

/// [`crate::contract::Contents::accept`] inside a transaction; `queue_id`
/// is the id the queue entry gets.
pub(crate) fn accept(txn: &mut Txn, incoming: &Incoming, queue_id: Option<u64>, now: u64) -> Result<Accepted> {
    store_content(txn, incoming.id, &incoming.content, incoming.summary.as_ref())?;
    let len = incoming.content.len() as u64;
    let mut filed = Vec::with_capacity(incoming.local.len());
    for &filing in &incoming.local {
        let new = NewEntry {
            content: incoming.id,
            content_len: len,
            return_path: Some(incoming.return_path.clone()),
            flags: Flags::empty(),
            keywords: Vec::new(),
            internal_date: now,
        };
        filed.push(file(txn, filing, new)?);
    }
    let queued = match (&incoming.queue, queue_id) {
        (Some(entry), Some(id)) => {
            let mut entry = entry.clone();
            entry.id = id;
            entry.content = incoming.id;
            entry.lease = None;
            super::ops_queue::put_entry(txn, &entry);
            add_refs(txn, incoming.id, 1)?;
            Some(id)
        }
        _ => None,
    };
    if filed.is_empty() && queued.is_none() {
        // Nothing refers to it: keep nothing.
        add_refs(txn, incoming.id, 0)?;
    }
    for trace in &incoming.traces {
        super::records::stage(txn, trace, now);
    }
    Ok(Accepted { content: incoming.id, filed, queued })
}

pub(crate) fn append(txn: &mut Txn, account: u64, mailbox: u32, message: Append) -> Result<Appended> {
    let id = txn.new_id()?;
    store_content(txn, id, &message.content, message.summary.as_ref())?;
    let new = NewEntry {
        content: id,
        content_len: message.content.len() as u64,
        return_path: None,
        flags: message.flags,
        keywords: dedup(message.keywords),
        internal_date: message.internal_date,
    };
    let filed = file(txn, crate::schema::Filing { account, mailbox }, new)?;
    let mb = load_mailbox(txn, account, mailbox)?;
    Ok(Appended { uid_validity: mb.uid_validity, uid: filed.uid, modseq: mb.highest_modseq })
}

fn dedup(keywords: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(keywords.len());
    for k in keywords {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&k)) {
            out.push(k);
        }
    }
    out
}

/// Removes the existing messages of `uids`; returns their UIDs.
pub(crate) fn expunge(txn: &mut Txn, account: u64, mailbox: u32, uids: &UidSet) -> Result<Vec<u32>> {
    let mut mb = load_mailbox(txn, account, mailbox)?;
    let entries = entries_in(txn, account, mailbox, uids)?;
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    mb.highest_modseq += 1;
    let mut removed = Vec::with_capacity(entries.len());
    let mut index = flagindex::Pending::default();
    for e in &entries {
        index.removed(e);
        txn.del(T::Mail, &keys::mail_key(account, mailbox, e.uid));
        txn.del(T::SearchRows, &keys::mail_key(account, mailbox, e.uid));
        mb.messages = mb.messages.saturating_sub(1);
        mb.bytes = mb.bytes.saturating_sub(e.size);
        if !e.flags.contains(Flags::SEEN) {
            mb.unseen = mb.unseen.saturating_sub(1);
        }
        add_refs(txn, e.content, -1)?;
        removed.push(e.uid);
    }
    chunk_update(txn, account, mailbox, &removed, false)?;
    index.apply(txn, account, mailbox)?;
    save_mailbox(txn, account, &mb);
    let modseq = mb.highest_modseq;
    txn.announce(account, Change { mailbox, kind: ChangeKind::Expunged { uids: removed.clone(), modseq } });
    Ok(removed)
}

fn apply_flags(e: &MailEntry, change: &FlagChange) -> (Flags, Vec<String>) {
    let flags = change.flags.known();
    match change.op {
        FlagOp::Replace => (flags, dedup(change.keywords.clone())),
        FlagOp::Add => {
            let mut kw = e.keywords.clone();
            kw.extend(change.keywords.iter().cloned());
            (e.flags.union(flags), dedup(kw))
        }
        FlagOp::Remove => {
            let kw = e.keywords.iter().filter(|k| !change.keywords.iter().any(|r| r.eq_ignore_ascii_case(k))).cloned();
            (e.flags.difference(flags), kw.collect())
        }
    }
}

pub(crate) fn set_flags(
    txn: &mut Txn,
    account: u64,
    mailbox: u32,
    uids: &UidSet,
    change: &FlagChange,
) -> Result<crate::contract::FlagsOutcome> {
    let mut mb = load_mailbox(txn, account, mailbox)?;
    let entries = entries_in(txn, account, mailbox, uids)?;
    let mut outcome = crate::contract::FlagsOutcome::default();
    let modseq = mb.highest_modseq + 1;
    let mut changed = false;
    let mut index = flagindex::Pending::default();
    for mut e in entries {
        if change.unchanged_since.is_some_and(|since| e.modseq > since) {
            outcome.modified.push(e.uid);
            continue;
        }
        let (flags, keywords) = apply_flags(&e, change);
        if flags != e.flags || keywords != e.keywords {
            match (e.flags.contains(Flags::SEEN), flags.contains(Flags::SEEN)) {
                (false, true) => mb.unseen = mb.unseen.saturating_sub(1),
                (true, false) => mb.unseen += 1,
                _ => {}
            }
            index.changed(e.uid, (e.flags, !e.keywords.is_empty()), (flags, &keywords));
            e.flags = flags;
            e.keywords = keywords;
            e.modseq = modseq;
            changed = true;
            txn.put_rec(T::Mail, &keys::mail_key(account, mailbox, e.uid), &e);
            let update = FlagUpdate { uid: e.uid, flags: e.flags, keywords: e.keywords.clone(), modseq };
            txn.announce(account, Change { mailbox, kind: ChangeKind::Flags(update) });
        }
        outcome.updated.push(FlagUpdate { uid: e.uid, flags: e.flags, keywords: e.keywords, modseq: e.modseq });
    }
    if changed {
        index.apply(txn, account, mailbox)?;
        mb.highest_modseq = modseq;
        save_mailbox(txn, account, &mb);
    }
    Ok(outcome)
}

/// COPY (and the first half of MOVE): new entries sharing the contents.
pub(crate) fn copy(txn: &mut Txn, account: u64, from: u32, uids: &UidSet, to: u32) -> Result<CopyResult> {
    load_mailbox(txn, account, from)?;
    let entries = entries_in(txn, account, from, uids)?;
    let mut target = load_mailbox(txn, account, to)?;
    let mut mapping = Vec::with_capacity(entries.len());
    if !entries.is_empty() {
        target.highest_modseq += 1;
    }
    for e in entries {
        let content_len = content_len(txn, e.content)?;
        let new = NewEntry {
            content: e.content,
            content_len,
            return_path: e.return_path,
            flags: e.flags,
            keywords: e.keywords,
            internal_date: e.internal_date,
        };
        let filed = file_into(txn, account, &mut target, new)?;
        mapping.push((e.uid, filed.uid));
    }
    save_mailbox(txn, account, &target);
    Ok(CopyResult { uid_validity: target.uid_validity, mapping })
}

/// Keeps search rows for messages that still exist (a row for an expunged
/// message would outlive it: expunge only removes rows of entries it sees).
pub(crate) fn keep_search_rows(txn: &mut Txn, account: u64, mailbox: u32, rows: &[(u32, Bytes)]) -> Result<()> {
    for (uid, row) in rows {
        let key = keys::mail_key(account, mailbox, *uid);
        if txn.get(T::Mail, &key)?.is_some() {
            txn.put(T::SearchRows, &key, row.as_ref());
        }
    }
    Ok(())
}
