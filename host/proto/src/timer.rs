//! Whole-phase deadlines, with the clock as an input.
//!
//! A session never reads a clock: the driver passes `now` in, asks
//! [`PhaseTimer::deadline`] (through the session's `poll_timeout`) when to
//! wake, and reports that moment back (`handle_timeout(now)`), as
//! quinn-proto does. So every timeout rule is a unit test with made-up
//! instants, and no test sleeps.
//!
//! A phase (waiting for one command, for the DATA content, for a TLS
//! handshake, for a reply) has one deadline, set when the phase begins and
//! not moved by the bytes that trickle in: a client sending one byte a
//! second cannot outlive it. The driver also bounds its writes by the same
//! deadline, so a peer that stops reading ends the phase too.

use std::time::{Duration, Instant};

/// The deadline of the phase a session is in, if one is running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTimer {
    deadline: Option<Instant>,
}

impl PhaseTimer {
    /// Starts the phase's clock at `now` unless it already runs: the
    /// deadline of a phase is fixed when the phase begins.
    pub fn arm(&mut self, now: Instant, limit: Duration) {
        if self.deadline.is_none() {
            self.restart(now, limit);
        }
    }

    /// Starts a new phase at `now`, replacing any running deadline. A limit
    /// too large to represent means no deadline.
    pub fn restart(&mut self, now: Instant, limit: Duration) {
        self.deadline = now.checked_add(limit);
    }

    /// The phase is over (its command or reply arrived).
    pub fn stop(&mut self) {
        self.deadline = None;
    }

    pub fn is_running(&self) -> bool {
        self.deadline.is_some()
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_keeps_the_deadline_it_started_with() {
        let t0 = Instant::now();
        let mut t = PhaseTimer::default();
        t.arm(t0, Duration::from_secs(10));
        // Arming again later (more bytes arrived) does not move it.
        t.arm(t0 + Duration::from_secs(9), Duration::from_secs(10));
        assert_eq!(t.deadline(), Some(t0 + Duration::from_secs(10)));
        assert!(!t.expired(t0 + Duration::from_millis(9999)));
        assert!(t.expired(t0 + Duration::from_secs(10)));
        t.stop();
        assert!(!t.expired(t0 + Duration::from_secs(99)));
        t.arm(t0 + Duration::from_secs(20), Duration::from_secs(1));
        assert_eq!(t.deadline(), Some(t0 + Duration::from_secs(21)));
    }

    #[test]
    fn an_unrepresentable_limit_is_no_deadline() {
        let mut t = PhaseTimer::default();
        t.restart(Instant::now(), Duration::MAX);
        assert!(!t.is_running());
    }
}
