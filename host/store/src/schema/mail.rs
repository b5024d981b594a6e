//! Mailboxes and the messages in them (RFC 3501 2.3 message attributes).

use super::queue::QueueEntry;
use super::uidset::UidSet;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The mailbox every account has; its id is always [`INBOX_ID`], so a
/// delivery never needs a name look-up. Its name is case-insensitive (RFC
/// 3501 5.1); the store keeps it as exactly `INBOX`.
pub const INBOX: &str = "INBOX";
pub const INBOX_ID: u32 = 0;
/// The hierarchy separator of mailbox names in the store ("Archive/2024").
/// RENAME moves children along it (RFC 3501 6.3.5).
pub const HIERARCHY_SEPARATOR: char = '/';

/// The RFC 3501 system flags, as bits. Keywords are kept beside them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Flags(pub u32);

impl Flags {
    pub const SEEN: Flags = Flags(1);
    pub const ANSWERED: Flags = Flags(1 << 1);
    pub const FLAGGED: Flags = Flags(1 << 2);
    pub const DELETED: Flags = Flags(1 << 3);
    pub const DRAFT: Flags = Flags(1 << 4);
    /// Every flag the store knows; other bits are dropped on write.
    pub const ALL: Flags = Flags(0b1_1111);
    /// How many system flags there are (bits 0 to COUNT - 1).
    pub const COUNT: usize = 5;

    pub const fn empty() -> Flags {
        Flags(0)
    }

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub const fn difference(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    pub const fn known(self) -> Flags {
        Flags(self.0 & Flags::ALL.0)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

/// Which messages of a mailbox carry which flags, kept exact by every
/// write so IMAP SELECT (FLAGS, UNSEEN) and a session's view of the flags
/// cost a few reads whatever the mailbox's size, never a scan of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagIndex {
    /// The UIDs having each system flag, in bit order of [`Flags`]
    /// (`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`).
    pub system: [UidSet; Flags::COUNT],
    /// The UIDs having at least one keyword.
    pub with_keywords: UidSet,
    /// Every keyword in use in the mailbox (a backend may keep ones no
    /// message has any more, as Dovecot does), compared case-insensitively.
    pub keywords: Vec<String>,
}

impl FlagIndex {
    /// Built from entries: what a backend without an index of its own answers.
    pub fn from_entries(entries: &[MailEntry]) -> FlagIndex {
        let mut index = FlagIndex::default();
        for e in entries {
            for (bit, set) in index.system.iter_mut().enumerate() {
                if e.flags.0 & (1 << bit) != 0 {
                    set.insert(e.uid);
                }
            }
            if !e.keywords.is_empty() {
                index.with_keywords.insert(e.uid);
            }
            for k in &e.keywords {
                if !index.keywords.iter().any(|have| have.eq_ignore_ascii_case(k)) {
                    index.keywords.push(k.clone());
                }
            }
        }
        index
    }
}

/// RFC 6154 special-use attributes the store knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpecialUse {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
}

impl SpecialUse {
    /// The attribute as IMAP LIST shows it.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    /// The folders every new account gets besides INBOX, in id order
    /// (ids 1..=4). Clients (Thunderbird, Apple Mail) find them by attribute.
    pub const DEFAULT_FOLDERS: [(&'static str, SpecialUse); 4] = [
        ("Sent", SpecialUse::Sent),
        ("Drafts", SpecialUse::Drafts),
        ("Trash", SpecialUse::Trash),
        ("Junk", SpecialUse::Junk),
    ];
}

/// A mailbox as IMAP SELECT sees it: its record, its UIDs and its flag
/// index, read together ([`crate::contract::Mailboxes::mailbox_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxState {
    pub info: MailboxInfo,
    pub uids: crate::schema::UidSet,
    pub flags: FlagIndex,
}

/// Search rows of many messages in one buffer: each message's row is
/// `data[previous end..end]`, in UID order. What a row holds is the
/// caller's business (IMAP: the header fields SEARCH compares most).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchRows {
    pub data: Vec<u8>,
    /// (uid, end of its row in `data`), ascending by UID.
    pub ends: Vec<(u32, u32)>,
}

impl SearchRows {
    pub fn push(&mut self, uid: u32, row: &[u8]) {
        self.data.extend_from_slice(row);
        self.ends.push((uid, self.data.len() as u32));
    }

