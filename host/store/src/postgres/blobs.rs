//! Message bytes, by content id. The narrow interface the rest of the
//! backend uses for them (put, get, a range, delete), so an object store
//! could hold them instead of the `blobs` table; the reference counts and
//! summaries stay in `contents`, inside the transactions.

use super::error::Fail;
use super::query::{exec, opt, rows};
use bytes::Bytes;
use deadpool_postgres::GenericClient;
use std::collections::HashMap;

pub(crate) async fn put<C: GenericClient>(c: &C, id: i64, data: &[u8]) -> Result<(), Fail> {
    exec(c, "INSERT INTO blobs (id, data) VALUES ($1, $2)", &[&id, &data]).await?;
    Ok(())
}

pub(crate) async fn get<C: GenericClient>(c: &C, id: i64) -> Result<Option<Bytes>, Fail> {
    let row = opt(c, "SELECT data FROM blobs WHERE id = $1", &[&id]).await?;
    Ok(row.map(|r| Bytes::from(r.get::<_, Vec<u8>>(0))))
}

/// Many at once; absent ids are missing from the map.
pub(crate) async fn get_many<C: GenericClient>(c: &C, ids: &[i64]) -> Result<HashMap<i64, Bytes>, Fail> {
    let found = rows(c, "SELECT id, data FROM blobs WHERE id = ANY($1)", &[&ids]).await?;
    Ok(found.into_iter().map(|r| (r.get::<_, i64>(0), Bytes::from(r.get::<_, Vec<u8>>(1)))).collect())
}

/// `len` bytes from `offset` (fewer at the end, empty past it); `None`
/// when the blob is absent. Reads only the chunks of the range (the column
/// is stored uncompressed).
pub(crate) async fn range<C: GenericClient>(c: &C, id: i64, offset: u64, len: u64) -> Result<Option<Bytes>, Fail> {
    // substring() counts from 1 in int4; a bytea holds at most 1 GB.
    let from = i32::try_from(offset.saturating_add(1)).unwrap_or(i32::MAX);
    let count = i32::try_from(len).unwrap_or(i32::MAX);
    let row = opt(c, "SELECT substring(data FROM $2 FOR $3) FROM blobs WHERE id = $1", &[&id, &from, &count]).await?;
    Ok(row.map(|r| Bytes::from(r.get::<_, Vec<u8>>(0))))
}

pub(crate) async fn delete<C: GenericClient>(c: &C, ids: &[i64]) -> Result<(), Fail> {
    if !ids.is_empty() {
        exec(c, "DELETE FROM blobs WHERE id = ANY($1)", &[&ids]).await?;
    }
    Ok(())
}
