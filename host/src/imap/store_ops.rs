//! An IMAP session's store requests, run against the account's mailboxes.

use crate::state::ServerState;
use bytes::Bytes;
use ferrymail_policy::SessionInfo;
use ferrymail_proto::imap::{
    Answer, CopyOutcome, Failure, ListedMailbox, MailboxStatus, MessageData, MessageFlags, Request, SearchRows,
    SelectedMailbox, Summary,
};
use ferrymail_store::schema::{Append, FlagChange, FlagOp, Flags, HIERARCHY_SEPARATOR, MailboxInfo, UidSet};
use ferrymail_store::{StoreError, now_secs};
use std::sync::Arc;

pub fn flags_of(flags: Flags, keywords: Vec<String>) -> MessageFlags {
    MessageFlags { system: flags.known().0, keywords }
}

fn status_of(m: &MailboxInfo) -> MailboxStatus {
    MailboxStatus {
        messages: m.messages,
        unseen: m.unseen,
        uid_next: m.uid_next,
        uid_validity: m.uid_validity,
        highest_modseq: m.highest_modseq,
        size: m.bytes,
        recent: 0,
    }
}

/// STATUS RECENT: the mailbox's messages no session has had as `\Recent`
/// (the UID list is read only when some are claimed and some are not).
async fn recent_of(state: &Arc<ServerState>, account: u64, m: &MailboxInfo) -> Result<u32, StoreError> {
    let marks = &state.imap_recent;
    let claimed = marks.claimed(account, m.id, m.uid_validity);
    if claimed == 0 {
        return Ok(m.messages);
    }
    if claimed.saturating_add(1) >= m.uid_next {
        return Ok(0);
    }
    let uids: Vec<u32> = state.store.uids(account, m.id).await?.iter().collect();
    Ok(marks.unclaimed(account, m.id, m.uid_validity, &uids))
}

/// A store error as the client hears of it; the unexpected ones are logged.
fn failure(e: StoreError, info: &SessionInfo) -> Failure {
    match e {
        StoreError::NoSuchMailbox(_) => Failure::NoSuchMailbox,
        StoreError::MailboxExists(_) => Failure::Exists,
        StoreError::MailboxRefused(why) => Failure::Cannot(why),
        e => {
            tracing::error!(session = %info.id, error = %e, "store request failed");
            Failure::Unavailable
        }
    }
}

/// The mailbox named `name`, or `NoSuchMailbox`.
async fn mailbox(state: &Arc<ServerState>, account: u64, name: &str) -> Result<MailboxInfo, StoreError> {
    state.store.mailbox(account, name).await?.ok_or_else(|| StoreError::NoSuchMailbox(name.to_string()))
}

