//! Accounts.

use super::error::Fail;
use super::mailboxes;
use super::notify::Announce;
use super::query::{exec, i, opt, rows, u};
use crate::StoreError;
use crate::schema::{Account, ChangeKind, SpecialUse, normalize_address};
use deadpool_postgres::{GenericClient, Transaction};
use std::collections::BTreeMap;
use tokio_postgres::Row;

const COLUMNS: &str = "id, address, password_hash, created";

fn account(r: &Row) -> Account {
    Account { id: u(r.get(0)), address: r.get(1), password_hash: r.get(2), created: u(r.get(3)) }
}

/// PostgreSQL's text cannot hold NUL: such an address names nobody.
fn storable(address: &str) -> Option<String> {
    let address = normalize_address(address);
    (!address.contains('\0')).then_some(address)
}

pub(crate) async fn by_address<C: GenericClient>(c: &C, address: &str) -> Result<Option<Account>, Fail> {
    let Some(address) = storable(address) else { return Ok(None) };
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE address = $1");
    Ok(opt(c, &sql, &[&address]).await?.as_ref().map(account))
}

pub(crate) async fn by_id<C: GenericClient>(c: &C, id: u64) -> Result<Option<Account>, Fail> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE id = $1");
    Ok(opt(c, &sql, &[&i(id)]).await?.as_ref().map(account))
}

pub(crate) async fn list<C: GenericClient>(c: &C) -> Result<Vec<Account>, Fail> {
    let sql = format!("SELECT {COLUMNS} FROM accounts ORDER BY address");
    Ok(rows(c, &sql, &[]).await?.iter().map(account).collect())
}

pub(crate) async fn add(
    tx: &Transaction<'_>,
    ann: &mut Announce,
    address: &str,
    password_hash: &str,
    now: u64,
) -> Result<Account, Fail> {
    let address = storable(address).ok_or_else(|| StoreError::NoSuchAccount("an address with NUL".into()))?;
    if address.is_empty() {
        return Err(StoreError::NoSuchAccount("an empty address".into()).into());
    }
    let next_mailbox = 1 + SpecialUse::DEFAULT_FOLDERS.len() as i64;
    let row = opt(
        tx,
        "INSERT INTO accounts (id, address, password_hash, created, next_mailbox)
         VALUES (nextval('account_ids'), $1, $2, $3, $4) ON CONFLICT (address) DO NOTHING RETURNING id",
        &[&address, &password_hash, &i(now), &next_mailbox],
    )
    .await?;
    let Some(row) = row else { return Err(StoreError::AccountExists(address).into()) };
    let id = u(row.get(0));
    mailboxes::create_defaults(tx, ann, id).await?;
    Ok(Account { id, address, password_hash: password_hash.to_string(), created: now })
}

pub(crate) async fn set_password(tx: &Transaction<'_>, address: &str, password_hash: &str) -> Result<(), Fail> {
    let address = storable(address).unwrap_or_default();
    let n = exec(tx, "UPDATE accounts SET password_hash = $2 WHERE address = $1", &[&address, &password_hash]).await?;
    if n == 0 {
        return Err(StoreError::NoSuchAccount(address).into());
    }
    Ok(())
}

/// Removes the account with its mailboxes, subscriptions and mail, freeing
/// contents nobody else refers to.
pub(crate) async fn delete(tx: &Transaction<'_>, ann: &mut Announce, address: &str) -> Result<(), Fail> {
    let address = storable(address).unwrap_or_default();
    let row = opt(tx, "SELECT id FROM accounts WHERE address = $1 FOR UPDATE", &[&address]).await?;
    let Some(row) = row else { return Err(StoreError::NoSuchAccount(address).into()) };
    let id: i64 = row.get(0);
    // Every mailbox locked (in id order) before its messages go, as any
    // change to them would.
    let boxes = rows(tx, "SELECT id FROM mailboxes WHERE account = $1 ORDER BY id FOR UPDATE", &[&id]).await?;
    let gone = rows(
        tx,
        "WITH gone AS (DELETE FROM mail WHERE account = $1 RETURNING content)
         SELECT content, count(*) FROM gone GROUP BY content",
        &[&id],
    )
    .await?;
    let refs: BTreeMap<u64, i64> = gone.iter().map(|r| (u(r.get(0)), -r.get::<_, i64>(1))).collect();
    super::mail::add_refs(tx, refs).await?;
    // Mailboxes and subscriptions go with the account (ON DELETE CASCADE).
    exec(tx, "DELETE FROM accounts WHERE id = $1", &[&id]).await?;
    for b in &boxes {
        let mailbox = super::query::u32_of(b.get(0));
        ann.push(u(id), crate::schema::Change { mailbox, kind: ChangeKind::Mailboxes });
    }
    Ok(())
}
