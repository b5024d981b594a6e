//! Every record the store keeps, shared by all backends: what a caller
//! writes and reads back. Backends choose their own layout for them (the
//! embedded backend's keys are in `embedded::keys`); these types are the
//! contract between the server and any backend.
//!
//! Records are serialised with bincode by the embedded backend, so a change
//! to any field order or type is a schema change: bump [`SCHEMA_VERSION`]
//! and add a migration (`embedded::migrate`).
//!
//! # Areas
//! - [`account`]: who has mailboxes here
//! - [`mail`]: mailboxes, the messages in them, flags, what a delivery files
//! - [`queue`]: messages waiting for (re)delivery, with leases
//! - [`uidset`]: compact sets of UIDs (a mailbox's UID list in one read)
//! - [`trace`]: the decision-trace records a change carries (opaque bytes)

pub mod account;
pub mod mail;
pub mod queue;
pub mod trace;
pub mod uidset;

pub use account::{Account, normalize_address};
pub use mail::{
    Accepted, Append, Appended, Change, ChangeKind, CopyResult, Filed, Filing, FlagChange, FlagIndex, FlagOp,
    FlagUpdate, Flags, HIERARCHY_SEPARATOR, INBOX, INBOX_ID, Incoming, MailEntry, MailboxInfo, MailboxState,
    SearchRows, SpecialUse, canonical_mailbox_name,
};
pub use queue::{Committed, Lease, QueueEntry, QueueRecipient, QueuedRoute, RecipientState, StoredReply};
pub use trace::TraceWrite;
pub use uidset::UidSet;

/// Version 1: the first sled layout (INBOX only, no modseq, messages with
/// bodies in sled). Version 2: folders with special-use and subscriptions,
/// per-mailbox counters and UID sets, modseq, message summaries, typed queue
/// replies and leases. Version 3: a per-mailbox flag index (which messages
/// carry which flag, the mailbox's keywords) so SELECT never scans messages.
/// Version 4: new bodies in segment files, sled keeping where they are
/// (bodies stored before stay in sled until deleted; a version 3 binary
/// would not find the new ones, so it must refuse the store).
pub const SCHEMA_VERSION: u32 = 5;

/// Current time as Unix seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Queue and message ids as operators see them: 16 lowercase hex digits.
pub fn format_id(id: u64) -> String {
    format!("{id:016x}")
}

pub fn parse_id(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim(), 16).ok()
}
