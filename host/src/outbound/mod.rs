//! Outbound delivery: the queue scheduler, delivery attempts, MX
//! resolution, the SMTP client driver, retries and DSNs.
//!
//! # Layout
//! - [`scheduler`]: sleeps until the next due entry or a wake, claims work
//! - [`attempt`]: one delivery attempt of one queue entry, committed atomically
//! - [`retry`]: reply outcomes into recipient state, through the `retry` hook
//! - [`notify`]: delay warnings and bounces, routed like any message
//! - [`dsn`]: the RFC 3464 report format
//! - [`mx`]: MX / implicit MX / null MX resolution
//! - [`client`], [`stream`], [`tls`]: the SMTP client over TCP and STARTTLS
//! - [`admin`]: the `ferrymail queue …` commands
//!
//! # Concurrency
//! At most `2 × delivery.max_connections` entries are in flight; each
//! remote destination takes a per-destination permit, then a connection
//! permit, so a slow domain holds at most its own share of connections.

pub mod admin;
pub mod attempt;
pub mod client;
pub mod dsn;
pub mod mx;
pub mod notify;
pub mod retry;
pub mod scheduler;
pub mod stream;
pub mod tls;

pub use scheduler::run;

use ferrymail_store::{QueueEntry, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Operator requests made while an attempt was in flight, applied by the
/// attempt when it commits (so neither overwrites the other).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ops {
    pub delete: bool,
    pub bounce: bool,
}

/// The queue's shared bookkeeping: what is in flight, and the limits.
pub struct Outbound {
    in_flight: Mutex<HashMap<u64, Ops>>,
    pub(crate) slots: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    destinations: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_destination: usize,
}

impl Outbound {
    pub fn new(config: &crate::config::DeliveryConfig) -> Self {
        Outbound {
            in_flight: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(config.max_connections.saturating_mul(2))),
            connections: Arc::new(Semaphore::new(config.max_connections)),
            destinations: Mutex::new(HashMap::new()),
            per_destination: config.max_connections_per_domain,
        }
    }

    fn registry(&self) -> MutexGuard<'_, HashMap<u64, Ops>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims up to `limit` due entries that are not already in flight.
    /// An attempt outliving its lease is re-leased here, not started twice.
    pub fn claim(
        &self,
        store: &Store,
        now: u64,
        limit: usize,
        lease_until: u64,
    ) -> ferrymail_store::Result<Vec<QueueEntry>> {
        let mut registry = self.registry();
        let claimed = store.queue_claim(now, limit, lease_until)?;
        Ok(claimed.into_iter().filter(|e| registry.insert(e.id, Ops::default()).is_none()).collect())
    }

    /// Ends an attempt: `commit` runs with the operator requests made
    /// meanwhile, under the registry lock, so an operator command sees the
    /// entry either in flight or committed, never in between.
    pub fn finish<R>(&self, id: u64, commit: impl FnOnce(Ops) -> R) -> R {
        let mut registry = self.registry();
        let ops = registry.remove(&id).unwrap_or_default();
        commit(ops)
    }

    /// Runs an operator command: `idle` on the store when no attempt is in
    /// flight, else `busy` records a request for the attempt to apply.
    pub fn operate<R>(&self, id: u64, idle: impl FnOnce() -> R, busy: impl FnOnce(&mut Ops) -> R) -> R {
        let mut registry = self.registry();
        match registry.get_mut(&id) {
            Some(ops) => busy(ops),
            None => idle(),
        }
    }

    pub fn is_in_flight(&self, id: u64) -> bool {
        self.registry().contains_key(&id)
    }

    /// A connection slot at `destination` (a domain, or relay host:port),
    /// then one of the overall connections.
    pub async fn connection(&self, destination: &str) -> (OwnedSemaphorePermit, OwnedSemaphorePermit) {
        let sem = {
            let mut map = self.destinations.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() > 10_000 {
                // Forget idle destinations so the map does not grow forever.
                map.retain(|_, s| s.available_permits() < self.per_destination);
            }
            map.entry(destination.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.per_destination))).clone()
        };
        // Neither semaphore is ever closed, so acquiring cannot fail.
        let dest = sem.acquire_owned().await.expect("destination semaphore closed");
        let conn = self.connections.clone().acquire_owned().await.expect("connection semaphore closed");
        (dest, conn)
    }
}
