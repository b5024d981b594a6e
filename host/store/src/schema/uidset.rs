//! A set of UIDs as ascending runs: a mailbox whose messages arrived one
//! after another and were seldom expunged is a handful of runs however many
//! messages it holds, so its UID list is read and sent in one step.

use serde::{Deserialize, Serialize};

/// Ascending, disjoint, non-adjacent inclusive runs `(first, last)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UidSet {
    runs: Vec<(u32, u32)>,
}

impl UidSet {
    pub fn new() -> UidSet {
        UidSet::default()
    }

    /// Builds a set from runs in any order, overlapping or not.
    pub fn from_runs(runs: impl IntoIterator<Item = (u32, u32)>) -> UidSet {
        let mut runs: Vec<(u32, u32)> = runs.into_iter().filter(|(a, b)| a <= b).collect();
        runs.sort_unstable();
        let mut set = UidSet { runs: Vec::with_capacity(runs.len()) };
        for (a, b) in runs {
            set.push_run(a, b);
        }
        set
    }

    /// Appends a run that starts at or after the set's end (merging).
    fn push_run(&mut self, a: u32, b: u32) {
        match self.runs.last_mut() {
            Some((_, last)) if a <= last.saturating_add(1) => *last = (*last).max(b),
            _ => self.runs.push((a, b)),
        }
    }

    pub fn runs(&self) -> &[(u32, u32)] {
        &self.runs
    }

    /// Number of UIDs.
    pub fn len(&self) -> usize {
        self.runs.iter().map(|&(a, b)| (b - a) as usize + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    pub fn max(&self) -> Option<u32> {
        self.runs.last().map(|&(_, b)| b)
    }

    pub fn contains(&self, uid: u32) -> bool {
        self.find(uid).is_ok()
    }

    /// Ok(run index) holding `uid`, or Err(index where a run would go).
    fn find(&self, uid: u32) -> Result<usize, usize> {
        self.runs.binary_search_by(|&(a, b)| {
            if b < uid {
                std::cmp::Ordering::Less
            } else if a > uid {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
    }

    /// Adds `uid`; O(1) for the usual case of a new highest UID.
    pub fn insert(&mut self, uid: u32) -> bool {
        if let Some(&(_, last)) = self.runs.last()
            && uid > last
        {
            self.push_run(uid, uid);
            return true;
        }
        let i = match self.find(uid) {
            Ok(_) => return false,
            Err(i) => i,
        };
        let joins_prev = i > 0 && self.runs[i - 1].1 + 1 == uid;
        let joins_next = i < self.runs.len() && self.runs[i].0 == uid + 1;
        match (joins_prev, joins_next) {
            (true, true) => {
                self.runs[i - 1].1 = self.runs[i].1;
                self.runs.remove(i);
            }
            (true, false) => self.runs[i - 1].1 = uid,
            (false, true) => self.runs[i].0 = uid,
            (false, false) => self.runs.insert(i, (uid, uid)),
        }
        true
    }

    pub fn remove(&mut self, uid: u32) -> bool {
        let Ok(i) = self.find(uid) else { return false };
        let (a, b) = self.runs[i];
        match (a == uid, b == uid) {
            (true, true) => {
                self.runs.remove(i);
            }
            (true, false) => self.runs[i].0 = uid + 1,
            (false, true) => self.runs[i].1 = uid - 1,
            (false, false) => {
                self.runs[i].1 = uid - 1;
                self.runs.insert(i + 1, (uid + 1, b));
            }
        }
        true
    }

    /// Every UID, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.runs.iter().flat_map(|&(a, b)| a..=b)
    }

    /// The `n`th UID (0-based), i.e. IMAP message sequence number `n + 1`.
    pub fn nth(&self, mut n: usize) -> Option<u32> {
        for &(a, b) in &self.runs {
            let len = (b - a) as usize + 1;
            if n < len {
                return Some(a + n as u32);
            }
            n -= len;
        }
        None
    }

    /// How many UIDs are below `uid` (its 0-based position if present).
    pub fn rank(&self, uid: u32) -> usize {
        let mut n = 0;
        for &(a, b) in &self.runs {
            if b < uid {
                n += (b - a) as usize + 1;
            } else {
                if a < uid {
                    n += (uid - a) as usize;
                }
                break;
            }
        }
        n
    }
}

impl FromIterator<u32> for UidSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        UidSet::from_runs(iter.into_iter().map(|u| (u, u)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_merge_into_one_run() {
        let set: UidSet = (1..=1000).collect();
        assert_eq!(set.runs(), &[(1, 1000)]);
        assert_eq!(set.len(), 1000);
    }

    #[test]
    fn insert_and_remove_split_and_join_runs() {
        let mut set: UidSet = (1..=10).collect();
        assert!(set.remove(5));
        assert!(!set.remove(5));
        assert_eq!(set.runs(), &[(1, 4), (6, 10)]);
        assert!(set.remove(1) && set.remove(10));
        assert_eq!(set.runs(), &[(2, 4), (6, 9)]);
        assert!(set.insert(5));
        assert_eq!(set.runs(), &[(2, 9)]);
        assert!(set.insert(20) && set.insert(1));
        assert_eq!(set.runs(), &[(1, 9), (20, 20)]);
        assert!(!set.insert(3));
    }

    #[test]
    fn sequence_numbers_map_to_uids_and_back() {
        let set = UidSet::from_runs([(10, 12), (20, 21)]);
        assert_eq!((0..5).map(|n| set.nth(n).unwrap()).collect::<Vec<_>>(), [10, 11, 12, 20, 21]);
        assert_eq!(set.nth(5), None);
        assert_eq!(set.rank(20), 3);
        assert_eq!(set.rank(15), 3);
        assert_eq!(set.rank(1), 0);
        assert!(set.contains(21) && !set.contains(13));
    }

    #[test]
    fn from_runs_normalises_overlaps() {
        let set = UidSet::from_runs([(5, 8), (1, 3), (4, 4), (7, 9)]);
        assert_eq!(set.runs(), &[(1, 9)]);
    }
}
