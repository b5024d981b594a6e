//! Message bodies and summaries in append-only segment files, outside sled.
//!
//! sled is log-structured: a value is rewritten whenever its leaf is
//! consolidated, and a log segment is cleaned only once less than half of
//! it is live, so bodies kept in sled took 2.5 times their bytes on disk
//! (issue 13). Here a body (or a summary: [`super::parts`]) is written
//! once, into `segments/<n>.seg`, and sled keeps only where it is
//! ([`BodyLoc`]) and how many live bytes each segment holds (tree
//! `body_segments`).
//!
//! # Durability
//! The writer thread stages a group's bodies in memory ([`Segments::stage`]),
//! and before anything of the group reaches sled, writes them with one
//! `pwrite` and one `fdatasync` ([`Segments::sync`]). A location in sled
//! therefore always points at durable bytes. A new segment file's directory
//! entry is fsynced when the file is created, before it can be referred to.
//!
//! After a crash, bytes written for a group that never reached sled are
//! garbage that nothing refers to; they are not counted as live, and
//! [`compaction`](super::compact) reclaims them with the rest. Every
//! opening of the store starts a new segment, so a torn tail is never
//! appended to.
//!
//! # Record format
//! `[len: u32][crc32: u32][tag: u64][len bytes]`, little-endian. The tag
//! names the record's owner (a content's body or summary, see
//! [`super::parts`]), so compaction can walk a segment and ask sled which
//! records are live; the checksum catches a torn or damaged record.

use super::durable::sync_path;
use crate::{Result, StoreError};
use bytes::Bytes;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The directory, inside the store's.
pub(crate) const SEGMENT_DIR: &str = "segments";
/// A segment is sealed once it holds this much; a compaction pass reads
/// at most one segment (see [`super::compact`]).
pub(crate) const SEGMENT_MAX: u64 = 16 << 20;
pub(crate) const HEADER: u64 = 16;

/// Where a body is: its record starts at `offset` of segment `segment`;
/// the body itself is `len` bytes after the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyLoc {
    pub segment: u64,
    pub offset: u64,
    pub len: u64,
}

impl BodyLoc {
    pub fn encode(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.segment.to_be_bytes());
        out[8..16].copy_from_slice(&self.offset.to_be_bytes());
        out[16..].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    pub fn decode(raw: &[u8]) -> Result<BodyLoc> {
        let field = |i: usize| raw.get(i..i + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
        match (raw.len(), field(0), field(8), field(16)) {
            (24, Some(segment), Some(offset), Some(len)) => Ok(BodyLoc { segment, offset, len }),
            _ => Err(StoreError::Corrupt { area: "body_locs", detail: format!("a location of {} bytes", raw.len()) }),
        }
    }

    /// Bytes of the segment the record takes, header included.
    pub fn stored(&self) -> u64 {
        HEADER + self.len
    }

    /// Just past the record.
    pub fn end(&self) -> Pos {
        Pos { segment: self.segment, offset: self.offset + self.stored() }
    }
}

/// A place in the segment files: byte `offset` of segment `segment`.
/// Positions order as the bytes were written (a later segment is newer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub segment: u64,
    pub offset: u64,
}

impl Pos {
    pub fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.segment.to_be_bytes());
        out[8..].copy_from_slice(&self.offset.to_be_bytes());
        out
    }

    pub fn decode(raw: &[u8]) -> Result<Pos> {
        match <[u8; 16]>::try_from(raw) {
            Ok(b) => Ok(Pos {
                segment: u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
                offset: u64::from_be_bytes(b[8..].try_into().expect("8 bytes")),
            }),
            Err(_) => {
                Err(StoreError::Corrupt { area: "meta", detail: format!("a segment position of {} bytes", raw.len()) })
            }
        }
    }
}

/// The part of a body of `total` bytes that `(offset, length)` asks for,
/// as `start..end`, cut at the end of the body.
pub(crate) fn clamp((offset, len): (u64, u64), total: u64) -> (u64, u64) {
    let start = offset.min(total);
    (start, offset.saturating_add(len).min(total))
}

