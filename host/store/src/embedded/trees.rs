//! Opening the sled database and its trees.

use super::keys::{KV_TREE, T};
use super::{EmbeddedOptions, sled_error};
use crate::{Result, StoreError};
use std::path::Path;

/// One opening of the database.
pub(crate) struct Trees {
    pub db: sled::Db,
    trees: Vec<sled::Tree>,
    pub kv: sled::Tree,
}

impl Trees {
    pub fn open_at(dir: &Path, options: &EmbeddedOptions) -> Result<Trees> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(options.cache_bytes)
            .mode(sled::Mode::HighThroughput)
            // Commit groups flush explicitly; the background flush only
            // bounds the window for kv writes, which nobody awaits.
            .flush_every_ms(Some(1000))
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
        Ok(Trees { db, trees, kv })
    }

    pub fn tree(&self, t: T) -> &sled::Tree {
        &self.trees[t as usize]
    }

    pub fn all(&self) -> &[sled::Tree] {
        &self.trees
    }
}
