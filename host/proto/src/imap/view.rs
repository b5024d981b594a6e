//! The selected mailbox as the client knows it: sequence numbers, UIDs and
//! flags, and the changes not yet announced (RFC 3501 7.4.1, 5.2).

use super::flags::MessageFlags;
use std::collections::BTreeSet;

/// A change to the selected mailbox made elsewhere (another session, POP3,
/// a delivery), or one the driver found by re-reading the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxChange {
    Appended {
        uid: u32,
    },
    Expunged {
        uids: Vec<u32>,
    },
    Flags {
        uid: u32,
        flags: MessageFlags,
    },
    /// The change feed fell behind: these are all the mailbox's UIDs now.
    Resync {
        uids: Vec<u32>,
    },
}

pub(super) struct View {
    pub id: u32,
    pub read_only: bool,
    /// UID of sequence number n at index n-1, ascending.
    uids: Vec<u32>,
    flags: Vec<MessageFlags>,
    /// UIDs removed elsewhere, still numbered until announced.
    pending_expunge: BTreeSet<u32>,
    /// New messages not yet announced with EXISTS.
    pending_new: BTreeSet<u32>,
    /// Messages whose flags changed elsewhere, to announce with FETCH.
    pending_flags: BTreeSet<u32>,
    /// Highest UID ever seen here: a delivery announced twice is one message.
    max_uid: u32,
}

impl View {
    pub fn new(id: u32, read_only: bool, messages: Vec<(u32, MessageFlags)>) -> View {
        let max_uid = messages.last().map_or(0, |m| m.0);
        let (uids, flags) = messages.into_iter().unzip();
        View {
            id,
            read_only,
            uids,
            flags,
            pending_expunge: BTreeSet::new(),
            pending_new: BTreeSet::new(),
            pending_flags: BTreeSet::new(),
            max_uid,
        }
    }

    pub fn len(&self) -> u32 {
        self.uids.len() as u32
    }

    pub fn uids(&self) -> &[u32] {
        &self.uids
    }

    pub fn last_uid(&self) -> u32 {
        self.uids.last().copied().unwrap_or(0)
    }