    /// Each (uid, row), in UID order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u8])> {
        let mut start = 0usize;
        self.ends.iter().map(move |&(uid, end)| {
            let row = self.data.get(start..end as usize).unwrap_or_default();
            start = end as usize;
            (uid, row)
        })
    }
}

/// One mailbox of an account, with the counters IMAP SELECT/STATUS report,
/// kept up to date by every write so they cost one read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxInfo {
    /// Unique within the account, never reused; INBOX is [`INBOX_ID`].
    pub id: u32,
    /// UTF-8, hierarchy separated by [`HIERARCHY_SEPARATOR`].
    pub name: String,
    pub special_use: Option<SpecialUse>,
    /// Filled on read from the account's subscriptions (RFC 3501 6.3.6
    /// lets a name be subscribed whether or not it exists).
    pub subscribed: bool,
    /// Changes whenever UIDs of this name could repeat (a new incarnation):
    /// RFC 3501 2.3.1.1.
    pub uid_validity: u32,
    /// The UID the next message will get; UIDs strictly ascend and are
    /// never reused within one `uid_validity`.
    pub uid_next: u32,
    /// The highest modification sequence of any change in the mailbox (RFC
    /// 7162): every append, flag change and expunge takes a new, higher one.
    pub highest_modseq: u64,
    pub messages: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// Sum of the messages' sizes (octets as read back).
    pub bytes: u64,
}

/// One message in one mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailEntry {
    pub uid: u32,
    /// The stored content, shared by every copy of the message.
    pub content: u64,
    /// Octets as read back: the `Return-Path:` line (when there is one)
    /// plus the content (IMAP RFC822.SIZE, POP3 LIST).
    pub size: u64,
    pub flags: Flags,
    /// IMAP keywords (user flags), in the order they were set.
    pub keywords: Vec<String>,
    /// Unix seconds (IMAP INTERNALDATE): delivery time, or APPEND's date.
    pub internal_date: u64,
    /// The modification sequence of the last change to this message.
    pub modseq: u64,
    /// The envelope sender of a delivered message, written as the first
    /// header line on read (RFC 5321 4.4: `Return-Path: <…>`; "" is the null
    /// sender). `None` for a message that was APPENDed: read back as stored.
    pub return_path: Option<String>,
}

impl MailEntry {
    /// The line written before the content on read ("" when none).
    pub fn return_path_line(&self) -> String {
        return_path_line(self.return_path.as_deref())
    }
}

/// The `Return-Path:` line for an envelope sender ("" without one).
pub fn return_path_line(return_path: Option<&str>) -> String {
    match return_path {
        Some(sender) => format!("Return-Path: <{sender}>\r\n"),
        None => String::new(),
    }
}

/// Where a delivery files a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Filing {
    pub account: u64,
    pub mailbox: u32,
}

impl Filing {
    pub fn inbox(account: u64) -> Filing {
        Filing { account, mailbox: INBOX_ID }
    }
}

/// A filing that happened: where, and the UID the message got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filed {
    pub account: u64,
    pub mailbox: u32,
    pub uid: u32,
}

/// A message to accept in one atomic, durable step: its content stored
/// once, filed into local mailboxes, and queued for everyone else.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The content's id, from `Contents::new_id`: taken before acceptance so
    /// it can appear in the Received header and every log line.
    pub id: u64,
    /// The content as received, with our trace headers prepended.
    pub content: Bytes,
    /// The envelope sender ("" for `<>`), written as `Return-Path:` on read
    /// of each mailbox copy (never into the queued content).
    pub return_path: String,
    /// Where to file a copy now (local recipients).
    pub local: Vec<Filing>,
    /// Recipients left for the queue (remote, or to retry).
    pub queue: Option<QueueEntry>,
    /// Opaque bytes the caller computed from the content (IMAP: ENVELOPE,
    /// BODYSTRUCTURE, searchable headers), readable without the content.
    pub summary: Option<Bytes>,
    /// Decision-trace records of the transaction (`contract::Traces`),
    /// written by the same commit as the message.
    pub traces: Vec<crate::schema::TraceWrite>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The content's id, shared by all references (the message id in logs).
    pub content: u64,
    /// One per filing, in the order of `Incoming::local`.
    pub filed: Vec<Filed>,
    pub queued: Option<u64>,
}

