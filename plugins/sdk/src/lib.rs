//! The Rust SDK for ferrymail policy plugins.
//!
//! A plugin is a type implementing [`Plugin`]; every hook has a default that
//! continues, and the [`plugin`] attribute exports exactly the hooks the impl
//! block writes (the host calls no others):
//!
//! ```ignore
//! use ferrymail_plugin_sdk::*;
//!
//! struct NoSpamtrap;
//!
//! #[plugin]
//! impl Plugin for NoSpamtrap {
//!     fn new() -> Self { NoSpamtrap }
//!     fn rcpt(&self, _s: &Session, _e: &Envelope, rcpt: &str) -> Verdict {
//!         if rcpt.starts_with("trap@") { Verdict::reject(550, "5.7.1", "No") } else { Verdict::Continue }
//!     }
//! }
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` (crate type
//! `cdylib`); check with `ferrymail plugin check target/…/x.wasm`.
//!
//! # Layout
//! - [`wit`]: the generated bindings (types and host imports)
//! - [`reply`](mod@reply): constructors for replies and verdicts
//! - [`host`], [`kv`], [`dns`], [`directory`]: the capabilities, wrapped

pub mod reply;

/// Bindings generated from the SDK's own copy of the WIT (`wit/`, the
/// repository's `wit/` at this SDK's version, kept identical by a test), so
/// the SDK builds as a git, registry or vendored dependency. Plugins use the
/// re-exports at the crate root; this is public for the `plugin` macro.
#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        path: "wit",
        world: "ferrymail:plugin/imports",
        generate_all,
    });
}

pub use ferrymail_plugin_sdk_macros::plugin;
pub use reply::domain_of;
pub use wit::ferrymail::plugin::dns::MxHost;
pub use wit::ferrymail::plugin::host::Level;
pub use wit::ferrymail::plugin::types::{
    AuthOk, AuthRequest, AuthResult, DataResult, DeliveryEvent, Destination, Envelope, Header, HostError, Message,
    RelayHost, Reply, RetryContext, RetryDecision, RouteContext, Service, Session, Verdict,
};

/// The WIT package version this SDK implements; the host checks it at load.
pub const WIT_VERSION: &str = "0.1.0";

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

/// A policy plugin. One value is built per instance (per tenant and plugin,
/// on the first hook call), so `new` is the place to read [`host::config`].
/// Every hook defaults to "no opinion"; override the ones you need and put
/// `#[plugin]` on the impl block.
#[allow(unused_variables)]
pub trait Plugin: Sized + 'static {
    /// Build the plugin; runs once per instance, before its first hook.
    fn new() -> Self;

    /// After the TCP accept, before the greeting.
    fn connect(&self, session: &Session) -> Verdict {
        Verdict::Continue
    }
    /// On HELO/EHLO.
    fn helo(&self, session: &Session, name: &str, ehlo: bool) -> Verdict {
        Verdict::Continue
    }
    /// On SMTP AUTH, POP3 USER/PASS, IMAP LOGIN.
    fn auth(&self, request: &AuthRequest) -> AuthResult {
        AuthResult::Continue
    }
    /// On MAIL FROM (`sender` is "" for `<>`).
    fn mail(&self, session: &Session, sender: &str) -> Verdict {
        Verdict::Continue
    }
    /// On each RCPT TO.
    fn rcpt(&self, session: &Session, envelope: &Envelope, rcpt: &str) -> Verdict {
        Verdict::Continue
    }
    /// After the message arrived, before the 250.
    fn data(&self, session: &Session, envelope: &Envelope, message: &Message) -> DataResult {
        DataResult { verdict: Verdict::Continue, add_headers: Vec::new() }
    }
    /// The reply to VRFY; `None` asks the next plugin.
    fn vrfy(&self, session: &Session, arg: &str) -> Option<Reply> {
        None
    }
    /// The reply to EXPN; `None` asks the next plugin.
    fn expn(&self, session: &Session, arg: &str) -> Option<Reply> {
        None
    }
    /// Where a recipient goes; `None` asks the next plugin.
    fn route(&self, ctx: &RouteContext) -> Option<Destination> {
        None
    }
    /// After a failed delivery attempt; `None` asks the next plugin.
    fn retry(&self, ctx: &RetryContext) -> Option<RetryDecision> {
        None
    }
    /// A recipient was delivered.
    fn delivered(&self, event: &DeliveryEvent) {}
    /// A recipient was bounced.
    fn bounced(&self, event: &DeliveryEvent) {}
}

/// Always-available host functions: log, config, clock.
pub mod host {
    use crate::wit::ferrymail::plugin::host as h;
    pub use h::Level;

    pub fn log(level: Level, message: &str) {
        h::log(level, message)
    }
    pub fn info(message: &str) {
        h::log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        h::log(Level::Warn, message)
    }
    pub fn debug(message: &str) {
        h::log(Level::Debug, message)
    }

    /// This plugin's config for the tenant being served, as JSON.
    pub fn config_value() -> serde_json::Value {
        serde_json::from_str(&h::config()).unwrap_or(serde_json::Value::Null)
    }

    /// This plugin's config, deserialized; `Err` names what is wrong (log it).
    pub fn config<T: serde::de::DeserializeOwned>() -> Result<T, String> {
        serde_json::from_str(&h::config()).map_err(|e| format!("bad plugin config: {e}"))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms() -> u64 {
        h::now()
    }
}

/// The key-value store private to (tenant, plugin).
pub mod kv {
    use crate::HostError;
    pub use crate::wit::ferrymail::plugin::kv::{delete, get, incr, set};

    /// A UTF-8 value; a non-UTF-8 value reads as absent.
    pub fn get_string(key: &str) -> Result<Option<String>, HostError> {
        Ok(get(key)?.and_then(|v| String::from_utf8(v).ok()))
    }
}

/// DNS look-ups done by the host (needs `grants.dns`).
pub mod dns {
    pub use crate::wit::ferrymail::plugin::dns::{a, aaaa, mx, txt};
}

/// Accounts, local domains, relay networks and routing (needs `grants.directory`).
pub mod directory {
    pub use crate::wit::ferrymail::plugin::directory::{
        account_exists, client_may_relay, is_local_domain, resolve, verify_password,
    };
}
