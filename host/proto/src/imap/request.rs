//! The store operations a session asks its driver for, and their answers.
//! Mailbox names here are UTF-8 with `/` between levels (the session
//! converts modified UTF-7); mailboxes are addressed by the id the driver
//! gave at SELECT.

use super::flags::MessageFlags;
use super::summary::Summary;

/// One store operation for the logged-in account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// SELECT/EXAMINE: the mailbox's state. Answer: [`Answer::Selected`].
    /// A SELECT (not `read_only`) claims the mailbox's new messages as
    /// this session's `\Recent` ones (RFC 3501 2.3.2).
    Select { name: String, read_only: bool },
    /// LIST/LSUB: every mailbox and subscription. Answer: [`Answer::Listed`].
    List,
    /// STATUS. Answer: [`Answer::Status`].
    Status { name: String },
    /// CREATE (RFC 3501 6.3.3; missing parents are created too). Answer: [`Answer::Done`].
    Create { name: String },
    /// DELETE. Answer: [`Answer::Done`].
    Delete { name: String },
    /// RENAME, children included. Answer: [`Answer::Done`].
    Rename { from: String, to: String },
    /// SUBSCRIBE / UNSUBSCRIBE. Answer: [`Answer::Done`].
    Subscribe { name: String, subscribe: bool },
    /// Messages of the selected mailbox, in UID order, those of `uids` that
    /// still exist; `content` says whether their bytes (as a mail client
    /// reads them) are needed, `summary` whether their [`Summary`].
    /// Answer: [`Answer::Messages`]. With `content`, the driver may stop
    /// after any message once the bytes it read pass its memory budget
    /// (always answering at least one): the session asks for the rest.
    Messages { mailbox: u32, uids: Vec<u32>, content: bool, summary: bool },
    /// SEARCH on header fields: the search rows kept for those of `uids`
    /// that have one (see [`super::search_row`]). Answer: [`Answer::SearchRows`].
    SearchRows { mailbox: u32, uids: Vec<u32> },
    /// Keep these messages' search rows (derived data: a failure only
    /// costs the slower path next time). Answer: [`Answer::Done`].
    KeepSearchRows { mailbox: u32, rows: Vec<(u32, Vec<u8>)> },
    /// STORE. Answer: [`Answer::Flags`].
    SetFlags { mailbox: u32, uids: Vec<u32>, change: StoreFlags },
    /// EXPUNGE / UID EXPUNGE / CLOSE: remove these messages. Answer: [`Answer::Expunged`].
    Expunge { mailbox: u32, uids: Vec<u32> },
    /// APPEND. Answer: [`Answer::Appended`].
    Append { name: String, flags: MessageFlags, internal_date: Option<i64>, content: Vec<u8> },
    /// COPY / MOVE into the mailbox named `to`. Answer: [`Answer::Copied`].
    Copy { mailbox: u32, uids: Vec<u32>, to: String, remove: bool },
}

/// How STORE changes flags (RFC 3501 6.4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFlags {
    /// `Some(true)` for +FLAGS, `Some(false)` for -FLAGS, `None` to replace.
    pub add: Option<bool>,
    pub flags: MessageFlags,
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `NO [NONEXISTENT]` (RFC 5530), or `[TRYCREATE]` for APPEND/COPY/MOVE.
    NoSuchMailbox,
    /// `NO [ALREADYEXISTS]`.
    Exists,
    /// Refused as asked (a bad name, deleting INBOX): `NO [CANNOT] text`.
    Cannot(String),
    /// The store failed or is full: `NO [UNAVAILABLE]`; nothing changed.
    Unavailable,
}

/// A mailbox as LIST shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMailbox {
    pub name: String,
    /// An RFC 6154 attribute such as `\Sent`.
    pub special_use: Option<&'static str>,
}

/// STATUS items (RFC 3501 6.3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: u32,
    pub unseen: u32,
    pub uid_next: u32,
    pub uid_validity: u32,
    pub highest_modseq: u64,
    pub size: u64,
    /// Messages no session has claimed as `\Recent` yet.
    pub recent: u32,
}

