//! Group commit: many writers, one fsync.
//!
//! A writer applies its change (in memory), takes a ticket, and waits until
//! a flush that started after its ticket completes. One flusher task runs
//! flushes back to back while tickets are outstanding, so under load each
//! fsync covers every write that arrived during the previous one.
//!
//! The same task notices a failed store (a flush fails, or an idle health
//! check finds sled's own background flush failed) and reopens it once the
//! disk has room again ([`crate::reopen`]).

use crate::reopen::Slot;
use crate::{Mark, Result, StoreError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// How often an idle store checks that sled's background flush still works.
const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// How often a failed store tries to reopen.
const RECOVER_EVERY: Duration = Duration::from_millis(500);

/// The latest completed flush: the highest ticket it covers, the generation
/// it flushed, and its error.
#[derive(Clone)]
struct Flushed {
    ticket: u64,
    generation: u64,
    error: Option<Arc<str>>,
}

pub struct GroupCommit {
    slot: Weak<Slot>,
    tickets: Arc<AtomicU64>,
    wake: Arc<Notify>,
    flushed: watch::Sender<Flushed>,
    started: AtomicBool,
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // The task holds the store only weakly; wake it to notice it is gone.
        self.wake.notify_one();
    }
}

impl GroupCommit {
    pub(crate) fn new(slot: &Arc<Slot>) -> Self {
        GroupCommit {
            slot: Arc::downgrade(slot),
            tickets: Arc::new(AtomicU64::new(0)),
            wake: Arc::new(Notify::new()),
            flushed: watch::channel(Flushed { ticket: 0, generation: 0, error: None }).0,
            started: AtomicBool::new(false),
        }
    }

    /// Starts the flusher task if a tokio runtime is at hand (it also
    /// watches the store's health, so the server starts it on open).
    pub(crate) fn start(&self) {
        if tokio::runtime::Handle::try_current().is_ok() && !self.started.swap(true, Ordering::SeqCst) {
            let task = Flusher {
                slot: self.slot.clone(),
                tickets: self.tickets.clone(),
                wake: self.wake.clone(),
                flushed: self.flushed.clone(),
            };
            tokio::spawn(task.run());
        }
    }

    /// Resolves once every write applied before the call is on disk, and
    /// fails unless those writes were made in generation `since` (see
    /// [`crate::Store::mark`]).
    pub async fn durable(&self, since: Mark) -> Result<()> {
        self.start();
        let mut rx = self.flushed.subscribe();
        // The ticket is taken after our write was applied, so any flush that
        // starts after this point covers it.
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        self.wake.notify_one();
        let state = rx
            .wait_for(|f| f.ticket >= ticket)
            .await
            .map_err(|_| StoreError::Io("group commit task stopped".into()))?;
        match &state.error {
            Some(e) => Err(StoreError::Io(e.to_string())),
            None if state.generation != since.0 => {
                Err(StoreError::Io("the store was reopened after an I/O error; the write may be lost".into()))
            }
            None => Ok(()),
        }
    }
}

struct Flusher {
    slot: Weak<Slot>,
    tickets: Arc<AtomicU64>,
    wake: Arc<Notify>,
    flushed: watch::Sender<Flushed>,
}

/// Flushes the current database: (generation flushed, withdrawals covered, result).
fn flush(slot: &Slot) -> (u64, usize, Result<()>) {
    let withdrawals = slot.withdrawals_pending();
    match slot.get() {
        Ok(open) => (open.generation, withdrawals, open.db.flush().map(drop).map_err(Into::into)),
        Err(e) => (slot.generation(), withdrawals, Err(e)),
    }
}

impl Flusher {
    async fn run(self) {
        let mut done = 0u64;
        // Set while the store has failed and is not reopened yet.
        let mut failed = false;
        let mut next_recovery = Instant::now();
        loop {
            let Some(slot) = self.slot.upgrade() else { return };
            if failed && Instant::now() >= next_recovery {
                let s = slot.clone();
                match tokio::task::spawn_blocking(move || s.recover(crate::mail::withdraw_in)).await {
                    Ok(Ok(())) => {
                        tracing::warn!("store reopened after an I/O error; accepting writes again");
                        failed = false;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "store not reopened yet"),
                    Err(e) => tracing::error!(error = %e, "store reopen task failed"),
                }
                next_recovery = Instant::now() + RECOVER_EVERY;
            }
            let target = self.tickets.load(Ordering::SeqCst);
            let idle = target == done;
            if idle {
                drop(slot);
                let wait = if failed { next_recovery.saturating_duration_since(Instant::now()) } else { HEALTH_EVERY };
                let woken = tokio::time::timeout(wait, self.wake.notified()).await.is_ok();
                if woken || failed {
                    continue;
                }
            }
            // Work to do, or an idle health check: a flush with nothing to
            // write costs nothing but reports a failure of sled's own flush.
            let Some(slot) = self.slot.upgrade() else { return };
            let (generation, withdrawals, result) = match tokio::task::spawn_blocking(move || flush(&slot)).await {
                Ok((generation, withdrawals, result)) => (generation, withdrawals, result),
                Err(e) => (u64::MAX, 0, Err(StoreError::Io(e.to_string()))),
            };
            let error: Option<Arc<str>> = match result {
                Ok(()) => {
                    if let Some(slot) = self.slot.upgrade() {
                        slot.withdrawals_flushed(withdrawals);
                    }
                    failed = false;
                    None
                }
                Err(e) => {
                    if !failed {
                        tracing::error!(error = %e, "store write failed; writers get a temporary failure until it is reopened");
                        failed = true;
                        next_recovery = Instant::now() + RECOVER_EVERY;
                    }
                    Some(match e {
                        StoreError::Io(detail) => detail.into(),
                        other => other.to_string().into(),
                    })
                }
            };
            if !idle {
                done = target;
                self.flushed.send_replace(Flushed { ticket: done, generation, error });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::store;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_writers_all_become_durable() {
        let (_d, s) = store();
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mark = s.mark();
                s.trees().unwrap().meta.insert(format!("k{i}"), &i.to_be_bytes()).unwrap();
                s.durable_since(mark).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reopen_keeps_flushed_writes_and_fails_writes_of_the_old_generation() {
        let (_d, s) = store();
        let mark = s.mark();
        s.trees().unwrap().meta.insert("flushed", b"1").unwrap();
        s.durable_since(mark).await.unwrap();
        // A write of the old generation whose flush comes after a reopen.
        let stale = s.mark();
        s.trees().unwrap().meta.insert("k", b"1").unwrap();
        let slot = s.inner.slot.clone();
        tokio::task::spawn_blocking(move || slot.recover(crate::mail::withdraw_in)).await.unwrap().unwrap();
        assert!(s.durable_since(stale).await.is_err(), "a flush of generation 1 vouches for nothing written in 0");
        assert_eq!(s.trees().unwrap().meta.get("flushed").unwrap().as_deref(), Some(&b"1"[..]));
        let mark = s.mark();
        s.trees().unwrap().meta.insert("after", b"1").unwrap();
        s.durable_since(mark).await.unwrap();
    }
}
