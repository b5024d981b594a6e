//! Versioned schema migrations, applied at open. Each version runs once
//! and leaves its row in `schema_migrations`; all pending versions run in
//! one transaction (PostgreSQL's DDL is transactional: a failed migration
//! leaves the old schema whole). Nodes starting together wait on an
//! advisory lock, so exactly one applies a version and the others see it.

use super::error::Fail;
use crate::StoreError;
use tokio_postgres::Client;

/// Every version, in order. A released migration is never edited: a
/// change to the schema is a new entry.
pub(crate) const MIGRATIONS: &[(i32, &str, &str)] = &[(1, "initial schema", include_str!("sql/0001_initial.sql"))];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Any number; only ferrymail takes this advisory lock in its database.
const MIGRATION_LOCK: i64 = 0x6665_7272_796d_6c01;

/// Brings the schema up to [`SCHEMA_VERSION`]; returns the versions applied.
/// A database newer than this build is refused, never touched.
pub(crate) async fn run(client: &mut Client) -> Result<Vec<i32>, Fail> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             description text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: Option<i32> = tx.query_one("SELECT max(version) FROM schema_migrations", &[]).await?.get(0);
    let found = found.unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaVersion { found: found as u32, supported: SCHEMA_VERSION as u32 }.into());
    }
    let mut applied = Vec::new();
    for &(version, description, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > found) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_migrations (version, description) VALUES ($1, $2)", &[&version, &description])
            .await?;
        applied.push(version);
    }
    tx.commit().await?;
    Ok(applied)
}
