//! The PostgreSQL backend: several ferrymail nodes share one database.
//!
//! # How it keeps the contract
//! - Every change is one transaction on a pooled connection whose session
//!   runs with `synchronous_commit = on`: `Ok` means PostgreSQL flushed the
//!   commit (durable on return). Deadlocks and serialisation failures roll
//!   back whole and are run again ([`in_txn!`]).
//! - A mailbox's row is its lock: a change to its messages updates the row
//!   first (next UID, modseq, counters), so two nodes never hand out one
//!   UID and counters stay exact. Several mailboxes are locked in (account,
//!   id) order.
//! - Kv and trace writes use a second pool whose sessions run with
//!   `synchronous_commit = off`: visible at once, durable within
//!   PostgreSQL's WAL writer delay, never half-written — the contract's
//!   exception for them, without a flush per write.
//! - Changes are announced with `pg_notify` inside the transaction that
//!   makes them (delivered only if it commits, in commit order); one
//!   listening connection per node feeds the node's [`ChangeHub`]
//!   ([`notify`]), so an IMAP IDLE on one node hears a delivery on another.
//! - An unreachable database is [`crate::StoreError::Unavailable`] (a 4xx
//!   for clients); the pool reconnects by itself when it is back.
//!
//! # Layout
//! [`migrate`] (versioned schema, `schema_migrations`), [`blobs`] (message
//! bytes, the narrow interface an object store could replace), `accounts`,
//! `mailboxes`, `mail`, `queue`, `kv`, `traces` (the operations), `api` (the
//! trait implementations), [`notify`], [`cluster`] (a throw-away cluster
//! for tests).

mod accounts;
mod api;
mod blobs;
#[doc(hidden)]
pub mod cluster;
mod error;
mod kv;
mod mail;
mod mailboxes;
pub mod migrate;
mod notify;
mod query;
mod queue;
mod tracebuf;

use crate::contract::ChangeHub;
use crate::{Result, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use error::{Fail, pg_error};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::NoTls;

pub use migrate::SCHEMA_VERSION;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// libpq-style: `postgres://user@host:5432/db?sslmode=disable` or
    /// `host=… user=… dbname=…`.
    pub url: String,
    /// Overrides a password in `url` (read from a file or the environment
    /// by the caller, so it is never in the configuration file).
    pub password: Option<String>,
    /// Connections for changes and reads; kv and traces get a quarter more.
    pub pool_size: usize,
    /// How long to wait for a connection (new or from the pool) before the
    /// call fails as unavailable: an SMTP client then hears 4xx in time.
    pub connect_timeout: Duration,
}

impl PostgresOptions {
    pub fn new(url: &str) -> PostgresOptions {
        PostgresOptions { url: url.to_string(), password: None, pool_size: 16, connect_timeout: Duration::from_secs(5) }
    }
}

/// The PostgreSQL store. Cheap to share behind an `Arc`; dropping it stops
/// its listener and closes its connections.
pub struct PostgresStore {
    /// Sessions with `synchronous_commit = on`: every change.
    pool: Pool,
    /// Sessions with `synchronous_commit = off`: kv and trace writes.
    lazy: Pool,
    hub: Arc<ChangeHub>,
    /// Where the listener sends what it hears: `hub`, and the queue's wake-ups.
    heard: Arc<notify::Listeners>,
    node: Arc<notify::Node>,
    /// The change listener and the trace writer.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Trace records with no change to ride on, until written.
    traces: Arc<tracebuf::Pending>,
    /// The rest of the last block of ids taken from the `ids` sequence.
    ids: Mutex<std::ops::Range<u64>>,
}

/// Ids per block of the `ids` sequence (its INCREMENT BY).
const ID_BLOCK: u64 = 64;

/// Checks `url` as [`PostgresStore::open`] will read it, without
/// connecting; the error says what is wrong (never the password).
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let config: tokio_postgres::Config =
        url.parse().map_err(|e| format!("not a PostgreSQL URL (postgres://user@host/db) or key=value string: {e}"))?;
    if config.get_hosts().is_empty() {
        return Err("names no host (postgres://user@HOST/db)".into());
    }
    if config.get_user().is_none() {
        return Err("names no user (postgres://USER@host/db)".into());
    }
    // Connections are made without TLS: a URL that demands it would fail
    // at every connect, so it is refused here, at start-up, once.
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err("sslmode=require: TLS to PostgreSQL is not supported yet (a trusted network or a tunnel, \
                    sslmode=disable or prefer)"
            .into());
    }
    Ok(())
}

/// `user@host:port/dbname` of `url`, for messages: never the password.
pub fn describe_url(url: &str) -> String {
    use tokio_postgres::config::Host;
    let Ok(config) = url.parse::<tokio_postgres::Config>() else { return "(invalid URL)".into() };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{}/{db}", hosts.join(","))
}

