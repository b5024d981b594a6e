//! The plugin part of ferrymail's configuration: plugins, chains, tenants,
//! sandbox limits and the retry schedule. The server embeds these as
//! top-level keys; [`DEFAULT_POLICY_TOML`] is the embedded default.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The plugin part of the embedded default configuration, every key shown.
pub const DEFAULT_POLICY_TOML: &str = include_str!("default.toml");

/// Marks, in the global chain, where a tenant's own chain runs.
pub const TENANT_MARKER: &str = "@tenant";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Plugins by name. The embedded plugins (`auth`, `local`, `relay`,
    /// `vrfy-expn`, `retry`, `rate-limit`, and the examples `greylist`,
    /// `dnsbl`, `header-filter`) are declared implicitly as
    /// `path = "builtin:NAME"`; declaring one here replaces that.
    pub plugins: BTreeMap<String, PluginDecl>,
    /// The global chain, in order. `"@tenant"` marks where the tenant's chain
    /// runs; without it the tenant's chain runs first. `"milter:NAME"` asks
    /// the milter `[milters.NAME]`.
    pub chain: Vec<String>,
    /// Milters by name, for the chain element `milter:NAME`.
    pub milters: BTreeMap<String, crate::milter::MilterDecl>,
    /// Tenants by name: a set of domains with its own chain and plugin config.
    pub tenants: BTreeMap<String, TenantConfig>,
    /// Limits every plugin call runs under.
    pub sandbox: SandboxConfig,
    /// The default retry schedule (config of the `retry` plugin, and the
    /// answer when no plugin decides).
    pub retry: RetryConfig,
    /// VRFY default for the `vrfy-expn` plugin: "off" (502), "252", "reveal".
    pub vrfy: DisclosureMode,
    /// EXPN default for the `vrfy-expn` plugin: "off" (502), "252", "reveal".
    pub expn: DisclosureMode,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            plugins: BTreeMap::new(),
            chain: ["@tenant", "dmarc", "auth", "local", "relay", "vrfy-expn", "retry"].map(String::from).to_vec(),
            milters: BTreeMap::new(),
            tenants: BTreeMap::new(),
            sandbox: SandboxConfig::default(),
            retry: RetryConfig::default(),
            vrfy: DisclosureMode::Cannot,
            expn: DisclosureMode::Off,
        }
    }
}

/// One plugin: where its component is, its config, what it may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDecl {
    /// A `.wasm` component file (relative paths resolve against the
    /// runtime's base directory), or `builtin:NAME` for an embedded one.
    pub path: String,
    /// The plugin's config (any table), read by the plugin as JSON.
    #[serde(default = "empty_table")]
    pub config: serde_json::Value,
    /// What a trap, deadline or memory-cap breach becomes.
    #[serde(default)]
    pub failure: FailurePolicy,
    /// Capabilities granted to the plugin.
    #[serde(default)]
    pub grants: Grants,
}

fn empty_table() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Answer a temporary failure (451 4.3.0, auth tempfail): fail closed.
    #[default]
    Tempfail,
    /// Act as if the plugin had no opinion: fail open.
    Skip,
}

/// Capabilities. Host imports the plugin was not granted answer
/// `host-error::denied`; WASI gets nothing (no files, sockets, environment,
/// stdio) unless listed here. Unset `kv`/`dns`/`directory` default to true for
/// embedded (`builtin:`) plugins, which ship with the server; for files,
/// `kv` defaults to true (it is private to the plugin) and the others to false.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// The key-value store private to (tenant, plugin).
    pub kv: Option<bool>,
    /// DNS look-ups through the host's resolver.
    pub dns: Option<bool>,
    /// Accounts, passwords, local domains, relay networks, routing.
    pub directory: Option<bool>,
    /// WASI environment variables, name = value.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// WASI directories: a host directory visible to the plugin.
    #[serde(default)]
    pub preopens: Vec<Preopen>,
    /// WASI sockets (TCP, UDP, name look-ups) to anywhere.
    #[serde(default)]
    pub network: bool,
    /// The plugin's stdout/stderr go to the server's (for debugging).
    #[serde(default)]
    pub stdio: bool,
}

/// Resolved grants: what a plugin may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capabilities {
    pub kv: bool,
    pub dns: bool,
    pub directory: bool,
}

