//! Per-recipient routing through the policy's route hook, with alias
//! expansion (bounded depth, duplicates removed).

use crate::config::Config;
use ferrymail_policy::logsafe;
use ferrymail_policy::{Envelope, Policy, Reply, Route, RouteContext};
use ferrymail_store::Store;
use ferrymail_store::schema::{QueueRecipient, QueuedRoute};
use std::collections::HashSet;

/// Aliases may point at aliases; beyond this depth we assume a loop.
pub const MAX_ALIAS_DEPTH: u32 = 8;

/// Where every recipient of one message goes.
#[derive(Debug, Default)]
pub struct Plan {
    /// Accounts to file into now, deduplicated.
    pub local_ids: Vec<u64>,
    pub local_names: Vec<String>,
    /// Remote recipients, and failed ones kept so the sender gets a bounce.
    pub queue: Vec<QueueRecipient>,
}

fn queued(address: &str, route: QueuedRoute) -> QueueRecipient {
    QueueRecipient::new(address, route)
}

fn failed(address: &str, reply: Reply) -> QueueRecipient {
    QueueRecipient::failed(address, crate::outbound::stored_reply(&reply))
}

/// RFC 5321 4.5.1: mail for `postmaster` at any of our domains reaches
/// someone. When nothing routes `rcpt` (the chain refuses it for good, or
/// names no existing mailbox), this is where it goes instead: the
/// configured postmaster, unless `rcpt` is that address itself.
fn postmaster_fallback(config: &Config, rcpt: &str) -> Option<String> {
    let target = config.postmaster_address();
    (config.is_postmaster(rcpt) && !rcpt.eq_ignore_ascii_case(&target)).then_some(target)
}

/// An error is a temporary refusal of the whole message (no recipient is kept).
pub async fn plan(
    policy: &dyn Policy,
    store: &dyn Store,
    config: &Config,
    envelope: &Envelope,
    tenant: Option<String>,
) -> Result<Plan, Reply> {
    let mut plan = Plan::default();
    let mut seen = HashSet::new();
    let mut work: Vec<(String, u32)> = envelope.rcpt_to.iter().rev().map(|r| (r.clone(), 0)).collect();
    while let Some((rcpt, depth)) = work.pop() {
        if !seen.insert(rcpt.to_lowercase()) {
            continue;
        }
        let ctx =
            RouteContext { sender: envelope.mail_from.clone(), recipient: rcpt.clone(), tenant: tenant.clone(), depth };
        let mut route = policy.route(&ctx).await;
        if let Route::Reject(reply) = &route
            && reply.is_permanent()
            && let Some(target) = postmaster_fallback(config, &rcpt)
        {
            tracing::info!(rcpt = %logsafe(&rcpt), to = %logsafe(&target), refused = %logsafe(&reply.to_string()), "postmaster: to the configured address");
            route = Route::Alias { targets: vec![target] };
        }
        match route {
            Route::Local { account } => match store.account(&account).await {
                Ok(Some(a)) => {
                    if !plan.local_ids.contains(&a.id) {
                        plan.local_ids.push(a.id);
                        plan.local_names.push(a.address);
                    }
                }
                Ok(None) => match postmaster_fallback(config, &rcpt) {
                    Some(target) => work.push((target, depth + 1)),
                    None => plan
                        .queue
                        .push(failed(&rcpt, Reply::new(550, "5.1.1", format!("<{account}>: no such mailbox")))),
                },
                Err(e) => return Err(super::store_reply(e)),
            },
            Route::Mx { domain } => plan.queue.push(queued(&rcpt, QueuedRoute::Mx { domain })),
            Route::Relay { host, port } => plan.queue.push(queued(&rcpt, QueuedRoute::Relay { host, port })),
            Route::Alias { targets } if depth < MAX_ALIAS_DEPTH => {
                work.extend(targets.into_iter().rev().map(|t| (t, depth + 1)));
            }
            Route::Alias { .. } => plan.queue.push(failed(&rcpt, Reply::new(554, "5.4.6", "Alias expansion loop"))),
            Route::Discard => tracing::info!(rcpt = %logsafe(&rcpt), "discarded by policy"),
            // A temporary answer (a route plugin that failed, a look-up that
            // timed out) must not become a bounce: the whole message is
            // refused with it, and the client keeps it and tries again.
            Route::Reject(reply) if reply.code / 100 == 4 => return Err(reply),
            Route::Reject(reply) => plan.queue.push(failed(&rcpt, reply)),
        }
    }
    Ok(plan)
}
