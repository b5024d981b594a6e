//! The embedded backend: one directory, one process, sled underneath.
//!
//! # How it keeps the contract
//! - Changes run on one writer thread in commit groups ([`writer`]): each
//!   group is its bodies and one journal record of its sled writes, written
//!   with one `pwrite` and one `fdatasync` to a segment file ([`segments`],
//!   [`journal`]: atomic and durable across a crash), then plain sled
//!   writes, then the callers hear back. sled's flush and an `fdatasync` of
//!   its log ([`durable`]) run as a checkpoint once a second; an opening
//!   after a crash applies the journal records after the last one.
//!   Staging and the transaction helpers live in [`txn`]; the changes
//!   themselves in the `ops_*` modules, written against a [`txn::Txn`] only.
//! - Reads run on tokio's blocking pool against the open database, but
//!   for the small ones that run on the calling task (kv, account
//!   look-ups, the state SELECT reads of a mailbox up to 50,000 messages:
//!   `api.rs`), where the pool's two wake-ups would cost more than the
//!   read. Each key read is a whole value; a read of several keys may see
//!   some of a group being applied, as it may see two groups between two
//!   of its reads (so readers check what they follow: a content may be
//!   gone).
//! - The kv tree is written directly (atomic per key, never awaited for a
//!   flush): durable with the next checkpoint, within a second.
//! - Message bodies and their IMAP summaries live in append-only segment
//!   files, written and fdatasynced before the group reaches sled, which
//!   keeps where they are ([`segments`], [`parts`]); the writer compacts
//!   segments that deletions emptied ([`compact`]).
//! - Decision traces ride on the change of their message, or wait in
//!   memory for the next group ([`records`]).
//! - A free-space reserve ([`space`]) and a reopen after I/O errors keep a
//!   full disk a temporary refusal, never a hang.
//!
//! # Layout
//! [`keys`] (trees and keys), [`trees`] (opening), [`segments`],
//! [`parts`] and [`compact`] (bodies and summaries), [`migrate`] (older
//! schema versions), [`uidchunk`] (UID sets on disk), [`flagindex`] (which
//! messages carry which flags), `reads`, `kv`,
//! `ops_accounts`, `ops_mailboxes`, `ops_mail`, `ops_queue`, `api` (the
//! trait implementations).

mod api;
mod compact;
pub(crate) mod durable;
pub(crate) mod flagindex;
mod gather;
pub(crate) mod journal;
pub(crate) mod keys;
mod kv;
pub(crate) mod migrate;
mod ops_accounts;
mod ops_mail;
mod ops_mailboxes;
mod ops_queue;
mod parts;
mod reads;
pub(crate) mod records;
pub(crate) mod segments;
pub(crate) mod space;
pub(crate) mod trees;
pub(crate) mod txn;
pub(crate) mod uidchunk;
pub(crate) mod writer;

use crate::contract::ChangeHub;
use crate::{Result, StoreError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use trees::Trees;

/// Ids taken from sled per trip to the blocking pool.
const ID_BATCH: usize = 64;

/// Tuning of the embedded backend; the defaults suit a small server.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// sled's page cache, bytes.
    pub cache_bytes: u64,
    /// Free space kept in reserve: new content is refused below it. None:
    /// 256 MiB, but at most a twentieth of the filesystem; at least 1 MiB.
    pub reserve_bytes: Option<u64>,
    /// A body segment file is sealed once it holds this many bytes
    /// ([`segments`]); compaction works one segment at a time.
    pub segment_bytes: u64,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions { cache_bytes: 16 << 20, reserve_bytes: None, segment_bytes: segments::SEGMENT_MAX }
    }
}

pub(crate) fn sled_error(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) => StoreError::io(io),
        sled::Error::Corruption { at, .. } => {
            StoreError::Corrupt { area: "sled", detail: format!("corruption at {at:?}") }
        }
        other => StoreError::Corrupt { area: "sled", detail: other.to_string() },
    }
}

