//! What makes the embedded store survive a power cut, not just a crash.
//!
//! sled's own flush ends in `sync_file_range`, which persists neither the
//! file's size nor the device's write cache, and it never fsyncs the
//! directories whose entries it changes (its config file at creation, the
//! snapshot it renames into place on open, the files of large values). So:
//! - every commit group is made durable with `fdatasync` of sled's log after
//!   sled's flush, plus `fsync` of any new large-value file and of their
//!   directory ([`Durability::sync_group`]);
//! - opening the store fsyncs every file and directory of it before sled
//!   reads them (what a killed process left in the page cache becomes
//!   durable before anything is built on it) and again after sled has
//!   written its config and snapshot ([`sync_tree`]), including the store
//!   directory's own entry in its parent.
//!
//! "Durable" is checked by tests/e2e/test_powercut.py, on a filesystem that
//! drops everything not fsynced.

use crate::Result;
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

fn sync_path(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// fsyncs `dir`, everything below it, and `dir`'s entry in its parent.
pub(crate) fn sync_tree(dir: &Path) -> std::io::Result<()> {
    fn walk(dir: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&entry.path())?;
            } else if kind.is_file() {
                sync_path(&entry.path())?;
            }
        }
        sync_path(dir)
    }
    walk(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_path(parent)?;
    }
    Ok(())
}

/// The files a commit group must fsync.
pub(crate) struct Durability {
    /// sled's log (`db`), kept open: fdatasync of any descriptor of a file
    /// flushes the file.
    log: File,
    /// Where sled puts values too large for its log.
    blobs: PathBuf,
    /// Large-value files already fsynced.
    synced_blobs: HashSet<std::ffi::OsString>,
}

impl Durability {
    pub fn new(dir: &Path) -> Result<Durability> {
        let log = File::open(dir.join("db"))?;
        let blobs = dir.join("blobs");
        let mut synced_blobs = HashSet::new();
        if let Ok(entries) = std::fs::read_dir(&blobs) {
            for entry in entries.flatten() {
                synced_blobs.insert(entry.file_name());
            }
        }
        Ok(Durability { log, blobs, synced_blobs })
    }

    /// After sled's flush: new large-value files and their directory
    /// entries first (the log about to be made durable refers to them),
    /// then the log's data and size. One `fdatasync` in the usual case.
    ///
    /// One window remains: sled unlinks a replaced large-value file during
    /// its flush, and the directory fsync here makes that unlink durable a
    /// moment before the log that stops referring to it. Only values over
    /// sled's inline limit (~100 KB pages) are involved; message bodies
    /// moving out of sled closes it.
    pub fn sync_group(&mut self) -> Result<()> {
        let mut new = false;
        if let Ok(entries) = std::fs::read_dir(&self.blobs) {
            let mut seen = HashSet::with_capacity(self.synced_blobs.len());
            for entry in entries.flatten() {
                let name = entry.file_name();
                if !self.synced_blobs.contains(&name) {
                    sync_path(&entry.path())?;
                    new = true;
                }
                seen.insert(name);
            }
            // Forget files sled removed, so the set does not grow forever.
            self.synced_blobs = seen;
        }
        if new {
            sync_path(&self.blobs)?;
        }
        self.log.sync_data()?;
        Ok(())
    }
}
