//! Statements through each connection's statement cache (one round trip
//! per statement after its first use on a connection), and the
//! conversions between the records' unsigned values and PostgreSQL's
//! signed columns.

use super::error::Fail;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(crate) async fn rows<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Fail> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query(&statement, params).await?)
}

pub(crate) async fn opt<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Option<Row>, Fail> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&statement, params).await?)
}

pub(crate) async fn one<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Row, Fail> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query_one(&statement, params).await?)
}

pub(crate) async fn exec<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<u64, Fail> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.execute(&statement, params).await?)
}

/// An unsigned value of a record as a bigint column. Ids come from
/// sequences and times are seconds, all far below 2^63; a larger value
/// (a made-up id asked for) maps to a negative number that matches nothing.
pub(crate) fn i(v: u64) -> i64 {
    v as i64
}

/// A bigint column back as the record's unsigned value.
pub(crate) fn u(v: i64) -> u64 {
    v as u64
}

/// A bigint column holding a 32-bit value (UIDs, mailbox ids, counters).
pub(crate) fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}
