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
//! - [`client`], [`tls`]: the SMTP client over TCP and STARTTLS (the
//!   connection type is [`crate::net::Conn`], shared with the listeners)
//! - [`connection_cache`]: idle connections kept seconds for the next
//!   message to the same host
//! - [`admin`]: the `ferrymail queue …` commands
//!
//! # Concurrency
//! At most `2 × delivery.max_connections` entries are in flight; each
//! remote destination takes a per-destination permit, then a connection
//! permit, so a slow domain holds at most its own share of connections.

pub mod admin;
pub mod attempt;
pub mod client;
pub mod connection_cache;
pub mod dsn;
pub mod mx;
pub mod notify;
mod observed;
pub mod retry;
pub mod scheduler;
pub mod tls;

pub use scheduler::run;

use ferrymail_policy::Reply;
use ferrymail_store::schema::StoredReply;
use ferrymail_store::{QueueEntry, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A reply as the queue keeps it.
pub fn stored_reply(r: &Reply) -> StoredReply {
    StoredReply { code: r.code, enhanced: r.enhanced.clone(), text: r.text.clone() }
}

/// A reply the queue kept, for logs, events and plugins.
pub fn reply_of(r: &StoredReply) -> Reply {
    Reply { code: r.code, enhanced: r.enhanced.clone(), text: r.text.clone() }
}

/// Operator requests made while an attempt was in flight, applied by the
/// attempt when it commits (so neither overwrites the other).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ops {
    pub delete: bool,
    pub bounce: bool,
}

impl Ops {
    pub fn any(self) -> bool {
        self.delete || self.bounce
    }
}

/// The queue's shared bookkeeping: what is in flight, and the limits.
pub struct Outbound {
    /// Held across the store call of a claim or an operator command, so an
    /// operator command sees an entry either in flight or not claimed.
    in_flight: tokio::sync::Mutex<HashMap<u64, Ops>>,
    /// This node's name on the queue's leases.
    owner: String,
    pub(crate) slots: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    destinations: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_destination: usize,
}

impl Outbound {
    pub fn new(config: &crate::config::DeliveryConfig, owner: &str) -> Self {
        Outbound {
            in_flight: tokio::sync::Mutex::new(HashMap::new()),
            owner: owner.to_string(),
            slots: Arc::new(Semaphore::new(config.max_connections.saturating_mul(2))),
            connections: Arc::new(Semaphore::new(config.max_connections)),
            destinations: Mutex::new(HashMap::new()),
            per_destination: config.max_connections_per_domain,
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Claims up to `limit` due entries that are not already in flight.
    /// An attempt outliving its lease is re-leased here, not started twice.
    pub async fn claim(
        &self,
        store: &dyn Store,
        now: u64,
        limit: usize,
        lease_until: u64,
    ) -> ferrymail_store::Result<Vec<QueueEntry>> {
        let mut registry = self.in_flight.lock().await;
        let claimed = store.queue_claim(&self.owner, now, limit, lease_until).await?;
        Ok(claimed.into_iter().filter(|e| registry.insert(e.id, Ops::default()).is_none()).collect())
    }

    /// The operator requests made so far for an attempt in flight.
    pub async fn requests(&self, id: u64) -> Ops {
        self.in_flight.lock().await.get(&id).copied().unwrap_or_default()
    }

    /// Ends an attempt that committed with `applied` requests; returns the
    /// requests that arrived while it committed (for the caller to apply).
    pub async fn finish(&self, id: u64, applied: Ops) -> Ops {
        let ops = self.in_flight.lock().await.remove(&id).unwrap_or_default();
        Ops { delete: ops.delete && !applied.delete, bounce: ops.bounce && !applied.bounce }
    }

    /// Runs an operator command: `idle` on the store when no attempt is in
    /// flight (no claim can start one meanwhile), else `busy` records a
    /// request for the attempt to apply.
    pub async fn operate<R>(&self, id: u64, idle: impl AsyncFnOnce() -> R, busy: impl FnOnce(&mut Ops) -> R) -> R {
        let mut registry = self.in_flight.lock().await;
        match registry.get_mut(&id) {
            Some(ops) => busy(ops),
            None => idle().await,
        }
    }

    pub async fn is_in_flight(&self, id: u64) -> bool {
        self.in_flight.lock().await.contains_key(&id)
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
