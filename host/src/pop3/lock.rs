//! Exclusive maildrop access (RFC 1939 8): held from login to the end of
//! the session, released on drop whatever way the session ends.

use crate::state::ServerState;
use std::sync::Arc;

pub struct MaildropLock {
    state: Arc<ServerState>,
    account: u64,
}

impl MaildropLock {
    pub fn acquire(state: &Arc<ServerState>, account: u64) -> Option<Self> {
        let mut locks = state.pop3_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.insert(account).then(|| MaildropLock { state: state.clone(), account })
    }
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        self.state.pop3_locks.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.account);
    }
}
