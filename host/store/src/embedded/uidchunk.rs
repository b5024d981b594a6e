//! A mailbox's UID set on disk, in chunks of [`CHUNK`] UIDs: reading the
//! whole set is one prefix scan of (highest UID / 1024) small values, and a
//! change rewrites one chunk of at most 129 bytes.
//!
//! A chunk is either runs (tag 0, then (first, last) offsets as u16 BE
//! pairs) or, when that would be longer, a bitmap (tag 1, 128 bytes).

use super::keys::T;
use super::trees::Trees;
use super::txn::Txn;
use crate::schema::UidSet;
use crate::{Result, StoreError};

pub(crate) const CHUNK_BITS: u32 = 10;
pub(crate) const CHUNK: u32 = 1 << CHUNK_BITS;
const BITMAP_LEN: usize = (CHUNK / 8) as usize;

pub(crate) fn chunk_of(uid: u32) -> u32 {
    uid >> CHUNK_BITS
}

/// The runs of `set` that fall in chunk `chunk`, encoded; None when empty.
pub(crate) fn encode(chunk: u32, set: &UidSet) -> Option<Vec<u8>> {
    let base = chunk << CHUNK_BITS;
    let last = base + (CHUNK - 1);
    let runs: Vec<(u16, u16)> = set
        .runs()
        .iter()
        .filter(|&&(a, b)| b >= base && a <= last)
        .map(|&(a, b)| ((a.max(base) - base) as u16, (b.min(last) - base) as u16))
        .collect();
    if runs.is_empty() {
        return None;
    }
    if 4 * runs.len() <= BITMAP_LEN {
        let mut out = Vec::with_capacity(1 + 4 * runs.len());
        out.push(0);
        for (a, b) in runs {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&b.to_be_bytes());
        }
        Some(out)
    } else {
        let mut out = vec![0u8; 1 + BITMAP_LEN];
        out[0] = 1;
        for (a, b) in runs {
            for off in a..=b {
                out[1 + off as usize / 8] |= 1 << (off % 8);
            }
        }
        Some(out)
    }
}

/// The runs a stored chunk holds, as absolute UIDs.
pub(crate) fn decode(chunk: u32, bytes: &[u8]) -> Result<Vec<(u32, u32)>> {
    let base = chunk << CHUNK_BITS;
    let corrupt = || StoreError::Corrupt { area: "uid_chunks", detail: format!("chunk {chunk} does not decode") };
    match bytes.split_first() {
        Some((0, pairs)) if pairs.len() % 4 == 0 => Ok(pairs
            .chunks_exact(4)
            .map(|p| {
                let a = u16::from_be_bytes([p[0], p[1]]) as u32;
                let b = u16::from_be_bytes([p[2], p[3]]) as u32;
                (base + a, base + b.max(a))
            })
            .collect()),
        Some((1, bits)) if bits.len() == BITMAP_LEN => {
            let mut runs: Vec<(u32, u32)> = Vec::new();
            for off in 0..CHUNK {
                if bits[off as usize / 8] & (1 << (off % 8)) != 0 {
                    match runs.last_mut() {
                        Some((_, b)) if *b + 1 == base + off => *b = base + off,
                        _ => runs.push((base + off, base + off)),
                    }
                }
            }
            Ok(runs)
        }
        _ => Err(corrupt()),
    }
}

/// `prefix ++ chunk` (big-endian): a set's chunks are one key range.
fn chunk_key(prefix: &[u8], chunk: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 4);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

/// The chunk number at the end of a chunk key.
fn chunk_of_key(key: &[u8]) -> u32 {
    key.len().checked_sub(4).and_then(|i| key[i..].try_into().ok()).map(u32::from_be_bytes).unwrap_or(0)
}

/// Adds (or removes) `uids` to the set stored in tree `t` under `prefix`,
/// rewriting each touched chunk once when `uids` ascend.
pub(crate) fn update(txn: &mut Txn, t: T, prefix: &[u8], uids: &[u32], insert: bool) -> Result<()> {
    let mut i = 0;
    while i < uids.len() {
        let chunk = chunk_of(uids[i]);
        let key = chunk_key(prefix, chunk);
        let mut set = match txn.get(t, &key)? {
            Some(v) => UidSet::from_runs(decode(chunk, &v)?),
            None => UidSet::new(),
        };
        while i < uids.len() && chunk_of(uids[i]) == chunk {
            if insert {
                set.insert(uids[i]);
            } else {
                set.remove(uids[i]);
            }
            i += 1;
        }
        match encode(chunk, &set) {
            Some(v) => txn.put(t, &key, v),
            None => txn.del(t, &key),
        }
    }
    Ok(())
}

/// The whole set stored in tree `t` under `prefix`: one prefix scan.
pub(crate) fn read(trees: &Trees, t: T, prefix: &[u8]) -> Result<UidSet> {
    let mut runs = Vec::new();
    for kv in trees.tree(t).scan_prefix(prefix) {
        let (k, v) = kv.map_err(super::sled_error)?;
        if k.len() == prefix.len() + 4 {
            runs.extend(decode(chunk_of_key(&k), &v)?);
        }
    }
    Ok(UidSet::from_runs(runs))
}

/// Writes a whole set under `prefix` directly (a migration: nothing else
/// runs yet).
pub(crate) fn write(trees: &Trees, t: T, prefix: &[u8], set: &UidSet) -> Result<()> {
    let mut chunks: Vec<u32> = Vec::new();
    for &(a, b) in set.runs() {
        for c in chunk_of(a)..=chunk_of(b) {
            if chunks.last() != Some(&c) {
                chunks.push(c);
            }
        }
    }
    for c in chunks {
        if let Some(v) = encode(c, set) {
            trees.tree(t).insert(chunk_key(prefix, c), v).map_err(super::sled_error)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_uids_are_one_short_run() {
        let set: UidSet = (1..=5000).collect();
        let chunk = encode(1, &set).unwrap();
        assert_eq!(chunk.len(), 5);
        assert_eq!(decode(1, &chunk).unwrap(), vec![(1024, 2047)]);
    }

    #[test]
    fn fragmented_chunks_switch_to_a_bitmap_and_round_trip() {
        let set: UidSet = (0..CHUNK).filter(|u| u % 3 == 0).collect();
        let chunk = encode(0, &set).unwrap();
        assert_eq!(chunk.len(), 1 + BITMAP_LEN, "bounded however fragmented");
        assert_eq!(UidSet::from_runs(decode(0, &chunk).unwrap()), set);
        assert!(encode(5, &set).is_none());
        assert!(decode(0, &[7, 1]).is_err());
    }
}
