//! Queue depth and age, read from the store when Prometheus scrapes
//! (the queue is the store's; counting it as it changes would duplicate
//! the store's bookkeeping in the server).

use super::Metrics;
use ferrymail_store::{SharedStore, now_secs};

/// Sets the queue gauges from the store's entries now.
pub async fn refresh(m: &Metrics, store: &SharedStore) {
    let entries = match store.queue_entries().await {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: reading the queue failed");
            return;
        }
    };
    let now = now_secs();
    let (mut due, mut deferred, mut in_flight) = (0, 0, 0);
    let mut oldest = now;
    for e in &entries {
        oldest = oldest.min(e.created);
        match (&e.lease, e.due()) {
            (Some(lease), _) if lease.until > now => in_flight += 1,
            (_, Some(at)) if at <= now => due += 1,
            _ => deferred += 1,
        }
    }
    m.queue_messages.with_label_values(&["due"]).set(due);
    m.queue_messages.with_label_values(&["deferred"]).set(deferred);
    m.queue_messages.with_label_values(&["in_flight"]).set(in_flight);
    m.queue_oldest.set(now.saturating_sub(oldest) as i64);
}
