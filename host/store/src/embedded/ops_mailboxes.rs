//! Changes to the set of mailboxes: create, delete, rename, subscribe.

use super::keys::{self, AccountIndex, T};
use super::ops_mail::{self, NewEntry};
use super::txn::Txn;
use crate::schema::{Change, ChangeKind, Filing, HIERARCHY_SEPARATOR, INBOX_ID, MailboxInfo, SpecialUse, UidSet};
use crate::{Result, StoreError};

/// The name as the store keeps it ([`crate::schema::canonical_mailbox_name`]).
pub(crate) fn canonical_name(name: &str) -> Result<String> {
    crate::schema::canonical_mailbox_name(name)
}

/// A `uid_validity` never given before in this store (RFC 3501 2.3.1.1):
/// the clock, or one more than the last when the clock is behind.
fn new_uid_validity(txn: &mut Txn) -> Result<u32> {
    let last =
        txn.get(T::Meta, keys::UID_VALIDITY_KEY)?.and_then(|v| v.as_ref().try_into().ok()).map(u32::from_be_bytes);
    let now = crate::schema::now_secs() as u32;
    let next = match last {
        Some(last) if last >= now => last.wrapping_add(1).max(1),
        _ => now.max(1),
    };
    txn.put(T::Meta, keys::UID_VALIDITY_KEY, &next.to_be_bytes()[..]);
    Ok(next)
}

pub(crate) fn lookup(txn: &Txn, account: u64, name: &str) -> Result<Option<u32>> {
    let name = canonical_name(name)?;
    Ok(txn
        .get(T::MailboxNames, &keys::name_key(account, &name))?
        .and_then(|v| v.as_ref().try_into().ok())
        .map(u32::from_be_bytes))
}

fn account_index(txn: &Txn, account: u64) -> Result<AccountIndex> {
    txn.get_rec(T::AccountIds, &keys::u64_key(account))?
        .ok_or_else(|| StoreError::NoSuchAccount(format!("account id {account}")))
}

/// Creates a mailbox with a given id (the account's defaults) or the
/// account's next id.
pub(crate) fn create_with(
    txn: &mut Txn,
    account: u64,
    name: &str,
    special_use: Option<SpecialUse>,
    id: Option<u32>,
) -> Result<MailboxInfo> {
    let name = canonical_name(name)?;
    if lookup(txn, account, &name)?.is_some() {
        return Err(StoreError::MailboxExists(name));
    }
    let id = match id {
        Some(id) => id,
        None => {
            let mut index = account_index(txn, account)?;
            let id = index.next_mailbox;
            index.next_mailbox =
                id.checked_add(1).ok_or_else(|| StoreError::MailboxRefused("too many mailboxes".into()))?;
            txn.put_rec(T::AccountIds, &keys::u64_key(account), &index);
            id
        }
    };
    let info = MailboxInfo {
        id,
        name: name.clone(),
        special_use,
        subscribed: false,
        uid_validity: new_uid_validity(txn)?,
        uid_next: 1,
        highest_modseq: 1,
        messages: 0,
        unseen: 0,
        bytes: 0,
    };
    ops_mail::save_mailbox(txn, account, &info);
    txn.put(T::MailboxNames, &keys::name_key(account, &name), &id.to_be_bytes()[..]);
    txn.announce(account, Change { mailbox: id, kind: ChangeKind::Mailboxes });
    Ok(info)
}

pub(crate) fn create(txn: &mut Txn, account: u64, name: &str, special_use: Option<SpecialUse>) -> Result<MailboxInfo> {
    account_index(txn, account)?;
    create_with(txn, account, name, special_use, None)
}

