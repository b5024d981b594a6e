//! What every listener shares.

use crate::config::Config;
use crate::delivery::Delivery;
use crate::dns::Dns;
use ferrymail_policy::SharedPolicy;
use ferrymail_store::SharedStore;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

pub struct ServerState {
    pub config: Arc<Config>,
    pub store: SharedStore,
    pub delivery: Delivery,
    pub dns: Arc<Dns>,
    pub tls: Option<TlsAcceptor>,
    /// Wakes the queue scheduler.
    pub queue_wake: Arc<Notify>,
    /// Attempts in flight and outbound connection limits.
    pub outbound: crate::outbound::Outbound,
    /// Maildrops with a POP3 session in TRANSACTION state (RFC 1939 8:
    /// exclusive access), by account id.
    pub pop3_locks: Mutex<HashSet<u64>>,
    /// Logged-in IMAP sessions per account id (`imap.max_sessions_per_user`).
    pub imap_sessions: Mutex<HashMap<u64, usize>>,
    policy: RwLock<SharedPolicy>,
    session_ids: AtomicU64,
}

impl ServerState {
    pub fn new(
        config: Arc<Config>,
        store: SharedStore,
        dns: Arc<Dns>,
        policy: SharedPolicy,
        tls: Option<TlsAcceptor>,
    ) -> Self {
        let queue_wake = Arc::new(Notify::new());
        ServerState {
            dns,
            outbound: crate::outbound::Outbound::new(&config.delivery, &config.hostname),
            delivery: Delivery::new(store.clone(), config.clone(), queue_wake.clone()),
            config,
            store,
            tls,
            queue_wake,
            pop3_locks: Mutex::new(HashSet::new()),
            imap_sessions: Mutex::new(HashMap::new()),
            policy: RwLock::new(policy),
            // Seeded from the clock so ids differ across restarts in the logs.
            session_ids: AtomicU64::new(ferrymail_store::now_secs() << 20),
        }
    }

    /// The policy snapshot a new session runs with to its end.
    pub fn policy(&self) -> SharedPolicy {
        self.policy.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Installs a new policy for sessions that start from now on.
    pub fn set_policy(&self, policy: SharedPolicy) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    pub fn next_session_id(&self) -> String {
        format!("{:x}", self.session_ids.fetch_add(1, Ordering::Relaxed))
    }
}