fn file_name(segment: u64) -> String {
    format!("{segment:016x}.seg")
}

fn segment_of(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok()).flatten()
}

fn header(tag: u64, body: &[u8]) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
    h[4..8].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    h[8..].copy_from_slice(&tag.to_le_bytes());
    h
}

/// The segment being appended to, and what the current group added to it.
struct Active {
    segment: u64,
    file: Arc<File>,
    /// Bytes in the file (written, durable once the group syncs).
    written: u64,
    /// The group's records not yet written.
    pending: Vec<u8>,
}

/// Staging state, touched only by the writer thread (the lock is uncontended).
#[derive(Default)]
struct Staging {
    active: Option<Active>,
    /// Segments sealed during this group, written but not yet synced.
    unsynced: Vec<Arc<File>>,
    /// The next segment number.
    next: u64,
}

/// A point to rewind staging to when a change that staged bodies is dropped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    segment: Option<u64>,
    pending: usize,
}

pub(crate) struct Segments {
    dir: PathBuf,
    /// The size at which a segment is sealed ([`SEGMENT_MAX`] unless configured).
    max: u64,
    /// Every segment present, open for reading; a sealed one's size.
    files: RwLock<HashMap<u64, (Arc<File>, u64)>>,
    staging: Mutex<Staging>,
}

