//! A content's body and its IMAP summary: records of the segment files
//! ([`super::segments`]), found through sled (`body_locs`,
//! `summary_locs`), with the live bytes of each segment kept exact
//! ([`super::compact`]). Stores written before the segment files keep
//! theirs in sled (`blobs`, `summaries`), read from there until deleted.

use super::compact::add_live;
use super::keys::{self, T};
use super::segments::{BodyLoc, clamp};
use super::sled_error;
use super::trees::Trees;
use super::txn::Txn;
use crate::{Result, StoreError};
use bytes::Bytes;

/// The top bit of a record's tag says which part of a content it is.
const SUMMARY_BIT: u64 = 1 << 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Body,
    Summary,
}

impl Part {
    /// Where sled keeps the part's location.
    fn locs(self) -> T {
        match self {
            Part::Body => T::BodyLocs,
            Part::Summary => T::SummaryLocs,
        }
    }

    /// Where stores before the segment files kept the part itself.
    fn legacy(self) -> T {
        match self {
            Part::Body => T::Bodies,
            Part::Summary => T::Summaries,
        }
    }

    /// The tag of the part's records: the content id, marked for a summary.
    pub fn tag(self, content: u64) -> u64 {
        match self {
            Part::Body => content,
            Part::Summary => content | SUMMARY_BIT,
        }
    }

    /// The part and content id of a record's tag.
    pub fn of_tag(tag: u64) -> (Part, u64) {
        if tag & SUMMARY_BIT != 0 { (Part::Summary, tag & !SUMMARY_BIT) } else { (Part::Body, tag) }
    }
}

/// The part's location as the change sees it.
pub(crate) fn loc(txn: &Txn, part: Part, content: u64) -> Result<Option<BodyLoc>> {
    txn.get(part.locs(), &keys::u64_key(content))?.map(|raw| BodyLoc::decode(&raw)).transpose()
}

/// Points the part at `loc`, a record staged in the segments; the record
/// it replaces (if any) stops counting as live.
pub(crate) fn relocate(txn: &mut Txn, part: Part, content: u64, to: BodyLoc) -> Result<()> {
    if let Some(old) = loc(txn, part, content)? {
        add_live(txn, old.segment, -(old.stored() as i64))?;
    }
    txn.put(part.locs(), &keys::u64_key(content), &to.encode()[..]);
    add_live(txn, to.segment, to.stored() as i64)
}

/// Stores (or replaces) the part.
pub(crate) fn put(txn: &mut Txn, part: Part, content: u64, bytes: &[u8]) -> Result<()> {
    let loc = txn.segments().stage(part.tag(content), bytes)?;
    relocate(txn, part, content, loc)?;
    txn.del(part.legacy(), &keys::u64_key(content));
    Ok(())
}

/// Removes the part, wherever it is.
pub(crate) fn remove(txn: &mut Txn, part: Part, content: u64) -> Result<()> {
    let key = keys::u64_key(content);
    if let Some(old) = loc(txn, part, content)? {
        add_live(txn, old.segment, -(old.stored() as i64))?;
        txn.del(part.locs(), &key);
    }
    txn.del(part.legacy(), &key);
    Ok(())
}

/// Reads the part, or `range` (offset, length) of it; None: there is none.
pub(crate) fn read(trees: &Trees, part: Part, content: u64, range: Option<(u64, u64)>) -> Result<Option<Bytes>> {
    let key = keys::u64_key(content);
    let locs = trees.tree(part.locs());
    // Compaction may move the record between the look-up and the read;
    // the location found next time is the new one.
    for _ in 0..8 {
        let Some(raw) = locs.get(key).map_err(sled_error)? else { break };
        if let Some(bytes) = trees.segments.read(part.tag(content), &BodyLoc::decode(&raw)?, range)? {
            return Ok(Some(bytes));
        }
    }
    if locs.get(key).map_err(sled_error)?.is_some() {
        return Err(StoreError::Unavailable(format!("content {content} kept moving between segments")));
    }
    let Some(old) = trees.tree(part.legacy()).get(key).map_err(sled_error)? else { return Ok(None) };
    let (start, end) = range.map_or((0, old.len() as u64), |r| clamp(r, old.len() as u64));
    Ok(Some(Bytes::copy_from_slice(&old[start as usize..end as usize])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_tells_a_body_from_a_summary() {
        for part in [Part::Body, Part::Summary] {
            assert_eq!(Part::of_tag(part.tag(42)), (part, 42));
        }
        assert_ne!(Part::Body.tag(42), Part::Summary.tag(42));
    }
}