/// `ferrymail store migrate`: brings the database's schema up to
/// [`SCHEMA_VERSION`] and returns the versions applied (empty: it was
/// current). What [`PostgresStore::open`] does first, without the rest.
pub async fn migrate_schema(options: &PostgresOptions) -> Result<Vec<i32>> {
    let config = pg_config(options)?;
    let (mut client, connection) = config.connect(NoTls).await.map_err(pg_error)?;
    let driver = tokio::spawn(connection);
    let applied = migrate::run(&mut client).await.map_err(Fail::into_store);
    drop(client);
    let _ = driver.await;
    applied
}

fn pg_config(options: &PostgresOptions) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config =
        options.url.parse().map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?;
    if let Some(password) = &options.password {
        config.password(password.as_bytes());
    }
    config.connect_timeout(options.connect_timeout);
    if config.get_application_name().is_none() {
        config.application_name("ferrymail");
    }
    // A dead peer is noticed in seconds, not at TCP's default of hours.
    config.keepalives(true).keepalives_idle(Duration::from_secs(10));
    Ok(config)
}

/// `config` whose sessions set `setting` (appended to the URL's options).
fn with_setting(config: &tokio_postgres::Config, setting: &str) -> tokio_postgres::Config {
    let mut config = config.clone();
    let options = match config.get_options() {
        Some(o) if !o.is_empty() => format!("{o} -c {setting}"),
        _ => format!("-c {setting}"),
    };
    config.options(options);
    config
}

fn pool(config: tokio_postgres::Config, size: usize, timeout: Duration) -> Result<Pool> {
    // Fast: a connection is reused unless closed; a statement on a broken
    // one fails (4xx) and the next checkout replaces it.
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(|e| StoreError::Unavailable(format!("PostgreSQL connection pool: {e}")))
}

impl PostgresStore {
    /// Connects, applies pending migrations and starts listening for other
    /// nodes' changes. Fails with [`StoreError::Unavailable`] when the
    /// database cannot be reached, [`StoreError::SchemaVersion`] when it was
    /// migrated by a newer ferrymail.
    pub async fn open(options: PostgresOptions) -> Result<PostgresStore> {
        let config = pg_config(&options)?;
        let applied = migrate_schema(&options).await?;
        if !applied.is_empty() {
            tracing::info!(versions = ?applied, "PostgreSQL schema migrated");
        }
        let timeout = options.connect_timeout;
        let durable = pool(with_setting(&config, "synchronous_commit=on"), options.pool_size, timeout)?;
        let lazy = pool(with_setting(&config, "synchronous_commit=off"), options.pool_size.div_ceil(4), timeout)?;
        let hub = Arc::new(ChangeHub::default());
        let heard = Arc::new(notify::Listeners { hub: hub.clone(), queue: tokio::sync::watch::channel(0).0 });
        let node = notify::Node::new();
        let listener = notify::listen(config, heard.clone(), node.clone()).await?;
        let traces = Arc::new(tracebuf::Pending::default());
        let writer = tracebuf::spawn_writer(traces.clone(), lazy.clone());
        Ok(PostgresStore {
            pool: durable,
            lazy,
            hub,
            heard,
            node,
            tasks: Mutex::new(vec![listener, writer]),
            traces,
            ids: Mutex::new(0..0),
        })
    }

    /// A new id from the shared sequence, a block at a time.
    async fn take_id(&self) -> Result<u64> {
        if let Some(id) = self.ids.lock().unwrap_or_else(|e| e.into_inner()).next() {
            return Ok(id);
        }
        let client = self.pool.get().await.map_err(error::pool_error)?;
        let start: i64 = client.query_one("SELECT nextval('ids')", &[]).await.map_err(pg_error)?.get(0);
        let start = start as u64;
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        *ids = start + 1..start + ID_BLOCK;
        Ok(start)
    }

    fn stop_tasks(&self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

/// Runs `$body` in one transaction on the durable pool: `$tx` is the
/// transaction, `$ann` the changes to announce (sent with `pg_notify`
/// just before the commit, and heard back before this returns). `?` inside the body rolls back. A deadlock or
/// serialisation failure runs the whole body again (nothing of the failed
/// attempt is left); anything else is the caller's error.
macro_rules! in_txn {
    ($store:expr, |$tx:ident, $ann:ident| $body:block) => {{
        let mut attempt = 0u32;
        loop {
            let result: ::std::result::Result<_, $crate::postgres::error::Fail> = async {
                let mut client = $store.pool.get().await?;
                let $tx = client.transaction().await?;
                #[allow(unused_mut)]
                let mut $ann = $crate::postgres::notify::Announce::default();
                let value = $body;
                let receipt = $ann.send(&$tx, &$store.node).await?;
                $tx.commit().await?;
                if let Some(receipt) = receipt {
                    receipt.wait().await;
                }
                Ok(value)
            }
            .await;
            match result {
                Err(e) if e.retryable() && attempt < 8 => {
                    attempt += 1;
                    tracing::debug!(attempt, "PostgreSQL transaction retried after a deadlock");
                }
                other => break other.map_err($crate::postgres::error::Fail::into_store),
            }
        }
    }};
}
pub(crate) use in_txn;

#[cfg(test)]
mod battery_tests;
#[cfg(test)]
#[path = "postgres_tests.rs"]
mod tests;
