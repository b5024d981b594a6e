//! The selected mailbox as the client knows it: sequence numbers, UIDs and
//! flags, and the changes not yet announced (RFC 3501 7.4.1, 5.2).

use super::flags::MessageFlags;
use super::request::SelectedMailbox;
use std::collections::{BTreeSet, HashMap};

/// A change to the selected mailbox made elsewhere (another session, POP3,
/// a delivery), or one the driver found by re-reading the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxChange {
    Appended {
        uid: u32,
        /// This session is the first to hear of it: it is `\Recent` here
        /// (RFC 3501 2.3.2; the driver decides, across sessions).
        recent: bool,
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
    /// Each message's system flag bits (and [`WITH_KEYWORDS`]), index as
    /// `uids`: one byte a message, so a million-message mailbox's view is
    /// built from the store's flag index in milliseconds.
    bits: Vec<u8>,
    /// The keywords of messages that have some, where the session has
    /// learned them (its own STORE, another session's change).
    keywords: HashMap<u32, Vec<String>>,
    /// The mailbox's keywords, for FLAGS.
    mailbox_keywords: Vec<String>,
    /// How many of them the client has heard of (FLAGS at SELECT, or since).
    keywords_announced: usize,
    /// UIDs removed elsewhere, still numbered until announced.
    pending_expunge: BTreeSet<u32>,
    /// New messages not yet announced with EXISTS.
    pending_new: BTreeSet<u32>,
    /// Messages whose flags changed elsewhere, to announce with FETCH.
    pending_flags: BTreeSet<u32>,
    /// Highest UID ever seen here: a delivery announced twice is one message.
    max_uid: u32,
    /// Messages from this UID to the last one at SELECT are `\Recent` here
    /// (RFC 3501 2.3.2) ...
    recent_from: u32,
    recent_last: u32,
    /// ... and these, claimed since SELECT.
    recent_new: BTreeSet<u32>,
}

/// The bit of [`View::bits`] saying "has at least one keyword".
const WITH_KEYWORDS: u8 = SelectedMailbox::WITH_KEYWORDS as u8;

fn bits_of(flags: &MessageFlags) -> u8 {
    (flags.system & 0x1f) as u8 | if flags.keywords.is_empty() { 0 } else { WITH_KEYWORDS }
}

/// The system flags and `keywords`, for FLAGS and PERMANENTFLAGS.
pub(super) fn flag_list(keywords: &[String]) -> String {
    let mut flags = String::from("\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    for k in keywords {
        flags.push(' ');
        flags.push_str(k);
    }
    flags
}

impl View {
    pub fn new(read_only: bool, mailbox: SelectedMailbox) -> View {
        let SelectedMailbox { id, uids, flagged, keywords, recent_from, .. } = mailbox;
        let max_uid = uids.last().copied().unwrap_or(0);
        let mut bits = vec![0u8; uids.len()];
        for (bit, runs) in flagged {
            let Ok(bit) = u8::try_from(bit) else { continue };
            for (first, last) in runs {
                let mut i = uids.partition_point(|&u| u < first);
                while i < uids.len() && uids[i] <= last {
                    bits[i] |= bit;
                    i += 1;
                }
            }
        }
        View {
            id,
            read_only,
            uids,
            bits,
            keywords: HashMap::new(),
            keywords_announced: keywords.len(),
            mailbox_keywords: keywords,
            pending_expunge: BTreeSet::new(),
            pending_new: BTreeSet::new(),
            pending_flags: BTreeSet::new(),
            max_uid,
            recent_from,
            recent_last: max_uid,
            recent_new: BTreeSet::new(),
        }
    }

    /// Whether the message is `\Recent` in this session (RFC 3501 2.3.2).
    pub fn is_recent(&self, uid: u32) -> bool {
        (self.recent_from..=self.recent_last).contains(&uid) || self.recent_new.contains(&uid)
    }

    /// How many of the announced messages are `\Recent` here (the RECENT
    /// response, RFC 3501 7.3.2).
    pub fn recent_count(&self) -> u32 {
        let at_select = self
            .uids
            .partition_point(|&u| u <= self.recent_last)
            .saturating_sub(self.uids.partition_point(|&u| u < self.recent_from));
        let since = self.recent_new.iter().filter(|&&u| self.seq_of(u).is_some()).count();
        (at_select + since) as u32
    }

