//! Change notifications across nodes. A transaction collects its changes
//! ([`Announce`]) and sends them with `pg_notify` just before it commits:
//! PostgreSQL delivers them only if it commits, in commit order, to every
//! listening session. Each node keeps one listening connection that feeds
//! its [`ChangeHub`] — its own changes come back the same way, so a
//! node's subscribers see every node's changes in one order. A change
//! returns once its own notifications are back ([`Receipt`]): a caller
//! that changes something and then subscribes never hears its own change.
//!
//! The queue has a channel of its own ([`QUEUE_CHANNEL`], no payload): a
//! new entry, a finished attempt or a node's restart wakes every node's
//! scheduler, which then reads the schedule again — no node polls.
//!
//! While the listening connection is down nothing is heard; once it is
//! back every subscriber is told it may have missed changes
//! ([`ChangeHub::lag_all`]) and every scheduler is woken.

use super::error::{Fail, pg_error};
use super::query::exec;
use crate::Result;
use crate::contract::ChangeHub;
use crate::schema::{Change, ChangeKind};
use deadpool_postgres::Transaction;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_postgres::{AsyncMessage, NoTls};

pub const CHANNEL: &str = "ferrymail_changes";
/// Wakes the queue schedulers of every node.
pub const QUEUE_CHANNEL: &str = "ferrymail_queue";

/// PostgreSQL refuses payloads of 8000 bytes or more.
const PAYLOAD_MAX: usize = 7000;
/// UIDs per Expunged change in one payload (10 digits and a comma each).
const UIDS_PER_CHANGE: usize = 500;

/// One notification: changes of one account. `n` numbers the payloads of
/// a transaction: PostgreSQL folds identical payloads of one transaction
/// into one, and two of ours must never be folded. `o` is the sending
/// node, `s` its number for the transaction, `l` marks its last payload.
#[derive(Serialize, Deserialize)]
struct Payload {
    a: u64,
    n: usize,
    o: String,
    s: u64,
    l: bool,
    c: Vec<Change>,
}

/// How long a change waits for its own notifications to come back before
/// it returns anyway (the listener is reconnecting; the change is durable).
const ECHO_WAIT: Duration = Duration::from_secs(2);

/// This node's side of the notifications: its name, and the changes
/// waiting to hear their own notifications back.
pub(crate) struct Node {
    name: String,
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<()>>>,
}

impl Node {
    pub fn new() -> Arc<Node> {
        static STORES: AtomicU64 = AtomicU64::new(0);
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let name = format!(
            "{:x}.{:x}.{:x}",
            std::process::id(),
            started.as_nanos() as u64,
            STORES.fetch_add(1, Ordering::Relaxed)
        );
        Arc::new(Node { name, next: AtomicU64::new(0), waiting: Mutex::default() })
    }

    fn heard(&self, seq: u64) {
        if let Some(tx) = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&seq) {
            let _ = tx.send(());
        }
    }
}

/// A transaction's notifications, sent: [`Receipt::wait`] after the commit
/// returns once the node's listener has published them.
pub(crate) struct Receipt {
    node: Arc<Node>,
    seq: u64,
    rx: Option<oneshot::Receiver<()>>,
}

impl Receipt {
    pub async fn wait(mut self) {
        if let Some(rx) = self.rx.take() {
            let _ = tokio::time::timeout(ECHO_WAIT, rx).await;
        }
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        self.node.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.seq);
    }
}

/// The changes a transaction makes, to announce when it commits.
#[derive(Default)]
pub(crate) struct Announce {
    changes: Vec<(u64, Change)>,
    queue: bool,
}

impl Announce {
    /// The queue's schedule changed (an entry added, rescheduled, removed,
    /// or made due again): wake every node's scheduler.
    pub fn queue_changed(&mut self) {
        self.queue = true;
    }

    pub fn push(&mut self, account: u64, change: Change) {
        match change.kind {
            ChangeKind::Expunged { uids, modseq } if uids.len() > UIDS_PER_CHANGE => {
                for chunk in uids.chunks(UIDS_PER_CHANGE) {
                    let kind = ChangeKind::Expunged { uids: chunk.to_vec(), modseq };
                    self.changes.push((account, Change { mailbox: change.mailbox, kind }));
                }
            }
            kind => self.changes.push((account, Change { mailbox: change.mailbox, kind })),
        }
    }

    /// The payloads, in order: consecutive changes of one account share one
    /// while it stays under PostgreSQL's limit.
    fn payloads(&self, node: &str, seq: u64) -> Vec<String> {
        let mut out = Vec::new();
        let mut current: Option<(Payload, usize)> = None;
        for (account, change) in &self.changes {
            let size = serde_json::to_string(change).map(|s| s.len()).unwrap_or(0);
            if let Some((p, len)) = &mut current
                && p.a == *account
                && *len + size + 1 < PAYLOAD_MAX
            {
                p.c.push(change.clone());
                *len += size + 1;
                continue;
            }
            if let Some((p, _)) = current.take() {
                out.extend(serde_json::to_string(&p).ok());
            }
            let p =
                Payload { a: *account, n: out.len(), o: node.to_string(), s: seq, l: false, c: vec![change.clone()] };
            current = Some((p, 100 + size));
        }
        if let Some((mut p, _)) = current {
            p.l = true;
            out.extend(serde_json::to_string(&p).ok());
        }
        // A single change too big to send (thousands of keywords on one
        // message) would fail the transaction; it is left out and logged.
        out.retain(|p| {
            let fits = p.len() < 8000;
            if !fits {
                tracing::warn!(bytes = p.len(), "a mailbox change too large to notify other sessions was not sent");
            }
            fits
        });
        out
    }

