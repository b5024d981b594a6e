//! Messages: acceptance, filing, APPEND, flags, COPY/MOVE, EXPUNGE, the
//! reference counts of contents, and the reads of mailbox entries.
//!
//! Every change to a mailbox's messages first updates (so locks) the
//! mailbox's row; the statements after it see every earlier change to
//! that mailbox, from any node.

use super::blobs;
use super::error::Fail;
use super::notify::Announce;
use super::query::{exec, i, one, opt, rows, u, u32_of};
use crate::StoreError;
use crate::contract::FlagsOutcome;
use crate::schema::{
    Accepted, Append, Appended, Change, ChangeKind, CopyResult, Filed, Filing, FlagChange, FlagIndex, FlagOp,
    FlagUpdate, Flags, INBOX_ID, Incoming, MailEntry, SearchRows, UidSet, format_id, mail::return_path_line,
};
use bytes::Bytes;
use deadpool_postgres::{GenericClient, Transaction};
use std::collections::BTreeMap;
use tokio_postgres::Row;

const ENTRY_COLUMNS: &str = "m.uid, m.content, m.size, m.flags, m.keywords, m.internal_date, m.modseq, m.return_path";

fn entry(r: &Row) -> MailEntry {
    MailEntry {
        uid: u32_of(r.get(0)),
        content: u(r.get(1)),
        size: u(r.get(2)),
        flags: Flags(r.get::<_, i32>(3) as u32),
        keywords: r.get(4),
        internal_date: u(r.get(5)),
        modseq: u(r.get(6)),
        return_path: r.get(7),
    }
}

/// A UID set as two arrays (first and last UID of each run), for
/// `unnest($n, $m) AS r(lo, hi)`: one statement whatever the set.
fn run_arrays(uids: &UidSet) -> (Vec<i64>, Vec<i64>) {
    uids.runs().iter().map(|&(a, b)| (i64::from(a), i64::from(b))).unzip()
}

pub(crate) async fn entries<C: GenericClient>(
    c: &C,
    account: u64,
    mailbox: u32,
    uids: &UidSet,
) -> Result<Vec<MailEntry>, Fail> {
    let (lo, hi) = run_arrays(uids);
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM unnest($3::bigint[], $4::bigint[]) AS r(lo, hi)
         JOIN mail m ON m.account = $1 AND m.mailbox = $2 AND m.uid BETWEEN r.lo AND r.hi
         ORDER BY m.uid"
    );
    let found = rows(c, &sql, &[&i(account), &i64::from(mailbox), &lo, &hi]).await?;
    Ok(found.iter().map(entry).collect())
}

/// The UIDs as runs, computed by the database (gaps and islands): the
/// index is scanned, but only the runs cross the network.
pub(crate) async fn uids<C: GenericClient>(c: &C, account: u64, mailbox: u32) -> Result<UidSet, Fail> {
    let found = rows(
        c,
        "SELECT min(uid), max(uid) FROM (
             SELECT uid, uid - row_number() OVER (ORDER BY uid) AS run
             FROM mail WHERE account = $1 AND mailbox = $2) AS s
         GROUP BY run ORDER BY 1",
        &[&i(account), &i64::from(mailbox)],
    )
    .await?;
    Ok(UidSet::from_runs(found.iter().map(|r| (u32_of(r.get(0)), u32_of(r.get(1))))))
}

/// Which messages carry which flags: only the flagged rows are read.
pub(crate) async fn flag_index<C: GenericClient>(c: &C, account: u64, mailbox: u32) -> Result<FlagIndex, Fail> {
    let flagged = rows(
        c,
        "SELECT uid, flags, cardinality(keywords) > 0 FROM mail
         WHERE account = $1 AND mailbox = $2 AND (flags <> 0 OR cardinality(keywords) > 0) ORDER BY uid",
        &[&i(account), &i64::from(mailbox)],
    )
    .await?;
    let keywords = rows(
        c,
        "SELECT DISTINCT unnest(keywords) FROM mail WHERE account = $1 AND mailbox = $2",
        &[&i(account), &i64::from(mailbox)],
    )
    .await?;
    let mut index = FlagIndex::default();
    for r in &flagged {
        let (uid, flags, with_keywords) = (u32_of(r.get(0)), r.get::<_, i32>(1) as u32, r.get::<_, bool>(2));
        for (bit, set) in index.system.iter_mut().enumerate() {
            if flags & (1 << bit) != 0 {
                set.insert(uid);
            }
        }
        if with_keywords {
            index.with_keywords.insert(uid);
        }
    }
    for r in &keywords {
        let k: String = r.get(0);
        if !index.keywords.iter().any(|have| have.eq_ignore_ascii_case(&k)) {
            index.keywords.push(k);
        }
    }
    Ok(index)
}

