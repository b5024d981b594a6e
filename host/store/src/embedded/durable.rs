//! What makes the embedded store survive a power cut, not just a crash.
//!
//! sled's own flush ends in `sync_file_range`, which persists neither the
//! file's size nor the device's write cache, and it never fsyncs the
//! directories whose entries it changes (its config file at creation, the
//! snapshot it renames into place on open, the files of large values). So:
//! - every commit group is made durable with `fdatasync` of sled's log after
//!   sled's flush, preceded by `fsync` of any new large-value file and of
//!   its directory, whose unlinks sled makes too early are undone from hard
//!   links ([`Durability`]);
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
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

/// fsync of a file or directory.
pub(crate) fn sync_path(path: &Path) -> std::io::Result<()> {
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

/// Mirrors sled's large-value directory by hard links (see [`Durability`]).
const KEEP: &str = "blob-keep";

fn names(dir: &Path) -> HashSet<OsString> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.flatten().map(|e| e.file_name()).collect(),
        Err(_) => HashSet::new(),
    }
}

fn link(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Before sled opens: a large-value file whose unlink became durable
/// before the log that stopped referring to it (a power cut in between)
/// comes back from its hard link; after sled opened, the links mirror
/// exactly what sled keeps.
pub(crate) fn restore_blobs(dir: &Path) -> std::io::Result<()> {
    let (blobs, keep) = (dir.join("blobs"), dir.join(KEEP));
    if !blobs.is_dir() {
        return Ok(());
    }
    let present = names(&blobs);
    for name in names(&keep).difference(&present) {
        match link(&keep.join(name), &blobs.join(name)) {
            Err(e) if links_unsupported(&e) => return Ok(()),
            other => other?,
        }
    }
    Ok(())
}

/// Hard links are not everywhere (some network and FUSE filesystems):
/// without them the store still works, with the window described at
/// [`Durability`] open.
fn links_unsupported(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(1 /* EPERM */) | Some(38 /* ENOSYS */) | Some(95 /* EOPNOTSUPP */))
}

fn mirror_blobs(dir: &Path) -> std::io::Result<()> {
    let (blobs, keep) = (dir.join("blobs"), dir.join(KEEP));
    std::fs::create_dir_all(&keep)?;
    let (present, kept) = (names(&blobs), names(&keep));
    for name in present.difference(&kept) {
        match link(&blobs.join(name), &keep.join(name)) {
            // Removed by sled since the listing (see `sync_group`).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    for name in kept.difference(&present) {
        std::fs::remove_file(keep.join(name))?;
    }
    Ok(())
}

/// The files a commit group must fsync.
///
/// sled unlinks a replaced large-value file during its flush, before the
/// log that stops referring to it is durable; fsyncing the directory for a
/// new file would make that unlink durable too early. So every large-value
/// file also has a hard link in `blob-keep/`, removed only after the log
/// that no longer needs it is durable, and restored from on open.
pub(crate) struct Durability {
    /// sled's log (`db`), kept open: fdatasync of any descriptor of a file
    /// flushes the file.
    log: File,
    /// Where sled puts values too large for its log, and our links to them
    /// (None where the filesystem has no hard links).
    blobs: PathBuf,
    keep: Option<PathBuf>,
    /// Large-value files already durable (with their links).
    synced_blobs: HashSet<OsString>,
}

impl Durability {
    /// After sled opened `dir` (which [`sync_tree`] then made durable).
    pub fn new(dir: &Path) -> Result<Durability> {
        let keep = match mirror_blobs(dir) {
            Ok(()) => Some(dir.join(KEEP)),
            Err(e) if links_unsupported(&e) => {
                tracing::warn!(error = %e, "no hard links on the store's filesystem: large values are not linked");
                None
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(keep) = &keep {
            sync_path(keep)?;
        }
        let log = File::open(dir.join("db"))?;
        let blobs = dir.join("blobs");
        let synced_blobs = names(&blobs);
        Ok(Durability { log, blobs, keep, synced_blobs })
    }

    /// After sled's flush: new large-value files, their links and directory
    /// entries first (the log about to be made durable refers to them),
    /// then the log's data and size, then the links of files sled removed.
    /// One `fdatasync` in the usual case (no large values).
    pub fn sync_group(&mut self) -> Result<()> {
        let mut present = names(&self.blobs);
        let mut new = false;
        let mut vanished = Vec::new();
        for name in present.difference(&self.synced_blobs) {
            let path = self.blobs.join(name);
            let linked = sync_path(&path).and_then(|()| match &self.keep {
                Some(keep) => link(&path, &keep.join(name)),
                None => Ok(()),
            });
            match linked {
                // Gone between the listing and here: sled writes a large
                // value's file before it knows whether the page update
                // that needs it wins, and removes it at once when another
                // thread's update won (sled's `Reservation::abort`). No
                // log entry ever refers to such a file.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => vanished.push(name.clone()),
                other => other?,
            }
            new = true;
        }
        for name in vanished {
            present.remove(&name);
            if let Some(keep) = &self.keep {
                let _ = std::fs::remove_file(keep.join(&name));
            }
        }
        if new {
            sync_path(&self.blobs)?;
            if let Some(keep) = &self.keep {
                sync_path(keep)?;
            }
        }
        self.log.sync_data()?;
        if let Some(keep) = &self.keep {
            for name in self.synced_blobs.difference(&present) {
                // The durable log no longer needs it; a link that survives
                // a power cut anyway is dropped on the next open.
                let _ = std::fs::remove_file(keep.join(name));
            }
        }
        self.synced_blobs = present;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_value_file_unlinked_too_early_comes_back_from_its_link() {
        let dir = tempfile::tempdir().unwrap();
        let (blobs, keep) = (dir.path().join("blobs"), dir.path().join(KEEP));
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::write(blobs.join("7"), b"still referenced").unwrap();
        link(&blobs.join("7"), &keep.join("7")).unwrap();
        // sled's unlink reached the disk, the log that dropped the value did not.
        std::fs::remove_file(blobs.join("7")).unwrap();
        restore_blobs(dir.path()).unwrap();
        assert_eq!(std::fs::read(blobs.join("7")).unwrap(), b"still referenced");
        // Links of files sled really removed go once mirrored.
        std::fs::write(keep.join("8"), b"gone").unwrap();
        std::fs::remove_file(blobs.join("7")).unwrap();
        mirror_blobs(dir.path()).unwrap();
        assert!(names(&keep).is_empty());
    }
}
