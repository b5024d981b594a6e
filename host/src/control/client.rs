//! The CLI side: talk to the running server, or act on the store directly.

use super::{Request, Response, execute_store};
use crate::config::{Config, StoreBackend};
use anyhow::{Context, Result};
use ferrymail_store::postgres::describe_url;
use ferrymail_store::{SharedStore, StoreError};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

/// Sends `request` to the running server if there is one, else executes it
/// against the store opened by this process.
pub fn run(config: &Config, request: &Request) -> Result<Response> {
    if let Some(response) = to_server(config, request)? {
        return Ok(response);
    }
    if matches!(request, Request::Reload) {
        anyhow::bail!("no server is running on {} (no control socket)", config.control_socket().display());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = open_store(config).await?;
        let response = execute_store(&*store, request).await;
        if let Err(e) = store.close().await {
            return Ok(Response::err(format!("closing the store: {e}")));
        }
        Ok(response)
    })
}

/// Sends `request` to the running server; None when no server runs.
pub fn to_server(config: &Config, request: &Request) -> Result<Option<Response>> {
    let Ok(mut stream) = UnixStream::connect(config.control_socket()) else {
        return Ok(None);
    };
    let mut json = serde_json::to_vec(request)?;
    json.push(b'\n');
    stream.write_all(&json).context("sending to the server")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).context("reading the server's answer")?;
    Ok(Some(serde_json::from_str(&line).context("decoding the server's answer")?))
}

/// Opens the configured store: sled in `data_dir`, or the PostgreSQL
/// database of `[store]` (migrated to this build's schema, listening for
/// other nodes' changes). Errors name the config key.
pub async fn open_store(config: &Config) -> Result<SharedStore> {
    match config.store.backend {
        StoreBackend::Sled => {
            let config = config.clone();
            tokio::task::spawn_blocking(move || open_sled(&config)).await?
        }
        StoreBackend::Postgres => {
            let options = postgres_options(config)?;
            let store = ferrymail_store::PostgresStore::open(options)
                .await
                .map_err(|e| anyhow::anyhow!("store.url ({}): {e}", describe_url(&config.store.url)))?;
            Ok(std::sync::Arc::new(store))
        }
    }
}

/// How to reach the database of `[store]`, the password read now.
pub fn postgres_options(config: &Config) -> Result<ferrymail_store::PostgresOptions> {
    let mut options = ferrymail_store::PostgresOptions::new(&config.store.url);
    options.password =
        config.store.read_password().map_err(|e| anyhow::anyhow!("config key store.password_file: {e}"))?;
    options.pool_size = config.store.pool_size;
    options.connect_timeout = config.store.connect_timeout;
    Ok(options)
}

/// Opens the embedded store of `config.data_dir`. Blocking.
fn open_sled(config: &Config) -> Result<SharedStore> {
    let dir = config.store_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("config key data_dir: cannot create {}", dir.display()))?;
    let options = ferrymail_store::EmbeddedOptions { cache_bytes: config.store_cache_bytes, ..Default::default() };
    ferrymail_store::open_embedded(&dir, options).map_err(|e| match e {
        StoreError::Locked { .. } => anyhow::anyhow!(
            "the store in {} is locked by a running ferrymail whose control socket is missing",
            dir.display()
        ),
        other => anyhow::anyhow!("data_dir {}: {other}", dir.display()),
    })
}
