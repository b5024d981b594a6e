//! The behavioural battery against the PostgreSQL backend: each case gets
//! a fresh database in the test process's throw-away cluster.

use super::cluster::Cluster;
use super::{PostgresOptions, PostgresStore};
use std::sync::Arc;

pub(super) async fn fresh_store() -> crate::SharedStore {
    let cluster = tokio::task::spawn_blocking(Cluster::shared).await.unwrap();
    let db = tokio::task::spawn_blocking(|| Cluster::shared().create_database()).await.unwrap();
    let mut options = PostgresOptions::new(&cluster.url(&db));
    options.pool_size = 8;
    Arc::new(PostgresStore::open(options).await.expect("open the PostgreSQL store"))
}

crate::store_battery!(|| async { ((), fresh_store().await) });
