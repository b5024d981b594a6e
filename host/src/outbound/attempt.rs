//! One delivery attempt for one queue entry: every due recipient, grouped
//! by destination (one connection carries all recipients of the message
//! bound there), then one atomic commit of the outcome with its local
//! filings and DSNs, made durable before the attempt counts as done.
//!
//! At-least-once: a crash between a remote 250 and the commit makes the
//! message go again (RFC 5321 allows duplicates, never loss). Nothing else
//! can duplicate: local filings and DSNs commit with the queue update.

use super::Ops;
use super::client::{self, Settings};
use super::mx::{self, Resolution};
use super::notify::{self, Dsn};
use super::retry::{self, Applied, Attempted};
use crate::state::ServerState;
use bytes::Bytes;
use ferrymail_policy::logsafe;
use ferrymail_policy::{DeliveryEvent, Reply};
use ferrymail_proto::client::{RcptResult, Transaction, classify};
use ferrymail_store::schema::{Filing, Incoming, QueueEntry, QueuedRoute, RecipientState, TraceWrite};
use ferrymail_store::{StoreError, format_id, now_secs};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinSet;

/// RFC 5321 4.5.3.1.8: a server must take 100 recipients per transaction;
/// larger groups are split so none is refused for count alone.
const MAX_RCPTS_PER_TRANSACTION: usize = 100;

pub async fn attempt(state: Arc<ServerState>, settings: Arc<Settings>, mut entry: QueueEntry) {
    let queue_id = format_id(entry.id);
    let now = now_secs();
    let policy = state.policy();
    let content = match state.store.read_content(entry.content).await {
        Ok(c) => c,
        Err(e) => {
            // Leave the entry leased: it is retried after the lease, and
            // the operator sees it in `queue list`.
            tracing::error!(queue = %queue_id, error = %e, "cannot read queued content");
            state.outbound.finish(entry.id, Ops::default()).await;
            return;
        }
    };
    let mut groups: HashMap<QueuedRoute, Vec<usize>> = HashMap::new();
    for (i, r) in entry.recipients.iter().enumerate() {
        if r.is_open() && r.next_attempt <= now {
            groups.entry(r.route.clone()).or_default().push(i);
        }
    }
    let mut results = Vec::new();
    let mut file_into = Vec::new();
    let mut remote = JoinSet::new();
    // RFC 5321 6.3: mail that has passed more relays than we accept is in a
    // loop (it got here another way, or the limit was lowered): return it
    // rather than pass it on once more.
    let hops = ferrymail_proto::smtp::trace::hops(&content);
    let looping = (hops > state.config.max_hops).then(|| too_many_hops(hops));
    for (route, indexes) in groups {
        match (route, &looping) {
            (QueuedRoute::Local { account }, _) => {
                results.extend(local(&state, &account, &indexes, &mut file_into).await)
            }
            (_, Some(result)) => {
                results.extend(indexes.into_iter().map(|index| Attempted {
                    index,
                    result: result.clone(),
                    remote: None,
                }));
            }
            (route, None) => {
                let rcpts: Vec<String> = indexes.iter().map(|&i| entry.recipients[i].address.clone()).collect();
                let txn = Transaction { from: entry.sender.clone(), rcpts };
                let (state, settings, content) = (state.clone(), settings.clone(), content.clone());
                remote.spawn(async move {
                    let results = deliver(&state, &settings, &route, &txn, &content).await;
                    indexes
                        .into_iter()
                        .zip(results)
                        .map(|(index, (result, remote))| Attempted { index, result, remote })
                        .collect::<Vec<_>>()
                });
            }
        }
    }
    while let Some(joined) = remote.join_next().await {
        match joined {
            Ok(r) => results.extend(r),
            // A panicking delivery task is a bug; its recipients stay due.
            Err(e) => tracing::error!(queue = %queue_id, error = %e, "delivery task failed"),
        }
    }
    let applied = retry::apply(policy.as_ref(), &mut entry, results, now).await;
    let dsns = notify::prepare(&state, policy.as_ref(), &mut entry, &content, &applied.warned, now).await;
    let traces = super::observed::attempt(&state, &entry, &applied, &dsns).await;
    commit(&state, &mut entry, &file_into, &dsns, traces).await;
    report(&state, &entry, &applied, &dsns).await;
}

/// Applies operator requests to an entry: a delete drops every recipient
/// without a bounce; a bounce fails the open ones (reported on the next pass).
fn apply_requests(entry: &mut QueueEntry, ops: Ops) {
    if ops.delete {
        for r in &mut entry.recipients {
            r.state = RecipientState::Failed;
            r.notified = true;
        }
    } else if ops.bounce {
        for r in entry.recipients.iter_mut().filter(|r| r.is_open()) {
            r.state = RecipientState::Failed;
            r.notified = false;
            r.last_reply = Some(super::stored_reply(&super::admin::operator_bounce()));
            r.remote_mta = None;
        }
    }
}

/// Commits the outcome durably, with the attempt's trace (an error leaves
/// the entry to repeat the attempt after its lease: at least once, never
/// lost).
async fn commit(state: &ServerState, entry: &mut QueueEntry, file_into: &[u64], dsns: &[Dsn], traces: Vec<TraceWrite>) {
    let ops = state.outbound.requests(entry.id).await;
    apply_requests(entry, ops);
    let result = if ops.delete {
        state.store.queue_commit(entry, &[], Vec::new(), traces).await
    } else {
        let incoming: Vec<Incoming> = dsns
            .iter()
            .map(|d| Incoming {
                id: d.id,
                content: Bytes::from(d.content.clone()),
                return_path: String::new(),
                local: d.local.iter().map(|&a| Filing::inbox(a)).collect(),
                queue: d.queue.clone(),
                summary: None,
                traces: Vec::new(),
            })
            .collect();
        state.store.queue_commit(entry, file_into, incoming, traces).await
    };
    let late = state.outbound.finish(entry.id, ops).await;
    if let Err(e) = result {
        tracing::error!(queue = %format_id(entry.id), error = %e, "cannot record the delivery attempt; it will repeat");
        return;
    }
    if late.any() {
        // Requests made while the commit ran: the entry is idle now.
        entry.lease = None;
        apply_requests(entry, late);
        match state.store.queue_update(entry).await {
            Ok(()) | Err(StoreError::NoSuchQueueEntry(_)) => {}
            Err(e) => tracing::error!(queue = %format_id(entry.id), error = %e, "cannot apply an operator request"),
        }
    }
}