pub async fn run(state: &Arc<ServerState>, account: u64, request: Request, info: &SessionInfo) -> Answer {
    let store = &state.store;
    let fail = |e| failure(e, info);
    match request {
        Request::Select { name, read_only } => Answer::Selected(
            async {
                // The mailbox's record, UID set and flag index, in one store
                // call: a few reads whatever its size (a million messages:
                // RFC 3501 6.3.1 needs no per-message record).
                let m = store.mailbox_state(account, &name).await?.ok_or(StoreError::NoSuchMailbox(name))?;
                let index = m.flags;
                let mut flagged: Vec<(u32, Vec<(u32, u32)>)> =
                    index.system.iter().enumerate().map(|(bit, set)| (1 << bit, set.runs().to_vec())).collect();
                flagged.push((SelectedMailbox::WITH_KEYWORDS, index.with_keywords.runs().to_vec()));
                let uids: Vec<u32> = m.uids.iter().collect();
                let last = uids.last().copied().unwrap_or(0);
                let recent_from =
                    state.imap_recent.at_select(account, m.info.id, m.info.uid_validity, last, !read_only);
                Ok(SelectedMailbox {
                    id: m.info.id,
                    status: status_of(&m.info),
                    uids,
                    flagged,
                    keywords: index.keywords,
                    recent_from,
                })
            }
            .await
            .map_err(fail),
        ),
        Request::List => Answer::Listed(
            async {
                let boxes = store.mailboxes(account).await?;
                let subscriptions = store.subscriptions(account).await?;
                let listed = boxes
                    .into_iter()
                    .map(|m| ListedMailbox { name: m.name, special_use: m.special_use.map(|s| s.attribute()) })
                    .collect();
                Ok((listed, subscriptions))
            }
            .await
            .map_err(fail),
        ),
        Request::Status { name } => Answer::Status(
            async {
                let m = mailbox(state, account, &name).await?;
                Ok(MailboxStatus { recent: recent_of(state, account, &m).await?, ..status_of(&m) })
            }
            .await
            .map_err(fail),
        ),
        Request::Create { name } => Answer::Done(create(state, account, &name).await.map_err(fail)),
        Request::Delete { name } => Answer::Done(store.delete_mailbox(account, &name).await.map_err(fail)),
        Request::Rename { from, to } => Answer::Done(store.rename_mailbox(account, &from, &to).await.map_err(fail)),
        Request::Subscribe { name, subscribe } => Answer::Done(
            async {
                // Only an existing mailbox can be subscribed (Dovecot's
                // answer; RFC 3501 6.3.6 allows either). Unsubscribing a
                // name that is gone must still work.
                if subscribe {
                    mailbox(state, account, &name).await?;
                }
                store.set_subscribed(account, &name, subscribe).await
            }
            .await
            .map_err(fail),
        ),
        Request::Messages { mailbox, uids, content, summary } => {
            Answer::Messages(messages(state, account, mailbox, uids, content, summary).await.map_err(fail))
        }
        Request::SearchRows { mailbox, uids } => Answer::SearchRows(
            store
                .search_rows(account, mailbox, &uids.into_iter().collect())
                .await
                .map(|rows| SearchRows { data: rows.data, ends: rows.ends })
                .map_err(fail),
        ),
        Request::KeepSearchRows { mailbox, rows } => {
            let rows = rows.into_iter().map(|(uid, row)| (uid, Bytes::from(row))).collect();
            Answer::Done(store.keep_search_rows(account, mailbox, rows).await.map_err(fail))
        }
        Request::SetFlags { mailbox, uids, change } => Answer::Flags(
            async {
                let op = match change.add {
                    Some(true) => FlagOp::Add,
                    Some(false) => FlagOp::Remove,
                    None => FlagOp::Replace,
                };
                let change = FlagChange {
                    op,
                    flags: Flags(change.flags.system),
                    keywords: change.flags.keywords,
                    unchanged_since: None,
                };
                let set: UidSet = uids.into_iter().collect();
                let outcome = store.set_flags(account, mailbox, &set, &change).await?;
                Ok(outcome.updated.into_iter().map(|u| (u.uid, flags_of(u.flags, u.keywords))).collect())
            }
            .await
            .map_err(fail),
        ),
        Request::Expunge { mailbox, uids } => {
            Answer::Expunged(store.expunge(account, mailbox, &uids.into_iter().collect()).await.map_err(fail))
        }
        Request::Append { name, flags, internal_date, content } => Answer::Appended(
            async {
                let m = mailbox(state, account, &name).await?;
                let content = Bytes::from(content);
                let summary = Some(summarize(content.clone()).await);
                let append = Append {
                    content,
                    flags: Flags(flags.system),
                    keywords: flags.keywords,
                    internal_date: internal_date.and_then(|d| u64::try_from(d).ok()).unwrap_or_else(now_secs),
                    summary,
                };
                let done = store.append(account, m.id, append).await?;
                Ok((done.uid_validity, done.uid))
            }
            .await
            .map_err(fail),
        ),
        Request::Copy { mailbox: from, uids, to, remove } => Answer::Copied(
            async {
                let target = mailbox(state, account, &to).await?;
                let set: UidSet = uids.into_iter().collect();
                let result = match remove {
                    true => store.move_messages(account, from, &set, target.id).await?,
                    false => store.copy(account, from, &set, target.id).await?,
                };
                Ok(CopyOutcome { uid_validity: result.uid_validity, mapping: result.mapping })
            }
            .await
            .map_err(fail),
        ),
    }
}

/// Message bytes one answer holds at most (plus the one message that
/// passes it): a FETCH of every body of a big mailbox stays bounded.
const CONTENT_BUDGET: u64 = 16 * 1024 * 1024;

