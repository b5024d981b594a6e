//! Key-value data for plugins, namespaced by the caller (the plugin runtime
//! builds namespaces from tenant and plugin, so one plugin never sees
//! another's keys), with optional expiry.

use crate::schema;
use crate::{Result, Store, StoreError};

fn split(raw: &[u8]) -> (u64, &[u8]) {
    if raw.len() < 8 {
        return (0, &[]);
    }
    (u64::from_be_bytes(raw[..8].try_into().unwrap_or([0; 8])), &raw[8..])
}

fn join(expires: u64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&expires.to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn expiry(now: u64, ttl_secs: Option<u64>) -> u64 {
    ttl_secs.map(|t| now.saturating_add(t.max(1))).unwrap_or(0)
}

fn live(expires: u64, now: u64) -> bool {
    expires == 0 || expires > now
}

impl Store {
    pub fn kv_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let now = crate::now_secs();
        Ok(self.trees()?.kv.get(schema::kv_key(namespace, key))?.and_then(|raw| {
            let (exp, v) = split(&raw);
            live(exp, now).then(|| v.to_vec())
        }))
    }

    pub fn kv_set(&self, namespace: &str, key: &[u8], value: &[u8], ttl_secs: Option<u64>) -> Result<()> {
        let exp = expiry(crate::now_secs(), ttl_secs);
        self.trees()?.kv.insert(schema::kv_key(namespace, key), join(exp, value))?;
        Ok(())
    }

    pub fn kv_delete(&self, namespace: &str, key: &[u8]) -> Result<()> {
        self.trees()?.kv.remove(schema::kv_key(namespace, key))?;
        Ok(())
    }

    /// Adds `delta` to a counter atomically and returns the new value. A
    /// counter is an 8-byte little-endian i64 (what plugins read back with
    /// `kv.get`). An expired or missing counter starts from zero with a
    /// fresh TTL; a live one keeps its expiry (a fixed window, as rate
    /// limits want). A live value of another shape is an error, unchanged.
    pub fn kv_incr(&self, namespace: &str, key: &[u8], delta: i64, ttl_secs: Option<u64>) -> Result<i64> {
        let now = crate::now_secs();
        let mut result = Ok(0);
        self.trees()?.kv.fetch_and_update(schema::kv_key(namespace, key), |old| {
            let (exp, current) = match old.map(split) {
                Some((exp, v)) if live(exp, now) => match <[u8; 8]>::try_from(v) {
                    Ok(bytes) => (exp, i64::from_le_bytes(bytes)),
                    Err(_) => {
                        result = Err(StoreError::NotACounter);
                        return old.map(<[u8]>::to_vec);
                    }
                },
                _ => (expiry(now, ttl_secs), 0),
            };
            let n = current.saturating_add(delta);
            result = Ok(n);
            Some(join(exp, &n.to_le_bytes()))
        })?;
        result
    }

    /// Removes expired keys; returns how many. Run periodically.
    pub fn kv_sweep(&self) -> Result<usize> {
        let now = crate::now_secs();
        let t = self.trees()?;
        let kv = &t.kv;
        let mut removed = 0;
        for item in kv.iter() {
            let (k, v) = item?;
            let (exp, _) = split(&v);
            if !live(exp, now) {
                kv.remove(k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::store;

    #[test]
    fn namespaces_are_isolated() {
        let (_d, s) = store();
        s.kv_set("tenantA/greylist", b"k", b"1", None).unwrap();
        assert_eq!(s.kv_get("tenantA/greylist", b"k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.kv_get("tenantB/greylist", b"k").unwrap(), None);
        // The separator keeps "a" + "b\0k" apart from "a\0b" + "k".
        assert_eq!(s.kv_get("tenantA", b"greylist\0k").unwrap(), None);
    }

    #[test]
    fn counters_and_expiry() {
        let (_d, s) = store();
        assert_eq!(s.kv_incr("n", b"c", 1, Some(60)).unwrap(), 1);
        assert_eq!(s.kv_incr("n", b"c", 2, Some(60)).unwrap(), 3);
        assert_eq!(s.kv_get("n", b"c").unwrap(), Some(3i64.to_le_bytes().to_vec()));
        s.kv_set("n", b"text", b"hello", None).unwrap();
        assert!(matches!(s.kv_incr("n", b"text", 1, None), Err(crate::StoreError::NotACounter)));
        assert_eq!(s.kv_get("n", b"text").unwrap(), Some(b"hello".to_vec()));
        s.kv_set("n", b"old", b"x", Some(1)).unwrap();
        // Expiry is whole seconds; a TTL in the past is simulated directly.
        s.trees().unwrap().kv.insert(crate::schema::kv_key("n", b"gone"), super::join(1, b"x")).unwrap();
        assert_eq!(s.kv_get("n", b"gone").unwrap(), None);
        assert!(s.kv_sweep().unwrap() >= 1);
        s.kv_delete("n", b"c").unwrap();
        assert_eq!(s.kv_get("n", b"c").unwrap(), None);
    }
}
