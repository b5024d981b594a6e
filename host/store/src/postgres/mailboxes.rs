//! The set of mailboxes: reads, create, delete, rename, subscriptions.

use super::error::Fail;
use super::mail;
use super::notify::Announce;
use super::query::{exec, i, opt, rows, u, u32_of};
use crate::StoreError;
use crate::schema::{
    Change, ChangeKind, HIERARCHY_SEPARATOR, INBOX, INBOX_ID, MailboxInfo, SpecialUse, UidSet, canonical_mailbox_name,
};
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

const COLUMNS: &str = "m.id, m.name, m.special_use, m.uid_validity, m.uid_next, m.highest_modseq, m.messages, \
     m.unseen, m.bytes, EXISTS (SELECT 1 FROM subscriptions s WHERE s.account = m.account AND s.name = m.name)";

fn special_use_name(s: SpecialUse) -> &'static str {
    match s {
        SpecialUse::All => "all",
        SpecialUse::Archive => "archive",
        SpecialUse::Drafts => "drafts",
        SpecialUse::Flagged => "flagged",
        SpecialUse::Junk => "junk",
        SpecialUse::Sent => "sent",
        SpecialUse::Trash => "trash",
    }
}

fn special_use_of(name: &str) -> Option<SpecialUse> {
    [
        SpecialUse::All,
        SpecialUse::Archive,
        SpecialUse::Drafts,
        SpecialUse::Flagged,
        SpecialUse::Junk,
        SpecialUse::Sent,
        SpecialUse::Trash,
    ]
    .into_iter()
    .find(|s| special_use_name(*s) == name)
}

fn info(r: &Row) -> MailboxInfo {
    MailboxInfo {
        id: u32_of(r.get(0)),
        name: r.get(1),
        special_use: r.get::<_, Option<&str>>(2).and_then(special_use_of),
        uid_validity: u32_of(r.get(3)),
        uid_next: u32_of(r.get(4)),
        highest_modseq: u(r.get(5)),
        messages: u32_of(r.get(6)),
        unseen: u32_of(r.get(7)),
        bytes: u(r.get(8)),
        subscribed: r.get(9),
    }
}

pub(crate) async fn list<C: GenericClient>(c: &C, account: u64) -> Result<Vec<MailboxInfo>, Fail> {
    let sql = format!("SELECT {COLUMNS} FROM mailboxes m WHERE m.account = $1 ORDER BY m.id");
    Ok(rows(c, &sql, &[&i(account)]).await?.iter().map(info).collect())
}

/// By name; an invalid name names nothing.
pub(crate) async fn by_name<C: GenericClient>(c: &C, account: u64, name: &str) -> Result<Option<MailboxInfo>, Fail> {
    let Ok(name) = canonical_mailbox_name(name) else { return Ok(None) };
    let sql = format!("SELECT {COLUMNS} FROM mailboxes m WHERE m.account = $1 AND m.name = $2");
    Ok(opt(c, &sql, &[&i(account), &name]).await?.as_ref().map(info))
}

pub(crate) async fn by_id<C: GenericClient>(c: &C, account: u64, id: u32) -> Result<Option<MailboxInfo>, Fail> {
    let sql = format!("SELECT {COLUMNS} FROM mailboxes m WHERE m.account = $1 AND m.id = $2");
    Ok(opt(c, &sql, &[&i(account), &i64::from(id)]).await?.as_ref().map(info))
}

/// The id of a mailbox, its row locked for the rest of the transaction.
async fn lock_by_name(tx: &Transaction<'_>, account: u64, name: &str) -> Result<Option<u32>, Fail> {
    let row =
        opt(tx, "SELECT id FROM mailboxes WHERE account = $1 AND name = $2 FOR UPDATE", &[&i(account), &name]).await?;
    Ok(row.map(|r| u32_of(r.get(0))))
}

/// A mailbox with the given id (an account's default folders) or the
/// account's next one, and a UIDVALIDITY never given before in the store.
pub(crate) async fn create_with(
    tx: &Transaction<'_>,
    ann: &mut Announce,
    account: u64,
    name: &str,
    special_use: Option<SpecialUse>,
    id: Option<u32>,
) -> Result<MailboxInfo, Fail> {
    let name = canonical_mailbox_name(name)?;
    let id = match id {
        Some(id) => i64::from(id),
        None => {
            let row = opt(
                tx,
                "UPDATE accounts SET next_mailbox = next_mailbox + 1 WHERE id = $1 RETURNING next_mailbox - 1",
                &[&i(account)],
            )
            .await?;
            let id: i64 = row.ok_or_else(|| StoreError::NoSuchAccount(format!("account id {account}")))?.get(0);
            if id > i64::from(u32::MAX) {
                return Err(StoreError::MailboxRefused("too many mailboxes".into()).into());
            }
            id
        }
    };
    let row = opt(
        tx,
        "INSERT INTO mailboxes (account, id, name, special_use, uid_validity, uid_next, highest_modseq)
         VALUES ($1, $2, $3, $4, nextval('uid_validities'), 1, 1)
         ON CONFLICT (account, name) DO NOTHING RETURNING uid_validity",
        &[&i(account), &id, &name, &special_use.map(special_use_name)],
    )
    .await?;
    let Some(row) = row else { return Err(StoreError::MailboxExists(name).into()) };
    let id = id as u32;
    ann.push(account, Change { mailbox: id, kind: ChangeKind::Mailboxes });
    Ok(MailboxInfo {
        id,
        name,
        special_use,
        subscribed: false,
        uid_validity: u32_of(row.get(0)),
        uid_next: 1,
        highest_modseq: 1,
        messages: 0,
        unseen: 0,
        bytes: 0,
    })
}

