//! The queue. An entry's row keeps the record as JSON beside the columns
//! the queue is run by: `next_attempt` (its due time, or its lease's end
//! while claimed) and the lease. A claim takes due rows with `FOR UPDATE
//! SKIP LOCKED`, so nodes claiming at once never wait on or take each
//! other's entries; a lease that runs out leaves the row due for anyone.

use super::error::Fail;
use super::mail::{self, NewEntry};
use super::notify::Announce;
use super::query::{exec, i, one, opt, rows, u};
use crate::StoreError;
use crate::schema::{Committed, Filing, Flags, Incoming, Lease, QueueEntry, format_id};
use deadpool_postgres::{GenericClient, Transaction};
use std::collections::BTreeMap;
use tokio_postgres::Row;

const COLUMNS: &str = "q.entry, q.next_attempt, q.lease_owner, q.lease_until";

/// The record, with the columns the queue is run by laid over it.
fn decode(r: &Row) -> Result<QueueEntry, Fail> {
    let raw: &[u8] = r.get(0);
    let mut entry: QueueEntry =
        serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt { area: "queue", detail: e.to_string() })?;
    entry.next_attempt = u(r.get(1));
    entry.lease = match (r.get::<_, Option<String>>(2), r.get::<_, Option<i64>>(3)) {
        (Some(owner), Some(until)) => Some(Lease { owner, until: u(until) }),
        _ => None,
    };
    Ok(entry)
}

fn encode(entry: &QueueEntry) -> Result<Vec<u8>, Fail> {
    serde_json::to_vec(entry).map_err(|e| StoreError::Corrupt { area: "queue", detail: e.to_string() }.into())
}

/// A new entry (the caller added its content's reference).
pub(crate) async fn insert(tx: &Transaction<'_>, entry: &QueueEntry) -> Result<(), Fail> {
    exec(
        tx,
        "INSERT INTO queue (id, content, next_attempt, lease_owner, lease_until, entry) VALUES ($1, $2, $3, NULL, NULL, $4)",
        &[&i(entry.id), &i(entry.content), &i(entry.next_attempt), &encode(entry)?],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get<C: GenericClient>(c: &C, id: u64) -> Result<Option<QueueEntry>, Fail> {
    let sql = format!("SELECT {COLUMNS} FROM queue q WHERE q.id = $1");
    opt(c, &sql, &[&i(id)]).await?.as_ref().map(decode).transpose()
}

pub(crate) async fn list<C: GenericClient>(c: &C) -> Result<Vec<QueueEntry>, Fail> {
    let sql = format!("SELECT {COLUMNS} FROM queue q ORDER BY q.id");
    rows(c, &sql, &[]).await?.iter().map(decode).collect()
}

pub(crate) async fn next_due<C: GenericClient>(c: &C) -> Result<Option<u64>, Fail> {
    let row = one(c, "SELECT min(next_attempt) FROM queue", &[]).await?;
    Ok(row.get::<_, Option<i64>>(0).map(u))
}

pub(crate) async fn claim(
    tx: &Transaction<'_>,
    owner: &str,
    now: u64,
    limit: usize,
    until: u64,
) -> Result<Vec<QueueEntry>, Fail> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = format!(
        "WITH due AS (
             SELECT id, next_attempt AS was FROM queue WHERE next_attempt <= $1
             ORDER BY next_attempt, id LIMIT $2 FOR UPDATE SKIP LOCKED)
         UPDATE queue q SET lease_owner = $3, lease_until = $4, next_attempt = $4
         FROM due WHERE q.id = due.id
         RETURNING {COLUMNS}, due.was, q.id"
    );
    let claimed = rows(tx, &sql, &[&i(now), &limit, &owner, &i(until)]).await?;
    let mut out: Vec<(i64, i64, QueueEntry)> =
        claimed.iter().map(|r| Ok((r.get(4), r.get(5), decode(r)?))).collect::<Result<_, Fail>>()?;
    // Earliest first, as the schedule had them.
    out.sort_by_key(|(was, id, _)| (*was, *id));
    Ok(out.into_iter().map(|(_, _, e)| e).collect())
}

