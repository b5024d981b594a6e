//! `ferrymail queue …`: list, show, flush, delete, bounce. Runs inside the
//! server (with its in-flight registry, so a command never races an
//! attempt) or, when no server runs, on the store opened by the CLI.

use super::Outbound;
use ferrymail_policy::Reply;
use ferrymail_store::schema::{QueueEntry, RecipientState};
use ferrymail_store::{Store, StoreError, format_id, now_secs, parse_id};
use serde::Serialize;

/// The reply recorded for recipients returned by `queue bounce`.
pub fn operator_bounce() -> Reply {
    Reply::new(550, "5.0.0", "Returned to sender by the postmaster")
}

type Out = Result<Vec<String>, String>;

fn id_of(s: &str) -> Result<u64, String> {
    parse_id(s).ok_or_else(|| format!("{s} is not a queue id (16 hex digits, as `queue list` shows)"))
}

fn missing(id: u64) -> String {
    format!("no such queue entry: {}", format_id(id))
}

/// Compact ages for the table: 45s, 12m, 3h05m, 2d04h.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn state_name(s: RecipientState) -> &'static str {
    match s {
        RecipientState::Pending => "pending",
        RecipientState::Delivered => "delivered",
        RecipientState::Deferred => "deferred",
        RecipientState::Failed => "failed",
    }
}

#[derive(Serialize)]
struct RcptView<'a> {
    address: &'a str,
    state: &'static str,
    attempts: u32,
    next_attempt: u64,
    last_reply: Option<String>,
    remote_mta: Option<&'a str>,
    warned: bool,
}

#[derive(Serialize)]
struct EntryView<'a> {
    id: String,
    sender: &'a str,
    created: u64,
    attempts: u32,
    last_attempt: u64,
    /// When the next attempt is due; `None` when only a bounce is left.
    next_attempt: Option<u64>,
    in_flight: bool,
    recipients: Vec<RcptView<'a>>,
}

fn view<'a>(e: &'a QueueEntry, in_flight: bool) -> EntryView<'a> {
    EntryView {
        id: format_id(e.id),
        sender: &e.sender,
        created: e.created,
        attempts: e.attempts,
        last_attempt: e.last_attempt,
        next_attempt: e.open_recipients().map(|r| r.next_attempt).min(),
        in_flight,
        recipients: e
            .recipients
            .iter()
            .map(|r| RcptView {
                address: &r.address,
                state: state_name(r.state),
                attempts: r.attempts,
                next_attempt: r.next_attempt,
                last_reply: r.last_reply.as_ref().map(ToString::to_string),
                remote_mta: r.remote_mta.as_deref(),
                warned: r.warned,
            })
            .collect(),
    }
}

fn row(e: &QueueEntry, in_flight: bool, now: u64) -> String {
    let next = match (in_flight, e.open_recipients().map(|r| r.next_attempt).min()) {
        (true, _) => "in-flight".to_string(),
        (false, Some(t)) if t > now => age(t - now),
        (false, Some(_)) | (false, None) => "now".to_string(),
    };
    let open: Vec<String> =
        e.recipients.iter().filter(|r| r.is_open() || r.awaits_bounce()).map(|r| r.address.clone()).collect();
    let last = e.recipients.iter().filter_map(|r| r.last_reply.as_ref()).next_back();
    let last = last.map_or_else(|| "-".to_string(), ToString::to_string);
    let sender = if e.sender.is_empty() { "<>" } else { e.sender.as_str() };
    format!(
        "{}\t{}\t{}\t{}\t{sender}\t{}\t{last}",
        format_id(e.id),
        age(now.saturating_sub(e.created)),
        next,
        e.attempts,
        open.join(",")
    )
}

async fn in_flight(outbound: Option<&Outbound>, id: u64) -> bool {
    match outbound {
        Some(o) => o.is_in_flight(id).await,
        None => false,
    }
}

pub async fn list(store: &dyn Store, outbound: Option<&Outbound>, json: bool) -> Out {
    let mut entries = store.queue_entries().await.map_err(|e| e.to_string())?;
    entries.sort_by_key(|e| (e.created, e.id));
    let mut flying = std::collections::HashSet::new();
    for e in &entries {
        if in_flight(outbound, e.id).await {
            flying.insert(e.id);
        }
    }
    let busy = |id| flying.contains(&id);
    if json {
        let views: Vec<EntryView<'_>> = entries.iter().map(|e| view(e, busy(e.id))).collect();
        return Ok(vec![serde_json::to_string(&views).map_err(|e| e.to_string())?]);
    }
    let now = now_secs();
    let mut out = vec!["ID\tAGE\tNEXT\tTRIES\tSENDER\tRECIPIENTS\tLAST REPLY".to_string()];
    out.extend(entries.iter().map(|e| row(e, busy(e.id), now)));
    out.push(format!("{} entries", entries.len()));
    Ok(out)
}