/// Removes a mailbox (by id) with its messages.
pub(crate) async fn remove(tx: &Transaction<'_>, ann: &mut Announce, account: u64, id: u32) -> Result<(), Fail> {
    mail::expunge(tx, ann, account, id, &UidSet::from_runs([(1, u32::MAX)])).await?;
    exec(tx, "DELETE FROM mailboxes WHERE account = $1 AND id = $2", &[&i(account), &i64::from(id)]).await?;
    ann.push(account, Change { mailbox: id, kind: ChangeKind::Mailboxes });
    Ok(())
}

pub(crate) async fn delete(tx: &Transaction<'_>, ann: &mut Announce, account: u64, name: &str) -> Result<(), Fail> {
    let canonical = canonical_mailbox_name(name)?;
    let id = lock_by_name(tx, account, &canonical).await?.ok_or_else(|| StoreError::NoSuchMailbox(name.to_string()))?;
    if id == INBOX_ID {
        return Err(StoreError::MailboxRefused("INBOX cannot be deleted".into()).into());
    }
    remove(tx, ann, account, id).await
}

pub(crate) async fn rename(
    tx: &Transaction<'_>,
    ann: &mut Announce,
    account: u64,
    from: &str,
    to: &str,
) -> Result<(), Fail> {
    let (from, to) = (canonical_mailbox_name(from)?, canonical_mailbox_name(to)?);
    let id = lock_by_name(tx, account, &from).await?.ok_or_else(|| StoreError::NoSuchMailbox(from.clone()))?;
    let child_prefix = format!("{from}{HIERARCHY_SEPARATOR}");
    if to == from || to.starts_with(&child_prefix) {
        return Err(StoreError::MailboxRefused(format!("cannot rename {from} to itself or below itself")).into());
    }
    if id == INBOX_ID {
        // RFC 3501 6.3.5: INBOX's messages move to the new name; INBOX
        // stays, empty, and its children do not move.
        let target = create_with(tx, ann, account, &to, None, None).await?;
        let all = UidSet::from_runs([(1, u32::MAX)]);
        mail::copy(tx, ann, account, INBOX_ID, &all, target.id).await?;
        mail::expunge(tx, ann, account, INBOX_ID, &all).await?;
        return Ok(());
    }
    let children = rows(
        tx,
        "SELECT id, name FROM mailboxes WHERE account = $1 AND starts_with(name, $2) ORDER BY id FOR UPDATE",
        &[&i(account), &child_prefix],
    )
    .await?;
    let mut moves = vec![(id, to.clone())];
    for r in &children {
        let name: &str = r.get(1);
        moves.push((u32_of(r.get(0)), format!("{to}{}", &name[from.len()..])));
    }
    let new_names: Vec<&str> = moves.iter().map(|(_, n)| n.as_str()).collect();
    let taken =
        opt(tx, "SELECT name FROM mailboxes WHERE account = $1 AND name = ANY($2) LIMIT 1", &[&i(account), &new_names])
            .await?;
    if let Some(taken) = taken {
        return Err(StoreError::MailboxExists(taken.get(0)).into());
    }
    for (id, new_name) in moves {
        exec(
            tx,
            "UPDATE mailboxes SET name = $3 WHERE account = $1 AND id = $2",
            &[&i(account), &i64::from(id), &new_name],
        )
        .await?;
        ann.push(account, Change { mailbox: id, kind: ChangeKind::Mailboxes });
    }
    Ok(())
}

pub(crate) async fn subscriptions<C: GenericClient>(c: &C, account: u64) -> Result<Vec<String>, Fail> {
    let found = rows(c, "SELECT name FROM subscriptions WHERE account = $1 ORDER BY name", &[&i(account)]).await?;
    Ok(found.iter().map(|r| r.get(0)).collect())
}

pub(crate) async fn subscribe(
    tx: &Transaction<'_>,
    ann: &mut Announce,
    account: u64,
    name: &str,
    subscribed: bool,
) -> Result<(), Fail> {
    let name = canonical_mailbox_name(name)?;
    if opt(tx, "SELECT 1 FROM accounts WHERE id = $1", &[&i(account)]).await?.is_none() {
        return Err(StoreError::NoSuchAccount(format!("account id {account}")).into());
    }
    let sql = if subscribed {
        "INSERT INTO subscriptions (account, name) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM subscriptions WHERE account = $1 AND name = $2"
    };
    exec(tx, sql, &[&i(account), &name]).await?;
    ann.push(account, Change { mailbox: INBOX_ID, kind: ChangeKind::Mailboxes });
    Ok(())
}

/// INBOX and the special-use folders of a new account, ids 0..=4, all
/// subscribed.
pub(crate) async fn create_defaults(tx: &Transaction<'_>, ann: &mut Announce, account: u64) -> Result<(), Fail> {
    let defaults =
        std::iter::once((INBOX, None)).chain(SpecialUse::DEFAULT_FOLDERS.iter().map(|(n, u)| (*n, Some(*u))));
    for (id, (name, special_use)) in defaults.enumerate() {
        create_with(tx, ann, account, name, special_use, Some(INBOX_ID + id as u32)).await?;
        exec(
            tx,
            "INSERT INTO subscriptions (account, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&i(account), &name],
        )
        .await?;
    }
    Ok(())
}