/// Removes a mailbox (by id) with its messages and UID chunks.
pub(crate) fn remove(txn: &mut Txn, account: u64, id: u32) -> Result<()> {
    let mb = ops_mail::load_mailbox(txn, account, id)?;
    ops_mail::expunge(txn, account, id, &UidSet::from_runs([(1, u32::MAX)]))?;
    for (key, _) in txn.scan_prefix(T::UidChunks, &keys::mailbox_key(account, id))? {
        txn.del(T::UidChunks, &key);
    }
    super::flagindex::clear(txn, account, id)?;
    txn.del(T::Mailboxes, &keys::mailbox_key(account, id));
    txn.del(T::MailboxNames, &keys::name_key(account, &mb.name));
    txn.announce(account, Change { mailbox: id, kind: ChangeKind::Mailboxes });
    Ok(())
}

pub(crate) fn delete(txn: &mut Txn, account: u64, name: &str) -> Result<()> {
    let id = lookup(txn, account, name)?.ok_or_else(|| StoreError::NoSuchMailbox(name.to_string()))?;
    if id == INBOX_ID {
        return Err(StoreError::MailboxRefused("INBOX cannot be deleted".into()));
    }
    remove(txn, account, id)
}

pub(crate) fn rename(txn: &mut Txn, account: u64, from: &str, to: &str) -> Result<()> {
    let (from, to) = (canonical_name(from)?, canonical_name(to)?);
    let id = lookup(txn, account, &from)?.ok_or_else(|| StoreError::NoSuchMailbox(from.clone()))?;
    let child_prefix = format!("{from}{HIERARCHY_SEPARATOR}");
    if to == from || to.starts_with(&child_prefix) {
        return Err(StoreError::MailboxRefused(format!("cannot rename {from} to itself or below itself")));
    }
    if id == INBOX_ID {
        // RFC 3501 6.3.5: INBOX's messages move to the new name; INBOX
        // stays, empty, and its children do not move.
        let target = create(txn, account, &to, None)?;
        let all = UidSet::from_runs([(1, u32::MAX)]);
        for e in ops_mail::entries_in(txn, account, INBOX_ID, &all)? {
            let content_len = ops_mail::content_len(txn, e.content)?;
            let new = NewEntry {
                content: e.content,
                content_len,
                return_path: e.return_path,
                flags: e.flags,
                keywords: e.keywords,
                internal_date: e.internal_date,
            };
            ops_mail::file(txn, Filing { account, mailbox: target.id }, new)?;
        }
        ops_mail::expunge(txn, account, INBOX_ID, &all)?;
        return Ok(());
    }
    let mut moves = vec![(id, from.clone(), to.clone())];
    for (key, v) in txn.scan_prefix(T::MailboxNames, &keys::name_key(account, &child_prefix))? {
        let Some(name) = keys::name_of_key(&key) else { continue };
        let child: u32 = v.as_ref().try_into().map(u32::from_be_bytes).unwrap_or(u32::MAX);
        moves.push((child, name.to_string(), format!("{to}{}", &name[from.len()..])));
    }
    for (_, _, new_name) in &moves {
        if lookup(txn, account, new_name)?.is_some() {
            return Err(StoreError::MailboxExists(new_name.clone()));
        }
    }
    for (id, old_name, new_name) in moves {
        let mut mb = ops_mail::load_mailbox(txn, account, id)?;
        mb.name = new_name.clone();
        ops_mail::save_mailbox(txn, account, &mb);
        txn.del(T::MailboxNames, &keys::name_key(account, &old_name));
        txn.put(T::MailboxNames, &keys::name_key(account, &new_name), &id.to_be_bytes()[..]);
        txn.announce(account, Change { mailbox: id, kind: ChangeKind::Mailboxes });
    }
    Ok(())
}

pub(crate) fn subscribe(txn: &mut Txn, account: u64, name: &str, subscribed: bool) -> Result<()> {
    account_index(txn, account)?;
    let key = keys::name_key(account, &canonical_name(name)?);
    if subscribed {
        txn.put(T::Subscriptions, &key, &[][..]);
    } else {
        txn.del(T::Subscriptions, &key);
    }
    txn.announce(account, Change { mailbox: INBOX_ID, kind: ChangeKind::Mailboxes });
    Ok(())
}