pub(crate) async fn renew(tx: &Transaction<'_>, owner: &str, id: u64, until: u64) -> Result<(), Fail> {
    let row = opt(tx, "SELECT lease_owner FROM queue WHERE id = $1 FOR UPDATE", &[&i(id)]).await?;
    let Some(row) = row else { return Err(StoreError::NoSuchQueueEntry(format_id(id)).into()) };
    if row.get::<_, Option<&str>>(0).is_some_and(|held| held != owner) {
        return Err(StoreError::LeaseLost(format_id(id)).into());
    }
    exec(
        tx,
        "UPDATE queue SET lease_owner = $2, lease_until = $3, next_attempt = $3 WHERE id = $1",
        &[&i(id), &owner, &i(until)],
    )
    .await?;
    Ok(())
}

/// Start-up of `owner`: the leases it held died with its previous process
/// (other nodes' leases are theirs and stay). Those entries go back to
/// their true due time, or away when nothing is left to do. Returns the
/// number of entries queued.
pub(crate) async fn recover(tx: &Transaction<'_>, owner: &str) -> Result<usize, Fail> {
    let sql = format!("SELECT {COLUMNS}, q.id FROM queue q WHERE q.lease_owner = $1 FOR UPDATE");
    let held = rows(tx, &sql, &[&owner]).await?;
    let mut done = BTreeMap::new();
    for r in &held {
        let entry = decode(r)?;
        match entry.due() {
            Some(due) => {
                exec(
                    tx,
                    "UPDATE queue SET lease_owner = NULL, lease_until = NULL, next_attempt = $2 WHERE id = $1",
                    &[&i(entry.id), &i(due)],
                )
                .await?;
            }
            None => {
                exec(tx, "DELETE FROM queue WHERE id = $1", &[&i(entry.id)]).await?;
                *done.entry(entry.content).or_insert(0) -= 1;
            }
        }
    }
    mail::add_refs(tx, done).await?;
    let row = one(tx, "SELECT count(*) FROM queue", &[]).await?;
    Ok(row.get::<_, i64>(0) as usize)
}

pub(crate) async fn commit(
    tx: &Transaction<'_>,
    ann: &mut Announce,
    entry: &QueueEntry,
    file_into: &[u64],
    new: &[(Incoming, Option<u64>)],
    now: u64,
) -> Result<Committed, Fail> {
    let row = opt(tx, "SELECT lease_owner FROM queue WHERE id = $1 FOR UPDATE", &[&i(entry.id)]).await?;
    let Some(row) = row else { return Err(StoreError::NoSuchQueueEntry(format_id(entry.id)).into()) };
    if let Some(held) = row.get::<_, Option<&str>>(0)
        && entry.lease.as_ref().is_none_or(|mine| mine.owner != held)
    {
        return Err(StoreError::LeaseLost(format_id(entry.id)).into());
    }
    let mut filed = Vec::with_capacity(file_into.len());
    if !file_into.is_empty() {
        let content_len = mail::content_len(tx, entry.content).await?;
        for &account in file_into {
            let new = NewEntry {
                content: entry.content,
                content_len,
                return_path: Some(entry.sender.clone()),
                flags: Flags::empty(),
                keywords: Vec::new(),
                internal_date: now,
            };
            filed.push(mail::file(tx, ann, Filing::inbox(account), new).await?.uid);
        }
    }
    let mut refs = BTreeMap::from([(entry.content, file_into.len() as i64)]);
    let mut accepted = Vec::with_capacity(new.len());
    for (incoming, queue_id) in new {
        accepted.push(mail::accept(tx, ann, incoming, *queue_id, now).await?);
    }
    match entry.due() {
        None => {
            exec(tx, "DELETE FROM queue WHERE id = $1", &[&i(entry.id)]).await?;
            *refs.entry(entry.content).or_insert(0) -= 1;
        }
        Some(due) => {
            let mut entry = entry.clone();
            entry.next_attempt = due;
            entry.lease = None;
            exec(
                tx,
                "UPDATE queue SET next_attempt = $2, lease_owner = NULL, lease_until = NULL, entry = $3 WHERE id = $1",
                &[&i(entry.id), &i(due), &encode(&entry)?],
            )
            .await?;
        }
    }
    refs.retain(|_, n| *n != 0);
    mail::add_refs(tx, refs).await?;
    Ok(Committed { filed, accepted })
}