/// The search rows kept for the messages of `uids`, in UID order.
pub(crate) async fn search_rows<C: GenericClient>(
    c: &C,
    account: u64,
    mailbox: u32,
    uids: &UidSet,
) -> Result<SearchRows, Fail> {
    let (lo, hi) = run_arrays(uids);
    let found = rows(
        c,
        "SELECT m.uid, m.search_row FROM unnest($3::bigint[], $4::bigint[]) AS r(lo, hi)
         JOIN mail m ON m.account = $1 AND m.mailbox = $2 AND m.uid BETWEEN r.lo AND r.hi
         WHERE m.search_row IS NOT NULL ORDER BY m.uid",
        &[&i(account), &i64::from(mailbox), &lo, &hi],
    )
    .await?;
    let mut out = SearchRows::default();
    for r in &found {
        out.push(u32_of(r.get(0)), r.get::<_, &[u8]>(1));
    }
    Ok(out)
}

/// Keeps search rows for the messages that still exist, under the
/// mailbox's lock like every change to its messages.
pub(crate) async fn keep_search_rows(
    tx: &Transaction<'_>,
    account: u64,
    mailbox: u32,
    kept: &[(u32, Bytes)],
) -> Result<(), Fail> {
    lock_mailboxes(tx, account, &[mailbox]).await?;
    let uids: Vec<i64> = kept.iter().map(|(uid, _)| i64::from(*uid)).collect();
    let data: Vec<&[u8]> = kept.iter().map(|(_, row)| row.as_ref()).collect();
    exec(
        tx,
        "UPDATE mail m SET search_row = r.row FROM unnest($3::bigint[], $4::bytea[]) AS r(uid, row)
         WHERE m.account = $1 AND m.mailbox = $2 AND m.uid = r.uid",
        &[&i(account), &i64::from(mailbox), &uids, &data],
    )
    .await?;
    Ok(())
}

/// Stores a new content with `refs` references.
pub(crate) async fn store_content(
    tx: &Transaction<'_>,
    id: u64,
    content: &[u8],
    summary: Option<&Bytes>,
    refs: i64,
) -> Result<(), Fail> {
    let inserted = exec(
        tx,
        "INSERT INTO contents (id, refs, len, summary) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        &[&i(id), &refs, &(content.len() as i64), &summary.map(|s| s.as_ref())],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Corrupt { area: "contents", detail: format!("content id {id} is taken") }.into());
    }
    blobs::put(tx, i(id), content).await
}

pub(crate) async fn content_len<C: GenericClient>(c: &C, id: u64) -> Result<u64, Fail> {
    let row = opt(c, "SELECT len FROM contents WHERE id = $1", &[&i(id)]).await?;
    row.map(|r| u(r.get(0))).ok_or_else(|| StoreError::NoSuchMessage(format_id(id)).into())
}

