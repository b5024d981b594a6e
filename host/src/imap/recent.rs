//! `\Recent` (RFC 3501 2.3.2): a message is recent in the one session that
//! first hears of it with the mailbox selected read-write (a SELECT, or new
//! mail while selected). Which messages were claimed is kept per mailbox,
//! in memory: a restart forgets it, and the first SELECT afterwards sees
//! every message as recent, as 2.3.2 allows ("if it is not possible to
//! determine whether or not this session is the first session to be
//! notified about a message, then that message SHOULD be considered
//! recent"). Servers sharing one PostgreSQL store each keep their own.

use std::collections::HashMap;
use std::sync::Mutex;

/// Per (account, mailbox id): the mailbox's UIDVALIDITY and the highest UID
/// a session has claimed.
#[derive(Default)]
pub struct RecentMarks(Mutex<HashMap<(u64, u32), (u32, u32)>>);

impl RecentMarks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, u32), (u32, u32)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The highest UID claimed in the account's mailbox (0: none). An entry
    /// of another UIDVALIDITY is of a mailbox that no longer exists.
    pub fn claimed(&self, account: u64, mailbox: u32, uid_validity: u32) -> u32 {
        match self.lock().get(&(account, mailbox)) {
            Some(&(validity, uid)) if validity == uid_validity => uid,
            _ => 0,
        }
    }

    /// SELECT (`claim`) or EXAMINE of a mailbox whose highest UID is
    /// `last`: the first UID that is recent in this session. A SELECT takes
    /// every message not claimed yet; EXAMINE shows them and takes none.
    pub fn at_select(&self, account: u64, mailbox: u32, uid_validity: u32, last: u32, claim: bool) -> u32 {
        if !claim {
            return self.claimed(account, mailbox, uid_validity).saturating_add(1);
        }
        let mut marks = self.lock();
        let mark = marks.entry((account, mailbox)).or_insert((uid_validity, 0));
        if mark.0 != uid_validity {
            *mark = (uid_validity, 0);
        }
        let first = mark.1.saturating_add(1);
        mark.1 = mark.1.max(last);
        first
    }

    /// New mail `uid` in a mailbox this session selected read-write:
    /// whether it is the first to hear of it (and so has it as recent).
    pub fn at_arrival(&self, account: u64, mailbox: u32, uid: u32) -> bool {
        match self.lock().get_mut(&(account, mailbox)) {
            Some(mark) if uid > mark.1 => {
                mark.1 = uid;
                true
            }
            _ => false,
        }
    }

    /// STATUS RECENT: how many of `uids` (ascending) no session claimed.
    pub fn unclaimed(&self, account: u64, mailbox: u32, uid_validity: u32, uids: &[u32]) -> u32 {
        let mark = self.claimed(account, mailbox, uid_validity);
        (uids.len() - uids.partition_point(|&u| u <= mark)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_recent_in_one_session_rfc3501_2_3_2() {
        let state = RecentMarks::default();
        // EXAMINE shows what is unclaimed and claims nothing.
        assert_eq!(state.at_select(1, 7, 100, 5, false), 1);
        assert_eq!(state.unclaimed(1, 7, 100, &[1, 2, 5]), 3);
        // The first SELECT takes 1..=5; the next sees none recent.
        assert_eq!(state.at_select(1, 7, 100, 5, true), 1);
        assert_eq!(state.at_select(1, 7, 100, 5, true), 6);
        assert_eq!(state.unclaimed(1, 7, 100, &[1, 2, 5]), 0);
        // New mail goes to the first session that hears of it.
        assert!(state.at_arrival(1, 7, 6));
        assert!(!state.at_arrival(1, 7, 6));
        assert_eq!(state.unclaimed(1, 7, 100, &[1, 2, 5, 6, 7]), 1);
        // A mailbox of another UIDVALIDITY starts over; other accounts and
        // mailboxes are apart.
        assert_eq!(state.at_select(1, 7, 101, 3, true), 1);
        assert_eq!(state.at_select(2, 7, 101, 3, true), 1);
        assert_eq!(state.at_select(1, 8, 101, 3, true), 1);
    }
}
