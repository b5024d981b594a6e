//! The plugins' key-value data and the decision traces, on the pool whose
//! sessions commit without waiting for the WAL flush (the contract lets
//! these writes be lost in a power cut, never half-written). Expiry is a
//! column: 0 keeps a value until deleted.

use super::error::Fail;
use super::query::{exec, i, opt, rows};
use crate::StoreError;
use crate::schema::TraceWrite;
use deadpool_postgres::GenericClient;

fn expiry(now: u64, ttl_secs: Option<u64>) -> i64 {
    ttl_secs.map(|t| i(now.saturating_add(t.max(1)))).unwrap_or(0)
}

pub(crate) async fn get<C: GenericClient>(c: &C, ns: &str, key: &[u8], now: u64) -> Result<Option<Vec<u8>>, Fail> {
    let row = opt(
        c,
        "SELECT value FROM kv WHERE namespace = $1 AND key = $2 AND (expires = 0 OR expires > $3)",
        &[&ns.as_bytes(), &key, &i(now)],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

pub(crate) async fn set<C: GenericClient>(
    c: &C,
    ns: &str,
    key: &[u8],
    value: &[u8],
    ttl: Option<u64>,
    now: u64,
) -> Result<(), Fail> {
    exec(
        c,
        "INSERT INTO kv (namespace, key, value, expires) VALUES ($1, $2, $3, $4)
         ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
        &[&ns.as_bytes(), &key, &value, &expiry(now, ttl)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn delete<C: GenericClient>(c: &C, ns: &str, key: &[u8]) -> Result<(), Fail> {
    exec(c, "DELETE FROM kv WHERE namespace = $1 AND key = $2", &[&ns.as_bytes(), &key]).await?;
    Ok(())
}

/// One statement, so concurrent increments on any node serialise on the
/// row: a live 8-byte counter is added to (keeping its expiry), a missing
/// or expired one starts from `delta` with a fresh expiry, a live value of
/// another shape is left as it is (and reported).
pub(crate) async fn incr<C: GenericClient>(
    c: &C,
    ns: &str,
    key: &[u8],
    delta: i64,
    ttl: Option<u64>,
    now: u64,
) -> Result<i64, Fail> {
    let fresh = delta.to_le_bytes();
    // The counter is little-endian; int8send gives big-endian, so the
    // bytes are reversed both ways.
    let row = opt(
        c,
        "INSERT INTO kv AS k (namespace, key, value, expires) VALUES ($1, $2, $3, $4)
         ON CONFLICT (namespace, key) DO UPDATE SET
             value = CASE
                 WHEN k.expires <> 0 AND k.expires <= $5 THEN excluded.value
                 ELSE ferrymail_le8(ferrymail_le8_value(k.value) + $6) END,
             expires = CASE WHEN k.expires <> 0 AND k.expires <= $5 THEN excluded.expires ELSE k.expires END
         WHERE (k.expires <> 0 AND k.expires <= $5) OR length(k.value) = 8
         RETURNING value",
        &[&ns.as_bytes(), &key, &fresh.as_slice(), &expiry(now, ttl), &i(now), &delta],
    )
    .await?;
    let Some(row) = row else { return Err(StoreError::NotACounter.into()) };
    let value: &[u8] = row.get(0);
    let bytes: [u8; 8] = value.try_into().map_err(|_| StoreError::NotACounter)?;
    Ok(i64::from_le_bytes(bytes))
}

/// At most `limit` expired keys, found through the expiry index: each call
/// is bounded without a cursor, and live keys are never visited.
pub(crate) async fn sweep<C: GenericClient>(c: &C, limit: usize, now: u64) -> Result<usize, Fail> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let n = exec(
        c,
        "DELETE FROM kv WHERE ctid IN (SELECT ctid FROM kv WHERE expires <> 0 AND expires <= $1 LIMIT $2)",
        &[&i(now), &limit],
    )
    .await?;
    Ok(n as usize)
}

/// The first key after every key starting with `prefix` (`None`: no bound).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Writes trace records (replacing), each until its TTL from `now`: on
/// its own, or inside the transaction of the change it rides on.
pub(crate) async fn trace_write<C: GenericClient>(c: &C, records: &[TraceWrite], now: u64) -> Result<(), Fail> {
    if records.is_empty() {
        return Ok(());
    }
    let keys: Vec<&[u8]> = records.iter().map(|t| t.key.as_bytes()).collect();
    let values: Vec<&[u8]> = records.iter().map(|t| t.record.as_slice()).collect();
    let expires: Vec<i64> = records.iter().map(|t| i(now.saturating_add(t.ttl_secs.max(1)))).collect();
    exec(
        c,
        "INSERT INTO traces (key, record, expires)
         SELECT DISTINCT ON (k) k, r, e FROM unnest($1::bytea[], $2::bytea[], $3::bigint[]) WITH ORDINALITY AS t(k, r, e, n)
         ORDER BY k, n DESC
         ON CONFLICT (key) DO UPDATE SET record = excluded.record, expires = excluded.expires",
        &[&keys, &values, &expires],
    )
    .await?;
    Ok(())
}

pub(crate) async fn trace_get<C: GenericClient>(c: &C, key: &str, now: u64) -> Result<Option<Vec<u8>>, Fail> {
    let row = opt(c, "SELECT record FROM traces WHERE key = $1 AND expires > $2", &[&key.as_bytes(), &i(now)]).await?;
    Ok(row.map(|r| r.get(0)))
}

pub(crate) async fn trace_scan<C: GenericClient>(
    c: &C,
    prefix: &str,
    limit: usize,
    now: u64,
) -> Result<Vec<(String, Vec<u8>)>, Fail> {
    let end = prefix_end(prefix.as_bytes());
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let found = rows(
        c,
        "SELECT key, record FROM traces WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) AND expires > $3
         ORDER BY key LIMIT $4",
        &[&prefix.as_bytes(), &end, &i(now), &limit],
    )
    .await?;
    Ok(found.iter().map(|r| (String::from_utf8_lossy(r.get::<_, &[u8]>(0)).into_owned(), r.get(1))).collect())
}

pub(crate) async fn trace_sweep<C: GenericClient>(
    c: &C,
    trim_prefix: &str,
    keep: usize,
    now: u64,
) -> Result<usize, Fail> {
    let expired = exec(c, "DELETE FROM traces WHERE expires <= $1", &[&i(now)]).await?;
    let end = prefix_end(trim_prefix.as_bytes());
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let trimmed = exec(
        c,
        "DELETE FROM traces WHERE key IN (
             SELECT key FROM traces WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) ORDER BY key
             LIMIT greatest((SELECT count(*) FROM traces WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2)) - $3, 0))",
        &[&trim_prefix.as_bytes(), &end, &keep],
    )
    .await?;
    Ok((expired + trimmed) as usize)
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_ends_bound_every_key_under_the_prefix() {
        assert_eq!(prefix_end(b"s/"), Some(b"s0".to_vec()));
        assert_eq!(prefix_end(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