    /// `flags` as this session shows them: with `\Recent` when it is.
    pub fn shown(&self, uid: u32, mut flags: MessageFlags) -> MessageFlags {
        if self.is_recent(uid) {
            flags.system |= MessageFlags::RECENT;
        }
        flags
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

    /// Whether the message has system flag `bit` (as the session knows).
    pub fn has_flag(&self, uid: u32, bit: u32) -> Option<bool> {
        let i = self.uids.binary_search(&uid).ok()?;
        if bit == MessageFlags::RECENT {
            return Some(self.is_recent(uid));
        }
        Some(u32::from(self.bits[i]) & bit == bit)
    }

    /// The message's flags; keywords only where the session learned them.
    pub fn flags_of(&self, uid: u32) -> Option<MessageFlags> {
        let i = self.uids.binary_search(&uid).ok()?;
        Some(MessageFlags {
            system: u32::from(self.bits[i] & !WITH_KEYWORDS),
            keywords: self.keywords.get(&uid).cloned().unwrap_or_default(),
        })
    }

    /// Records flags the session itself set (its STORE's answer).
    pub fn set_flags(&mut self, uid: u32, flags: MessageFlags) {
        if let Ok(i) = self.uids.binary_search(&uid) {
            self.learn(i, uid, flags);
            self.pending_flags.remove(&uid);
        }
    }

    fn learn(&mut self, i: usize, uid: u32, flags: MessageFlags) {
        self.bits[i] = bits_of(&flags);
        for k in &flags.keywords {
            if !self.mailbox_keywords.iter().any(|have| have.eq_ignore_ascii_case(k)) {
                self.mailbox_keywords.push(k.clone());
            }
        }
        match flags.keywords.is_empty() {
            true => self.keywords.remove(&uid),
            false => self.keywords.insert(uid, flags.keywords),
        };
    }

    /// Whether `flags` differ from what the session knows of message `i`;
    /// keywords it never learned count as different.
    fn differs(&self, i: usize, uid: u32, flags: &MessageFlags) -> bool {
        if self.bits[i] != bits_of(flags) {
            return true;
        }
        match self.keywords.get(&uid) {
            Some(known) => known != &flags.keywords,
            None => !flags.keywords.is_empty(),
        }
    }

    pub fn first_unseen(&self) -> Option<u32> {
        self.bits.iter().position(|b| u32::from(*b) & MessageFlags::SEEN == 0).map(|i| i as u32 + 1)
    }

    /// The mailbox's keywords, for the FLAGS response.
    pub fn keywords(&self) -> &[String] {
        &self.mailbox_keywords
    }

    /// FLAGS and PERMANENTFLAGS again when a keyword new to the client
    /// came into use (RFC 3501 7.2.6), as Dovecot sends them.
    pub fn announce_keywords(&mut self, out: &mut Vec<u8>) {
        if self.keywords_announced == self.mailbox_keywords.len() {
            return;
        }
        self.keywords_announced = self.mailbox_keywords.len();
        let flags = flag_list(&self.mailbox_keywords);
        out.extend_from_slice(format!("* FLAGS ({flags})\r\n").as_bytes());
        if !self.read_only {
            out.extend_from_slice(format!("* OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted\r\n").as_bytes());
        }
    }

    /// Records a change; nothing is announced yet. Applying a change twice,
    /// or one the session made itself, changes nothing.
    pub fn note(&mut self, change: MailboxChange) {
        match change {
            MailboxChange::Appended { uid, recent } => {
                if uid > self.max_uid {
                    self.max_uid = uid;
                    self.pending_new.insert(uid);
                    if recent {
                        self.recent_new.insert(uid);
                    }
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
                    && self.differs(i, uid, &flags)
                {
                    self.learn(i, uid, flags);
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
        self.bits.remove(i);
        self.keywords.remove(&uid);
        self.recent_new.remove(&uid);
        self.pending_expunge.remove(&uid);
        self.pending_flags.remove(&uid);
        Some(i as u32 + 1)
    }

    /// Writes the pending untagged responses: EXPUNGE (when allowed), then
    /// EXISTS, then FETCH FLAGS (with UID when `with_uid`).
    pub fn announce(&mut self, out: &mut Vec<u8>, expunge_allowed: bool, with_uid: bool) {
        self.announce_keywords(out);
        if expunge_allowed {
            for uid in std::mem::take(&mut self.pending_expunge) {
                if let Some(seq) = self.remove(uid) {
                    out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
                }
            }
        }
        if !self.pending_new.is_empty() {
            let mut recent = false;
            for uid in std::mem::take(&mut self.pending_new) {
                recent |= self.is_recent(uid);
                self.uids.push(uid);
                // New mail carries its flags with it; most arrive unflagged,
                // and a FETCH shows the truth.
                self.bits.push(0);
            }
            out.extend_from_slice(format!("* {} EXISTS\r\n", self.uids.len()).as_bytes());
            // RFC 3501 7.3.2: the new number of \Recent messages, when new
            // mail raised it (after EXISTS, as Dovecot sends it).
            if recent {
                out.extend_from_slice(format!("* {} RECENT\r\n", self.recent_count()).as_bytes());
            }
        }
        for uid in std::mem::take(&mut self.pending_flags) {
            let (Some(seq), Some(flags)) = (self.seq_of(uid), self.flags_of(uid)) else { continue };
            let flags = self.shown(uid, flags);
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
        let status = super::super::request::MailboxStatus {
            messages: 3,
            unseen: 3,
            uid_next: 31,
            uid_validity: 1,
            highest_modseq: 1,
            size: 0,
            recent: 0,
        };
        let messages = (1..=3).map(|u| (u * 10, MessageFlags::default())).collect();
        View::new(false, SelectedMailbox::from_messages(0, status, messages))
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
        v.note(MailboxChange::Appended { uid: 40, recent: false });
        assert_eq!(announce(&mut v, false), "* 4 EXISTS\r\n");
        assert_eq!(announce(&mut v, true), "* 2 EXPUNGE\r\n");
        assert_eq!(v.uids(), &[10, 30, 40]);
    }

    #[test]
    fn repeated_and_own_changes_are_announced_once() {
        let mut v = view();
        v.note(MailboxChange::Appended { uid: 40, recent: false });
        v.note(MailboxChange::Appended { uid: 40, recent: false });
        v.note(MailboxChange::Appended { uid: 30, recent: false });
        assert_eq!(announce(&mut v, true), "* 4 EXISTS\r\n");
        v.remove(10);
        v.note(MailboxChange::Expunged { uids: vec![10] });
        v.note(MailboxChange::Flags { uid: 20, flags: MessageFlags::default() });
        assert_eq!(announce(&mut v, true), "");
        v.note(MailboxChange::Flags { uid: 20, flags: MessageFlags::system(MessageFlags::SEEN) });
        assert_eq!(announce(&mut v, true), "* 1 FETCH (FLAGS (\\Seen))\r\n");
    }

    #[test]
    fn flags_come_from_the_index_runs_rfc3501_6_3_1() {
        let status = super::super::request::MailboxStatus {
            messages: 5,
            unseen: 2,
            uid_next: 60,
            uid_validity: 1,
            highest_modseq: 1,
            size: 0,
            recent: 0,
        };
        let mailbox = SelectedMailbox {
            id: 0,
            status,
            uids: vec![10, 20, 30, 40, 50],
            flagged: vec![
                (MessageFlags::SEEN, vec![(1, 20), (35, 45)]),
                (MessageFlags::DELETED, vec![(50, 99)]),
                (SelectedMailbox::WITH_KEYWORDS, vec![(20, 20)]),
            ],
            keywords: vec!["$Junk".into()],
            recent_from: u32::MAX,
        };
        let mut v = View::new(false, mailbox);
        assert_eq!(v.first_unseen(), Some(3));
        assert_eq!(v.has_flag(40, MessageFlags::SEEN), Some(true));
        assert_eq!(v.flags_of(50), Some(MessageFlags::system(MessageFlags::DELETED)));
        assert_eq!(v.keywords(), ["$Junk".to_string()]);
        // 20 has keywords the session never learned: any news of it is
        // announced; 10 has none, so the same flags again are no news.
        v.note(MailboxChange::Flags { uid: 10, flags: MessageFlags::system(MessageFlags::SEEN) });
        v.note(MailboxChange::Flags { uid: 20, flags: MessageFlags::system(MessageFlags::SEEN) });
        assert_eq!(announce(&mut v, true), "* 2 FETCH (FLAGS (\\Seen))\r\n");
        let mut kw = MessageFlags::system(MessageFlags::SEEN);
        kw.keywords.push("Later".into());
        v.set_flags(30, kw.clone());
        v.note(MailboxChange::Flags { uid: 30, flags: kw });
        assert_eq!(
            announce(&mut v, true),
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk Later)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk Later \\*)] Flags permitted\r\n",
            "the session's own change is known; the new keyword is news (RFC 3501 7.2.6)"
        );
        assert_eq!(v.keywords(), ["$Junk".to_string(), "Later".to_string()]);
    }

    #[test]
    fn resync_finds_what_the_feed_missed() {
        let mut v = view();
        v.note(MailboxChange::Resync { uids: vec![10, 30, 50] });
        assert_eq!(announce(&mut v, true), "* 2 EXPUNGE\r\n* 3 EXISTS\r\n");
    }
}
