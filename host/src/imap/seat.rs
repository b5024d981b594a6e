//! Sessions per user: one account cannot take every connection slot (and
//! every change-feed subscription) of the server.

use crate::state::ServerState;
use std::sync::Arc;

/// A logged-in session's place in its account's count, given back on drop
/// however the session ends.
pub struct Seat {
    state: Arc<ServerState>,
    account: u64,
}

impl Seat {
    /// `None` when the account already has `max` sessions.
    pub fn take(state: &Arc<ServerState>, account: u64, max: usize) -> Option<Seat> {
        let mut sessions = state.imap_sessions.lock().unwrap_or_else(|e| e.into_inner());
        let n = sessions.entry(account).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Seat { state: state.clone(), account })
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut sessions = self.state.imap_sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = sessions.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                sessions.remove(&self.account);
            }
        }
    }
}
