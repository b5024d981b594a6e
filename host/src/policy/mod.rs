//! How the server obtains its `Policy`: the wasm plugin chain
//! (ferrymail-plugin-host) over [`StoreServices`]. Tests use the same chain
//! (the embedded default plugins) over a real store, never a stand-in.

mod services;

use crate::config::Config;
pub use services::StoreServices;

/// `postmaster` without a domain means the postmaster of our first domain.
pub fn qualify(address: &str, config: &Config) -> String {
    if address.contains('@') {
        address.to_string()
    } else {
        format!("{address}@{}", config.local_domains.first().map(String::as_str).unwrap_or(&config.hostname))
    }
}
