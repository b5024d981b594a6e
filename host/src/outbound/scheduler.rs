//! The queue scheduler: one task that sleeps until the earliest due entry
//! or a wake (new mail, a finished attempt, `queue flush`), claims what is
//! due within the concurrency limit, and starts an attempt for each. It
//! never polls: with nothing due it sleeps until the schedule says so.

use super::attempt::attempt;
use super::client::Settings;
use crate::state::ServerState;
use ferrymail_store::now_secs;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a claimed entry stays out of the schedule. Longer than any
/// attempt normally takes; a crash forgets it (recovery at start-up), and
/// an attempt outliving it is re-leased, not started twice.
const LEASE_SECS: u64 = 3600;

pub async fn run(state: Arc<ServerState>, settings: Arc<Settings>, mut shutdown: watch::Receiver<bool>) {
    // Whatever was in flight when we last stopped is due again now.
    match state.store.queue_recover(state.outbound.owner()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(entries = n, "queue: resuming delivery"),
        Err(e) => {
            tracing::error!(error = %e, "queue: recovery failed; entries in flight at the last stop wait for their lease")
        }
    }
    loop {
        let now = now_secs();
        let free = state.outbound.slots.available_permits();
        let mut started = 0;
        if free > 0 {
            match state.outbound.claim(&*state.store, now, free, now + LEASE_SECS).await {
                Ok(entries) => {
                    for entry in entries {
                        let Ok(permit) = state.outbound.slots.clone().try_acquire_owned() else { break };
                        started += 1;
                        let (state, settings) = (state.clone(), settings.clone());
                        tokio::spawn(async move {
                            attempt(state.clone(), settings, entry).await;
                            drop(permit);
                            // A free slot may let the next due entry start.
                            state.queue_wake.notify_one();
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "queue: cannot claim due entries"),
            }
        }
        let sleep = match state.store.queue_next_due().await {
            // More is due and there is room: go round at once.
            Ok(Some(due)) if due <= now && state.outbound.slots.available_permits() > 0 && started > 0 => continue,
            // Due but no room (or no progress): wait for a finished attempt,
            // or a second as a backstop against a stuck schedule.
            Ok(Some(due)) if due <= now => Duration::from_secs(1),
            Ok(Some(due)) => Duration::from_secs(due - now),
            Ok(None) => Duration::from_secs(86_400),
            Err(e) => {
                tracing::error!(error = %e, "queue: cannot read the schedule");
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            _ = state.queue_wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = shutdown.changed() => return,
        }
    }
}
