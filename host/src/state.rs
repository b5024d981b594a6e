//! What every listener shares.

use crate::config::Config;
use crate::delivery::Delivery;
use crate::dns::Dns;
use crate::throttle::{ConnectionLimits, FailurePolicy, Failures};
use ferrymail_policy::SharedPolicy;
use ferrymail_store::SharedStore;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

pub struct ServerState {
    pub config: Arc<Config>,
    pub store: SharedStore,
    pub delivery: Delivery,
    pub dns: Arc<Dns>,
    /// DKIM signing keys (data_dir/dkim), re-read when a domain's changes.
    pub dkim: crate::mailauth::keys::Keys,
    /// The TLS acceptor in force (replaced when SIGHUP reloads the
    /// certificate); `None` without a usable certificate.
    tls: RwLock<Option<TlsAcceptor>>,
    /// Concurrent connections per client address and network.
    pub connections: Arc<ConnectionLimits>,
    /// Failed logins and unknown recipients per client and account.
    pub failures: Arc<Failures>,
    /// Wakes the queue scheduler.
    pub queue_wake: Arc<Notify>,
    /// Attempts in flight and outbound connection limits.
    pub outbound: crate::outbound::Outbound,
    /// Maildrops with a POP3 session in TRANSACTION state (RFC 1939 8:
    /// exclusive access), by account id.
    pub pop3_locks: Mutex<HashSet<u64>>,
    /// Logged-in IMAP sessions per account id (`imap.max_sessions_per_user`).
    pub imap_sessions: Mutex<HashMap<u64, usize>>,
    /// Which IMAP messages some session has had as `\Recent`.
    pub imap_recent: crate::imap::RecentMarks,
    /// Listeners accepting now, for `/healthz`.
    pub listeners: Arc<crate::metrics::http::Listeners>,
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
        let clients = &config.clients;
        let connections = ConnectionLimits::new(clients.connection_policy());
        let failures = Failures::new(FailurePolicy {
            window: clients.failure_window,
            per_address: clients.max_auth_failures_per_address,
            per_account: clients.max_auth_failures_per_account,
            base_delay: config.auth_failure_delay,
            free_probes: clients.unknown_recipients_before_delay,
            probe_delay: Duration::from_secs(1),
            exempt: clients.exempt.clone(),
        });
        ServerState {
            dns,
            dkim: crate::mailauth::keys::Keys::new(config.dkim_dir()),
            outbound: crate::outbound::Outbound::new(&config.delivery, config.node_name()),
            delivery: Delivery::new(store.clone(), config.clone(), queue_wake.clone()),
            connections,
            failures,
            config,
            store,
            tls: RwLock::new(tls),
            queue_wake,
            pop3_locks: Mutex::new(HashSet::new()),
            imap_sessions: Mutex::new(HashMap::new()),
            imap_recent: Default::default(),
            listeners: Default::default(),
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

    /// The TLS acceptor for a handshake starting now.
    pub fn tls(&self) -> Option<TlsAcceptor> {
        self.tls.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// New handshakes use `acceptor` from now on (SIGHUP with a new
    /// certificate); connections already up keep theirs.
    pub fn set_tls(&self, acceptor: TlsAcceptor) {
        *self.tls.write().unwrap_or_else(|e| e.into_inner()) = Some(acceptor);
    }

    pub fn next_session_id(&self) -> String {
        format!("{:x}", self.session_ids.fetch_add(1, Ordering::Relaxed))
    }
}
