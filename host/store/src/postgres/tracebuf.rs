//! Trace records with no change to ride on ([`crate::contract::Traces::trace_put`]
//! never waits): kept in memory, readable at once, and written by a
//! background task on the lazy pool. Bounded: past [`MAX_PENDING`] records
//! waiting (a flood of refusals while the database is slow) new ones are
//! dropped, as the contract allows.

use super::kv;
use crate::schema::TraceWrite;
use deadpool_postgres::Pool;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

const MAX_PENDING: usize = 10_000;

/// A waiting record: (record, expires, ttl_secs).
type Waiting = (Vec<u8>, u64, u64);

#[derive(Default)]
pub(crate) struct Pending {
    records: Mutex<BTreeMap<String, Waiting>>,
    wake: Notify,
}

impl Pending {
    pub fn put(&self, records: &[TraceWrite], now: u64) {
        let mut map = self.records.lock().unwrap_or_else(|e| e.into_inner());
        for t in records {
            if map.len() >= MAX_PENDING && !map.contains_key(&t.key) {
                tracing::warn!(pending = map.len(), "trace records dropped: too many waiting for the database");
                break;
            }
            let expires = now.saturating_add(t.ttl_secs.max(1));
            map.insert(t.key.clone(), (t.record.clone(), expires, t.ttl_secs));
        }
        drop(map);
        self.wake.notify_one();
    }

    /// A waiting record: `Some(None)` when it waits but has expired.
    pub fn get(&self, key: &str, now: u64) -> Option<Option<Vec<u8>>> {
        let map = self.records.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).map(|(r, expires, _)| (*expires > now).then(|| r.clone()))
    }

    /// Waiting records under `prefix`: (key, live record or None if expired).
    pub fn under(&self, prefix: &str, now: u64) -> Vec<(String, Option<Vec<u8>>)> {
        let map = self.records.lock().unwrap_or_else(|e| e.into_inner());
        map.range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (r, expires, _))| (k.clone(), (*expires > now).then(|| r.clone())))
            .collect()
    }

    fn snapshot(&self) -> Vec<TraceWrite> {
        let map = self.records.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, (r, _, ttl))| TraceWrite { key: k.clone(), record: r.clone(), ttl_secs: *ttl }).collect()
    }

    /// Forgets what was written, unless it was replaced meanwhile.
    fn written(&self, records: &[TraceWrite]) {
        let mut map = self.records.lock().unwrap_or_else(|e| e.into_inner());
        for t in records {
            if map.get(&t.key).is_some_and(|(r, _, _)| *r == t.record) {
                map.remove(&t.key);
            }
        }
    }
}

/// Writes waiting records as they come, a batch per round trip; retries
/// every second while the database is unreachable.
pub(crate) fn spawn_writer(pending: Arc<Pending>, pool: Pool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let batch = pending.snapshot();
            if batch.is_empty() {
                pending.wake.notified().await;
                continue;
            }
            let result = match pool.get().await {
                Ok(client) => kv::trace_write(&client, &batch, crate::schema::now_secs()).await,
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(()) => pending.written(&batch),
                Err(e) => {
                    tracing::debug!(error = ?e.into_store(), "trace records wait for the database");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    })
}
