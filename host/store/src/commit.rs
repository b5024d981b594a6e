//! Group commit: many writers, one fsync.
//!
//! A writer applies its change (in memory), takes a ticket, and waits until
//! a flush that started after its ticket completes. One flusher task runs
//! flushes back to back while tickets are outstanding, so under load each
//! fsync covers every write that arrived during the previous one.

use crate::{Result, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Notify, OnceCell, watch};

/// (highest ticket covered by a completed flush, error of the latest flush)
type Flushed = (u64, Option<Arc<str>>);

pub struct GroupCommit {
    db: sled::Db,
    tickets: Arc<AtomicU64>,
    wake: Arc<Notify>,
    flushed: watch::Sender<Flushed>,
    flusher: OnceCell<()>,
}

impl GroupCommit {
    pub fn new(db: sled::Db) -> Self {
        GroupCommit {
            db,
            tickets: Arc::new(AtomicU64::new(0)),
            wake: Arc::new(Notify::new()),
            flushed: watch::channel((0, None)).0,
            flusher: OnceCell::new(),
        }
    }

    pub async fn durable(&self) -> Result<()> {
        self.flusher.get_or_init(|| async { self.spawn_flusher() }).await;
        let mut rx = self.flushed.subscribe();
        // The ticket is taken after our write was applied, so any flush that
        // starts after this point covers it.
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        self.wake.notify_one();
        let state = rx
            .wait_for(|(done, _)| *done >= ticket)
            .await
            .map_err(|_| StoreError::Io("group commit task stopped".into()))?;
        match &state.1 {
            Some(e) => Err(StoreError::Io(e.to_string())),
            None => Ok(()),
        }
    }

    fn spawn_flusher(&self) {
        let db = self.db.clone();
        let tickets = self.tickets.clone();
        let wake = self.wake.clone();
        let flushed = self.flushed.clone();
        tokio::spawn(async move {
            let mut done = 0u64;
            loop {
                let target = tickets.load(Ordering::SeqCst);
                if target == done {
                    wake.notified().await;
                    continue;
                }
                let db = db.clone();
                let result = tokio::task::spawn_blocking(move || db.flush()).await;
                let error: Option<Arc<str>> = match result {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(e.to_string().into()),
                    Err(e) => Some(e.to_string().into()),
                };
                if let Some(e) = &error {
                    tracing::error!(error = %e, "store flush failed; writers get a temporary failure");
                }
                done = target;
                if flushed.send((done, error)).is_err() {
                    return;
                }
            }
        });
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
                s.trees().meta.insert(format!("k{i}"), &i.to_be_bytes()).unwrap();
                s.durable().await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    }
}
