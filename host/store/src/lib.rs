//! ferrymail's persistence. One store owns every byte that must survive a
//! crash: accounts, message contents, mailboxes, the delivery queue and the
//! plugins' key-value data. Nothing else in ferrymail opens sled.
//!
//! # Contract
//! - A write returns once it is applied in memory; it is durable only after
//!   [`Store::durable`] resolves. Callers that promise durability to a client
//!   (SMTP 250, POP3 QUIT) await it first. Concurrent callers share one
//!   fsync (group commit), so durability costs one disk flush per batch, not
//!   per message.
//! - After an I/O error (a full disk) writes fail until the store has
//!   reopened itself, which it does once the disk has room ([`reopen`]); a
//!   caller promising durability takes a [`Mark`] before writing and awaits
//!   [`Store::durable_since`], which fails if the writes were lost to a
//!   reopen. A message whose durability failed is [`Store::withdraw`]n.
//! - Message contents are stored once, however many mailboxes and queue
//!   entries refer to them, and are removed when the last reference goes.
//! - All key layouts and record types live in [`schema`]; its version is
//!   checked on open.
//!
//! # Layout
//! - [`schema`]: trees, keys, records, schema version
//! - [`commit`]: group commit
//! - [`reopen`]: the open database; reopening it after an I/O error
//! - [`accounts`], [`mail`], [`queue`], [`kv`]: one area each

pub mod accounts;
pub mod commit;
pub mod kv;
pub mod mail;
pub mod queue;
pub mod reopen;
pub mod schema;

pub use accounts::Account;
pub use mail::{
    Accepted, FLAG_ANSWERED, FLAG_DELETED, FLAG_DRAFT, FLAG_FLAGGED, FLAG_SEEN, Incoming, MailEntry, MailboxSummary,
};
pub use queue::{Committed, QueueEntry, QueueRecipient, QueuedRoute, RecipientState};

use std::path::Path;
use std::sync::Arc;

/// Errors a caller can branch on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The disk refused a write or read (full, I/O error): a temporary
    /// condition for the client (452 / 451).
    #[error("storage I/O error: {0}")]
    Io(String),
    /// Stored bytes that do not decode: never expected; reported, not hidden.
    #[error("corrupt record in {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error("the store at {path} is in use by another ferrymail process")]
    Locked { path: String },
    #[error("store schema version {found} is not the supported version {expected}")]
    SchemaVersion { found: u32, expected: u32 },
    #[error("account {0} already exists")]
    AccountExists(String),
    #[error("no such account: {0}")]
    NoSuchAccount(String),
    #[error("no such queue entry: {0}")]
    NoSuchQueueEntry(String),
    /// `kv_incr` on a value that is not an 8-byte counter.
    #[error("not a counter")]
    NotACounter,
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => e.into(),
        }
    }
}

/// Tuning knobs; defaults suit a small server.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled's page cache, bytes.
    pub cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { cache_bytes: 64 * 1024 * 1024 }
    }
}

/// The store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    slot: Arc<reopen::Slot>,
    commit: commit::GroupCommit,
}

/// The store's generation when taken: writes made after it are vouched for
/// by [`Store::durable_since`] only if the store was not reopened meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark(u64);

impl Store {
    /// Opens (creating if needed) the store in `dir`. Inside a tokio
    /// runtime this also starts the group-commit task, which watches for
    /// I/O errors and reopens the store after one.
    pub fn open(dir: &Path, options: &StoreOptions) -> Result<Store> {
        let slot = Arc::new(reopen::Slot::open(dir, options)?);
        let commit = commit::GroupCommit::new(&slot);
        commit.start();
        Ok(Store { inner: Arc::new(Inner { slot, commit }) })
    }

    /// Where the store stands; take it before writes to be made durable.
    pub fn mark(&self) -> Mark {
        Mark(self.inner.slot.generation())
    }

    /// Resolves once every write applied before the call is on disk; fails
    /// if they may be lost (a failed flush, or the store reopened after an
    /// I/O error since `mark` was taken).
    pub async fn durable_since(&self, mark: Mark) -> Result<()> {
        self.inner.commit.durable(mark).await
    }

    /// [`Store::durable_since`] with a mark taken now, so it cannot see
    /// writes lost to a reopen between them and this call: callers that
    /// promise durability to a client take the mark before writing instead.
    pub async fn durable(&self) -> Result<()> {
        self.durable_since(self.mark()).await
    }

    /// Blocking flush, for command-line tools outside the server.
    pub fn flush_now(&self) -> Result<()> {
        self.trees()?.db.flush()?;
        Ok(())
    }

    /// A new id, unique for the life of this store (sled's persistent counter).
    pub fn new_id(&self) -> Result<u64> {
        Ok(self.trees()?.db.generate_id()?)
    }

    /// The open database's trees; an I/O error while it is being reopened.
    pub(crate) fn trees(&self) -> Result<Arc<reopen::Open>> {
        self.inner.slot.get()
    }

    /// Bytes on disk, for status output.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.trees()?.db.size_on_disk()?)
    }
}

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

#[cfg(test)]
pub(crate) mod testutil {
    pub fn store() -> (tempfile::TempDir, super::Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = super::Store::open(dir.path(), &Default::default()).unwrap();
        (dir, store)
    }
}