    /// 1-based sequence number of a UID.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.uids.binary_search(&uid).ok().map(|i| i as u32 + 1)
    }

    pub fn flags_of(&self, uid: u32) -> Option<&MessageFlags> {
        self.uids.binary_search(&uid).ok().map(|i| &self.flags[i])
    }

    pub fn set_flags(&mut self, uid: u32, flags: MessageFlags) {
        if let Ok(i) = self.uids.binary_search(&uid) {
            self.flags[i] = flags;
            self.pending_flags.remove(&uid);
        }
    }

    pub fn first_unseen(&self) -> Option<u32> {
        self.flags.iter().position(|f| !f.has(MessageFlags::SEEN)).map(|i| i as u32 + 1)
    }

    /// Every keyword in use, for the FLAGS response.
    pub fn keywords(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in &self.flags {
            for k in &f.keywords {
                if !out.iter().any(|o| o.eq_ignore_ascii_case(k)) {
                    out.push(k.clone());
                }
            }
        }
        out
    }

    /// Records a change; nothing is announced yet. Applying a change twice,
    /// or one the session made itself, changes nothing.
    pub fn note(&mut self, change: MailboxChange) {
        match change {
            MailboxChange::Appended { uid } => {
                if uid > self.max_uid {
                    self.max_uid = uid;
                    self.pending_new.insert(uid);
                }
            }
            MailboxChange::Expunged { uids } => {
                for uid in uids {
                    if !self.pending_new.remove(&uid) && self.seq_of(uid).is_some() {
                        self.pending_expunge.insert(uid);
                    }
                }
            }
            MailboxChange::Flags { uid, flags } => {
                if let Ok(i) = self.uids.binary_search(&uid)
                    && self.flags[i] != flags
                {
                    self.flags[i] = flags;
                    self.pending_flags.insert(uid);
                }
            }
            MailboxChange::Resync { uids } => {
                let now: BTreeSet<u32> = uids.iter().copied().collect();
                for &uid in &self.uids {
                    if !now.contains(&uid) {
                        self.pending_expunge.insert(uid);
                    }
                }
                self.pending_new.retain(|u| now.contains(u));
                for uid in uids {
                    if uid > self.max_uid {
                        self.max_uid = uid;
                        self.pending_new.insert(uid);
                    }
                }
            }
        }
    }

    /// Removes a message the session itself expunged; its sequence number.
    pub fn remove(&mut self, uid: u32) -> Option<u32> {
        let i = self.uids.binary_search(&uid).ok()?;
        self.uids.remove(i);
        self.flags.remove(i);
        self.pending_expunge.remove(&uid);
        self.pending_flags.remove(&uid);
        Some(i as u32 + 1)
    }

    /// Writes the pending untagged responses: EXPUNGE (when allowed), then
    /// EXISTS, then FETCH FLAGS (with UID when `with_uid`).
    pub fn announce(&mut self, out: &mut Vec<u8>, expunge_allowed: bool, with_uid: bool) {
        if expunge_allowed {
            for uid in std::mem::take(&mut self.pending_expunge) {
                if let Some(seq) = self.remove(uid) {
                    out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
                }
            }
        }
        if !self.pending_new.is_empty() {
            for uid in std::mem::take(&mut self.pending_new) {
                self.uids.push(uid);
                // New mail carries its flags with it; most arrive unflagged,
                // and a FETCH shows the truth.
                self.flags.push(MessageFlags::default());
            }
            out.extend_from_slice(format!("* {} EXISTS\r\n", self.uids.len()).as_bytes());
        }
        for uid in std::mem::take(&mut self.pending_flags) {
            let (Some(seq), Some(flags)) = (self.seq_of(uid), self.flags_of(uid)) else { continue };
            out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
            if with_uid {
                out.extend_from_slice(format!("UID {uid} ").as_bytes());
            }
            out.extend_from_slice(b"FLAGS ");
            flags.write_list(out);
            out.extend_from_slice(b")\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> View {
        View::new(0, false, (1..=3).map(|u| (u * 10, MessageFlags::default())).collect())
    }

    fn announce(v: &mut View, expunge: bool) -> String {
        let mut out = Vec::new();
        v.announce(&mut out, expunge, false);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn expunge_renumbers_as_it_goes_rfc3501_7_4_1() {
        let mut v = view();
        v.note(MailboxChange::Expunged { uids: vec![10, 20] });
        // Each EXPUNGE renumbers the messages after it: 10 is 1, then 20 is 1.
        assert_eq!(announce(&mut v, true), "* 1 EXPUNGE\r\n* 1 EXPUNGE\r\n");
        assert_eq!(v.uids(), &[30]);
    }

    #[test]
    fn expunge_is_held_back_when_not_allowed_rfc3501_7_4_1() {
        let mut v = view();
        v.note(MailboxChange::Expunged { uids: vec![20] });
        v.note(MailboxChange::Appended { uid: 40 });
        assert_eq!(announce(&mut v, false), "* 4 EXISTS\r\n");
        assert_eq!(announce(&mut v, true), "* 2 EXPUNGE\r\n");
        assert_eq!(v.uids(), &[10, 30, 40]);
    }

    #[test]
    fn repeated_and_own_changes_are_announced_once() {
        let mut v = view();
        v.note(MailboxChange::Appended { uid: 40 });
        v.note(MailboxChange::Appended { uid: 40 });
        v.note(MailboxChange::Appended { uid: 30 });
        assert_eq!(announce(&mut v, true), "* 4 EXISTS\r\n");
        v.remove(10);
        v.note(MailboxChange::Expunged { uids: vec![10] });
        v.note(MailboxChange::Flags { uid: 20, flags: MessageFlags::default() });
        assert_eq!(announce(&mut v, true), "");
        v.note(MailboxChange::Flags { uid: 20, flags: MessageFlags::system(MessageFlags::SEEN) });
        assert_eq!(announce(&mut v, true), "* 1 FETCH (FLAGS (\\Seen))\r\n");
    }

    #[test]
    fn resync_finds_what_the_feed_missed() {
        let mut v = view();
        v.note(MailboxChange::Resync { uids: vec![10, 30, 50] });
        assert_eq!(announce(&mut v, true), "* 2 EXPUNGE\r\n* 3 EXISTS\r\n");
    }
}