/// Adds `delta` references to each content (negative: removes); a content
/// goes with its last reference. Rows are updated in id order, so two
/// transactions never wait on each other's contents in a cycle.
pub(crate) async fn add_refs(tx: &Transaction<'_>, deltas: BTreeMap<u64, i64>) -> Result<(), Fail> {
    if deltas.is_empty() {
        return Ok(());
    }
    let (ids, by): (Vec<i64>, Vec<i64>) = deltas.iter().map(|(&id, &n)| (i(id), n)).unzip();
    let updated = rows(
        tx,
        "UPDATE contents c SET refs = greatest(c.refs + d.n, 0)
         FROM unnest($1::bigint[], $2::bigint[]) AS d(id, n) WHERE c.id = d.id
         RETURNING c.id, c.refs",
        &[&ids, &by],
    )
    .await?;
    if updated.len() != ids.len() {
        let missing = ids.iter().find(|id| !updated.iter().any(|r| r.get::<_, i64>(0) == **id)).copied().unwrap_or(0);
        return Err(StoreError::NoSuchMessage(format_id(u(missing))).into());
    }
    let gone: Vec<i64> = updated.iter().filter(|r| r.get::<_, i64>(1) == 0).map(|r| r.get(0)).collect();
    if !gone.is_empty() {
        exec(tx, "DELETE FROM contents WHERE id = ANY($1)", &[&gone]).await?;
        blobs::delete(tx, &gone).await?;
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

/// Files one message into a mailbox, taking its next UID and a new modseq
/// (the caller adds the content's reference). One statement: the
/// mailbox's row stays locked from this UPDATE to the commit, so every
/// round trip in between is time other deliveries to the same mailbox wait.
pub(crate) async fn file(
    tx: &Transaction<'_>,
    ann: &mut Announce,
    filing: Filing,
    new: NewEntry,
) -> Result<Filed, Fail> {
    let size = return_path_line(new.return_path.as_deref()).len() as u64 + new.content_len;
    let flags = new.flags.known();
    let unseen = i64::from(!flags.contains(Flags::SEEN));
    let row = opt(
        tx,
        "WITH taken AS (
             UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1,
                 messages = messages + 1, unseen = unseen + $3, bytes = bytes + $4
             WHERE account = $1 AND id = $2 AND uid_next <= 4294967295
             RETURNING uid_next - 1 AS uid, highest_modseq AS modseq)
         INSERT INTO mail (account, mailbox, uid, content, size, flags, keywords, internal_date, modseq, return_path)
         SELECT $1::bigint, $2::bigint, uid, $5::bigint, $4::bigint, $6::integer, $7::text[], $8::bigint, modseq, $9::text
         FROM taken RETURNING uid, modseq",
        &[
            &i(filing.account),
            &i64::from(filing.mailbox),
            &unseen,
            &i(size),
            &i(new.content),
            &(flags.0 as i32),
            &new.keywords,
            &i(new.internal_date),
            &new.return_path,
        ],
    )
    .await?;
    let Some(row) = row else {
        return Err(not_filed(tx, filing).await);
    };
    let (uid, modseq): (i64, i64) = (row.get(0), row.get(1));
    let uid = uid as u32;
    ann.push(filing.account, Change { mailbox: filing.mailbox, kind: ChangeKind::Appended { uid, modseq: u(modseq) } });
    Ok(Filed { account: filing.account, mailbox: filing.mailbox, uid })
}

/// Why [`file`] took no UID: the mailbox is gone, or it has used every UID
/// (RFC 3501 2.3.1.1: UIDs are 32-bit).
async fn not_filed(tx: &Transaction<'_>, filing: Filing) -> Fail {
    let found = opt(
        tx,
        "SELECT 1 FROM mailboxes WHERE account = $1 AND id = $2",
        &[&i(filing.account), &i64::from(filing.mailbox)],
    )
    .await;
    match found {
        Ok(Some(_)) => StoreError::MailboxRefused(format!("mailbox {} has used every UID", filing.mailbox)).into(),
        Ok(None) => missing_target(filing).into(),
        Err(e) => e,
    }
}

fn missing_target(filing: Filing) -> StoreError {
    if filing.mailbox == INBOX_ID {
        StoreError::NoSuchAccount(format!("account id {}", filing.account))
    } else {
        StoreError::NoSuchMailbox(format!("{} of account {}", filing.mailbox, filing.account))
    }
}

/// [`crate::contract::Contents::accept`] inside a transaction; `queue_id`
/// is the id the queue entry gets.
pub(crate) async fn accept(
    tx: &Transaction<'_>,
    ann: &mut Announce,
    incoming: &Incoming,
    queue_id: Option<u64>,
    now: u64,
) -> Result<Accepted, Fail> {
    let queued = incoming.queue.as_ref().and(queue_id);
    let refs = incoming.local.len() as i64 + i64::from(queued.is_some());
    if refs == 0 {
        // Nothing refers to it: keep nothing.
        return Ok(Accepted { content: incoming.id, filed: Vec::new(), queued: None });
    }
    store_content(tx, incoming.id, &incoming.content, incoming.summary.as_ref(), refs).await?;
    // Mailboxes are locked in (account, mailbox) order, whatever the
    // recipients' order, so concurrent deliveries never deadlock.
    let mut order: Vec<usize> = (0..incoming.local.len()).collect();
    order.sort_by_key(|&n| (incoming.local[n].account, incoming.local[n].mailbox));
    let mut filed = vec![None; incoming.local.len()];
    for n in order {
        let new = NewEntry {
            content: incoming.id,
            content_len: incoming.content.len() as u64,
            return_path: Some(incoming.return_path.clone()),
            flags: Flags::empty(),
            keywords: Vec::new(),
            internal_date: now,
        };
        filed[n] = Some(file(tx, ann, incoming.local[n], new).await?);
    }
    if let (Some(entry), Some(id)) = (&incoming.queue, queued) {
        let mut entry = entry.clone();
        entry.id = id;
        entry.content = incoming.id;
        entry.lease = None;
        super::queue::insert(tx, &entry).await?;
    }
    Ok(Accepted { content: incoming.id, filed: filed.into_iter().flatten().collect(), queued })
}

pub(crate) async fn append(
    tx: &Transaction<'_>,
    ann: &mut Announce,
    account: u64,
    mailbox: u32,
    id: u64,
    message: Append,
) -> Result<Appended, Fail> {
    store_content(tx, id, &message.content, message.summary.as_ref(), 1).await?;
    let new = NewEntry {
        content: id,
        content_len: message.content.len() as u64,
        return_path: None,
        flags: message.flags,
        keywords: dedup(message.keywords),
        internal_date: message.internal_date,
    };
    let filed = file(tx, ann, Filing { account, mailbox }, new).await?;
    let row = one(
        tx,
        "SELECT uid_validity, highest_modseq FROM mailboxes WHERE account = $1 AND id = $2",
        &[&i(account), &i64::from(mailbox)],
    )
    .await?;
    Ok(Appended { uid_validity: u32_of(row.get(0)), uid: filed.uid, modseq: u(row.get(1)) })
}

/// Keywords compare case-insensitively (RFC 3501 2.3.2); the first
/// spelling stays.
pub(crate) fn dedup(keywords: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(keywords.len());
    for k in keywords {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&k)) {
            out.push(k);
        }
    }
    out
}

