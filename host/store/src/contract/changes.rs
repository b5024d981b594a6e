//! Change notifications per account (IMAP IDLE, sessions seeing each
//! other's changes, POP3 deletions seen by IMAP).

use crate::schema::Change;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// How many changes a subscriber may fall behind before it is told it
/// [`Lagged`] (and must re-read the mailbox state).
const BACKLOG: usize = 1024;

/// A subscriber missed changes: re-read what it shows (IMAP: the UID list
/// and flags) and carry on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("change feed lagged; {0} changes were missed")]
pub struct Lagged(pub u64);

/// One subscriber's view of an account's changes.
pub struct ChangeFeed {
    rx: broadcast::Receiver<Change>,
}

impl ChangeFeed {
    /// The next change. Never ends while the store is open.
    pub async fn next(&mut self) -> Result<Change, Lagged> {
        loop {
            match self.rx.recv().await {
                Ok(c) => return Ok(c),
                Err(broadcast::error::RecvError::Lagged(n)) => return Err(Lagged(n)),
                // The store is gone: nothing will ever change again.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }

    /// A change already announced, without waiting.
    pub fn try_next(&mut self) -> Option<Result<Change, Lagged>> {
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
#[derive(Default)]
pub struct ChangeHub {
    accounts: Mutex<HashMap<u64, broadcast::Sender<Change>>>,
}

impl ChangeHub {
    pub fn watch(&self, account: u64) -> ChangeFeed {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let tx = accounts.entry(account).or_insert_with(|| broadcast::channel(BACKLOG).0);
        ChangeFeed { rx: tx.subscribe() }
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
}
