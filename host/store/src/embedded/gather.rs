//! How long the writer waits to gather a commit group.
//!
//! A group costs the same synchronous writes however many changes it holds
//! (sled writes its transaction's batch manifest and then its log, each with
//! a `sync_file_range`, and [`super::durable`] adds one `fdatasync`), so the
//! fewer groups per change, the fewer of those calls per message. Committing
//! as soon as one change is there left groups of 2–3 changes with 20 SMTP
//! sessions: the callers one group answers come back one by one while the
//! next commit already runs, each starting a group of its own.
//!
//! So, like ext4's journal batching (jbd2 waits about one commit time for
//! more handles), the writer waits for more changes, but only
//! - for as many as the last groups held: the callers a group answered are
//!   the ones likely to come back together. A group that fell short halves
//!   the gap (one slow session does not shrink the convoy at once); a lone
//!   client brings the target down to one within a few groups, and then
//!   nothing waits;
//! - and for at most about two commit times (within
//!   [`MIN_LINGER`]..[`MAX_LINGER`]): the callers of the last group come
//!   back spread over the time the server needs to process their next
//!   messages, which under load is longer than one commit.

use std::time::Duration;

/// Shortest wait worth a timer.
pub(crate) const MIN_LINGER: Duration = Duration::from_micros(100);
/// Longest wait, whatever commits cost (a slow disk must not make a lone
/// change wait long on a target left over from a burst).
pub(crate) const MAX_LINGER: Duration = Duration::from_millis(2);

pub(crate) struct Gather {
    /// How many changes the next group waits for.
    target: usize,
    /// Smoothed duration of a commit.
    commit: Duration,
}

impl Default for Gather {
    fn default() -> Self {
        Gather { target: 1, commit: MIN_LINGER }
    }
}

impl Gather {
    /// Whether a group of `have` changes should wait for more.
    pub fn wants_more(&self, have: usize) -> bool {
        have < self.target
    }

    /// How long after its first change a group may wait for more.
    pub fn linger(&self) -> Duration {
        (self.commit * 2).clamp(MIN_LINGER, MAX_LINGER)
    }

    /// A group of `size` changes was committed in `took`.
    pub fn committed(&mut self, size: usize, took: Duration) {
        self.target = match size >= self.target {
            true => size,
            false => size + (self.target - size) / 2,
        }
        .max(1);
        // An exponential average over about eight commits: one slow flush
        // does not set the wait.
        self.commit = (self.commit * 7 + took) / 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_client_never_waits() {
        let mut g = Gather::default();
        assert!(!g.wants_more(1));
        g.committed(1, Duration::from_millis(1));
        assert!(!g.wants_more(1));
        // After a burst, within a few groups.
        g.committed(20, Duration::from_millis(1));
        let groups = (0..10).take_while(|_| {
            let waits = g.wants_more(1);
            g.committed(1, Duration::from_millis(1));
            waits
        });
        assert!(groups.count() <= 5);
    }

    #[test]
    fn the_next_group_waits_for_as_many_changes_as_the_last_held() {
        let mut g = Gather::default();
        g.committed(20, Duration::from_micros(500));
        assert!(g.wants_more(19));
        assert!(!g.wants_more(20));
        // The wait ran out with 8: the target closes half the gap.
        g.committed(8, Duration::from_micros(500));
        assert!(g.wants_more(13));
        assert!(!g.wants_more(14));
        // More came than waited for: the target follows.
        g.committed(30, Duration::from_micros(500));
        assert!(g.wants_more(29));
    }

    #[test]
    fn the_wait_follows_the_commit_time_within_bounds() {
        let mut g = Gather::default();
        assert_eq!(g.linger(), 2 * MIN_LINGER);
        for _ in 0..64 {
            g.committed(1, Duration::from_micros(700));
        }
        let l = g.linger();
        assert!(l > Duration::from_micros(1300) && l <= Duration::from_micros(1400), "{l:?}");
        for _ in 0..64 {
            g.committed(1, Duration::from_secs(1));
        }
        assert_eq!(g.linger(), MAX_LINGER);
    }
}
