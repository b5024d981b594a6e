//! The plugins' key-value data, written straight to its own sled tree:
//! each operation is atomic on its key, and none waits for a flush (the
//! next commit group or sled's periodic flush makes it durable).

use super::keys;
use super::sled_error;
use super::trees::Trees;
use crate::{Result, StoreError};
use std::ops::Bound;

pub(crate) fn split(raw: &[u8]) -> (u64, &[u8]) {
    match raw.split_first_chunk::<8>() {
        Some((exp, value)) => (u64::from_be_bytes(*exp), value),
        None => (0, &[]),
    }
}

pub(crate) fn join(expires: u64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&expires.to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn expiry(now: u64, ttl_secs: Option<u64>) -> u64 {
    ttl_secs.map(|t| now.saturating_add(t.max(1))).unwrap_or(0)
}

pub(crate) fn live(expires: u64, now: u64) -> bool {
    expires == 0 || expires > now
}

pub(crate) fn get(trees: &Trees, namespace: &str, key: &[u8], now: u64) -> Result<Option<Vec<u8>>> {
    let raw = trees.kv.get(keys::kv_key(namespace, key)).map_err(sled_error)?;
    Ok(raw.and_then(|raw| {
        let (exp, v) = split(&raw);
        live(exp, now).then(|| v.to_vec())
    }))
}

pub(crate) fn set(trees: &Trees, namespace: &str, key: &[u8], value: &[u8], ttl: Option<u64>, now: u64) -> Result<()> {
    trees.kv.insert(keys::kv_key(namespace, key), join(expiry(now, ttl), value)).map_err(sled_error)?;
    Ok(())
}

pub(crate) fn delete(trees: &Trees, namespace: &str, key: &[u8]) -> Result<()> {
    trees.kv.remove(keys::kv_key(namespace, key)).map_err(sled_error)?;
    Ok(())
}

pub(crate) fn incr(trees: &Trees, namespace: &str, key: &[u8], delta: i64, ttl: Option<u64>, now: u64) -> Result<i64> {
    let mut result = Ok(0);
    trees
        .kv
        .fetch_and_update(keys::kv_key(namespace, key), |old| {
            let (exp, current) = match old.map(split) {
                Some((exp, v)) if live(exp, now) => match <[u8; 8]>::try_from(v) {
                    Ok(bytes) => (exp, i64::from_le_bytes(bytes)),
                    Err(_) => {
                        result = Err(StoreError::NotACounter);
                        return old.map(<[u8]>::to_vec);
                    }
                },
                _ => (expiry(now, ttl), 0),
            };
            let n = current.saturating_add(delta);
            result = Ok(n);
            Some(join(exp, &n.to_le_bytes()))
        })
        .map_err(sled_error)?;
    result
}

/// Removes the expired keys among at most `limit` keys after `after`
/// (from the start if `None`). Returns how many went and where the next
/// sweep starts (`None`: this one reached the end).
pub(crate) fn sweep(trees: &Trees, after: Option<&[u8]>, limit: usize, now: u64) -> Result<(usize, Option<Vec<u8>>)> {
    let range = match after {
        Some(after) => trees.kv.range::<&[u8], _>((Bound::Excluded(after), Bound::Unbounded)),
        None => trees.kv.iter(),
    };
    let (mut removed, mut seen, mut last) = (0, 0, None);
    for item in range.take(limit) {
        let (k, v) = item.map_err(sled_error)?;
        seen += 1;
        let (exp, _) = split(&v);
        // Removed only if still the expired value (a concurrent set wins).
        if !live(exp, now) && trees.kv.compare_and_swap(&k, Some(v), None::<&[u8]>).map_err(sled_error)?.is_ok() {
            removed += 1;
        }
        last = Some(k.to_vec());
    }
    Ok((removed, if seen < limit { None } else { last }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_values_read_as_absent_and_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let trees = Trees::open_at(dir.path(), &Default::default(), None).unwrap();
        set(&trees, "n", b"gone", b"x", Some(10), 100).unwrap();
        set(&trees, "n", b"kept", b"y", None, 100).unwrap();
        assert_eq!(get(&trees, "n", b"gone", 105).unwrap(), Some(b"x".to_vec()));
        assert_eq!(get(&trees, "n", b"gone", 110).unwrap(), None, "expired at its deadline");
        assert_eq!(incr(&trees, "n", b"gone", 2, Some(60), 110).unwrap(), 2, "an expired counter restarts");
        assert_eq!(sweep(&trees, None, 100, 1000).unwrap(), (1, None));
        assert_eq!(get(&trees, "n", b"kept", 1000).unwrap(), Some(b"y".to_vec()));
    }

    #[test]
    fn a_sweep_looks_at_a_bounded_number_of_keys_and_goes_on_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let trees = Trees::open_at(dir.path(), &Default::default(), None).unwrap();
        for n in 0..10u8 {
            // Even keys expire at 110, odd ones never.
            let ttl = (n % 2 == 0).then_some(10);
            set(&trees, "n", &[n], b"v", ttl, 100).unwrap();
        }
        let (removed, next) = sweep(&trees, None, 4, 200).unwrap();
        assert_eq!((removed, trees.kv.len()), (2, 8), "keys 0 and 2 of the first four");
        let (removed, next) = sweep(&trees, next.as_deref(), 4, 200).unwrap();
        assert_eq!((removed, trees.kv.len()), (2, 6));
        let (removed, next) = sweep(&trees, next.as_deref(), 4, 200).unwrap();
        assert_eq!((removed, next), (1, None), "the last two keys; next time from the start");
        assert_eq!(trees.kv.len(), 5, "only the live keys are left in the tree");
    }
}