/// A selected mailbox's state (RFC 3501 6.3.1), from the store's indexes:
/// nothing here is per-message work beyond the UID list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedMailbox {
    pub id: u32,
    pub status: MailboxStatus,
    /// Every message's UID, ascending.
    pub uids: Vec<u32>,
    /// For each flag bit ([`MessageFlags::SEEN`] … [`MessageFlags::DRAFT`],
    /// and [`SelectedMailbox::WITH_KEYWORDS`]), the UIDs having it, as
    /// ascending (first, last) runs.
    pub flagged: Vec<(u32, Vec<(u32, u32)>)>,
    /// The mailbox's keywords (FLAGS and PERMANENTFLAGS).
    pub keywords: Vec<String>,
    /// Messages with this UID or higher are `\Recent` in this session
    /// (RFC 3501 2.3.2: a SELECT claimed them; for EXAMINE, the ones no
    /// session claimed). `u32::MAX`: none.
    pub recent_from: u32,
}

impl SelectedMailbox {
    /// The pseudo-flag "has at least one keyword".
    pub const WITH_KEYWORDS: u32 = 1 << 5;

    /// From every message's flags (tests, and a store without indexes).
    pub fn from_messages(id: u32, status: MailboxStatus, messages: Vec<(u32, MessageFlags)>) -> SelectedMailbox {
        let mut flagged: Vec<(u32, Vec<(u32, u32)>)> = Vec::new();
        let mut keywords: Vec<String> = Vec::new();
        for (uid, flags) in &messages {
            let mut bits = flags.system;
            if !flags.keywords.is_empty() {
                bits |= Self::WITH_KEYWORDS;
            }
            for bit in (0..6).map(|b| 1u32 << b).filter(|b| bits & b != 0) {
                let runs = match flagged.iter_mut().find(|(b, _)| *b == bit) {
                    Some((_, runs)) => runs,
                    None => {
                        flagged.push((bit, Vec::new()));
                        &mut flagged.last_mut().expect("just pushed").1
                    }
                };
                match runs.last_mut() {
                    Some((_, last)) if *last + 1 == *uid => *last = *uid,
                    _ => runs.push((*uid, *uid)),
                }
            }
            for k in &flags.keywords {
                if !keywords.iter().any(|have| have.eq_ignore_ascii_case(k)) {
                    keywords.push(k.clone());
                }
            }
        }
        let uids = messages.into_iter().map(|(uid, _)| uid).collect();
        SelectedMailbox { id, status, uids, flagged, keywords, recent_from: u32::MAX }
    }
}

/// One message's attributes, and its bytes when asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageData {
    pub uid: u32,
    pub flags: MessageFlags,
    /// RFC822.SIZE.
    pub size: u64,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
    pub modseq: u64,
    pub content: Option<Vec<u8>>,
    pub summary: Option<Summary>,
}

/// Search rows of many messages in one buffer (no allocation per message):
/// the row of `ends[i].0` is `data[ends[i - 1].1..ends[i].1]`, UIDs ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchRows {
    pub data: Vec<u8>,
    pub ends: Vec<(u32, u32)>,
}

impl SearchRows {
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

/// What COPY/MOVE did: source UID → new UID (RFC 4315 COPYUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOutcome {
    pub uid_validity: u32,
    pub mapping: Vec<(u32, u32)>,
}

/// The driver's answer to an [`super::ImapEvent::Request`]; the variant
/// named in the request's docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Selected(Result<SelectedMailbox, Failure>),
    Listed(Result<(Vec<ListedMailbox>, Vec<String>), Failure>),
    Status(Result<MailboxStatus, Failure>),
    Done(Result<(), Failure>),
    Messages(Result<Vec<MessageData>, Failure>),
    SearchRows(Result<SearchRows, Failure>),
    /// Each message's flags after the change.
    Flags(Result<Vec<(u32, MessageFlags)>, Failure>),
    /// The UIDs removed, ascending.
    Expunged(Result<Vec<u32>, Failure>),
    /// (UIDVALIDITY, UID) of the new message (RFC 4315 APPENDUID).
    Appended(Result<(u32, u32), Failure>),
    Copied(Result<CopyOutcome, Failure>),
}