impl Grants {
    pub(crate) fn capabilities(&self, builtin: bool) -> Capabilities {
        Capabilities {
            kv: self.kv.unwrap_or(true),
            dns: self.dns.unwrap_or(builtin),
            directory: self.directory.unwrap_or(builtin),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preopen {
    /// Directory on the host.
    pub host: PathBuf,
    /// Where the plugin sees it.
    pub guest: String,
    /// No writes.
    #[serde(default = "yes")]
    pub read_only: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Domains of this tenant (lower-case). Mail to them, and logins of
    /// users in them, use this tenant's chain, config and kv namespace.
    pub domains: Vec<String>,
    /// Plugins that run for this tenant, where the global chain says `@tenant`.
    #[serde(default)]
    pub chain: Vec<String>,
    /// Per-plugin config merged over `[plugins.NAME] config` (tables merge
    /// key by key, the tenant's value wins).
    #[serde(default)]
    pub plugin_config: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interrupt {
    /// Wall-clock deadline via epoch interruption (a 10 ms ticker); time
    /// spent waiting in host calls (DNS, kv) does not count.
    #[default]
    Epoch,
    /// Deterministic instruction budget (`fuel` per call); slower code.
    Fuel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// How a runaway plugin is stopped.
    pub interrupt: Interrupt,
    /// Guest execution time allowed per hook call (epoch mode).
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// Instructions-ish allowed per hook call (fuel mode).
    pub fuel: u64,
    /// Linear memory per plugin instance, bytes; growing beyond traps.
    pub memory_limit: usize,
    /// The longest one host call (DNS look-up, kv, password check) may take.
    #[serde(with = "humantime_serde")]
    pub host_call_timeout: Duration,
    /// Wall-clock limit for a whole hook call, host calls included.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// Idle instances kept warm per (tenant, plugin) for reuse.
    pub warm_instances: usize,
    /// Hook calls of one tenant whose guest code may run at once; more
    /// wait in line (within `call_timeout`), so one tenant's slow or looping
    /// plugin cannot take every worker thread from the others. Time waiting
    /// on host calls (DNS, kv) does not hold a place. 0: half the CPU
    /// cores, at least 1. The global chain (no tenant) is not limited.
    pub tenant_concurrency: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            interrupt: Interrupt::Epoch,
            deadline: Duration::from_millis(200),
            fuel: 200_000_000,
            memory_limit: 128 << 20,
            host_call_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(10),
            warm_instances: 4,
            tenant_concurrency: 0,
        }
    }
}

impl SandboxConfig {
    /// `tenant_concurrency`, with 0 resolved to half the CPU cores (at
    /// least 1): a looping tenant then leaves the other half of the worker
    /// threads to everyone else.
    pub fn tenant_permits(&self) -> usize {
        match self.tenant_concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get() / 2).max(1),
            n => n,
        }
    }
}

/// The default retry schedule (RFC 5321 4.5.4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Time between attempts.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Warn the sender once (a delay DSN) after this long in the queue.
    #[serde(with = "humantime_serde")]
    pub warn_after: Duration,
    /// Return the message to the sender after this long.
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            interval: Duration::from_secs(15 * 60),
            warn_after: Duration::from_secs(4 * 3600),
            give_up_after: Duration::from_secs(5 * 86400),
        }
    }
}

/// What VRFY or EXPN reveals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DisclosureMode {
    /// 502: command disabled.
    #[serde(rename = "off")]
    Off,
    /// 252: cannot verify, will attempt delivery (RFC 5321 3.5.3).
    #[serde(rename = "252")]
    Cannot,
    /// 250 with the mailbox (VRFY) or the alias members (EXPN), 550 if unknown.
    #[serde(rename = "reveal")]
    Reveal,
}

impl DisclosureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DisclosureMode::Off => "off",
            DisclosureMode::Cannot => "252",
            DisclosureMode::Reveal => "reveal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_toml() {
        let mut cfg = PolicyConfig::default();
        cfg.plugins.insert(
            "g".into(),
            PluginDecl {
                path: "builtin:greylist".into(),
                config: serde_json::json!({ "delay": "1m", "n": 3 }),
                failure: FailurePolicy::Skip,
                grants: Grants { dns: Some(true), ..Grants::default() },
            },
        );
        let text = toml::to_string(&cfg).unwrap();
        let back: PolicyConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = toml::from_str::<PolicyConfig>("[sandbox]\ndeadlin = \"1s\"\n").unwrap_err();
        assert!(err.to_string().contains("deadlin"), "{err}");
        let err = toml::from_str::<PolicyConfig>("[plugins.x]\npath = \"a\"\ngrant = {}\n").unwrap_err();
        assert!(err.to_string().contains("grant"), "{err}");
    }

    #[test]
    fn partial_sections_keep_defaults() {
        let cfg: PolicyConfig = toml::from_str("[sandbox]\ndeadline = \"50ms\"\n").unwrap();
        assert_eq!(cfg.sandbox.deadline, Duration::from_millis(50));
        assert_eq!(cfg.sandbox.memory_limit, SandboxConfig::default().memory_limit);
        assert_eq!(cfg.chain, PolicyConfig::default().chain);
    }
}
