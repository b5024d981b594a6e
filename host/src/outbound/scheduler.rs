//! The queue scheduler: one task that sleeps until the earliest due entry
//! or a wake (new mail, a finished attempt, `queue flush`, another node's
//! change to a shared queue), claims what is due within the concurrency
//! limit, and starts an attempt for each, renewing its lease while it
//! runs. It never polls: with nothing due it sleeps until the schedule
//! says so.

use super::attempt::attempt;
use super::client::Settings;
use crate::state::ServerState;
use ferrymail_store::{QueueEntry, StoreError, now_secs};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(state: Arc<ServerState>, settings: Arc<Settings>, mut shutdown: watch::Receiver<bool>) {
    // `[store] queue_lease`: how long a claimed entry stays out of the
    // schedule; renewed while its attempt runs, so only a dead node's
    // entries come due again (to another node). A restart takes back its
    // own at once (recovery below).
    let lease = state.config.store.queue_lease.as_secs().max(3);
    // Other nodes' changes to a shared queue (None: nobody else shares it).
    let mut others = state.store.queue_changes();
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
            match state.outbound.claim(&*state.store, now, free, now + lease).await {
                Ok(entries) => {
                    for entry in entries {
                        let Ok(permit) = state.outbound.slots.clone().try_acquire_owned() else { break };
                        started += 1;
                        let (state, settings) = (state.clone(), settings.clone());
                        tokio::spawn(async move {
                            attempt_renewing(state.clone(), settings, entry, lease).await;
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
            changed = changed(&mut others) => {
                if changed.is_err() {
                    others = None; // the store is closing
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn changed(others: &mut Option<watch::Receiver<u64>>) -> Result<(), watch::error::RecvError> {
    match others {
        Some(rx) => rx.changed().await,
        None => std::future::pending().await,
    }
}

/// Runs the attempt, renewing its lease every third of it. A lost lease
/// (the entry was taken over: this node looked dead) is logged and the
/// attempt finishes anyway: delivery is at least once, never none.
async fn attempt_renewing(state: Arc<ServerState>, settings: Arc<Settings>, entry: QueueEntry, lease: u64) {
    let id = entry.id;
    let run = attempt(state.clone(), settings, entry);
    tokio::pin!(run);
    let mut renew = tokio::time::interval(Duration::from_secs(lease) / 3);
    renew.tick().await; // the first tick is now; the claim just set the lease
    let mut renewing = true;
    loop {
        tokio::select! {
            _ = &mut run => return,
            _ = renew.tick(), if renewing => {
                match state.store.queue_renew(state.outbound.owner(), id, now_secs() + lease).await {
                    Ok(()) => {}
                    Err(StoreError::LeaseLost(_)) => {
                        tracing::warn!(queue = %ferrymail_store::format_id(id), "queue: lease taken over by another node; finishing this attempt anyway");
                        renewing = false;
                    }
                    // The entry is gone (a bounce or delete applies at the
                    // commit), or the store is briefly unreachable: try on.
                    Err(e) => tracing::debug!(queue = %ferrymail_store::format_id(id), error = %e, "queue: lease not renewed"),
                }
            }
        }
    }
}
