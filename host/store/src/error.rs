//! The one error type of the store, shared by every backend.

/// Errors a caller can branch on. Every backend maps its own failures onto
/// these, so the server decides replies (452, 451, 550 …) without knowing
/// which backend it runs on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The disk refused a read or write (full, I/O error). Temporary for a
    /// client: 452 4.3.1 when [`StoreError::is_out_of_space`], else 451.
    #[error("storage I/O error: {0}")]
    Io(#[source] std::io::Error),
    /// The store cannot serve right now (recovering after an I/O error, or
    /// a database that is unreachable); retrying later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored bytes that do not decode: never expected; reported, not hidden.
    #[error("corrupt record in {area}: {detail}")]
    Corrupt { area: &'static str, detail: String },
    #[error("the store at {path} is in use by another ferrymail process")]
    Locked { path: String },
    #[error("store schema version {found} is newer than this ferrymail supports ({supported})")]
    SchemaVersion { found: u32, supported: u32 },
    #[error("account {0} already exists")]
    AccountExists(String),
    #[error("no such account: {0}")]
    NoSuchAccount(String),
    #[error("no such mailbox: {0}")]
    NoSuchMailbox(String),
    #[error("mailbox {0} already exists")]
    MailboxExists(String),
    /// A mailbox operation the rules forbid (deleting INBOX, an invalid
    /// name, renaming a mailbox into its own child); the text says which.
    #[error("mailbox operation refused: {0}")]
    MailboxRefused(String),
    #[error("no such queue entry: {0}")]
    NoSuchQueueEntry(String),
    /// The queue entry is leased by another owner (another node delivers it).
    #[error("queue entry {0} is leased by another owner")]
    LeaseLost(String),
    /// `kv_incr` on a value that is not an 8-byte counter.
    #[error("not a counter")]
    NotACounter,
    /// A message or content id the store does not hold.
    #[error("no such message: {0}")]
    NoSuchMessage(String),
}

/// One failed group commit fails many callers, each with its own copy.
impl Clone for StoreError {
    fn clone(&self) -> Self {
        use StoreError::*;
        match self {
            Io(e) => Io(match e.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::new(e.kind(), e.to_string()),
            }),
            Unavailable(s) => Unavailable(s.clone()),
            Corrupt { area, detail } => Corrupt { area, detail: detail.clone() },
            Locked { path } => Locked { path: path.clone() },
            SchemaVersion { found, supported } => SchemaVersion { found: *found, supported: *supported },
            AccountExists(s) => AccountExists(s.clone()),
            NoSuchAccount(s) => NoSuchAccount(s.clone()),
            NoSuchMailbox(s) => NoSuchMailbox(s.clone()),
            MailboxExists(s) => MailboxExists(s.clone()),
            MailboxRefused(s) => MailboxRefused(s.clone()),
            NoSuchQueueEntry(s) => NoSuchQueueEntry(s.clone()),
            LeaseLost(s) => LeaseLost(s.clone()),
            NotACounter => NotACounter,
            NoSuchMessage(s) => NoSuchMessage(s.clone()),
        }
    }
}

impl StoreError {
    pub fn io(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }

    /// The disk (or the reserve the store keeps free) is full: SMTP answers
    /// 452 4.3.1 (RFC 5321 4.2.5, RFC 3463 4.3.1).
    pub fn is_out_of_space(&self) -> bool {
        match self {
            StoreError::Io(e) => {
                e.raw_os_error() == Some(28 /* ENOSPC */)
                    || e.raw_os_error() == Some(122 /* EDQUOT */)
                    || e.kind() == std::io::ErrorKind::StorageFull
                    || e.kind() == std::io::ErrorKind::QuotaExceeded
            }
            _ => false,
        }
    }

    /// Worth retrying later (a 4xx for a client), as opposed to a refusal
    /// that will not change (no such account, mailbox exists …).
    pub fn is_temporary(&self) -> bool {
        matches!(self, StoreError::Io(_) | StoreError::Unavailable(_) | StoreError::Locked { .. })
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::io(e)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn io_errors_keep_their_source_and_classify_enospc() {
        let e = StoreError::io(std::io::Error::from_raw_os_error(28));
        assert!(e.is_out_of_space() && e.is_temporary());
        let source = e.source().expect("the io::Error is the source");
        assert_eq!(source.downcast_ref::<std::io::Error>().unwrap().raw_os_error(), Some(28));
        assert!(!StoreError::io(std::io::Error::from_raw_os_error(5)).is_out_of_space());
        assert!(!StoreError::AccountExists("a".into()).is_temporary());
        let copy = e.clone();
        assert!(copy.is_out_of_space(), "a clone keeps the OS error");
    }
}
