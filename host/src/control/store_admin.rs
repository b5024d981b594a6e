//! `ferrymail store …`: acts on the configured store itself, not on
//! its contents (those are `user`, `queue`, `trace`).

use super::client::{open_store, postgres_options};
use crate::config::{Config, StoreBackend};
use anyhow::Result;
use ferrymail_store::postgres::{SCHEMA_VERSION as PG_SCHEMA_VERSION, describe_url};

/// `ferrymail store migrate`: what was applied, as one line.
pub async fn migrate(config: &Config) -> Result<String> {
    match config.store.backend {
        StoreBackend::Sled => {
            let dir = config.store_dir();
            let version = ferrymail_store::schema::SCHEMA_VERSION;
            // The running server holds the store; it migrated it when it started.
            if std::os::unix::net::UnixStream::connect(config.control_socket()).is_ok() {
                return Ok(format!(
                    "sled store in {}: in use by the running server, which migrated it to schema version {version} \
                     when it started",
                    dir.display()
                ));
            }
            // Opening migrates (and refuses a newer schema).
            let store = open_store(config).await?;
            store.close().await?;
            Ok(format!("sled store in {}: schema version {version}", dir.display()))
        }
        StoreBackend::Postgres => {
            let options = postgres_options(config)?;
            let where_ = describe_url(&config.store.url);
            let applied = ferrymail_store::postgres::migrate_schema(&options)
                .await
                .map_err(|e| anyhow::anyhow!("store.url ({where_}): {e}"))?;
            Ok(match applied.as_slice() {
                [] => format!("PostgreSQL {where_}: schema version {PG_SCHEMA_VERSION}, nothing to apply"),
                versions => format!(
                    "PostgreSQL {where_}: applied schema version{} {}; now at {PG_SCHEMA_VERSION}",
                    if versions.len() == 1 { "" } else { "s" },
                    versions.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
                ),
            })
        }
    }
}
