//! What an attempt tells the operator: the delivery metrics, and the
//! attempt appended to the message's decision trace (written by the
//! attempt's own commit).

use super::notify::Dsn;
use super::retry::Applied;
use crate::state::ServerState;
use crate::trace::{Attempt, AttemptRcpt};
use ferrymail_store::format_id;
use ferrymail_store::schema::{QueueEntry, QueuedRoute, RecipientState, TraceWrite};

/// Counts the attempt; returns the trace records its commit writes.
pub async fn attempt(state: &ServerState, entry: &QueueEntry, applied: &Applied, dsns: &[Dsn]) -> Vec<TraceWrite> {
    let tried = applied.delivered.iter().chain(&applied.deferred).chain(&applied.failed);
    let mut recipients = Vec::new();
    for &i in tried {
        let r = &entry.recipients[i];
        let result = match r.state {
            RecipientState::Delivered => "delivered",
            RecipientState::Failed => "bounced",
            _ => "deferred",
        };
        if let Some(m) = crate::metrics::get() {
            let domain = match &r.route {
                QueuedRoute::Mx { domain } => m.domains.label(domain),
                QueuedRoute::Relay { .. } => "relay".to_string(),
                QueuedRoute::Local { .. } => "local".to_string(),
            };
            m.delivery_attempts.with_label_values(&[result, &domain]).inc();
        }
        recipients.push(AttemptRcpt {
            to: r.address.clone(),
            server: r.remote_mta.clone(),
            reply: crate::trace::clip(&r.last_reply.as_ref().map(ToString::to_string).unwrap_or_default()),
            result: result.to_string(),
            next_attempt: (result == "deferred").then_some(r.next_attempt),
        });
    }
    let reports: Vec<String> = dsns
        .iter()
        .map(|d| match d.kind {
            super::dsn::Kind::Failure => "failure".to_string(),
            super::dsn::Kind::Delay => "delay".to_string(),
        })
        .collect();
    if let Some(m) = crate::metrics::get() {
        for kind in &reports {
            m.dsns.with_label_values(&[kind]).inc();
        }
    }
    if recipients.is_empty() && reports.is_empty() {
        return Vec::new();
    }
    let attempt = Attempt { at: crate::trace::record::now_ms(), queue: format_id(entry.id), recipients, reports };
    crate::trace::attempt_writes(&*state.store, &state.config.trace, entry.content, attempt).await
}