/// Locks the mailboxes (in id order) and returns each one's
/// (uid_validity, highest_modseq); [`StoreError::NoSuchMailbox`] if one is missing.
async fn lock_mailboxes(tx: &Transaction<'_>, account: u64, ids: &[u32]) -> Result<BTreeMap<u32, (u32, u64)>, Fail> {
    let mut wanted: Vec<i64> = ids.iter().map(|&m| i64::from(m)).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let found = rows(
        tx,
        "SELECT id, uid_validity, highest_modseq FROM mailboxes WHERE account = $1 AND id = ANY($2)
         ORDER BY id FOR UPDATE",
        &[&i(account), &wanted],
    )
    .await?;
    let locked: BTreeMap<u32, (u32, u64)> =
        found.iter().map(|r| (u32_of(r.get(0)), (u32_of(r.get(1)), u(r.get(2))))).collect();
    if let Some(missing) = ids.iter().find(|m| !locked.contains_key(m)) {
        return Err(StoreError::NoSuchMailbox(format!("{missing} of account {account}")).into());
    }
    Ok(locked)
}

/// Removes the existing messages of `uids`; returns their UIDs, ascending.
pub(crate) async fn expunge(
    tx: &Transaction<'_>,
    ann: &mut Announce,
    account: u64,
    mailbox: u32,
    uids: &UidSet,
) -> Result<Vec<u32>, Fail> {
    lock_mailboxes(tx, account, &[mailbox]).await?;
    let (lo, hi) = run_arrays(uids);
    let gone = rows(
        tx,
        "DELETE FROM mail m USING unnest($3::bigint[], $4::bigint[]) AS r(lo, hi)
         WHERE m.account = $1 AND m.mailbox = $2 AND m.uid BETWEEN r.lo AND r.hi
         RETURNING m.uid, m.content, m.size, m.flags",
        &[&i(account), &i64::from(mailbox), &lo, &hi],
    )
    .await?;
    if gone.is_empty() {
        return Ok(Vec::new());
    }
    let mut removed = Vec::with_capacity(gone.len());
    let (mut bytes, mut unseen) = (0i64, 0i64);
    let mut refs = BTreeMap::new();
    for r in &gone {
        removed.push(u32_of(r.get(0)));
        *refs.entry(u(r.get(1))).or_insert(0) -= 1;
        bytes += r.get::<_, i64>(2);
        unseen += i64::from(r.get::<_, i32>(3) as u32 & Flags::SEEN.0 == 0);
    }
    removed.sort_unstable();
    let row = one(
        tx,
        "UPDATE mailboxes SET highest_modseq = highest_modseq + 1, messages = greatest(messages - $3, 0),
             unseen = greatest(unseen - $4, 0), bytes = greatest(bytes - $5, 0)
         WHERE account = $1 AND id = $2 RETURNING highest_modseq",
        &[&i(account), &i64::from(mailbox), &(removed.len() as i64), &unseen, &bytes],
    )
    .await?;
    add_refs(tx, refs).await?;
    ann.push(account, Change { mailbox, kind: ChangeKind::Expunged { uids: removed.clone(), modseq: u(row.get(0)) } });
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

/// Keywords of many rows in one text[] parameter: each row's list as a
/// JSON array (ragged arrays cannot be a PostgreSQL array).
fn keywords_json(keywords: &[String]) -> String {
    serde_json::to_string(keywords).unwrap_or_else(|_| "[]".into())
}

pub(crate) async fn set_flags(
    tx: &Transaction<'_>,
    ann: &mut Announce,
    account: u64,
    mailbox: u32,
    uids: &UidSet,
    change: &FlagChange,
) -> Result<FlagsOutcome, Fail> {
    let (_, modseq) = lock_mailboxes(tx, account, &[mailbox]).await?[&mailbox];
    let modseq = modseq + 1;
    let mut outcome = FlagsOutcome::default();
    let (mut changed_uids, mut changed_flags, mut changed_keywords) = (Vec::new(), Vec::new(), Vec::new());
    let mut unseen = 0i64;
    for mut e in entries(tx, account, mailbox, uids).await? {
        if change.unchanged_since.is_some_and(|since| e.modseq > since) {
            outcome.modified.push(e.uid);
            continue;
        }
        let (flags, keywords) = apply_flags(&e, change);
        if flags != e.flags || keywords != e.keywords {
            match (e.flags.contains(Flags::SEEN), flags.contains(Flags::SEEN)) {
                (false, true) => unseen -= 1,
                (true, false) => unseen += 1,
                _ => {}
            }
            e.flags = flags;
            e.keywords = keywords;
            e.modseq = modseq;
            changed_uids.push(i64::from(e.uid));
            changed_flags.push(e.flags.0 as i32);
            changed_keywords.push(keywords_json(&e.keywords));
            let update = FlagUpdate { uid: e.uid, flags: e.flags, keywords: e.keywords.clone(), modseq };
            ann.push(account, Change { mailbox, kind: ChangeKind::Flags(update) });
        }
        outcome.updated.push(FlagUpdate { uid: e.uid, flags: e.flags, keywords: e.keywords, modseq: e.modseq });
    }
    if !changed_uids.is_empty() {
        exec(
            tx,
            "UPDATE mail m SET flags = c.flags, modseq = $3,
                 keywords = ARRAY(SELECT jsonb_array_elements_text(c.keywords::jsonb))
             FROM unnest($4::bigint[], $5::int[], $6::text[]) AS c(uid, flags, keywords)
             WHERE m.account = $1 AND m.mailbox = $2 AND m.uid = c.uid",
            &[&i(account), &i64::from(mailbox), &i(modseq), &changed_uids, &changed_flags, &changed_keywords],
        )
        .await?;
        exec(
            tx,
            "UPDATE mailboxes SET highest_modseq = $3, unseen = greatest(unseen + $4, 0) WHERE account = $1 AND id = $2",
            &[&i(account), &i64::from(mailbox), &i(modseq), &unseen],
        )
        .await?;
    }
    Ok(outcome)
}

/// COPY (and the first half of MOVE): new entries in `to` sharing the
/// contents, all under one new modseq of the target.
pub(crate) async fn copy(
    tx: &Transaction<'_>,
    ann: &mut Announce,
    account: u64,
    from: u32,
    uids: &UidSet,
    to: u32,
) -> Result<CopyResult, Fail> {
    let locked = lock_mailboxes(tx, account, &[from, to]).await?;
    let uid_validity = locked[&to].0;
    let source = entries(tx, account, from, uids).await?;
    if source.is_empty() {
        return Ok(CopyResult { uid_validity, mapping: Vec::new() });
    }
    let count = source.len() as i64;
    let bytes: i64 = source.iter().map(|e| i(e.size)).sum();
    let unseen = source.iter().filter(|e| !e.flags.contains(Flags::SEEN)).count() as i64;
    let row = one(
        tx,
        "UPDATE mailboxes SET uid_next = uid_next + $3, highest_modseq = highest_modseq + 1,
             messages = messages + $3, unseen = unseen + $4, bytes = bytes + $5
         WHERE account = $1 AND id = $2 RETURNING uid_next - $3, highest_modseq",
        &[&i(account), &i64::from(to), &count, &unseen, &bytes],
    )
    .await?;
    let (first, modseq): (i64, i64) = (row.get(0), row.get(1));
    if first + count - 1 > i64::from(u32::MAX) {
        return Err(StoreError::MailboxRefused(format!("mailbox {to} has used every UID")).into());
    }
    let new_uids: Vec<i64> = (first..first + count).collect();
    let contents: Vec<i64> = source.iter().map(|e| i(e.content)).collect();
    let sizes: Vec<i64> = source.iter().map(|e| i(e.size)).collect();
    let flags: Vec<i32> = source.iter().map(|e| e.flags.0 as i32).collect();
    let keywords: Vec<String> = source.iter().map(|e| keywords_json(&e.keywords)).collect();
    let dates: Vec<i64> = source.iter().map(|e| i(e.internal_date)).collect();
    let return_paths: Vec<Option<String>> = source.iter().map(|e| e.return_path.clone()).collect();
    exec(
        tx,
        "INSERT INTO mail (account, mailbox, uid, content, size, flags, keywords, internal_date, modseq, return_path)
         SELECT $1, $2, n.uid, n.content, n.size, n.flags,
                ARRAY(SELECT jsonb_array_elements_text(n.keywords::jsonb)), n.internal_date, $3, n.return_path
         FROM unnest($4::bigint[], $5::bigint[], $6::bigint[], $7::int[], $8::text[], $9::bigint[], $10::text[])
              AS n(uid, content, size, flags, keywords, internal_date, return_path)",
        &[&i(account), &i64::from(to), &modseq, &new_uids, &contents, &sizes, &flags, &keywords, &dates, &return_paths],
    )
    .await?;
    let mut refs = BTreeMap::new();
    for e in &source {
        *refs.entry(e.content).or_insert(0) += 1;
    }
    add_refs(tx, refs).await?;
    let mut mapping = Vec::with_capacity(source.len());
    for (e, &uid) in source.iter().zip(&new_uids) {
        let uid = uid as u32;
        mapping.push((e.uid, uid));
        ann.push(account, Change { mailbox: to, kind: ChangeKind::Appended { uid, modseq: u(modseq) } });
    }
    Ok(CopyResult { uid_validity, mapping })
}
