//! The writer thread: every change of the embedded backend runs here, in
//! commit groups.
//!
//! Callers submit a change (a function of a [`Txn`]) and await its result.
//! The thread takes every change waiting (and, under concurrent load, waits
//! a little for more: [`super::gather`]), runs them one after another
//! against the staged state ([`super::txn`]), makes the group durable as
//! one journal record in the segment files with one `fdatasync`
//! ([`super::journal`]), applies it to sled, and only then answers the
//! callers and announces the changes. Under load each sync covers every
//! change that arrived during the previous one; async workers never block.
//! sled itself is flushed by a checkpoint every [`CHECKPOINT_EVERY`].
//!
//! Before running a group that stores content, the thread checks the free
//! space: below the reserve ([`super::space`]) such changes are refused as
//! out of space, so sled itself never meets a full disk in normal
//! operation and deletions still work.
//!
//! If a write fails anyway (an I/O error, or a disk filled behind our back),
//! the failed group's changes may or may not have reached the disk, so the
//! thread cuts its journal record off the segment files, keeps the undo
//! images of what it applied to sled (the values before the group), refuses
//! every change, and, once the disk has room, reopens the database without
//! replaying that group and restores those images before anything reads
//! again: a change whose caller was told it failed never appears later.
//! Reads keep working meanwhile.

use super::compact;
use super::gather::Gather;
use super::journal;
use super::keys::T;
use super::segments::Pos;
use super::space;
use super::trees::Trees;
use super::txn::{Staged, Txn};
use super::{Shared, sled_error};
use crate::{Result, StoreError};
use sled::IVec;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Most changes in one group: bounds a group's latency and memory.
const MAX_GROUP: usize = 256;
/// How often a failed store tries to reopen.
const RECOVER_EVERY: Duration = Duration::from_millis(500);
/// How often sled is made durable (a checkpoint, [`super::journal`]): how
/// long kv writes (which nobody awaits) may stay not durable, and about
/// how much of the journal an opening after a crash applies again.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// How long a reopen waits for readers to let go of the failed instance.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// Called with the group's outcome once it is known.
pub(crate) type Completion = Box<dyn FnOnce(Result<()>) + Send>;
type Run = Box<dyn for<'t, 'a> FnOnce(std::result::Result<&'t mut Txn<'a>, StoreError>) -> Option<Completion> + Send>;

pub(crate) struct Job {
    /// May store content (refused when space is short).
    grows: bool,
    run: Run,
}

impl Job {
    /// A change whose result `R` goes to `reply` once durable. `grows`:
    /// it may store content, so it is refused below the free-space reserve.
    pub fn new<R: Send + 'static>(
        grows: bool,
        change: impl for<'a> FnOnce(&mut Txn<'a>) -> Result<R> + Send + 'static,
        reply: tokio::sync::oneshot::Sender<Result<R>>,
    ) -> Job {
        let run: Run = Box::new(move |txn| {
            let txn = match txn {
                Ok(txn) => txn,
                Err(e) => {
                    let _ = reply.send(Err(e));
                    return None;
                }
            };
            match change(txn) {
                Ok(r) => Some(Box::new(move |durable: Result<()>| {
                    let _ = reply.send(durable.map(|()| r));
                })),
                Err(e) => {
                    let _ = reply.send(Err(e));
                    None
                }
            }
        });
        Job { grows, run }
    }

    /// Answers without running the change.
    fn refuse(self, e: StoreError) {
        (self.run)(Err(e));
    }
}

/// Values before a failed group, to restore after the reopen.
type Undo = Vec<((T, Vec<u8>), Option<IVec>)>;

pub(crate) fn spawn(shared: Arc<Shared>, rx: Receiver<Job>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("store-writer".into()).spawn(move || {
        let checkpointed = shared.current().map(|t| t.segments.end());
        Writer {
            shared,
            failed: Vec::new(),
            kv_flushed: 0,
            gather: Gather::default(),
            journal_seq: 0,
            applied: None,
            checkpointed,
            last_checkpoint: Instant::now(),
            until: None,
            since_compaction: 0,
            not_compactable: Vec::new(),
            compacting: false,
        }
        .run(rx)
    })
}