pub async fn show(store: &dyn Store, outbound: Option<&Outbound>, id: &str, json: bool) -> Out {
    let id = id_of(id)?;
    let e = store.queue_entry(id).await.map_err(|e| e.to_string())?.ok_or_else(|| missing(id))?;
    let v = view(&e, in_flight(outbound, id).await);
    let trace = crate::trace::load(store, &format!("m/{}", format_id(e.content))).await;
    if json {
        let mut value = serde_json::to_value(&v).map_err(|e| e.to_string())?;
        value["trace"] = serde_json::to_value(&trace).map_err(|e| e.to_string())?;
        return Ok(vec![value.to_string()]);
    }
    let now = now_secs();
    let mut out = vec![
        format!("id: {}", v.id),
        format!("sender: <{}>", e.sender),
        format!("age: {}", age(now.saturating_sub(e.created))),
        format!("attempts: {}", e.attempts),
        format!("in flight: {}", v.in_flight),
    ];
    for r in &v.recipients {
        let next = if r.state == "pending" || r.state == "deferred" {
            format!(", next in {}", age(r.next_attempt.saturating_sub(now)))
        } else {
            String::new()
        };
        let last = r.last_reply.as_deref().unwrap_or("");
        out.push(format!("  {} {} ({} attempts{next}) {last}", r.address, r.state, r.attempts));
    }
    match trace {
        Some(t) => {
            out.push("trace:".into());
            out.extend(crate::trace::show::timeline(&t).lines().map(|l| format!("  {l}")));
        }
        None => out.push("trace: none kept".into()),
    }
    Ok(out)
}

/// Reads, changes and writes back an idle entry, durably.
async fn modify(store: &dyn Store, id: u64, change: impl FnOnce(&mut QueueEntry)) -> Result<(), String> {
    let mut entry = store.queue_entry(id).await.map_err(|e| e.to_string())?.ok_or_else(|| missing(id))?;
    change(&mut entry);
    store.queue_update(&entry).await.map_err(|e| match e {
        StoreError::NoSuchQueueEntry(_) => missing(id),
        e => e.to_string(),
    })
}

/// Runs `idle` when no attempt is in flight, else records `busy`.
async fn operate(
    outbound: Option<&Outbound>,
    id: u64,
    idle: impl AsyncFnOnce() -> Result<String, String>,
    busy: impl FnOnce(&mut super::Ops) -> Result<String, String>,
) -> Result<String, String> {
    match outbound {
        Some(o) => o.operate(id, idle, busy).await,
        None => idle().await,
    }
}

/// All entries (or one) due now.
pub async fn flush(store: &dyn Store, outbound: Option<&Outbound>, id: Option<&str>) -> Out {
    let ids = match id {
        Some(id) => vec![id_of(id)?],
        None => store.queue_entries().await.map_err(|e| e.to_string())?.iter().map(|e| e.id).collect(),
    };
    let now = now_secs();
    let mut out = Vec::new();
    for id in ids {
        let idle = async || {
            modify(store, id, |e| {
                for r in e.recipients.iter_mut().filter(|r| r.is_open()) {
                    r.next_attempt = now;
                }
            })
            .await
            .map(|()| format!("{}: scheduled now", format_id(id)))
        };
        let busy = |_: &mut super::Ops| Ok(format!("{}: an attempt is in progress", format_id(id)));
        out.push(operate(outbound, id, idle, busy).await?);
    }
    if out.is_empty() {
        out.push("the queue is empty".into());
    }
    Ok(out)
}

/// Removes an entry outright, with no bounce.
pub async fn delete(store: &dyn Store, outbound: Option<&Outbound>, id: &str) -> Out {
    let id = id_of(id)?;
    let idle = async || {
        modify(store, id, |e| {
            for r in &mut e.recipients {
                r.state = RecipientState::Failed;
                r.notified = true;
            }
        })
        .await
        .map(|()| format!("{}: deleted", format_id(id)))
    };
    let busy = |ops: &mut super::Ops| {
        ops.delete = true;
        Ok(format!("{}: deleted when the attempt in progress ends", format_id(id)))
    };
    Ok(vec![operate(outbound, id, idle, busy).await?])
}

/// Returns the message to its sender now: every open recipient fails with
/// [`operator_bounce`]; the bounce goes out on the next scheduler pass.
pub async fn bounce(store: &dyn Store, outbound: Option<&Outbound>, id: &str) -> Out {
    let id = id_of(id)?;
    let idle = async || {
        modify(store, id, |e| {
            for r in e.recipients.iter_mut().filter(|r| r.is_open()) {
                r.state = RecipientState::Failed;
                r.notified = false;
                r.last_reply = Some(super::stored_reply(&operator_bounce()));
                r.remote_mta = None;
            }
        })
        .await
        .map(|()| format!("{}: returned to sender", format_id(id)))
    };
    let busy = |ops: &mut super::Ops| {
        ops.bounce = true;
        Ok(format!("{}: returned to sender when the attempt in progress ends", format_id(id)))
    };
    Ok(vec![operate(outbound, id, idle, busy).await?])
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_are_compact() {
        assert_eq!(super::age(45), "45s");
        assert_eq!(super::age(600), "10m");
        assert_eq!(super::age(3600 * 3 + 300), "3h05m");
        assert_eq!(super::age(86_400 * 2 + 3600 * 4), "2d04h");
    }
}
