//! Delay warnings and bounces for one queue entry: built as RFC 3464
//! reports and routed through the `route` hook like any message, so a
//! local sender finds them in its mailbox and a remote one gets them
//! through the queue. Never for the null sender (RFC 5321 6.1: no
//! notification about a notification, so no bounce loops).

use super::dsn::{self, Kind, Report};
use crate::delivery::routing;
use crate::state::ServerState;
use ferrymail_policy::logsafe;
use ferrymail_policy::{Envelope, Policy};
use ferrymail_store::format_id;
use ferrymail_store::schema::{QueueEntry, RecipientState};

/// A report ready to be committed with the attempt.
pub struct Dsn {
    pub kind: Kind,
    pub id: u64,
    pub content: Vec<u8>,
    /// Accounts whose INBOX gets it now.
    pub local: Vec<u64>,
    /// Remote delivery, from `<>`.
    pub queue: Option<QueueEntry>,
}

/// Builds the reports this attempt owes: one bounce for every failure not
/// yet reported, one delay warning for the recipients in `warned`. Marks
/// the failures as reported.
pub async fn prepare(
    state: &ServerState,
    policy: &dyn Policy,
    entry: &mut QueueEntry,
    original: &[u8],
    warned: &[usize],
    now: u64,
) -> Vec<Dsn> {
    let failed: Vec<usize> = (0..entry.recipients.len()).filter(|&i| entry.recipients[i].awaits_bounce()).collect();
    for &i in &failed {
        entry.recipients[i].notified = true;
    }
    if entry.sender.is_empty() {
        if !failed.is_empty() {
            tracing::info!(queue = %format_id(entry.id), recipients = failed.len(), "no bounce: the sender is <>");
        }
        return Vec::new();
    }
    let mut out = Vec::new();
    for (kind, indexes) in [(Kind::Failure, failed.as_slice()), (Kind::Delay, warned)] {
        if indexes.is_empty() {
            continue;
        }
        let queue_id = format_id(entry.id);
        let report = Report {
            kind,
            hostname: &state.config.hostname,
            queue_id: &queue_id,
            to: &entry.sender,
            arrival: entry.created,
            now,
            recipients: indexes.iter().filter_map(|&i| entry.recipients.get(i)).collect(),
            original,
        };
        let mut content = dsn::build(&report);
        // From MAILER-DAEMON@hostname: signed by the hostname's key, if any.
        crate::mailauth::sign::sign_as(&state.dkim, &state.config.hostname, &mut content, &queue_id);
        if let Some(dsn) = route(state, policy, entry, kind, content).await {
            out.push(dsn);
        }
    }
    out
}

async fn route(
    state: &ServerState,
    policy: &dyn Policy,
    entry: &QueueEntry,
    kind: Kind,
    content: Vec<u8>,
) -> Option<Dsn> {
    let envelope = Envelope { mail_from: String::new(), rcpt_to: vec![entry.sender.clone()] };
    let queue_id = format_id(entry.id);
    let plan = match routing::plan(policy, &*state.store, &state.config, &envelope, entry.tenant.clone()).await {
        Ok(plan) => plan,
        Err(reply) => {
            tracing::error!(queue = %queue_id, reply = %logsafe(&reply.to_string()), "cannot route a delivery report; it is dropped");
            return None;
        }
    };
    // A report that cannot be delivered is not reported on (it is from <>).
    let (queue, undeliverable): (Vec<_>, Vec<_>) =
        plan.queue.into_iter().partition(|r| r.state != RecipientState::Failed);
    for r in &undeliverable {
        let reply = r.last_reply.as_ref().map(ToString::to_string).unwrap_or_default();
        tracing::warn!(queue = %queue_id, to = %logsafe(&r.address), reply = %logsafe(&reply), "delivery report undeliverable; dropped");
    }
    if plan.local_ids.is_empty() && queue.is_empty() {
        return None;
    }
    let id = match state.store.new_id().await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(queue = %queue_id, error = %e, "cannot store a delivery report; it is dropped");
            return None;
        }
    };
    let queue = (!queue.is_empty()).then(|| QueueEntry::new("", entry.tenant.clone(), queue));
    Some(Dsn { kind, id, content, local: plan.local_ids, queue })
}
