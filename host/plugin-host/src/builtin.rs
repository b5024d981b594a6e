//! Components embedded in the binary, built by `build.rs` from `plugins/`.
//! `builtin:NAME` in a plugin's `path` refers to these.

macro_rules! wasm {
    ($file:literal) => {
        include_bytes!(concat!(env!("FERRYMAIL_PLUGIN_WASM_DIR"), "/", $file))
    };
}

/// Names of the embedded plugins: the defaults, then the examples.
pub const NAMES: &[&str] =
    &["auth", "local", "relay", "vrfy-expn", "retry", "rate-limit", "dmarc", "greylist", "dnsbl", "header-filter"];

/// The component bytes of the embedded plugin `name`.
pub fn component(name: &str) -> Option<&'static [u8]> {
    Some(match name {
        "auth" => wasm!("default_auth.wasm"),
        "local" => wasm!("default_local.wasm"),
        "relay" => wasm!("default_relay.wasm"),
        "vrfy-expn" => wasm!("default_vrfy_expn.wasm"),
        "retry" => wasm!("default_retry.wasm"),
        "greylist" => wasm!("example_greylist.wasm"),
        "rate-limit" => wasm!("default_rate_limit.wasm"),
        "dmarc" => wasm!("default_dmarc.wasm"),
        "dnsbl" => wasm!("example_dnsbl.wasm"),
        "header-filter" => wasm!("example_header_filter.wasm"),
        _ => return None,
    })
}

/// Where build.rs put every guest it built, including the test plugins
/// (`test_echo.wasm`, `test_looper.wasm`, …) the crate's tests load.
pub const WASM_DIR: &str = env!("FERRYMAIL_PLUGIN_WASM_DIR");