fn too_many_hops(hops: usize) -> RcptResult {
    let reply = Reply::new(554, "5.4.6", format!("Too many hops ({hops} Received: headers); mail loop suspected"));
    RcptResult { outcome: classify(&reply), reply, from_server: false }
}

/// Files into a local account (a recipient that could not be filed at
/// acceptance): the filing itself happens in the commit.
async fn local(state: &ServerState, account: &str, indexes: &[usize], file_into: &mut Vec<u64>) -> Vec<Attempted> {
    let reply = match state.store.account(account).await {
        Ok(Some(a)) => {
            if !file_into.contains(&a.id) {
                file_into.push(a.id);
            }
            Reply::new(250, "2.0.0", "Delivered to mailbox")
        }
        Ok(None) => Reply::new(550, "5.1.1", format!("<{account}>: no such mailbox")),
        Err(e) => Reply::new(451, "4.3.0", format!("Mailbox store error: {e}")),
    };
    let result = RcptResult { outcome: classify(&reply), reply, from_server: false };
    indexes.iter().map(|&index| Attempted { index, result: result.clone(), remote: None }).collect()
}

/// One destination: resolve, then hand the message over, at most
/// [`MAX_RCPTS_PER_TRANSACTION`] recipients per transaction.
async fn deliver(
    state: &ServerState,
    settings: &Settings,
    route: &QueuedRoute,
    txn: &Transaction,
    content: &[u8],
) -> Vec<(RcptResult, Option<String>)> {
    let (key, resolution) = match route {
        QueuedRoute::Mx { domain } => {
            let ours = [state.config.hostname.as_str(), settings.helo.as_str()];
            (domain.clone(), mx::resolve_domain(&state.dns, domain, state.config.delivery.port, &ours).await)
        }
        QueuedRoute::Relay { host, port } => {
            (format!("{host}:{port}"), mx::resolve_host(&state.dns, host, *port).await)
        }
        QueuedRoute::Local { .. } => {
            (String::new(), Resolution::Deferred(Reply::new(451, "4.3.0", "Local route in remote delivery")))
        }
    };
    let targets = match resolution {
        Resolution::Hosts(t) => t,
        Resolution::Failed(reply) | Resolution::Deferred(reply) => {
            let result = RcptResult { outcome: classify(&reply), reply, from_server: false };
            return vec![(result, None); txn.rcpts.len()];
        }
    };
    let _permits = state.outbound.connection(&key).await;
    let mut out = Vec::with_capacity(txn.rcpts.len());
    for chunk in txn.rcpts.chunks(MAX_RCPTS_PER_TRANSACTION) {
        let part = Transaction { rcpts: chunk.to_vec(), ..txn.clone() };
        let handed = client::deliver(settings, &targets, &part, content).await;
        out.extend(handed.results.into_iter().map(|r| (r, handed.remote.clone())));
    }
    out
}

/// Logs every outcome, tells the policy, and wakes the scheduler for
/// reports that went into the queue.
async fn report(state: &ServerState, entry: &QueueEntry, applied: &Applied, dsns: &[Dsn]) {
    let queue_id = format_id(entry.id);
    let policy = state.policy();
    for &i in applied.delivered.iter().chain(&applied.deferred).chain(&applied.failed) {
        let r = &entry.recipients[i];
        let event_reply = r.last_reply.as_ref().map(super::reply_of).unwrap_or_else(|| Reply::plain(0, ""));
        let reply = event_reply.to_string();
        let reply = reply.as_str();
        let relay = r.remote_mta.as_deref().unwrap_or("-");
        match r.state {
            RecipientState::Delivered => {
                tracing::info!(queue = %queue_id, to = %logsafe(&r.address), relay, reply, "delivered")
            }
            RecipientState::Failed => {
                tracing::info!(queue = %queue_id, to = %logsafe(&r.address), relay, reply, "bounced")
            }
            _ => {
                tracing::info!(queue = %queue_id, to = %logsafe(&r.address), relay, reply, attempts = r.attempts, "deferred")
            }
        }
        match r.state {
            RecipientState::Delivered => {
                policy
                    .event(&DeliveryEvent::Delivered {
                        queue_id: queue_id.clone(),
                        recipient: r.address.clone(),
                        reply: event_reply,
                    })
                    .await
            }
            RecipientState::Failed => {
                policy
                    .event(&DeliveryEvent::Bounced {
                        queue_id: queue_id.clone(),
                        recipient: r.address.clone(),
                        reply: event_reply,
                    })
                    .await
            }
            _ => {}
        }
    }
    for d in dsns {
        tracing::info!(queue = %queue_id, kind = ?d.kind, to = %logsafe(&entry.sender), dsn = %format_id(d.id), local = d.local.len(), queued = d.queue.is_some(), "delivery report");
    }
    if dsns.iter().any(|d| d.queue.is_some()) || entry.recipients.iter().any(|r| r.awaits_bounce()) {
        state.queue_wake.notify_one();
    }
}
