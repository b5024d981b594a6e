//! Decision traces in their own sled tree, written directly like the kv
//! tree (no transaction, no flush of their own): the writer's next group
//! makes them durable. Values are expiry u64 BE ++ the record, as in kv.

use super::kv::{join, live, split};
use super::sled_error;
use super::trees::Trees;
use crate::Result;

pub(crate) fn put(trees: &Trees, records: &[(String, Vec<u8>)], ttl_secs: u64, now: u64) -> Result<()> {
    let expires = now.saturating_add(ttl_secs.max(1));
    for (key, record) in records {
        trees.records.insert(key.as_bytes(), join(expires, record)).map_err(sled_error)?;
    }
    Ok(())
}

pub(crate) fn get(trees: &Trees, key: &str, now: u64) -> Result<Option<Vec<u8>>> {
    let raw = trees.records.get(key.as_bytes()).map_err(sled_error)?;
    Ok(raw.and_then(|raw| {
        let (exp, v) = split(&raw);
        live(exp, now).then(|| v.to_vec())
    }))
}

pub(crate) fn scan(trees: &Trees, prefix: &str, limit: usize, now: u64) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for item in trees.records.scan_prefix(prefix.as_bytes()) {
        let (k, v) = item.map_err(sled_error)?;
        let (exp, record) = split(&v);
        if live(exp, now) {
            out.push((String::from_utf8_lossy(&k).into_owned(), record.to_vec()));
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

pub(crate) fn sweep(trees: &Trees, trim_prefix: &str, keep: usize, now: u64) -> Result<usize> {
    let mut removed = 0;
    let mut remove = |k: &sled::IVec, v: sled::IVec| -> Result<()> {
        // Only if unchanged since read (a concurrent put wins).
        if trees.records.compare_and_swap(k, Some(v), None::<&[u8]>).map_err(sled_error)?.is_ok() {
            removed += 1;
        }
        Ok(())
    };
    for item in trees.records.iter() {
        let (k, v) = item.map_err(sled_error)?;
        if !live(split(&v).0, now) {
            remove(&k, v)?;
        }
    }
    let under = trees.records.scan_prefix(trim_prefix.as_bytes()).count();
    if under > keep {
        for item in trees.records.scan_prefix(trim_prefix.as_bytes()).take(under - keep) {
            let (k, v) = item.map_err(sled_error)?;
            remove(&k, v)?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_expire_and_the_oldest_are_trimmed_to_a_count() {
        let dir = tempfile::tempdir().unwrap();
        let trees = Trees::open_at(dir.path(), &Default::default()).unwrap();
        put(&trees, &[("m/1".into(), b"one".to_vec()), ("s/a/0".into(), b"@m/1".to_vec())], 10, 100).unwrap();
        for n in 0..5 {
            put(&trees, &[(format!("s/b/{n}"), b"refused".to_vec())], 1000, 100).unwrap();
        }
        assert_eq!(get(&trees, "s/a/0", 105).unwrap(), Some(b"@m/1".to_vec()), "each key its own record");
        assert_eq!(get(&trees, "m/1", 110).unwrap(), None, "expired at its deadline");
        assert_eq!(scan(&trees, "s/b/", 3, 105).unwrap().len(), 3, "at most the limit");
        // m/1 and s/a/0 expired (2), then s/ keeps its last 3 of 5 (2 more).
        assert_eq!(sweep(&trees, "s/", 3, 200).unwrap(), 4);
        let left: Vec<String> = scan(&trees, "s/", 10, 200).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(left, ["s/b/2", "s/b/3", "s/b/4"]);
    }
}
