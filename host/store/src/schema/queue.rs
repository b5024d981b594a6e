//! The delivery queue's records: messages waiting for (re)delivery, with
//! per-recipient state.

use super::mail::Accepted;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientState {
    /// Not yet tried.
    Pending,
    Delivered,
    /// Tried and temporarily failed; `last_reply` says why.
    Deferred,
    /// Permanently failed; a bounce is due unless `notified`.
    Failed,
}

impl fmt::Display for RecipientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecipientState::Pending => "pending",
            RecipientState::Delivered => "delivered",
            RecipientState::Deferred => "deferred",
            RecipientState::Failed => "failed",
        })
    }
}

/// Where a queued recipient goes, as decided by the route hook.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QueuedRoute {
    Local { account: String },
    Relay { host: String, port: u16 },
    Mx { domain: String },
}

/// An SMTP reply as the queue keeps it (RFC 5321 4.2, RFC 3463): typed, so
/// bounces and retry decisions never re-parse text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReply {
    pub code: u16,
    /// "x.y.z", when the reply had one.
    pub enhanced: Option<String>,
    /// Lines joined with `\n`.
    pub text: String,
}

impl fmt::Display for StoredReply {
    /// One line: "451 4.7.1 text / more text".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text.replace('\n', " / ");
        match &self.enhanced {
            Some(e) => write!(f, "{} {} {}", self.code, e, text),
            None => write!(f, "{} {}", self.code, text),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecipient {
    pub address: String,
    pub route: QueuedRoute,
    pub state: RecipientState,
    pub attempts: u32,
    pub last_reply: Option<StoredReply>,
    /// The host that gave `last_reply`; `None` when ferrymail made it up
    /// (DNS failure, connection refused, policy).
    pub remote_mta: Option<String>,
    /// A delay warning went to the sender for this recipient.
    pub warned: bool,
    /// Unix seconds when this recipient is due again (while open).
    pub next_attempt: u64,
    /// The sender was told of the failure, or needs not be (null sender).
    pub notified: bool,
}

impl QueueRecipient {
    /// A recipient due at once.
    pub fn new(address: &str, route: QueuedRoute) -> Self {
        QueueRecipient {
            address: address.to_string(),
            route,
            state: RecipientState::Pending,
            attempts: 0,
            last_reply: None,
            remote_mta: None,
            warned: false,
            next_attempt: 0,
            notified: false,
        }
    }

    /// A recipient refused before any attempt (policy, unknown account),
    /// kept so the sender gets a bounce.
    pub fn failed(address: &str, reply: StoredReply) -> Self {
        let mut r = QueueRecipient::new(address, QueuedRoute::Mx { domain: String::new() });
        r.state = RecipientState::Failed;
        r.last_reply = Some(reply);
        r
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, RecipientState::Pending | RecipientState::Deferred)
    }

    /// Failed, and the bounce not yet made.
    pub fn awaits_bounce(&self) -> bool {
        self.state == RecipientState::Failed && !self.notified
    }
}

/// Who is working on a queue entry, until when. An expired lease makes the
/// entry due again, so the work of a node that died is picked up by another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The claiming node (one name per server process; the embedded
    /// backend has one).
    pub owner: String,
    /// Unix seconds.
    pub until: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Assigned by the store on insert.
    pub id: u64,
    /// The content; assigned by the store on accept.
    pub content: u64,
    /// Envelope sender ("" for `<>`: never bounced).
    pub sender: String,
    pub tenant: Option<String>,
    pub created: u64,
    /// When the entry is next due: [`QueueEntry::due`], or the lease's end
    /// while an attempt is in flight.
    pub next_attempt: u64,
    /// Delivery attempts made for this entry (any recipient).
    pub attempts: u32,
    /// Unix seconds of the last attempt; 0 before the first.
    pub last_attempt: u64,
    pub recipients: Vec<QueueRecipient>,
    /// Set while claimed (`Queue::queue_claim`), cleared by the commit.
    pub lease: Option<Lease>,
}

impl QueueEntry {
    pub fn new(sender: &str, tenant: Option<String>, mut recipients: Vec<QueueRecipient>) -> Self {
        let now = super::now_secs();
        for r in &mut recipients {
            r.next_attempt = r.next_attempt.max(now);
        }
        QueueEntry {
            id: 0,
            content: 0,
            sender: sender.to_string(),
            tenant,
            created: now,
            next_attempt: now,
            attempts: 0,
            last_attempt: 0,
            recipients,
            lease: None,
        }
    }

    /// Recipients still owed a delivery attempt.
    pub fn open_recipients(&self) -> impl Iterator<Item = &QueueRecipient> {
        self.recipients.iter().filter(|r| r.is_open())
    }

    /// When the entry next needs the queue: the earliest open recipient, or
    /// at once when a failure awaits its bounce; `None` when nothing is left.
    pub fn due(&self) -> Option<u64> {
        let open = self.open_recipients().map(|r| r.next_attempt).min();
        if self.recipients.iter().any(QueueRecipient::awaits_bounce) {
            Some(open.unwrap_or(self.created).min(self.created))
        } else {
            open
        }
    }

    pub fn is_done(&self) -> bool {
        self.due().is_none()
    }
}

/// What `Queue::queue_commit` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// UIDs of the entry's content filed into local INBOXes, in the order
    /// of the accounts given.
    pub filed: Vec<u32>,
    /// The new messages (DSNs), as `accept` reports them.
    pub accepted: Vec<Accepted>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_awaiting_its_bounce_keeps_the_entry_due() {
        let reply = StoredReply { code: 550, enhanced: Some("5.1.1".into()), text: "no".into() };
        let e = QueueEntry::new("s@x.test", None, vec![QueueRecipient::failed("a@x.test", reply)]);
        assert_eq!(e.due(), Some(e.created));
        let mut e = e;
        e.recipients[0].notified = true;
        assert!(e.is_done());
    }

    #[test]
    fn replies_print_on_one_line() {
        let r = StoredReply { code: 451, enhanced: Some("4.7.1".into()), text: "try\nlater".into() };
        assert_eq!(r.to_string(), "451 4.7.1 try / later");
        let r = StoredReply { code: 421, enhanced: None, text: "bye".into() };
        assert_eq!(r.to_string(), "421 bye");
    }
}
