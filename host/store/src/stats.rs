//! Commit statistics for the server's metrics: the backend reports each
//! durable group here (how long its write and flush took, how many changes
//! it carried). One atomic load when nobody listens.

use std::sync::OnceLock;
use std::time::Duration;

/// Receives `(latency, changes)` for each committed group.
pub type CommitObserver = fn(Duration, usize);

static COMMIT: OnceLock<CommitObserver> = OnceLock::new();

/// Installs the process's commit observer; `false` if one already was.
pub fn set_commit_observer(observer: CommitObserver) -> bool {
    COMMIT.set(observer).is_ok()
}

pub(crate) fn committed(latency: Duration, changes: usize) {
    if let Some(observe) = COMMIT.get() {
        observe(latency, changes);
    }
}
