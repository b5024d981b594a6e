//! The wasmtime component runtime behind ferrymail's `Policy`: plugin
//! chains per tenant, each call sandboxed (deadline, memory cap, no WASI
//! unless granted), reloadable without dropping sessions.
//!
//! ```ignore
//! let runtime = PluginRuntime::new(&cfg, host_services, RuntimeOptions::default()).await?;
//! let policy = runtime.policy();          // a snapshot; sessions hold one
//! runtime.reload(&new_cfg).await?;        // swaps only if every plugin loads
//! ```
//!
//! # Layout
//! - [`config`]: the `plugins`/`milters`/`chain`/`tenants`/`sandbox`/`retry` config keys
//! - `plan`: config checks, chain composition, per-tenant plugin config
//! - [`runtime`]: engine, compilation, reload ([`PluginRuntime`])
//! - `plugin`: loaded components, per-(tenant, plugin) bindings and warm instances
//! - `sandbox`: a store's WASI context, memory cap and deadline
//! - `directory`: who owns which domain (built before the bindings), and
//!   the chains lent to a hook call for `directory.resolve`, depth-limited
//! - `chain`, `walk`, `policy`: tenant selection, the one chain walker, `impl Policy` for a snapshot
//! - `isolation`: answers checked against the tenant they ran for
//! - `imports`: the host side of the capability imports; `message`: the message resource
//! - `bindings` + `convert`: the one `bindgen!` site and type conversions
//! - `validate`: the rules every guest answer must pass before the host uses it
//! - [`services`]: [`HostServices`], what the server provides
//! - [`inspect()`]: `ferrymail plugin check`
//! - [`milter`]: the chain element `milter:NAME` (milter protocol v6, a connection per SMTP session)
//! - [`builtin`]: the embedded components; [`testing`]: an in-memory host

mod bindings;
pub mod builtin;
mod chain;
pub mod config;
mod convert;
mod directory;
mod imports;
mod inspect;
mod isolation;
mod message;
pub mod milter;
mod plan;
mod plugin;
mod policy;
pub mod runtime;
mod sandbox;
pub mod services;
pub mod testing;
mod validate;
mod walk;

pub use config::{
    DEFAULT_POLICY_TOML, DisclosureMode, FailurePolicy, Grants, Interrupt, PluginDecl, PolicyConfig, Preopen,
    RetryConfig, SandboxConfig, TenantConfig,
};
pub use inspect::{PluginInfo, inspect};
pub use milter::MilterDecl;
pub use runtime::{PluginRuntime, RuntimeOptions};
pub use services::{HostServices, ServiceError};

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = "ferrymail:plugin";
/// Its version; guests built against any 0.1.x load.
pub const WIT_VERSION: &str = "0.1.0";

/// The key-value namespace of `plugin` for `tenant` (`None`: the global
/// chain), as the store holds it: what a test reads to check a plugin's kv.
pub fn kv_namespace(tenant: Option<&str>, plugin: &str) -> String {
    sandbox::namespace(tenant, plugin)
}

/// A loaded plugin, for logs and `config check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSummary {
    pub name: String,
    pub path: String,
    pub hooks: Vec<&'static str>,
}

/// Why the runtime could not (re)load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is wrong; one line per problem, each naming its key.
    #[error("plugin configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// Plugins that failed to load; one line per plugin.
    #[error("plugins failed to load: {}", .0.join("; "))]
    Plugins(Vec<String>),
    /// The wasmtime engine could not be set up.
    #[error("plugin engine: {0:#}")]
    Engine(wasmtime::Error),
    /// `inspect` was given something that is not a component.
    #[error("{0}")]
    Inspect(String),
}

// The server shares one runtime between its tasks and the reload handler.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<PluginRuntime>();
};
