//! Configuration: embedded defaults < `--config FILE` (TOML) < `FERRYMAIL_*`
//! environment variables (`__` separates levels: `FERRYMAIL_SMTP__LISTEN`).
//!
//! Every struct denies unknown fields, so a typo is an error naming the key,
//! never a silently ignored setting.

use ferrymail_plugin_host::{
    DisclosureMode, MilterDecl, PluginDecl, PolicyConfig, RetryConfig, SandboxConfig, TenantConfig,
};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod delivery;
mod store;
pub use delivery::{DeliveryConfig, StartTlsPolicy, TlsVerify};
pub use store::{Secret, StoreBackend, StoreConfig};

/// The embedded defaults, also the reference for every key; the policy keys'
/// defaults are the plugin runtime's [`ferrymail_plugin_host::DEFAULT_POLICY_TOML`].
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// The environment variable with the database password (`store.password`).
pub const STORE_PASSWORD_VAR: &str = "FERRYMAIL_STORE__PASSWORD";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the store, the TLS fallback certificate, the plugin cache and
    /// the control socket live.
    pub data_dir: PathBuf,
    /// Our name in greetings, Received headers and DSNs.
    pub hostname: String,
    /// Domains whose mail is delivered to local accounts.
    pub local_domains: Vec<String>,
    /// Clients that may relay to other domains without authenticating.
    pub relay_networks: Vec<IpNet>,
    /// Pause before answering a failed login (SMTP AUTH, POP3, IMAP), to slow
    /// password guessing.
    #[serde(with = "humantime_serde")]
    pub auth_failure_delay: Duration,
    /// Where mail for postmaster goes when no account or alias of that name
    /// claims it: `postmaster@` any local or tenant domain, and the bare
    /// `<Postmaster>`, which RFC 5321 4.5.1 requires us to accept. Empty:
    /// the account `postmaster@` the first local domain.
    pub postmaster: String,
    /// `Received:` fields a message may carry before it is refused (SMTP)
    /// or bounced (queue) as a mail loop with 5.4.6 (RFC 5321 6.3).
    pub max_hops: usize,
    /// Compiled plugins are cached here across restarts; empty:
    /// data_dir/plugin-cache. Several servers may share one.
    pub plugin_cache_dir: PathBuf,
    /// The store's page cache, bytes (sled's `cache_capacity`). Reads of
    /// recent mail hit it; everything else is in the kernel's page cache
    /// anyway, so a small one costs little and keeps the server small.
    pub store_cache_bytes: u64,
    /// The store's backend: sled in data_dir, or a shared PostgreSQL.
    pub store: StoreConfig,
    /// Port 25: mail from other servers.
    pub smtp: SmtpListener,
    /// Port 587: mail from our own users (RFC 6409), AUTH required.
    pub submission: SmtpListener,
    /// Port 465: the submission service with TLS from the first byte
    /// (RFC 8314 3.3); every other setting is `[submission]`'s.
    pub submissions: TlsListener,
    pub pop3: Pop3Listener,
    /// Port 995: POP3 with TLS from the first byte; settings are `[pop3]`'s.
    pub pop3s: TlsListener,
    pub imap: ImapListener,
    /// Port 993: IMAP with TLS from the first byte (RFC 8314); settings
    /// are `[imap]`'s.
    pub imaps: TlsListener,
    /// Per-client limits over every listener: connections, failed logins,
    /// unknown recipients.
    pub clients: ClientsConfig,
    pub tls: TlsConfig,
    pub dns: DnsConfig,
    /// SPF, DKIM and DMARC checks on arriving mail.
    pub mail_auth: MailAuthConfig,
    pub delivery: DeliveryConfig,
    pub log: LogConfig,
    /// The Prometheus endpoint (`/metrics`, `/healthz`); off unless `listen` is set.
    pub metrics: MetricsConfig,
    /// The per-transaction decision trace (`ferrymail trace`).
    pub trace: TraceConfig,
    // The policy keys below are the plugin runtime's (docs/plugins.md);
    // listed one by one because `flatten` and `deny_unknown_fields` do not mix.
    /// Plugins by name: component path, config, failure policy, grants.
    pub plugins: BTreeMap<String, PluginDecl>,
    /// The global chain, in order; "@tenant" marks where a tenant's chain
    /// runs, "milter:NAME" asks a milter.
    pub chain: Vec<String>,
    /// Milters (rspamd, OpenDKIM …) by name: socket, timeout, failure policy.
    pub milters: BTreeMap<String, MilterDecl>,
    /// Tenants: sets of domains with their own chain and plugin config.
    pub tenants: BTreeMap<String, TenantConfig>,
    /// Limits every plugin call runs under.
    pub sandbox: SandboxConfig,
    /// The default retry schedule (RFC 5321 4.5.4.1).
    pub retry: RetryConfig,
    /// What VRFY reveals: "off", "252", "reveal".
    pub vrfy: DisclosureMode,
    /// What EXPN reveals: "off", "252", "reveal".
    pub expn: DisclosureMode,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpListener {
    /// Addresses to listen on; empty disables the listener.
    pub listen: Vec<SocketAddr>,
    /// Largest message accepted, bytes (advertised as SIZE, RFC 1870).
    pub max_message_size: usize,
    /// Recipients per message (RFC 5321 4.5.3.1.8 requires at least 100).
    pub max_recipients: usize,
    /// Command line limit including CRLF (RFC 5321 4.5.3.1.4: at least 512).
    pub max_command_line: usize,
    /// Text line limit including CRLF (RFC 5321 4.5.3.1.6: at least 1000).
    pub max_text_line: usize,
    /// Errors (bad commands, failed AUTH, refused MAIL/RCPT) before the
    /// session is closed with 421.
    pub max_errors: u32,
    /// Errors after which every further error reply waits `error_delay`.
    pub soft_error_limit: u32,
    #[serde(with = "humantime_serde")]
    pub error_delay: Duration,
    /// Concurrent sessions; more get 421 and are closed.
    pub max_sessions: usize,
    /// The whole wait for one command line, from the previous reply
    /// (RFC 5321 4.5.3.2.7: 5 minutes).
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// The whole DATA content, from 354 to the final dot.
    #[serde(with = "humantime_serde")]
    pub data_timeout: Duration,
    /// Pregreet test: the greeting is completed after this long, and a
    /// client that talks first is refused; 0 turns it off. Clients in
    /// `relay_networks` are never delayed.
    #[serde(with = "humantime_serde")]
    pub greet_delay: Duration,
    /// MAIL requires AUTH first (submission).
    pub require_auth: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pop3Listener {
    pub listen: Vec<SocketAddr>,
    pub max_sessions: usize,
    /// Command line limit including CRLF (RFC 2449 4: 255).
    pub max_command_line: usize,
    /// Autologout (RFC 1939 3: at least 10 minutes): the whole wait for a
    /// command, and the whole write of an answer (a RETR the client stops
    /// reading ends the session and frees the maildrop).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

/// An implicit-TLS port (RFC 8314): the service of its plain sibling, with
/// the handshake (within `tls.handshake_timeout`) before the greeting.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsListener {
    /// Addresses to listen on; empty disables the listener.
    pub listen: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapListener {
    pub listen: Vec<SocketAddr>,
    pub max_sessions: usize,
    /// Logged-in sessions of one account at once; the next login gets
    /// `NO [LIMIT]` (RFC 5530).
    pub max_sessions_per_user: usize,
    /// One line of a command (between literals) including CRLF; over it
    /// the session ends with `* BYE [TOOBIG]`.
    pub max_command_line: usize,
    /// Largest literal, e.g. an APPENDed message (RFC 7888 4: a bigger
    /// synchronising literal is refused before the client sends it).
    pub max_literal_size: u32,
    /// Bad commands (and failed logins) before the session is closed.
    pub max_errors: u32,
    /// Autologout (RFC 3501 5.4: at least 30 minutes): the whole wait for a
    /// command or in IDLE, and the whole write of an answer.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientsConfig {
    /// Concurrent connections from one address, over every listener; more
    /// get 421 4.7.0 (POP3 -ERR [SYS/TEMP]). 0: no limit.
    pub max_connections_per_address: usize,
    /// Concurrent connections from one /24 (IPv4) or /64 (IPv6). 0: no limit.
    pub max_connections_per_network: usize,
    /// Failed logins (SMTP AUTH, POP3, IMAP) from one address (IPv6: /64) after
    /// which logins are refused until `failure_window` has passed. 0: never.
    pub max_auth_failures_per_address: u32,
    /// Failed logins for one account, from anywhere, after which its logins
    /// are refused until `failure_window` has passed. 0: never.
    pub max_auth_failures_per_account: u32,
    /// How long a failure is remembered, from the last one.
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
    /// Unknown recipients (5.1.1) from one address per window answered at
    /// once; each further one waits 1 s, doubled per probe up to 16 s.
    pub unknown_recipients_before_delay: u32,
    /// Clients none of these limits apply to (a webmail or proxy on this
    /// host that speaks for many users).
    pub exempt: Vec<IpNet>,
}

impl ClientsConfig {
    pub fn connection_policy(&self) -> crate::throttle::ConnectionPolicy {
        crate::throttle::ConnectionPolicy {
            per_address: self.max_connections_per_address,
            per_network: self.max_connections_per_network,
            exempt: self.exempt.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaintextAuth {
    /// Only over TLS.
    Never,
    /// Without TLS only for clients on 127.0.0.0/8 or ::1.
    Loopback,
    /// Without TLS for anyone (passwords cross the network in clear).
    Always,
}

impl PlaintextAuth {
    pub fn allows(self, client: IpAddr) -> bool {
        match self {
            PlaintextAuth::Never => false,
            PlaintextAuth::Loopback => client.is_loopback(),
            PlaintextAuth::Always => true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; empty for a generated self-signed one.
    pub cert: String,
    /// PEM private key; empty for a generated one.
    pub key: String,
    /// Whether AUTH/USER-PASS may happen without TLS.
    pub allow_plaintext_auth: PlaintextAuth,
    /// A TLS handshake (STARTTLS, STLS) must finish within this.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// DNS servers as ip:port; empty for the system resolver.
    pub nameservers: Vec<SocketAddr>,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Look up the client's name for Received headers (off: no look-ups at all on connect).
    pub reverse_lookup: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailAuthConfig {
    /// Check SPF, DKIM and DMARC on mail arriving on the smtp listener
    /// without AUTH and stamp `Authentication-Results` (what to do about a
    /// failure is the chain's `dmarc` plugin's decision).
    pub verify: bool,
    /// The whole check, every look-up included; past it the results are
    /// `temperror` and the message goes on to the chain.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter, e.g. "info" or "ferrymail=debug" (RUST_LOG wins).
    pub level: String,
    /// "text": one readable line per event; "json": one JSON object per
    /// line, for journald/Loki/Elasticsearch pipelines.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `/metrics` and `/healthz` are served over HTTP; empty (the
    /// default) turns metrics off. No authentication: loopback or a
    /// monitoring network only.
    pub listen: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceConfig {
    /// Record each SMTP transaction's plugin calls and each delivery attempt.
    pub enabled: bool,
    /// How long the trace of an accepted message is kept.
    #[serde(with = "humantime_serde")]
    pub keep_messages: Duration,
    /// How long the trace of a refused transaction is kept.
    #[serde(with = "humantime_serde")]
    pub keep_refused: Duration,
    /// Steps one trace keeps; later ones are counted, not kept, so a
    /// session cannot grow its record without bound.
    pub max_steps: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Every configuration problem found, each naming its key; shown to the
/// operator on one line so a start-up failure is a single log line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(problem: String) -> Self {
        ConfigError { problems: vec![problem] }
    }
}

impl Config {
    /// Loads defaults < file < environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment =
            Figment::from(Toml::string(ferrymail_plugin_host::DEFAULT_POLICY_TOML)).merge(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::one(format!(
                    "config file {} does not exist or is not a file",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        // The database password is taken as it is: figment would parse an
        // environment value (a password of digits would become a number).
        figment = figment.merge(Env::prefixed("FERRYMAIL_").split("__").ignore(&["store.password"]));
        if let Some(password) = std::env::var_os(STORE_PASSWORD_VAR) {
            let password = password.into_string().map_err(|_| {
                ConfigError::one(format!("{STORE_PASSWORD_VAR} (config key store.password) is not valid UTF-8"))
            })?;
            figment = figment.merge(figment::providers::Serialized::default("store.password", password));
        }
        let config: Config = figment.extract().map_err(|e| ConfigError { problems: figment_problems(e) })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules serde cannot express, reporting all of them.
    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, why: &str| problems.push(format!("config key {key}: {why}"));
        if self.hostname.trim().is_empty() {
            bad("hostname", "must not be empty");
        }
        if !self.postmaster.is_empty()
            && (!self.postmaster.contains('@') || self.postmaster.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            bad("postmaster", "must be an address (user@domain) or empty");
        }
        if self.max_hops == 0 {
            bad("max_hops", "must be at least 1 (RFC 5321 6.3 suggests 100; Postfix uses 50)");
        }
        for (name, l) in [("smtp", &self.smtp), ("submission", &self.submission)] {
            if l.max_command_line < 512 {
                bad(&format!("{name}.max_command_line"), "RFC 5321 4.5.3.1.4 requires at least 512");
            }
            if l.max_text_line < 1000 {
                bad(&format!("{name}.max_text_line"), "RFC 5321 4.5.3.1.6 requires at least 1000");
            }
            if l.max_recipients == 0 {
                bad(&format!("{name}.max_recipients"), "must be at least 1 (RFC 5321 asks for 100)");
            }
            if l.max_sessions == 0 {
                bad(&format!("{name}.max_sessions"), "must be at least 1");
            }
            for (key, t) in [("command_timeout", l.command_timeout), ("data_timeout", l.data_timeout)] {
                if t.is_zero() {
                    bad(&format!("{name}.{key}"), "must be greater than zero");
                }
            }
        }
        if self.trace.enabled {
            for (key, t) in [("keep_messages", self.trace.keep_messages), ("keep_refused", self.trace.keep_refused)] {
                if t < Duration::from_secs(1) {
                    bad(&format!("trace.{key}"), "must be at least 1s (or set trace.enabled = false)");
                }
            }
            if !(1..=10_000).contains(&self.trace.max_steps) {
                bad("trace.max_steps", "must be between 1 and 10000");
            }
        }
        if let Some(clash) = self.metrics.listen.iter().find(|a| self.listens_on(**a)) {
            bad("metrics.listen", &format!("{clash} is already a mail listener's address"));
        }
        if self.pop3.max_command_line < 255 {
            bad("pop3.max_command_line", "RFC 2449 4 requires at least 255");
        }
        if self.imap.max_command_line < 1000 {
            bad("imap.max_command_line", "must be at least 1000 (RFC 7162 4 suggests 8192)");
        }
        if self.imap.idle_timeout.is_zero() {
            bad("imap.idle_timeout", "must be greater than zero (RFC 3501 5.4 asks for 30 minutes)");
        }
        if self.pop3.idle_timeout.is_zero() {
            bad("pop3.idle_timeout", "must be greater than zero (RFC 1939 3 asks for 10 minutes)");
        }
        if self.clients.failure_window.is_zero() {
            bad("clients.failure_window", "must be greater than zero");
        }
        if self.tls.handshake_timeout.is_zero() {
            bad("tls.handshake_timeout", "must be greater than zero");
        }
        if self.retry.interval.is_zero() {
            bad("retry.interval", "must be greater than zero");
        }
        for (key, why) in self.delivery.problems() {
            bad(key, why);
        }
        for (key, why) in self.store.problems() {
            bad(key, &why);
        }
        if self.tls.cert.is_empty() != self.tls.key.is_empty() {
            bad("tls.cert / tls.key", "set both or neither");
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError { problems }) }
    }

    /// Listed in `local_domains` or owned by a tenant.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.');
        self.local_domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
            || self.tenants.values().flat_map(|t| &t.domains).any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// The tenant whose `domains` list `domain`, if any.
    pub fn tenant_of_domain(&self, domain: &str) -> Option<&str> {
        let domain = domain.trim_end_matches('.');
        self.tenants
            .iter()
            .find(|(_, t)| t.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
            .map(|(name, _)| name.as_str())
    }

    pub fn dkim_dir(&self) -> PathBuf {
        self.data_dir.join("dkim")
    }

    /// The address mail for postmaster goes to when nothing else claims it.
    pub fn postmaster_address(&self) -> String {
        match self.postmaster.is_empty() {
            true => format!("postmaster@{}", self.local_domains.first().unwrap_or(&self.hostname)).to_lowercase(),
            false => self.postmaster.to_lowercase(),
        }
    }

    /// `postmaster` at one of our domains, any case (RFC 5321 4.5.1; the
    /// bare form reaches us qualified with the first local domain).
    pub fn is_postmaster(&self, address: &str) -> bool {
        address
            .rsplit_once('@')
            .is_some_and(|(local, domain)| local.eq_ignore_ascii_case("postmaster") && self.is_local_domain(domain))
    }

    /// Every mail listener's addresses (SMTP, submission, POP3, IMAP, with
    /// and without implicit TLS).
    pub fn mail_listeners(&self) -> impl Iterator<Item = &SocketAddr> {
        [
            &self.smtp.listen,
            &self.submission.listen,
            &self.submissions.listen,
            &self.pop3.listen,
            &self.pop3s.listen,
            &self.imap.listen,
            &self.imaps.listen,
        ]
        .into_iter()
        .flatten()
    }

    fn listens_on(&self, addr: SocketAddr) -> bool {
        self.mail_listeners().any(|a| *a == addr)
    }

    /// The client is in `relay_networks`.
    pub fn may_relay(&self, client: IpAddr) -> bool {
        self.relay_networks.iter().any(|n| n.contains(&client))
    }

    /// The plugin runtime's part of the configuration.
    pub fn policy_config(&self) -> PolicyConfig {
        PolicyConfig {
            plugins: self.plugins.clone(),
            chain: self.chain.clone(),
            milters: self.milters.clone(),
            tenants: self.tenants.clone(),
            sandbox: self.sandbox.clone(),
            retry: self.retry.clone(),
            vrfy: self.vrfy,
            expn: self.expn,
        }
    }

    /// Where compiled plugins are cached across restarts.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        // wasmtime's cache wants an absolute path.
        let dir = match self.plugin_cache_dir.as_os_str().is_empty() {
            true => self.data_dir.join("plugin-cache"),
            false => self.plugin_cache_dir.clone(),
        };
        std::path::absolute(&dir).unwrap_or(dir)
    }

    /// This node's name on queue leases (`store.node_name`, else `hostname`).
    pub fn node_name(&self) -> &str {
        match self.store.node_name.is_empty() {
            true => &self.hostname,
            false => &self.store.node_name,
        }
    }

    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    pub fn control_socket(&self) -> PathBuf {
        self.data_dir.join("control.sock")
    }
}

/// Every figment error, each on one line naming its key and where the
/// value came from: the config file's path (a syntax error names nothing
/// else), or the provider, e.g. the environment.
fn figment_problems(e: figment::Error) -> Vec<String> {
    let mut msgs: Vec<String> = Vec::new();
    for err in e {
        let key = if err.path.is_empty() { String::new() } else { format!("config key {}: ", err.path.join(".")) };
        let file = err.metadata.as_ref().and_then(|m| m.source.as_ref()?.file_path());
        let source = match (file, &err.metadata) {
            (Some(path), _) => format!(" (in {})", path.display()),
            (None, Some(m)) => format!(" (from {})", m.name),
            (None, None) => String::new(),
        };
        // TOML parse errors span several lines (a snippet with a caret).
        let kind = err.kind.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        msgs.push(format!("{key}{kind}{source}"));
    }
    msgs
}

#[cfg(test)]
mod tests;