/// The messages of `uids` that exist; their bytes when `content`, their
/// summaries when `summary` (computed and kept for a message stored
/// without one).
async fn messages(
    state: &Arc<ServerState>,
    account: u64,
    mailbox: u32,
    uids: Vec<u32>,
    content: bool,
    summary: bool,
) -> Result<Vec<MessageData>, StoreError> {
    let store = &state.store;
    let set: UidSet = uids.into_iter().collect();
    let mut entries = store.entries(account, mailbox, &set).await?;
    let mut bodies: Vec<Option<Bytes>> = Vec::new();
    if content {
        // Up to the budget (at least one message); the session asks again
        // for the rest (Request::Messages). All read in one store call.
        let mut total = 0u64;
        let fit = entries
            .iter()
            .position(|e| {
                total += e.size;
                total > CONTENT_BUDGET
            })
            .map_or(entries.len(), |i| i.max(1));
        entries.truncate(fit);
        bodies = store.read_contents(&entries.iter().map(|e| e.content).collect::<Vec<_>>()).await?;
    }
    let mut summaries = match summary {
        true => store.summaries(&entries.iter().map(|e| e.content).collect::<Vec<_>>()).await?,
        false => Vec::new(),
    };
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.into_iter().enumerate() {
        let bytes = match content {
            true => match bodies.get_mut(i).and_then(Option::take) {
                // As a mail client reads it: the Return-Path line, then the content.
                Some(stored) => {
                    let line = e.return_path_line();
                    let mut b = Vec::with_capacity(line.len() + stored.len());
                    b.extend_from_slice(line.as_bytes());
                    b.extend_from_slice(&stored);
                    Some(b)
                }
                // Expunged meanwhile: it is simply not there.
                None => continue,
            },
            false => None,
        };
        // Vec::from a sole Bytes takes its buffer without a copy.
        let summary = match summaries.get_mut(i).and_then(Option::take).and_then(|s| Summary::decode(Vec::from(s))) {
            Some(s) => Some(s),
            None if summary => {
                // The stored content, as delivery summarises it (without
                // the Return-Path line read adds).
                let raw = match &bytes {
                    Some(b) => Bytes::copy_from_slice(&b[e.return_path_line().len()..]),
                    None => match store.read_content(e.content).await {
                        Ok(b) => b,
                        Err(StoreError::NoSuchMessage(_)) => continue,
                        Err(e) => return Err(e),
                    },
                };
                let encoded = summarize(raw).await;
                let decoded = Summary::decode(encoded.to_vec());
                // Derived data: a failure to keep it only costs a parse next time.
                if let Err(err) = store.set_summary(e.content, encoded).await {
                    tracing::warn!(error = %err, "keeping a message summary failed");
                }
                decoded
            }
            None => None,
        };
        out.push(MessageData {
            uid: e.uid,
            size: e.size,
            internal_date: i64::try_from(e.internal_date).unwrap_or(i64::MAX),
            modseq: e.modseq,
            flags: flags_of(e.flags, e.keywords),
            content: bytes,
            summary,
        });
    }
    Ok(out)
}

/// A message's IMAP summary, parsed off the async workers (a 25 MB
/// message takes a while).
pub async fn summarize(content: Bytes) -> Bytes {
    let work = tokio::task::spawn_blocking(move || Summary::compute(&content).into_encoded());
    Bytes::from(work.await.unwrap_or_default())
}

/// CREATE (RFC 3501 6.3.3): a trailing separator only says the name will
/// have children; missing parents are created too.
async fn create(state: &Arc<ServerState>, account: u64, name: &str) -> Result<(), StoreError> {
    let name = name.trim_end_matches(HIERARCHY_SEPARATOR);
    let mut parent = String::new();
    for (i, level) in name.split(HIERARCHY_SEPARATOR).enumerate() {
        if i > 0 {
            parent.push(HIERARCHY_SEPARATOR);
        }
        parent.push_str(level);
        if parent.len() == name.len() {
            break;
        }
        match state.store.create_mailbox(account, &parent, None).await {
            Ok(_) | Err(StoreError::MailboxExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    state.store.create_mailbox(account, name, None).await.map(drop)
}
