//! A snapshot of the configured chains, and the tenant each decision
//! belongs to. A snapshot never changes: reload builds a new one, and
//! sessions keep the one they started with.
//!
//! Which tenant's chain runs:
//! - auth: the tenant owning the username's domain;
//! - rcpt, data: the authenticated user's tenant for submission, else the
//!   tenant owning the recipients' domain — one tenant per transaction: a
//!   recipient of another gets 452 4.5.3 and comes in a transaction of its own;
//! - route: the tenant owning a local recipient's domain (the global chain
//!   for local domains of no tenant), the sending tenant for remote ones;
//! - retry: the given (sending) tenant, else the recipient's — never the
//!   sender's domain's, which anyone can write;
//! - connect, helo, mail: the session's tenant (none before AUTH);
//! - vrfy, expn: the tenant owning the argument's domain;
//! - events: the tenant owning the recipient's domain.
//!
//! Answers that name users, accounts or local addresses are then checked
//! against the tenant that ran (`isolation`).
//!
//! A tenant's chain is its own plugins spliced into the global chain at
//! `@tenant` (first when absent), so tenant policy (greylisting, filters)
//! runs before the global catch-all decisions (accept local users, relay
//! rules) that would otherwise end the chain first.

use crate::config::RetryConfig;
use crate::directory::Directory;
use crate::milter::Milter;
use crate::plugin::Binding;
use std::collections::HashMap;
use std::sync::Arc;

/// One element of a chain.
pub(crate) enum Element {
    /// A plugin bound to the chain's tenant.
    Plugin(Arc<Binding>),
    /// `milter:NAME`: one per name, shared by every chain naming it (it
    /// holds the sessions' connections, and a session's transaction
    /// belongs to one tenant).
    Milter(Arc<Milter>),
}

pub(crate) struct Snapshot {
    /// Who owns which domain; the bindings' sandboxes share it.
    pub directory: Arc<Directory>,
    pub global: Vec<Element>,
    pub tenants: HashMap<String, Vec<Element>>,
    /// Every milter of any chain, by name (to close a session's connections).
    pub milters: HashMap<String, Arc<Milter>>,
    /// The embedded retry plugin on the `[retry]` schedule, asked when no
    /// plugin of the chain decides (`None` only before the first load).
    pub retry_fallback: Option<Arc<Binding>>,
    /// `[retry]`: its interval is the answer when the retry plugin fails.
    pub retry: RetryConfig,
}

impl Snapshot {
    /// The bindings a call for `tenant` runs through, in order.
    pub(crate) fn chain(&self, tenant: Option<&str>) -> &[Element] {
        tenant.and_then(|t| self.tenants.get(t)).map(Vec::as_slice).unwrap_or(&self.global)
    }
}