    /// Sends the notifications inside `tx` (a round trip for mailbox
    /// changes, one for the queue's).
    pub async fn send(&self, tx: &Transaction<'_>, node: &Arc<Node>) -> std::result::Result<Option<Receipt>, Fail> {
        if self.queue {
            exec(tx, "SELECT pg_notify($1, '')", &[&QUEUE_CHANNEL]).await?;
        }
        if self.changes.is_empty() {
            return Ok(None);
        }
        let seq = node.next.fetch_add(1, Ordering::Relaxed);
        let (done, rx) = oneshot::channel();
        node.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(seq, done);
        let receipt = Receipt { node: node.clone(), seq, rx: Some(rx) };
        let payloads = self.payloads(&node.name, seq);
        exec(
            tx,
            "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n",
            &[&CHANNEL, &payloads],
        )
        .await?;
        Ok(Some(receipt))
    }
}

/// Where a node's notifications go: its subscribers, and its scheduler.
pub(crate) struct Listeners {
    pub hub: Arc<ChangeHub>,
    /// Bumped for every queue notification (and after a reconnect).
    pub queue: tokio::sync::watch::Sender<u64>,
}

impl Listeners {
    fn wake_queue(&self) {
        self.queue.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// One listening connection: notifications arrive on `rx` until it breaks
/// (`None`: a queue notification).
struct Session {
    _client: tokio_postgres::Client,
    rx: tokio::sync::mpsc::UnboundedReceiver<Option<String>>,
}

impl Session {
    async fn open(config: &tokio_postgres::Config) -> Result<Session> {
        let (client, mut connection) = config.connect(NoTls).await.map_err(pg_error)?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                let heard = match message {
                    Ok(AsyncMessage::Notification(n)) if n.channel() == CHANNEL => Some(n.payload().to_string()),
                    Ok(AsyncMessage::Notification(n)) if n.channel() == QUEUE_CHANNEL => None,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "PostgreSQL change listener disconnected");
                        return;
                    }
                };
                if tx.send(heard).is_err() {
                    return;
                }
            }
        });
        client.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {QUEUE_CHANNEL}")).await.map_err(pg_error)?;
        Ok(Session { _client: client, rx })
    }

    /// Publishes notifications until the connection ends.
    async fn run(mut self, to: &Listeners, node: &Node) {
        while let Some(heard) = self.rx.recv().await {
            let Some(payload) = heard else {
                to.wake_queue();
                continue;
            };
            match serde_json::from_str::<Payload>(&payload) {
                Ok(p) => {
                    to.hub.publish(p.a, p.c);
                    if p.l && p.o == node.name {
                        node.heard(p.s);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "undecodable change notification ignored"),
            }
        }
    }
}

/// Starts the node's listener: listening when this returns, reconnecting
/// by itself (every second) when the database goes away.
pub(crate) async fn listen(
    config: tokio_postgres::Config,
    to: Arc<Listeners>,
    node: Arc<Node>,
) -> Result<tokio::task::JoinHandle<()>> {
    let first = Session::open(&config).await?;
    Ok(tokio::spawn(async move {
        let mut session = Some(first);
        loop {
            if let Some(s) = session.take() {
                s.run(&to, &node).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            match Session::open(&config).await {
                Ok(s) => {
                    // Listening again: whatever was announced meanwhile was
                    // not heard here. Subscribers re-read, schedulers look.
                    tracing::info!("PostgreSQL change listener reconnected; subscribers re-read their mailboxes");
                    to.hub.lag_all();
                    to.wake_queue();
                    session = Some(s);
                }
                Err(e) => tracing::debug!(error = %e, "PostgreSQL change listener still down"),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_expunges_are_split_and_payloads_stay_under_the_limit() {
        let mut ann = Announce::default();
        let uids: Vec<u32> = (4_000_000_000..4_000_002_000).collect();
        ann.push(7, Change { mailbox: 1, kind: ChangeKind::Expunged { uids: uids.clone(), modseq: 9 } });
        ann.push(8, Change { mailbox: 0, kind: ChangeKind::Mailboxes });
        let payloads = ann.payloads("node", 3);
        assert!(payloads.iter().all(|p| p.len() < 8000), "{:?}", payloads.iter().map(|p| p.len()).collect::<Vec<_>>());
        let decoded: Vec<Payload> = payloads.iter().map(|p| serde_json::from_str(p).unwrap()).collect();
        let mut seen = Vec::new();
        for p in decoded.iter().filter(|p| p.a == 7) {
            for c in &p.c {
                if let ChangeKind::Expunged { uids, .. } = &c.kind {
                    seen.extend_from_slice(uids);
                }
            }
        }
        assert_eq!(seen, uids, "every UID announced once, in order");
        assert_eq!(decoded.last().unwrap().a, 8);
        let numbers: Vec<usize> = decoded.iter().map(|p| p.n).collect();
        assert_eq!(numbers, (0..decoded.len()).collect::<Vec<_>>(), "payloads are numbered, never folded");
    }
}
