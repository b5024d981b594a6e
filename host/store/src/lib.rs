//! ferrymail's persistence. One store owns every byte that must survive a
//! crash: accounts, message contents, mailboxes, the delivery queue and the
//! plugins' key-value data.
//!
//! The server sees the store only through the traits of [`contract`],
//! whose module documentation is the contract a backend implements; the
//! records it reads and writes are in [`schema`]. Backends:
//! - [`embedded`]: one directory, one process (sled underneath); the default.
//! - [`postgres`]: several nodes sharing one PostgreSQL database; passes
//!   the same [`battery`] of behavioural tests.
//!
//! # Layout
//! - [`contract`]: the traits and their promises; [`ChangeFeed`](contract::ChangeFeed)
//! - [`schema`]: every record, the schema version, UID sets
//! - [`error`]: [`StoreError`], shared by all backends
//! - [`embedded`]: the embedded backend (keys, transactions, writer thread,
//!   migrations, free-space reserve)
//! - [`postgres`]: the PostgreSQL backend (pools, migrations, blobs,
//!   notifications across nodes)
//! - [`stats`]: commit latency and group size, for the server's metrics
//! - [`battery`]: the behavioural test suite every backend runs
//!   ([`store_battery!`])

pub mod battery;
pub mod contract;
pub mod embedded;
pub mod error;
pub mod postgres;
pub mod schema;
pub mod stats;

pub use contract::{Accounts, ChangeFeed, Contents, Kv, Mailboxes, Queue, SharedStore, Store, Traces};
pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use error::{Result, StoreError};
pub use postgres::{PostgresOptions, PostgresStore};
pub use schema::{
    Account, Incoming, MailEntry, MailboxInfo, QueueEntry, QueueRecipient, QueuedRoute, RecipientState, StoredReply,
    format_id, now_secs, parse_id,
};

use std::path::Path;
use std::sync::Arc;

/// Opens (creating or migrating) the embedded store in `dir`. Blocking:
/// call it before serving or from a blocking context.
pub fn open_embedded(dir: &Path, options: EmbeddedOptions) -> Result<SharedStore> {
    Ok(Arc::new(EmbeddedStore::open(dir, options)?))
}