impl Segments {
    /// Opens the segments of the store in `store_dir` (creating the
    /// directory); a segment is sealed at `max` bytes.
    pub fn open(store_dir: &Path, max: u64) -> Result<Segments> {
        let dir = store_dir.join(SEGMENT_DIR);
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir)?;
            sync_path(&dir)?;
            sync_path(store_dir)?;
        }
        let mut files = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let Some(segment) = entry.file_name().to_str().and_then(segment_of) else { continue };
            let file = File::open(entry.path())?;
            let size = file.metadata()?.len();
            files.insert(segment, (Arc::new(file), size));
        }
        let next = files.keys().max().map_or(1, |m| m + 1);
        Ok(Segments {
            dir,
            max,
            files: RwLock::new(files),
            staging: Mutex::new(Staging { next, ..Default::default() }),
        })
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Where the next record staged goes: past everything written or staged.
    pub fn end(&self) -> Pos {
        let st = self.staging();
        match &st.active {
            Some(a) => Pos { segment: a.segment, offset: a.written + a.pending.len() as u64 },
            None => Pos { segment: st.next, offset: 0 },
        }
    }

    fn staging(&self) -> std::sync::MutexGuard<'_, Staging> {
        self.staging.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn files(&self) -> RwLockReadGuard<'_, HashMap<u64, (Arc<File>, u64)>> {
        self.files.read().unwrap_or_else(|e| e.into_inner())
    }

    fn files_mut(&self) -> RwLockWriteGuard<'_, HashMap<u64, (Arc<File>, u64)>> {
        self.files.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A segment's file and, once sealed, its size (0 before).
    fn file(&self, segment: u64) -> Option<(Arc<File>, u64)> {
        self.files().get(&segment).cloned()
    }

    /// Records the final size of a segment no longer appended to.
    fn sealed_at(&self, segment: u64, size: u64) {
        if let Some(entry) = self.files_mut().get_mut(&segment) {
            entry.1 = size;
        }
    }

    /// Appends a body to the group being staged; the returned location
    /// is valid once [`Segments::sync`] returned Ok.
    pub fn stage(&self, tag: u64, body: &[u8]) -> Result<BodyLoc> {
        if body.len() > u32::MAX as usize {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("a body of {} bytes", body.len()));
            return Err(StoreError::io(e));
        }
        let record = HEADER + body.len() as u64;
        let mut st = self.staging();
        let full = st.active.as_ref().is_some_and(|a| {
            let used = a.written + a.pending.len() as u64;
            used > 0 && used + record > self.max
        });
        if full {
            self.seal(&mut st)?;
        }
        if st.active.is_none() {
            let segment = st.next;
            st.next += 1;
            let path = self.dir.join(file_name(segment));
            let file = Arc::new(OpenOptions::new().read(true).write(true).create_new(true).open(&path)?);
            // The entry must be durable before any location refers to it.
            sync_path(&self.dir)?;
            self.files_mut().insert(segment, (file.clone(), 0));
            st.active = Some(Active { segment, file, written: 0, pending: Vec::new() });
        }
        let a = st.active.as_mut().expect("created above");
        let offset = a.written + a.pending.len() as u64;
        a.pending.extend_from_slice(&header(tag, body));
        a.pending.extend_from_slice(body);
        Ok(BodyLoc { segment: a.segment, offset, len: body.len() as u64 })
    }

    /// Writes the active segment's pending records and makes it immutable.
    fn seal(&self, st: &mut Staging) -> Result<()> {
        let Some(mut a) = st.active.take() else { return Ok(()) };
        Self::write_pending(&mut a)?;
        self.sealed_at(a.segment, a.written);
        st.unsynced.push(a.file);
        Ok(())
    }

    fn write_pending(a: &mut Active) -> Result<()> {
        if !a.pending.is_empty() {
            a.file.write_all_at(&a.pending, a.written)?;
            a.written += a.pending.len() as u64;
            a.pending.clear();
        }
        Ok(())
    }

    pub fn mark(&self) -> Mark {
        let st = self.staging();
        Mark {
            segment: st.active.as_ref().map(|a| a.segment),
            pending: st.active.as_ref().map_or(0, |a| a.pending.len()),
        }
    }

    /// Drops what was staged since `mark` (a change that failed or was
    /// refused), unless a segment was sealed since: then it stays as garbage.
    pub fn rewind(&self, mark: Mark) {
        let mut st = self.staging();
        if let Some(a) = st.active.as_mut().filter(|a| Some(a.segment) == mark.segment) {
            a.pending.truncate(mark.pending);
        }
    }

    /// Writes and fdatasyncs the group's bodies. On an error the active
    /// segment is given up (a later group starts a new one): what it holds
    /// past the last sync may be torn.
    pub fn sync(&self) -> Result<()> {
        let mut st = self.staging();
        let result = (|| {
            // Sealed segments first: a group's commit record comes last in
            // the active one, and must not be durable without what it
            // refers to ([`super::journal`]).
            for f in st.unsynced.drain(..) {
                f.sync_data()?;
            }
            if let Some(a) = st.active.as_mut()
                && !a.pending.is_empty()
            {
                Self::write_pending(a)?;
                a.file.sync_data()?;
            }
            Ok(())
        })();
        if result.is_err() {
            st.unsynced.clear();
            if let Some(a) = st.active.take() {
                self.sealed_at(a.segment, a.written);
            }
        }
        result
    }

    /// Cuts the segment files back to `from` (where a failed group's
    /// records begin) and gives up the active segment: the next record
    /// goes to a new one.
    pub fn discard_from(&self, from: Pos) -> Result<()> {
        let mut st = self.staging();
        st.unsynced.clear();
        st.active = None;
        let mut cut: Vec<u64> = self.files().keys().copied().filter(|&s| s >= from.segment).collect();
        cut.sort_unstable();
        for segment in cut {
            let keep = if segment == from.segment { from.offset } else { 0 };
            let file = OpenOptions::new().write(true).open(self.dir.join(file_name(segment)))?;
            if file.metadata()?.len() > keep {
                file.set_len(keep)?;
                file.sync_all()?;
            }
            self.sealed_at(segment, keep);
        }
        Ok(())
    }

    /// Reads `len` bytes from `offset` of the body at `loc` (`None`: all
    /// of it, checked against its checksum). Ok(None): the segment is gone,
    /// so the location was stale (compaction moved the body): look it up again.
    pub fn read(&self, tag: u64, loc: &BodyLoc, range: Option<(u64, u64)>) -> Result<Option<Bytes>> {
        let Some((file, sealed_size)) = self.file(loc.segment) else { return Ok(None) };
        // A damaged location must not make us allocate what it claims.
        let size = if sealed_size > 0 { sealed_size } else { file.metadata()?.len() };
        if loc.offset.checked_add(loc.stored()).is_none_or(|end| end > size) {
            return Err(StoreError::Corrupt {
                area: "segments",
                detail: format!(
                    "record {tag:x} at {}+{} is past the end of segment {}",
                    loc.offset,
                    loc.stored(),
                    loc.segment
                ),
            });
        }
        if let Some(range) = range {
            let (start, end) = clamp(range, loc.len);
            let mut buf = vec![0u8; (end - start) as usize];
            file.read_exact_at(&mut buf, loc.offset + HEADER + start)?;
            return Ok(Some(Bytes::from(buf)));
        }
        let mut buf = vec![0u8; loc.stored() as usize];
        file.read_exact_at(&mut buf, loc.offset)?;
        let body = buf.split_off(HEADER as usize);
        if buf[..HEADER as usize] != header(tag, &body) {
            return Err(StoreError::Corrupt {
                area: "segments",
                detail: format!("record {tag:x} in segment {} at {} fails its check", loc.segment, loc.offset),
            });
        }
        Ok(Some(Bytes::from(body)))
    }

    /// Bytes of every segment file.
    pub fn on_disk(&self) -> Result<u64> {
        let files = self.files();
        let mut total = 0;
        for (file, _) in files.values() {
            total += file.metadata()?.len();
        }
        Ok(total)
    }

    /// Sealed segments (not the one being appended to) and their sizes.
    pub fn sealed(&self) -> Vec<(u64, u64)> {
        let active = self.staging().active.as_ref().map(|a| a.segment);
        let files = self.files();
        let mut out: Vec<(u64, u64)> =
            files.iter().filter(|(s, _)| Some(**s) != active).map(|(s, (_, size))| (*s, *size)).collect();
        out.sort_unstable();
        out
    }

    /// The records of a sealed segment, in order: (tag, location, bytes).
    /// Stops at the first record that is torn or fails its check: nothing
    /// after it was ever referred to (a segment is only appended to in one
    /// run of the store, and a failed write gives it up).
    pub fn records(&self, segment: u64) -> Result<Vec<(u64, BodyLoc, Bytes)>> {
        let mut out = Vec::new();
        self.walk(segment, 0, &mut out, |_| true)?;
        Ok(out)
    }

    /// The records from `from` on whose tag `wanted` accepts, across the
    /// segments in the order they were written. Stops at the first record
    /// that is torn or fails its check: no sync completed past it.
    pub fn records_from(&self, from: Pos, wanted: impl Fn(u64) -> bool) -> Result<Vec<(u64, BodyLoc, Bytes)>> {
        let mut segments: Vec<u64> = self.files().keys().copied().filter(|&s| s >= from.segment).collect();
        segments.sort_unstable();
        let mut out = Vec::new();
        for segment in segments {
            let start = if segment == from.segment { from.offset } else { 0 };
            if !self.walk(segment, start, &mut out, &wanted)? {
                break;
            }
        }
        Ok(out)
    }

    /// Walks a segment's records from `start`, pushing those `wanted`;
    /// true when it ended exactly at the end of the file.
    fn walk(
        &self,
        segment: u64,
        start: u64,
        out: &mut Vec<(u64, BodyLoc, Bytes)>,
        wanted: impl Fn(u64) -> bool,
    ) -> Result<bool> {
        let Some((file, _)) = self.file(segment) else { return Ok(true) };
        let size = file.metadata()?.len();
        let Some(left) = size.checked_sub(start) else { return Ok(false) };
        let mut data = vec![0u8; left as usize];
        file.read_exact_at(&mut data, start)?;
        let data = Bytes::from(data);
        let mut at = 0usize;
        while at + HEADER as usize <= data.len() {
            let len = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
            let tag = u64::from_le_bytes(data[at + 8..at + 16].try_into().expect("8 bytes"));
            let body_at = at + HEADER as usize;
            let Some(body) = data.get(body_at..body_at + len) else { return Ok(false) };
            if data[at..body_at] != header(tag, body) {
                return Ok(false);
            }
            if wanted(tag) {
                let loc = BodyLoc { segment, offset: start + at as u64, len: len as u64 };
                out.push((tag, loc, data.slice(body_at..body_at + len)));
            }
            at = body_at + len;
        }
        Ok(at == data.len())
    }

    /// Deletes a segment nothing refers to any more (its locations' move
    /// is durable). A reader still holding it reads on; one that looks it
    /// up afterwards is told to look the location up again.
    pub fn remove(&self, segment: u64) -> Result<()> {
        self.files_mut().remove(&segment);
        match std::fs::remove_file(self.dir.join(file_name(segment))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        // Not needed for correctness (a segment back from a power cut has
        // nothing live and goes again), but it frees the space for sure.
        sync_path(&self.dir)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 64 << 10;

    /// The tags of a segment's records, in order.
    fn tags(s: &Segments, segment: u64) -> Vec<u64> {
        s.records(segment).unwrap().into_iter().map(|r| r.0).collect()
    }

    #[test]
    fn a_body_is_readable_once_synced_and_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::open(dir.path(), MAX).unwrap();
        let a = s.stage(7, b"first body").unwrap();
        let b = s.stage(8, b"second").unwrap();
        s.sync().unwrap();
        assert_eq!(s.read(7, &a, None).unwrap().unwrap(), &b"first body"[..]);
        assert_eq!(s.read(8, &b, Some((2, 3))).unwrap().unwrap(), &b"con"[..]);
        assert_eq!(s.read(8, &b, Some((4, 99))).unwrap().unwrap(), &b"nd"[..], "a range is cut at the end");
        drop(s);
        let s = Segments::open(dir.path(), MAX).unwrap();
        assert_eq!(s.read(7, &a, None).unwrap().unwrap(), &b"first body"[..]);
        let c = s.stage(9, b"after").unwrap();
        assert_ne!(c.segment, a.segment, "every opening appends to a new segment");
    }

    #[test]
    fn a_rewound_change_leaves_nothing_and_a_full_segment_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::open(dir.path(), MAX).unwrap();
        let a = s.stage(1, b"kept").unwrap();
        let mark = s.mark();
        s.stage(2, b"dropped").unwrap();
        s.rewind(mark);
        let c = s.stage(3, b"next").unwrap();
        assert_eq!(c.offset, a.stored(), "the dropped record's room is reused");
        let big = vec![b'x'; (MAX / 2) as usize];
        let d = s.stage(4, &big).unwrap();
        let e = s.stage(5, &big).unwrap();
        assert_ne!(d.segment, e.segment, "the second half does not fit");
        s.sync().unwrap();
        assert_eq!(s.sealed().iter().map(|x| x.0).collect::<Vec<_>>(), vec![a.segment]);
        assert_eq!(tags(&s, a.segment), vec![1, 3, 4]);
    }

    #[test]
    fn a_torn_tail_ends_the_walk_and_a_damaged_body_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::open(dir.path(), MAX).unwrap();
        let a = s.stage(1, b"whole").unwrap();
        let b = s.stage(2, b"torn record").unwrap();
        s.sync().unwrap();
        let path = dir.path().join(SEGMENT_DIR).join(file_name(a.segment));
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(b.offset + HEADER + 3).unwrap();
        drop(s);
        let s = Segments::open(dir.path(), MAX).unwrap();
        assert_eq!(tags(&s, a.segment), vec![1]);
        f.write_all_at(b"W", a.offset + HEADER).unwrap();
        assert!(matches!(s.read(1, &a, None), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_removed_segment_reads_as_moved() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::open(dir.path(), MAX).unwrap();
        let a = s.stage(1, b"body").unwrap();
        s.sync().unwrap();
        s.stage(2, &vec![0u8; MAX as usize]).unwrap();
        s.sync().unwrap();
        let past = BodyLoc { len: 1 << 40, ..a };
        assert!(matches!(s.read(1, &past, None), Err(StoreError::Corrupt { .. })), "no terabyte allocation");
        s.remove(a.segment).unwrap();
        assert_eq!(s.read(1, &a, None).unwrap(), None);
        assert!(!dir.path().join(SEGMENT_DIR).join(file_name(a.segment)).exists());
    }
}