/// What the writer thread and the readers share.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub options: EmbeddedOptions,
    /// None while the writer reopens the database after an I/O error.
    current: RwLock<Option<Arc<Trees>>>,
    pub hub: ChangeHub,
    /// Counts kv writes (which bypass the writer) once applied; the writer
    /// makes them durable within [`writer::KV_FLUSH_EVERY`] when it is idle.
    pub kv_writes: std::sync::atomic::AtomicU64,
    /// Trace records waiting for the next commit group ([`records`]).
    pub traces: records::Pending,
    /// Where the next kv sweep starts (`None`: at the first key).
    pub kv_sweep_cursor: Mutex<Option<Vec<u8>>>,
}

impl Shared {
    pub fn current(&self) -> Option<Arc<Trees>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn trees(&self) -> Result<Arc<Trees>> {
        self.current().ok_or_else(|| StoreError::Unavailable("the store is being reopened after an I/O error".into()))
    }

    pub fn take(&self) -> Option<Arc<Trees>> {
        self.current.write().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub fn put(&self, trees: Arc<Trees>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(trees);
    }
}

/// The embedded store. Dropping it (every clone of its `Arc`) stops the
/// writer, which flushes on its way out.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    writer: RwLock<Option<writer::Submitter>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Ids taken from sled ahead of need (see [`EmbeddedStore::new_id`]).
    ids: Mutex<Vec<u64>>,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir`, migrating an older
    /// schema. Blocking: call before serving, or from a blocking context.
    pub fn open(dir: &Path, options: EmbeddedOptions) -> Result<EmbeddedStore> {
        std::fs::create_dir_all(dir)?;
        let trees = Trees::open_at(dir, &options, None)?;
        migrate::run(&trees)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            options,
            current: RwLock::new(Some(Arc::new(trees))),
            hub: ChangeHub::default(),
            kv_writes: Default::default(),
            traces: Default::default(),
            kv_sweep_cursor: Mutex::new(None),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = writer::spawn(shared.clone(), rx)?;
        Ok(EmbeddedStore {
            shared,
            writer: RwLock::new(Some(writer::Submitter::new(tx))),
            thread: Mutex::new(Some(thread)),
            ids: Mutex::new(Vec::new()),
        })
    }

    /// A new id. sled's counter is in memory and persists itself only
    /// every million ids, but that rare persist flushes, so it runs on the
    /// blocking pool: [`ID_BATCH`] ids at a time, which spares every
    /// message but one in that many the trip there and back. Ids left
    /// unused at shutdown are skipped, as ids are allowed to be.
    async fn take_id(&self) -> Result<u64> {
        if let Some(id) = self.ids.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(id);
        }
        let mut batch = self
            .read(|t| {
                let mut ids = (0..ID_BATCH).map(|_| t.db.generate_id()).collect::<sled::Result<Vec<u64>>>();
                // Handed out from the end: lowest first.
                if let Ok(ids) = &mut ids {
                    ids.reverse();
                }
                ids.map_err(sled_error)
            })
            .await?;
        let id = batch.pop().ok_or_else(|| StoreError::Unavailable("no id".into()))?;
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).extend(batch);
        Ok(id)
    }

    fn submitter(&self) -> Result<writer::Submitter> {
        self.writer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))
    }

    /// Runs a change on the writer thread; see [`writer`].
    async fn change<R: Send + 'static>(
        &self,
        grows: bool,
        change: impl for<'a> FnOnce(&mut txn::Txn<'a>) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        self.submitter()?.submit(grows, change).await
    }

    /// A kv write was applied: a flush that starts from now on covers it.
    fn kv_written(&self) {
        self.shared.kv_writes.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Runs a read on the blocking pool against the open database.
    async fn read<R: Send + 'static>(&self, f: impl FnOnce(&Trees) -> Result<R> + Send + 'static) -> Result<R> {
        let trees = self.shared.trees()?;
        tokio::task::spawn_blocking(move || f(&trees))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store read task failed: {e}")))?
    }
}

#[cfg(test)]
mod battery_tests;
#[cfg(test)]
#[path = "embedded_tests.rs"]
mod tests;