struct Writer {
    shared: Arc<Shared>,
    /// Undo images of failed groups, oldest first; non-empty while failed.
    failed: Vec<Undo>,
    /// `Shared::kv_writes` as of the last flush that covered them.
    kv_flushed: u64,
    /// How long a group waits for more changes.
    gather: Gather,
    /// The number of the next group's journal record.
    journal_seq: u64,
    /// Just past the last journal record applied to sled since the last
    /// checkpoint.
    applied: Option<Pos>,
    /// Where the last checkpoint put the start of replay.
    checkpointed: Option<Pos>,
    last_checkpoint: Instant,
    /// Where the first failed group's records began: the reopen stops
    /// its replay there.
    until: Option<Pos>,
    /// Commit groups since the last compaction pass.
    since_compaction: u32,
    /// Segments a compaction pass could not empty (left alone until restart).
    not_compactable: Vec<u64>,
    /// The last compaction pass found work: while idle, the next follows at once.
    compacting: bool,
}

impl Writer {
    fn run(mut self, rx: Receiver<Job>) {
        loop {
            let first = if self.failed.is_empty() {
                let idle_wait = if self.compacting { Duration::ZERO } else { CHECKPOINT_EVERY };
                match rx.recv_timeout(idle_wait) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) if self.compacting => {
                        self.compacting = self.compact();
                        None
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        if !self.shared.traces.is_empty() {
                            // Traces of refused transactions, idle for a second.
                            self.group(Vec::new());
                        }
                        self.checkpoint();
                        self.compacting = self.compact();
                        None
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv_timeout(RECOVER_EVERY) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            if !self.failed.is_empty() {
                self.recover();
            }
            let Some(first) = first else { continue };
            if !self.failed.is_empty() {
                let mut batch = vec![first];
                batch.extend(rx.try_iter().take(MAX_GROUP));
                for job in batch {
                    job.refuse(StoreError::Unavailable("the store is recovering from an I/O error".into()));
                }
                continue;
            }
            let batch = self.gather_group(first, &rx);
            let (size, started) = (batch.len(), Instant::now());
            self.group(batch);
            self.gather.committed(size, started.elapsed());
            if self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                self.checkpoint();
            }
            self.since_compaction += 1;
            if self.since_compaction >= compact::EVERY_GROUPS {
                self.compacting = self.compact();
            }
        }
        if self.failed.is_empty() && !self.shared.traces.is_empty() {
            self.group(Vec::new());
        }
        self.checkpoint();
    }

    /// The changes of the next group: `first`, every change waiting, and
    /// those arriving while [`Gather`] says to wait for more.
    fn gather_group(&self, first: Job, rx: &Receiver<Job>) -> Vec<Job> {
        let deadline = Instant::now() + self.gather.linger();
        let mut batch = vec![first];
        loop {
            while batch.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if batch.len() >= MAX_GROUP || !self.gather.wants_more(batch.len()) {
                return batch;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return batch;
            }
            match rx.recv_timeout(left) {
                Ok(job) => batch.push(job),
                // Disconnected: the next receive in `run` ends the loop.
                Err(_) => return batch,
            }
        }
    }

    /// Flushes sled: the groups applied since the last checkpoint, and
    /// idle kv writes, become durable there, and an opening after a crash
    /// replays no journal record before this point. A failure reopens the
    /// store, which replays them.
    fn checkpoint(&mut self) {
        self.last_checkpoint = Instant::now();
        let Some(trees) = self.shared.current().filter(|_| self.failed.is_empty()) else { return };
        let kv_writes = self.shared.kv_writes.load(Ordering::Acquire);
        let upto = match (self.applied, self.checkpointed) {
            (Some(upto), _) => upto,
            (None, Some(_)) if kv_writes == self.kv_flushed => return,
            (None, Some(at)) => at,
            (None, None) => trees.segments.end(),
        };
        match trees.checkpoint(upto) {
            Ok(()) => {
                self.kv_flushed = kv_writes;
                self.applied = None;
                self.checkpointed = Some(upto);
            }
            Err(e) if self.applied.is_some() => {
                tracing::error!(error = %e, "making the store durable failed; reopening it");
                self.failed.push(Undo::new());
            }
            Err(e) => tracing::warn!(error = %e, "flushing plugin kv writes failed"),
        }
    }

