//! Opening the sled database and its trees.

use super::durable::{Durability, restore_blobs, sync_tree};
use super::journal::{self, JOURNAL_TREE};
use super::keys::{KV_TREE, T};
use super::segments::{Pos, Segments};
use super::{EmbeddedOptions, sled_error};
use crate::{Result, StoreError};
use std::path::Path;
use std::sync::Mutex;

/// One opening of the database.
pub(crate) struct Trees {
    pub db: sled::Db,
    trees: Vec<sled::Tree>,
    pub kv: sled::Tree,
    /// Only the writer thread makes groups durable; the lock is uncontended.
    pub durability: Mutex<Durability>,
    /// Message bodies ([`super::segments`]).
    pub segments: Segments,
}

impl Trees {
    /// Opens sled in `dir`, fsyncing the store's files and directories
    /// before and after (see [`super::durable`]), and applies the commit
    /// groups after the last checkpoint, up to `until` (a failed group's
    /// start), taking a checkpoint past all of them ([`journal`]).
    pub fn open_at(dir: &Path, options: &EmbeddedOptions, until: Option<Pos>) -> Result<Trees> {
        restore_blobs(dir)?;
        sync_tree(dir)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(options.cache_bytes)
            .mode(sled::Mode::HighThroughput)
            // Only the writer thread flushes (each group, and idle kv
            // writes within a second): sled's own background flush would
            // fsync its log behind our back, before the large-value files
            // it refers to are durable (see super::durable).
            .flush_every_ms(None)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") =>
                {
                    StoreError::Locked { path: dir.display().to_string() }
                }
                other => sled_error(other),
            })?;
        let trees = T::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(sled_error)?;
        let kv = db.open_tree(KV_TREE).map_err(sled_error)?;
        let legacy = db.open_tree(JOURNAL_TREE).map_err(sled_error)?;
        let segments = Segments::open(dir, options.segment_bytes)?;
        let replayed = journal::replay_legacy(&legacy, &trees)? + journal::replay(&segments, &trees, until)?;
        if replayed > 0 {
            tracing::info!(groups = replayed, "store: applied the last commit groups again after a crash");
        }
        // Whatever the walk did not reach is not replayed again: the next
        // record goes to a new segment, past this checkpoint.
        trees[T::Meta as usize].insert(journal::CHECKPOINT_KEY, &segments.end().encode()[..]).map_err(sled_error)?;
        db.flush().map_err(sled_error)?;
        sync_tree(dir)?;
        let durability = Mutex::new(Durability::new(dir)?);
        Ok(Trees { db, trees, kv, durability, segments })
    }

    pub fn tree(&self, t: T) -> &sled::Tree {
        &self.trees[t as usize]
    }

    /// Makes everything applied to sled durable, recording that the
    /// journal records up to `upto` need no replay.
    pub fn checkpoint(&self, upto: Pos) -> Result<()> {
        self.tree(T::Meta).insert(journal::CHECKPOINT_KEY, &upto.encode()[..]).map_err(sled_error)?;
        self.make_durable()
    }

    /// sled's flush, then what sled's flush does not do (see [`super::durable`]).
    pub fn make_durable(&self) -> Result<()> {
        self.db.flush().map_err(sled_error)?;
        self.durability.lock().unwrap_or_else(|e| e.into_inner()).sync_group()
    }
}
