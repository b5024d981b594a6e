//! Change notifications per account (IMAP IDLE, sessions seeing each
//! other's changes, POP3 deletions seen by IMAP).

use crate::schema::Change;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::{broadcast, watch};

/// How many changes a subscriber may fall behind before it is told it
/// [`Lagged`] (and must re-read the mailbox state).
const BACKLOG: usize = 1024;

/// A subscriber missed changes: re-read what it shows (IMAP: the UID list
/// and flags) and carry on. The count is 0 when it is not known (the
/// backend lost its connection to other nodes' changes for a while).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("change feed lagged; {0} changes were missed")]
pub struct Lagged(pub u64);

/// One subscriber's view of an account's changes.
pub struct ChangeFeed {
    rx: broadcast::Receiver<Change>,
    /// Bumped by [`ChangeHub::lag_all`].
    gaps: watch::Receiver<u64>,
}

impl ChangeFeed {
    /// The next change. Never ends while the store is open.
    pub async fn next(&mut self) -> Result<Change, Lagged> {
        if self.gap() {
            return Err(Lagged(0));
        }
        loop {
            tokio::select! {
                received = self.rx.recv() => match received {
                    Ok(c) => return Ok(c),
                    Err(broadcast::error::RecvError::Lagged(n)) => return Err(Lagged(n)),
                    // The store is gone: nothing will ever change again.
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                },
                // Err: the hub is gone; the branch is off for this select.
                // changed() has marked the gap seen already, so it is not
                // asked again through gap().
                Ok(()) = self.gaps.changed() => {
                    self.rx = self.rx.resubscribe();
                    return Err(Lagged(0));
                }
            }
        }
    }

    /// A gap was announced since this feed last looked: what is still
    /// queued is from before it and the re-read covers it, so it is dropped.
    fn gap(&mut self) -> bool {
        if !self.gaps.has_changed().unwrap_or(false) {
            return false;
        }
        self.gaps.borrow_and_update();
        self.rx = self.rx.resubscribe();
        true
    }

    /// A change already announced, without waiting.
    pub fn try_next(&mut self) -> Option<Result<Change, Lagged>> {
        if self.gap() {
            return Some(Err(Lagged(0)));
        }
        match self.rx.try_recv() {
            Ok(c) => Some(Ok(c)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Err(Lagged(n))),
            Err(_) => None,
        }
    }
}

/// The in-process fan-out a backend uses to implement
/// [`crate::contract::Mailboxes::watch`]: one channel per watched account,
/// dropped when its last subscriber goes.
pub struct ChangeHub {
    accounts: Mutex<HashMap<u64, broadcast::Sender<Change>>>,
    gaps: watch::Sender<u64>,
}

impl Default for ChangeHub {
    fn default() -> Self {
        ChangeHub { accounts: Mutex::default(), gaps: watch::channel(0).0 }
    }
}

impl ChangeHub {
    pub fn watch(&self, account: u64) -> ChangeFeed {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let tx = accounts.entry(account).or_insert_with(|| broadcast::channel(BACKLOG).0);
        ChangeFeed { rx: tx.subscribe(), gaps: self.gaps.subscribe() }
    }

    /// Tells every subscriber it may have missed changes (a backend that
    /// was cut off from other nodes' changes for a while): each one's next
    /// call returns [`Lagged`], and it re-reads what it shows.
    pub fn lag_all(&self) {
        self.gaps.send_modify(|n| *n += 1);
    }

    /// Announces `changes` of `account`, in order. Costs a map look-up when
    /// nobody watches.
    pub fn publish(&self, account: u64, changes: impl IntoIterator<Item = Change>) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = accounts.get(&account) else { return };
        if tx.receiver_count() == 0 {
            accounts.remove(&account);
            return;
        }
        for change in changes {
            let _ = tx.send(change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ChangeKind;

    #[tokio::test]
    async fn subscribers_see_their_account_only_and_lag_is_reported() {
        let hub = ChangeHub::default();
        let mut a = hub.watch(1);
        let mut b = hub.watch(2);
        let change = Change { mailbox: 0, kind: ChangeKind::Appended { uid: 7, modseq: 3 } };
        hub.publish(1, [change.clone()]);
        assert_eq!(a.next().await.unwrap(), change);
        assert!(b.try_next().is_none());
        hub.publish(
            1,
            (0..BACKLOG as u32 + 5).map(|uid| Change { mailbox: 0, kind: ChangeKind::Appended { uid, modseq: 1 } }),
        );
        assert!(matches!(a.next().await, Err(Lagged(_))));
        drop((a, b));
        hub.publish(1, [change]);
        assert!(hub.accounts.lock().unwrap().get(&1).is_none(), "an unwatched account's channel is dropped");
    }

    #[tokio::test]
    async fn a_gap_reaches_every_subscriber_once_and_drops_what_it_covers() {
        let hub = std::sync::Arc::new(ChangeHub::default());
        let (mut idle, mut polled) = (hub.watch(1), hub.watch(2));
        let change = |uid| Change { mailbox: 0, kind: ChangeKind::Appended { uid, modseq: 1 } };
        hub.publish(2, [change(1)]);
        // One subscriber waiting in next(), as an IMAP IDLE does.
        let waiting = tokio::spawn(async move { (idle.next().await, idle) });
        tokio::task::yield_now().await;
        hub.lag_all();
        let (got, mut idle) = waiting.await.unwrap();
        assert_eq!(got, Err(Lagged(0)));
        assert_eq!(polled.try_next(), Some(Err(Lagged(0))), "the gap, not the change it covers");
        assert!(polled.try_next().is_none(), "the change from before the gap was dropped");
        hub.publish(1, [change(2)]);
        hub.publish(2, [change(3)]);
        assert_eq!(idle.next().await, Ok(change(2)), "after the gap, changes flow again");
        assert_eq!(polled.next().await, Ok(change(3)));
    }
}