    /// One compaction pass ([`super::compact`]) as a commit group of its
    /// own; the emptied segment file goes once that group is durable.
    /// Returns whether it compacted a segment (there may be more).
    fn compact(&mut self) -> bool {
        self.since_compaction = 0;
        let Some(trees) = self.shared.current().filter(|_| self.failed.is_empty()) else { return false };
        let segment = match compact::candidate(&trees, &self.not_compactable) {
            Ok(Some(segment)) => segment,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "choosing a body segment to compact failed");
                return false;
            }
        };
        let (reply, mut done) = tokio::sync::oneshot::channel();
        self.group(vec![Job::new(false, move |txn| compact::move_live(txn, segment), reply)]);
        match done.try_recv() {
            Ok(Ok(true)) => {
                // The segment may hold journal records after the last
                // checkpoint: it goes only once a checkpoint is past it.
                self.checkpoint();
                if self.checkpointed.is_none_or(|c| c.segment <= segment) {
                    return false;
                }
                if let Err(e) = trees.segments.remove(segment) {
                    tracing::warn!(error = %e, segment, "removing a compacted body segment failed");
                }
            }
            Ok(Ok(false)) => {
                tracing::warn!(segment, "a body segment still counts live bytes after compaction; kept");
                self.not_compactable.push(segment);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, segment, "compacting a body segment failed");
                return false;
            }
            Err(_) => return false,
        }
        true
    }

    fn group(&mut self, batch: Vec<Job>) {
        let Some(trees) = self.shared.current() else {
            for job in batch {
                job.refuse(StoreError::Unavailable("the store is closed".into()));
            }
            return;
        };
        let free = if batch.iter().any(|j| j.grows) { Some(space::available(&self.shared.dir)) } else { None };
        let start = trees.segments.end();
        let mut group = Staged::new();
        // Trace records waiting for a group ride on this one.
        self.shared.traces.take_into(&mut group);
        let mut completions = Vec::with_capacity(batch.len());
        let mut changes = Vec::new();
        let mut growth = 0u64;
        for job in batch {
            let mut txn = Txn::new(&trees, &group);
            let staged = trees.segments.mark();
            let completion = (job.run)(Ok(&mut txn));
            let grows = txn.growth();
            let (own, announced) = txn.into_parts();
            let Some(completion) = completion else {
                trees.segments.rewind(staged);
                continue;
            };
            if grows > 0
                && let Some(free) = &free
                && let Err(e) = space::check(free, growth + grows, self.shared.options.reserve_bytes)
            {
                // Its staged writes are dropped: nothing of it remains.
                trees.segments.rewind(staged);
                completion(Err(e));
                continue;
            }
            growth += grows;
            group.extend(own);
            changes.extend(announced);
            completions.push(completion);
        }
        let started = std::time::Instant::now();
        let result = if group.is_empty() { Ok(()) } else { self.commit(&trees, &group, start) };
        self.shared.traces.landed();
        if result.is_ok() && !group.is_empty() && !completions.is_empty() {
            crate::stats::committed(started.elapsed(), completions.len());
        }
        // Announced before the callers hear back, so a caller that changes
        // something and then watches never hears its own past change.
        if result.is_ok() {
            for (account, change) in changes {
                self.shared.hub.publish(account, [change]);
            }
        }
        for c in completions {
            c(result.clone());
        }
    }

    /// Makes a group durable (its journal record and bodies, one sync),
    /// then applies it to sled; on failure keeps its undo images and
    /// switches to recovery. `start`: where the group's records begin.
    fn commit(&mut self, trees: &Trees, group: &Staged, start: Pos) -> Result<()> {
        let mut undo: Undo = Vec::with_capacity(group.len());
        for key @ (t, k) in group.keys() {
            match trees.tree(*t).get(k) {
                Ok(before) => undo.push((key.clone(), before)),
                Err(e) => return self.fail(trees, start, undo, sled_error(e)),
            }
        }
        let record = journal::record(group);
        let durable = trees.segments.stage(journal::tag(self.journal_seq), &record).and_then(|loc| {
            trees.segments.sync()?;
            Ok(loc)
        });
        let result = durable.and_then(|loc| Self::apply(trees, group).map(|()| loc));
        match result {
            Ok(loc) => {
                self.applied = Some(loc.end());
                self.journal_seq += 1;
                Ok(())
            }
            Err(e) => self.fail(trees, start, undo, e),
        }
    }

    /// Writes a group's changes to sled (not durable there until the next
    /// checkpoint: the journal record is).
    fn apply(trees: &Trees, group: &Staged) -> Result<()> {
        for ((t, k), v) in group {
            match v {
                Some(v) => trees.tree(*t).insert(k.as_slice(), v.clone()).map_err(sled_error)?,
                None => trees.tree(*t).remove(k.as_slice()).map_err(sled_error)?,
            };
        }
        Ok(())
    }

    /// A group failed from `start` on: its records are cut off the
    /// segment files (best effort: the disk may be failing), and the
    /// reopen will not replay them either way.
    fn fail(&mut self, trees: &Trees, start: Pos, undo: Undo, e: StoreError) -> Result<()> {
        tracing::error!(error = %e, "store write failed; changes are refused until the store is reopened");
        if let Err(cut) = trees.segments.discard_from(start) {
            tracing::warn!(error = %cut, "cutting the failed commit group off the segment files failed");
        }
        self.until.get_or_insert(start);
        self.failed.push(undo);
        Err(e)
    }

    /// Reopens the database once the disk has room, and restores the
    /// values the failed groups overwrote.
    fn recover(&mut self) {
        if let Err(e) = space::probe(&self.shared.dir, self.shared.options.reserve_bytes) {
            tracing::debug!(error = %e, "store not reopened yet");
            return;
        }
        let Some(old) = self.shared.take() else { return };
        let deadline = std::time::Instant::now() + RELEASE_WAIT;
        while Arc::strong_count(&old) > 1 {
            if std::time::Instant::now() > deadline {
                tracing::warn!("the failed store is still in use; not reopened yet");
                self.shared.put(old);
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(old);
        let trees = loop {
            match Trees::open_at(&self.shared.dir, &self.shared.options, self.until) {
                Ok(t) => break t,
                // sled's own threads may hold the file lock for a moment.
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "store reopen failed; trying again");
                    return;
                }
            }
        };
        let restored: Result<()> = (|| {
            for undo in self.failed.iter().rev() {
                for ((t, k), before) in undo {
                    match before {
                        Some(v) => trees.tree(*t).insert(k, v.clone()).map_err(sled_error)?,
                        None => trees.tree(*t).remove(k).map_err(sled_error)?,
                    };
                }
            }
            trees.make_durable()
        })();
        if let Err(e) = restored {
            tracing::warn!(error = %e, "restoring after a failed write did not complete; trying again");
            return;
        }
        self.failed.clear();
        self.until = None;
        self.applied = None;
        self.checkpointed = Some(trees.segments.end());
        self.shared.put(Arc::new(trees));
        tracing::warn!("store reopened after an I/O error; accepting changes again");
    }
}

/// Submits changes to the writer thread.
#[derive(Clone)]
pub(crate) struct Submitter {
    tx: Sender<Job>,
}

impl Submitter {
    pub fn new(tx: Sender<Job>) -> Self {
        Submitter { tx }
    }

    pub async fn submit<R: Send + 'static>(
        &self,
        grows: bool,
        change: impl for<'a> FnOnce(&mut Txn<'a>) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Job::new(grows, change, reply))
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("the store writer stopped".into()))?
    }

    /// Wakes the writer for a group even if no change waits (for the trace
    /// records waiting, [`super::records`]); nobody awaits it.
    pub fn nudge(&self) {
        let (reply, _) = tokio::sync::oneshot::channel::<Result<()>>();
        let _ = self.tx.send(Job::new(false, |_| Ok(()), reply));
    }
}
