//! The delivery agent: turns an accepted message into mailbox entries for
//! local recipients and queue entries for everyone else, in one atomic,
//! durable store write.
//!
//! Local recipients are filed at acceptance time rather than through the
//! queue: the 250 then means "in the mailbox", and a local delivery costs no
//! second write. Recipients that cannot be filed now go to the queue.

pub mod routing;

use crate::config::Config;
use bytes::Bytes;
use ferrymail_policy::logsafe;
use ferrymail_policy::{Envelope, Policy, Reply, SessionInfo};
use ferrymail_store::schema::{Filing, Incoming, QueueEntry, SpecialUse};
use ferrymail_store::{SharedStore, StoreError, format_id};
use std::sync::Arc;
use tokio::sync::Notify;

/// What became of an accepted message.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub id: String,
    pub local: usize,
    pub queued: usize,
}

#[derive(Clone)]
pub struct Delivery {
    store: SharedStore,
    /// Routing reads the postmaster settings.
    config: Arc<Config>,
    /// Woken when the queue gains work, so the scheduler never polls.
    queue_wake: Arc<Notify>,
}

impl Delivery {
    pub fn new(store: SharedStore, config: Arc<Config>, queue_wake: Arc<Notify>) -> Self {
        Delivery { store, config, queue_wake }
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// A fresh message id, taken before the content is final so trace
    /// headers and logs can carry it.
    pub async fn new_id(&self) -> Result<u64, Reply> {
        self.store.new_id().await.map_err(store_reply)
    }

    /// Routes, files and queues `content`, returning once it is on disk.
    /// An error is the reply to give the client; nothing was kept.
    pub async fn accept(
        &self,
        policy: &dyn Policy,
        session: &SessionInfo,
        envelope: &Envelope,
        id: u64,
        content: Bytes,
    ) -> Result<Receipt, Reply> {
        self.accept_into(policy, session, envelope, id, content, Folder::Inbox).await
    }

    /// [`Delivery::accept`], filing local copies into `folder`. The
    /// transaction's decision trace (routing included) is written by the
    /// same commit as the message; if the message is not kept, the trace
    /// says why.
    pub async fn accept_into(
        &self,
        policy: &dyn Policy,
        session: &SessionInfo,
        envelope: &Envelope,
        id: u64,
        content: Bytes,
        folder: Folder,
    ) -> Result<Receipt, Reply> {
        let prepared = self.prepare(policy, session, envelope, id, content, folder).await;
        // After routing, whose plugin calls belong in the record.
        let trace = crate::trace::MessageTrace::take(id, &format!("accepted: 250 2.0.0 queued as {}", format_id(id)));
        let refused = |trace: Option<crate::trace::MessageTrace>, reply: Reply| {
            if let Some(t) = trace {
                t.refused(&*self.store, &self.config.trace, &format!("refused: {reply}"));
            }
            reply
        };
        let (mut incoming, plan) = match prepared {
            Ok(p) => p,
            Err(reply) => return Err(refused(trace, reply)),
        };
        if let Some(t) = &trace {
            incoming.traces = t.writes(&self.config.trace);
        }
        let queued = incoming.queue.as_ref().map_or(0, |q| q.recipients.len());
        // Durable on return; on an error nothing was kept and the client
        // keeps the message and retries.
        let accepted = match self.store.accept(incoming).await {
            Ok(a) => a,
            Err(e) => return Err(refused(trace, store_reply(e))),
        };
        let msg = format_id(id);
        for (account, filed) in plan.local_names.iter().zip(&accepted.filed) {
            tracing::info!(session = %session.id, msg = %msg, to = %logsafe(account), uid = filed.uid, "delivered to mailbox");
        }
        if let Some(q) = accepted.queued {
            tracing::info!(session = %session.id, msg = %msg, queue = %format_id(q), recipients = queued, "queued");
            self.queue_wake.notify_one();
        }
        Ok(Receipt { id: msg, local: accepted.filed.len(), queued })
    }

    /// Routes the message and builds what the store accepts.
    async fn prepare(
        &self,
        policy: &dyn Policy,
        session: &SessionInfo,
        envelope: &Envelope,
        id: u64,
        content: Bytes,
        folder: Folder,
    ) -> Result<(Incoming, routing::Plan), Reply> {
        let mut plan = routing::plan(policy, &*self.store, &self.config, envelope, session.tenant.clone()).await?;
        let queue = (!plan.queue.is_empty())
            .then(|| QueueEntry::new(&envelope.mail_from, session.tenant.clone(), std::mem::take(&mut plan.queue)));
        // What IMAP FETCH ENVELOPE/BODYSTRUCTURE answer, parsed once now
        // rather than at every fetch.
        let summary = match plan.local_ids.is_empty() {
            true => None,
            false => Some(crate::imap::summarize(content.clone()).await),
        };
        let incoming = Incoming {
            id,
            content,
            return_path: envelope.mail_from.clone(),
            local: self.filings(&plan.local_ids, folder).await?,
            queue,
            summary,
            traces: Vec::new(),
        };
        Ok((incoming, plan))
    }
}

/// Where local copies of a message are filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Inbox,
    /// The account's `\Junk` mailbox (RFC 6154), INBOX for an account
    /// without one: the chain quarantined the message.
    Junk,
}

impl Folder {
    /// Junk when the chain's data answer added `X-Ferrymail-Quarantine`
    /// (the `dmarc` plugin) or `X-Spam: yes` (the spam filters' convention,
    /// rspamd's milter among them). Only fields the chain added count: the
    /// same fields in the received message are the sender's words.
    pub fn for_added_fields<'a>(mut added: impl Iterator<Item = (&'a str, &'a str)>) -> Folder {
        let junk = added.any(|(name, value)| {
            name.eq_ignore_ascii_case("X-Ferrymail-Quarantine")
                || (name.eq_ignore_ascii_case("X-Spam") && value.trim().eq_ignore_ascii_case("yes"))
        });
        if junk { Folder::Junk } else { Folder::Inbox }
    }
}

impl Delivery {
    async fn filings(&self, accounts: &[u64], folder: Folder) -> Result<Vec<Filing>, Reply> {
        let mut out = Vec::with_capacity(accounts.len());
        for &account in accounts {
            let mut filing = Filing::inbox(account);
            if folder == Folder::Junk {
                let boxes = self.store.mailboxes(account).await.map_err(store_reply)?;
                if let Some(junk) = boxes.iter().find(|m| m.special_use == Some(SpecialUse::Junk)) {
                    filing.mailbox = junk.id;
                }
            }
            out.push(filing);
        }
        Ok(out)
    }
}

/// Storage failures are temporary for the client: it keeps the message and
/// retries (RFC 5321 4.2.5: 452 for insufficient storage, 451 otherwise).
pub fn store_reply(e: StoreError) -> Reply {
    tracing::error!(error = %e, "store failure while accepting a message");
    if e.is_out_of_space() {
        Reply::new(452, "4.3.1", "Insufficient system storage, try again later")
    } else {
        Reply::new(451, "4.3.0", "Local error in processing, try again later")
    }
}
