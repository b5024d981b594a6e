//! Compaction of the segment files ([`super::segments`]): space freed by
//! deleted messages comes back.
//!
//! sled counts each segment's live bytes (tree `body_segments`), changed in
//! the same commit group as the locations themselves. When a sealed segment
//! is a quarter dead, or small (what a restart left behind), the writer
//! thread copies its live records to the active segment as one ordinary
//! commit group, and deletes the file once a checkpoint covers that group
//! (and every journal record the file holds, [`super::journal`]). A crash
//! before that leaves the old locations and the old file; a crash after it
//! may leave the file, which then has nothing live and goes next time.
//! Journal records are never live: their groups are in sled once a
//! checkpoint passed them.
//! One segment per pass, back to back while the writer is idle and one
//! every [`EVERY_GROUPS`] groups under load; a pass reads at most a
//! segment ([`super::segments::SEGMENT_MAX`] by default) and writes at most
//! three quarters of one.

use super::keys::{self, T};
use super::parts::{self, Part};
use super::trees::Trees;
use super::txn::Txn;
use crate::{Result, StoreError};

/// Under steady load, a compaction pass after this many commit groups.
pub(crate) const EVERY_GROUPS: u32 = 256;

fn decode(raw: &[u8]) -> Result<u64> {
    raw.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt { area: "body_segments", detail: format!("a count of {} bytes", raw.len()) })
}

/// Adds `delta` to the live bytes of `segment`.
pub(crate) fn add_live(txn: &mut Txn, segment: u64, delta: i64) -> Result<()> {
    let key = keys::u64_key(segment);
    let now = txn.get(T::BodySegments, &key)?.map(|v| decode(&v)).transpose()?.unwrap_or(0);
    let next = now.saturating_add_signed(delta);
    if next == 0 {
        txn.del(T::BodySegments, &key);
    } else {
        txn.put(T::BodySegments, &key, &next.to_be_bytes()[..]);
    }
    Ok(())
}

fn live(trees: &Trees, segment: u64) -> Result<u64> {
    let raw = trees.tree(T::BodySegments).get(keys::u64_key(segment)).map_err(super::sled_error)?;
    raw.map(|v| decode(&v)).transpose().map(|v| v.unwrap_or(0))
}

/// The sealed segment most worth compacting (the most bytes to gain),
/// skipping `skip`: a quarter or more of it dead, or under a quarter of
/// the usual size.
pub(crate) fn candidate(trees: &Trees, skip: &[u64]) -> Result<Option<u64>> {
    let mut best: Option<(u64, u64)> = None;
    for (segment, size) in trees.segments.sealed() {
        if skip.contains(&segment) {
            continue;
        }
        let live = live(trees, segment)?;
        let worth = live.saturating_mul(4) <= size.saturating_mul(3) || size < trees.segments.max() / 4;
        let gain = size.saturating_sub(live);
        if worth && best.is_none_or(|(_, g)| gain > g) {
            best = Some((segment, gain));
        }
    }
    Ok(best.map(|(s, _)| s))
}

/// Moves the live bodies of `segment` to the active one. True when none
/// is left in it (the file may go once this change is durable).
pub(crate) fn move_live(txn: &mut Txn, segment: u64) -> Result<bool> {
    for (tag, loc, bytes) in txn.segments().records(segment)? {
        if super::journal::is_journal(tag) {
            continue;
        }
        let (part, content) = Part::of_tag(tag);
        if parts::loc(txn, part, content)? != Some(loc) {
            continue;
        }
        let moved = txn.segments().stage(tag, &bytes)?;
        parts::relocate(txn, part, content, moved)?;
    }
    Ok(txn.get(T::BodySegments, &keys::u64_key(segment))?.is_none())
}
