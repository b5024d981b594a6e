//! Outcomes of the routing, retry and authentication hooks.

use crate::Reply;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// Where one recipient goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Route {
    /// File into this account's INBOX.
    Local { account: String },
    /// Hand to this host (a smarthost), skipping MX look-ups.
    Relay { host: String, port: u16 },
    /// Deliver to the MX hosts of this domain (normally the recipient's).
    Mx { domain: String },
    /// Replace the recipient with these addresses, each routed in turn.
    Alias { targets: Vec<String> },
    /// Accept and drop.
    Discard,
    /// Refuse this recipient with this reply (at RCPT time, or a bounce later).
    Reject(Reply),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteContext {
    pub sender: String,
    pub recipient: String,
    /// The tenant owning the recipient's domain, if any.
    pub tenant: Option<String>,
    /// Alias expansion depth so far (loops are cut by the host).
    pub depth: u32,
}

/// What the retry hook is told after one failed attempt for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryContext {
    pub queue_id: String,
    pub sender: String,
    pub recipient: String,
    pub tenant: Option<String>,
    /// Attempts made so far, including the one that just failed.
    pub attempts: u32,
    pub first_queued: SystemTime,
    pub now: SystemTime,
    /// The remote reply or a description of the connection failure.
    pub last_reply: Reply,
    /// A delay warning was already sent for this recipient.
    pub warned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetryDecision {
    RetryAfter(Duration),
    /// Send the sender a delay DSN, then retry after the duration.
    WarnAndRetry(Duration),
    /// Give up: return the message to the sender (failure DSN).
    Bounce,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthOutcome {
    /// Credentials good; the canonical user name and its tenant.
    Ok { user: String, tenant: Option<String> },
    /// Credentials wrong (535 5.7.8 / -ERR [AUTH]).
    Fail,
    /// Could not decide now (454 4.7.0 / -ERR [SYS/TEMP]).
    Tempfail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryEvent {
    Delivered { queue_id: String, recipient: String, reply: Reply },
    Bounced { queue_id: String, recipient: String, reply: Reply },
}
