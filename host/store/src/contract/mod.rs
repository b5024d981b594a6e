//! # The storage contract
//!
//! Everything ferrymail keeps goes through the traits in this module; the
//! server holds a [`SharedStore`] and never learns which backend is behind
//! it. A backend implements all of them ([`Store`] is their sum), and
//! proves it by passing the behavioural battery (`crate::battery`).
//!
//! | trait | area |
//! |---|---|
//! | [`Contents`] | message contents (stored once, shared by reference), acceptance of a new message |
//! | [`Accounts`] | accounts and their password hashes |
//! | [`Mailboxes`] | folders, the messages in them, flags, UIDs, change notifications |
//! | [`Queue`] | messages waiting for (re)delivery, claimed with leases |
//! | [`Kv`] | the plugins' key-value data, namespaced, with expiry |
//! | [`Traces`] | per-transaction decision traces, with expiry |
//!
//! ## Rules every call keeps
//!
//! 1. **Durable on return.** A call that changes state returns `Ok` only
//!    after the change survives a power cut: the backend has `fsync`ed (or
//!    `fdatasync`ed) everything the change needs, including directories whose
//!    entries changed; `sync_file_range` and the page cache do not count.
//!    Callers promise durability to clients on that basis (SMTP 250, POP3
//!    `+OK` after QUIT, IMAP `OK`). The only exceptions are named in their
//!    own docs: the [`Kv`] writes and [`Contents::set_summary`] (derived
//!    data that may be lost in a power cut, never half-written) and the
//!    queue leases (lost leases only make work due again).
//! 2. **All or nothing.** A change is atomic: after a crash either all of it
//!    or none of it is there (a message is never filed without its content,
//!    a delivery attempt never committed without its bounce).
//! 3. **Never blocks an async worker.** Every `async fn` may be awaited on
//!    a tokio worker thread: blocking I/O happens on the backend's own
//!    threads. A call in progress never holds locks that another call needs
//!    for longer than its own I/O.
//! 4. **Errors are temporary or final, never hidden.** A full disk, an I/O
//!    error or an unreachable database is [`StoreError::Io`] or
//!    [`StoreError::Unavailable`] (a 4xx for the client, nothing kept); the
//!    backend recovers by itself once the cause clears, without a restart.
//!    A failed change leaves nothing behind that a later read could see.
//! 5. **Concurrent calls are safe.** Any number of tasks call the same store
//!    at once; changes to one mailbox or queue entry are serialised by the
//!    backend, and every reader sees whole changes only.
//! 6. **Hostile values are data.** Names, addresses and keys are opaque
//!    bytes to the backend: no value may change the meaning of a key or a
//!    query (SQL injection, a separator inside a name).
//!
//! [`StoreError::Io`]: crate::StoreError::Io
//! [`StoreError::Unavailable`]: crate::StoreError::Unavailable

mod accounts;
mod changes;
mod contents;
mod kv;
mod mailboxes;
mod queue;
mod traces;

pub use accounts::Accounts;
pub use changes::{ChangeFeed, ChangeHub, Lagged};
pub use contents::Contents;
pub use kv::Kv;
pub use mailboxes::{FlagsOutcome, Mailboxes};
pub use queue::Queue;
pub use traces::Traces;

use crate::Result;
use std::sync::Arc;

/// A whole storage backend.
#[async_trait::async_trait]
pub trait Store: Contents + Accounts + Mailboxes + Queue + Kv + Traces + Send + Sync + 'static {
    /// What the backend is, for status output ("embedded", "postgres").
    fn backend(&self) -> &'static str;

    /// Bytes the store occupies (its files, or its database's relations).
    async fn size_on_disk(&self) -> Result<u64>;

    /// Makes everything durable that is not yet (kv writes, summaries) and
    /// stops the backend's threads. Calls after `close` fail with
    /// [`crate::StoreError::Unavailable`]. Dropping the last handle closes too.
    async fn close(&self) -> Result<()>;
}

/// How the server holds its store.
pub type SharedStore = Arc<dyn Store>;
