//! The open database, and reopening it after an I/O error.
//!
//! sled keeps the first I/O error of a database (a full disk, say) and
//! fails every later write and flush of that instance, even once the disk
//! has room again. Service comes back only by closing the database and
//! opening it again: opening reads back what reached the disk, exactly as
//! after a crash. `Slot` holds the open database; the group-commit task
//! ([`crate::commit`]) calls `Slot::recover` after a failed flush until it
//! succeeds. Meanwhile reads keep working on the failed instance and writes
//! fail (a temporary failure for clients).
//!
//! Each opening is a generation. Writes made in a generation and not flushed
//! before it failed are gone after the reopen, so a flush vouches only for
//! writes made in its own generation ([`crate::Mark`]).
//!
//! Messages whose durability failed are withdrawn ([`crate::Store::withdraw`]):
//! their client was told to retry, so a copy that reached the disk anyway
//! must not be delivered. A withdrawal is kept here until a flush covers it,
//! and applied again to every reopened database before anything else sees it.

use crate::schema::{self, Trees};
use crate::{Accepted, Result, StoreError, StoreOptions};
use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

/// Free space a reopen wants to see first: sled writes a snapshot and
/// starts a log segment while opening, and a reopen into a still-full disk
/// would only swap a readable database for none.
const PROBE_BYTES: usize = 4 << 20;
/// How long a reopen waits for in-flight reads and writes to let go of the
/// failed instance, and then for sled to release its file lock.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// One opening of the database.
pub(crate) struct Open {
    pub db: sled::Db,
    pub trees: Trees,
    pub generation: u64,
}

impl Deref for Open {
    type Target = Trees;

    fn deref(&self) -> &Trees {
        &self.trees
    }
}

pub(crate) struct Slot {
    dir: PathBuf,
    options: StoreOptions,
    current: RwLock<Current>,
    /// Withdrawals applied but not yet covered by a flush. Held while a
    /// withdrawal is applied, so the group-commit task sees only applied ones.
    withdrawn: Mutex<Vec<Accepted>>,
}

struct Current {
    /// None between closing a failed instance and a successful reopen.
    open: Option<Arc<Open>>,
    generation: u64,
}

fn open_db(dir: &Path, options: &StoreOptions) -> Result<(sled::Db, Trees)> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(options.cache_bytes)
        .mode(sled::Mode::HighThroughput)
        // We flush explicitly for every promise made to a client; the
        // background flush only bounds the window for everything else.
        .flush_every_ms(Some(1000))
        .open()
        .map_err(|e| match e {
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") => {
                StoreError::Locked { path: dir.display().to_string() }
            }
            other => other.into(),
        })?;
    let trees = Trees::open(&db)?;
    schema::check_version(&trees)?;
    Ok((db, trees))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks stays consistent at every step, so a
    // panic elsewhere does not make it unusable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slot {
    pub fn open(dir: &Path, options: &StoreOptions) -> Result<Slot> {
        let (db, trees) = open_db(dir, options)?;
        Ok(Slot {
            dir: dir.to_path_buf(),
            options: options.clone(),
            current: RwLock::new(Current { open: Some(Arc::new(Open { db, trees, generation: 0 })), generation: 0 }),
            withdrawn: Mutex::new(Vec::new()),
        })
    }

    /// The open database, or an I/O error while it is being reopened.
    pub fn get(&self) -> Result<Arc<Open>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.open.clone().ok_or_else(|| StoreError::Io("the store is being reopened after an I/O error".into()))
    }

    pub fn generation(&self) -> u64 {
        self.current.read().unwrap_or_else(|e| e.into_inner()).generation
    }

    /// Applies `apply` to the current database if it is open, and records
    /// the withdrawal either way (see the module docs).
    pub fn withdraw(&self, accepted: &Accepted, apply: impl FnOnce(&Trees) -> Result<()>) -> Result<()> {
        let mut pending = lock(&self.withdrawn);
        let result = self.get().and_then(|open| apply(&open));
        pending.push(accepted.clone());
        result
    }

    /// How many withdrawals a flush starting now covers.
    pub fn withdrawals_pending(&self) -> usize {
        lock(&self.withdrawn).len()
    }

    /// A flush covered the first `n` withdrawals.
    pub fn withdrawals_flushed(&self, n: usize) {
        let mut pending = lock(&self.withdrawn);
        let n = n.min(pending.len());
        pending.drain(..n);
    }

    /// Closes the failed instance and opens the database again. Blocking;
    /// called only by the group-commit task, never concurrently. On error the
    /// store stays as it was (disk still full) or closed (the reopen itself
    /// failed), and the caller tries again later.
    pub fn recover(&self, withdraw: impl Fn(&Trees, &Accepted) -> Result<()>) -> Result<()> {
        self.probe_space()?;
        let old = self.current.write().unwrap_or_else(|e| e.into_inner()).open.take();
        if let Some(old) = old {
            let deadline = Instant::now() + RELEASE_WAIT;
            while Arc::strong_count(&old) > 1 {
                if Instant::now() > deadline {
                    self.current.write().unwrap_or_else(|e| e.into_inner()).open = Some(old);
                    return Err(StoreError::Io("the failed store is still in use; not reopened yet".into()));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(old);
        }
        let deadline = Instant::now() + RELEASE_WAIT;
        let (db, trees) = loop {
            match open_db(&self.dir, &self.options) {
                // sled's own threads may still hold the failed instance's file
                // (and its lock) for a moment after the last handle is gone.
                Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                other => break other?,
            }
        };
        // Withdrawals first, durably: nothing may read a withdrawn message.
        let mut pending = lock(&self.withdrawn);
        for accepted in pending.iter() {
            match withdraw(&trees, accepted) {
                Ok(()) => {}
                Err(e @ StoreError::Io(_)) => return Err(e),
                // A record that does not decode stays where it is; it must
                // not keep the store closed.
                Err(e) => tracing::error!(error = %e, blob = %crate::format_id(accepted.blob), "withdrawal failed"),
            }
        }
        db.flush()?;
        pending.clear();
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        current.generation += 1;
        current.open = Some(Arc::new(Open { db, trees, generation: current.generation }));
        Ok(())
    }

    /// Fails unless the disk takes [`PROBE_BYTES`] right now.
    fn probe_space(&self) -> Result<()> {
        let path = self.dir.join(".space-probe");
        let result = std::fs::File::create(&path).and_then(|mut f| {
            f.write_all(&vec![0u8; PROBE_BYTES])?;
            f.sync_all()
        });
        let removed = std::fs::remove_file(&path);
        result.and(removed).map_err(|e| StoreError::Io(format!("no room to reopen the store yet: {e}")))
    }
}
