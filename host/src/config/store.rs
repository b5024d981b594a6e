//! `[store]`: which backend keeps the mail — sled in `data_dir` (one
//! node), or a PostgreSQL database several nodes share.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// "sled": data_dir/store, one process. "postgres": the database at
    /// `url`, shared by every node configured with it.
    pub backend: StoreBackend,
    /// PostgreSQL only, libpq-style: `postgres://user@host:5432/db` or
    /// `host=… user=… dbname=…`. Better without the password (it would show
    /// in `ferrymail config check`): see `password_file` and `password`.
    pub url: String,
    /// A file holding the database password (trailing newline ignored).
    pub password_file: PathBuf,
    /// The database password, meant for the environment variable
    /// FERRYMAIL_STORE__PASSWORD; never printed, never serialised.
    #[serde(default, skip_serializing)]
    pub password: Secret,
    /// Database connections for changes and reads; plugin kv and traces
    /// use a quarter as many more.
    pub pool_size: usize,
    /// Connecting, or waiting for a free connection, gives up after this:
    /// the SMTP client then hears 4xx in time instead of waiting on a
    /// database that is down.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// This node's name on the queue entries it delivers; empty: `hostname`.
    /// Nodes sharing a database must have different names: a node that
    /// starts takes back the leases held under its name.
    pub node_name: String,
    /// How long a queue entry being delivered stays claimed; the node
    /// renews it while it delivers, so only a node that died lets it run
    /// out, and another node then delivers the entry.
    #[serde(with = "humantime_serde")]
    pub queue_lease: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    Sled,
    Postgres,
}

/// A password: `Debug` shows that it is set, never what it is.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"<secret>\"" })
    }
}

impl StoreConfig {
    /// Problems as (key, why), for [`super::Config::validate`].
    pub(super) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.queue_lease < Duration::from_secs(3) {
            problems.push(("store.queue_lease", "must be at least 3s (it is renewed every third of it)".to_string()));
        }
        match self.backend {
            StoreBackend::Sled => {
                if !self.url.is_empty() {
                    problems.push((
                        "store.url",
                        "is set but store.backend is \"sled\" (set backend = \"postgres\")".into(),
                    ));
                }
            }
            StoreBackend::Postgres => {
                if self.url.is_empty() {
                    problems.push(("store.url", "must be set when store.backend is \"postgres\"".into()));
                } else if let Err(why) = ferrymail_store::postgres::check_url(&self.url) {
                    problems.push(("store.url", why));
                }
                if self.pool_size == 0 {
                    problems.push(("store.pool_size", "must be at least 1".into()));
                }
                if self.connect_timeout.is_zero() {
                    problems.push(("store.connect_timeout", "must be greater than zero".into()));
                }
                if let Err(why) = self.read_password() {
                    problems.push(("store.password_file", why));
                }
            }
        }
        problems
    }

    /// The password from `password_file` or `password` (None: the URL's,
    /// or none). Both set is an error: which one wins would be a guess.
    pub fn read_password(&self) -> Result<Option<String>, String> {
        match (self.password_file.as_os_str().is_empty(), self.password.is_empty()) {
            (true, true) => Ok(None),
            (true, false) => Ok(Some(self.password.expose().to_string())),
            (false, false) => Err("and store.password (FERRYMAIL_STORE__PASSWORD) are both set; keep one".into()),
            (false, true) => {
                let path = &self.password_file;
                let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let password = text.trim_end_matches(['\r', '\n']);
                if password.is_empty() {
                    return Err(format!("{} is empty", path.display()));
                }
                Ok(Some(password.to_string()))
            }
        }
    }
}