/// IMAP APPEND (RFC 3501 6.3.11): a message stored as given.
#[derive(Debug, Clone)]
pub struct Append {
    pub content: Bytes,
    pub flags: Flags,
    pub keywords: Vec<String>,
    /// Unix seconds; APPEND's date-time argument, or now.
    pub internal_date: u64,
    pub summary: Option<Bytes>,
}

/// What APPEND reports (RFC 4315 APPENDUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub uid_validity: u32,
    pub uid: u32,
    pub modseq: u64,
}

/// How STORE changes flags (RFC 3501 6.4.6: FLAGS, +FLAGS, -FLAGS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

/// A STORE: how to change the flags and keywords of a set of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    pub op: FlagOp,
    pub flags: Flags,
    pub keywords: Vec<String>,
    /// RFC 7162 UNCHANGEDSINCE: leave messages with a higher modseq alone.
    pub unchanged_since: Option<u64>,
}

impl FlagChange {
    pub fn new(op: FlagOp, flags: Flags) -> FlagChange {
        FlagChange { op, flags, keywords: Vec::new(), unchanged_since: None }
    }
}

/// One message's flags after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagUpdate {
    pub uid: u32,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub modseq: u64,
}

/// What COPY or MOVE did (RFC 4315 COPYUID): source UID → new UID in the
/// target, in source UID order. Source UIDs that no longer exist are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    pub uid_validity: u32,
    pub mapping: Vec<(u32, u32)>,
}

/// A change to an account's mailboxes, announced to every subscriber of the
/// account once it is durable (IMAP IDLE/NOOP: EXISTS, EXPUNGE, FETCH).
/// Serializable: a shared backend sends changes to the other nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub mailbox: u32,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// A new message (delivery, APPEND, COPY, MOVE).
    Appended { uid: u32, modseq: u64 },
    /// Messages removed (EXPUNGE, MOVE, POP3 DELE+QUIT).
    Expunged { uids: Vec<u32>, modseq: u64 },
    /// A message's flags or keywords changed.
    Flags(FlagUpdate),
    /// A mailbox was created, deleted, renamed or (un)subscribed.
    Mailboxes,
}

/// Checks a mailbox name and returns it as every backend keeps it: INBOX
/// (any case, also as the first level) as `INBOX`. Refused
/// ([`crate::StoreError::MailboxRefused`]): empty, too long, control
/// characters, an empty, `.` or `..` level.
pub fn canonical_mailbox_name(name: &str) -> crate::Result<String> {
    let refuse = |why: &str| Err(crate::StoreError::MailboxRefused(format!("{why}: {name:?}")));
    if name.is_empty() {
        return refuse("empty mailbox name");
    }
    if name.len() > 1000 {
        return refuse("mailbox name too long");
    }
    if name.chars().any(|c| c.is_control()) {
        return refuse("control character in mailbox name");
    }
    let levels: Vec<&str> = name.split(HIERARCHY_SEPARATOR).collect();
    if levels.iter().any(|l| l.is_empty() || *l == "." || *l == "..") {
        return refuse("empty, \".\" or \"..\" level in mailbox name");
    }
    if levels[0].eq_ignore_ascii_case(INBOX) {
        let mut out = INBOX.to_string();
        for l in &levels[1..] {
            out.push(HIERARCHY_SEPARATOR);
            out.push_str(l);
        }
        return Ok(out);
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn names_are_checked_and_inbox_is_canonical() {
        assert_eq!(canonical_mailbox_name("inbox").unwrap(), "INBOX");
        assert_eq!(canonical_mailbox_name("Inbox/Sub").unwrap(), "INBOX/Sub");
        assert_eq!(canonical_mailbox_name("Archive/2024").unwrap(), "Archive/2024");
        assert_eq!(canonical_mailbox_name("Entwürfe").unwrap(), "Entwürfe");
        for bad in ["", "/a", "a/", "a//b", "a/../b", "..", ".", "a\nb", "a\0b"] {
            assert!(
                matches!(canonical_mailbox_name(bad), Err(crate::StoreError::MailboxRefused(_))),
                "{bad:?} accepted"
            );
        }
    }
}
