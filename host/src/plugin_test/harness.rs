//! The server a transcript runs against: the server's own SMTP driver,
//! session state machine, plugin runtime, delivery and store — in this
//! process, on a fresh store in a temporary directory, with one loopback
//! connection. Only what reaches outside is replaced: DNS answers come
//! from the transcript, SPF/DKIM/DMARC checks are off (they need the
//! world's DNS), the pregreet delay is off, and the client address hooks
//! see is the transcript's.

use super::transcript::{DnsRecord, Setup};
use crate::config::Config;
use crate::dns::Dns;
use crate::net::Conn;
use crate::policy::StoreServices;
use crate::state::ServerState;
use anyhow::{Context, Result};
use async_trait::async_trait;
use ferrymail_plugin_host::testing::MemoryHost;
use ferrymail_plugin_host::{HostServices, PluginDecl, PluginRuntime, RuntimeOptions, ServiceError};
use ferrymail_policy::observe::{HookCall, Observer};
use ferrymail_policy::*;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the command line chose.
pub struct Target<'a> {
    pub wasm: &'a Path,
    /// The plugin's name in the chain.
    pub name: String,
    pub tenant: Option<&'a str>,
}

/// A running test server; [`Harness::connect`] gives the client's socket.
pub struct Harness {
    state: Arc<ServerState>,
    policy: SharedPolicy,
    listener: tokio::net::TcpListener,
    client: IpAddr,
    submission: bool,
    /// The plugin's key-value namespace (see `ferrymail_plugin_host::kv_namespace`).
    pub namespace: String,
    /// The header fields the chain added to the last message.
    pub added: Added,
    _dir: tempfile::TempDir,
}

/// The fields the data hooks of the last message added (`None`: no
/// message reached them yet).
pub type Added = Arc<Mutex<Option<Vec<(String, String)>>>>;

/// Plugin calls in the order they ran: (hook, plugin, decided).
static CALLS: Mutex<Vec<(String, String, bool)>> = Mutex::new(Vec::new());

struct Recorder;

impl Observer for Recorder {
    fn hook_call(&self, call: &HookCall<'_>) {
        lock(&CALLS).push((call.hook.to_string(), call.plugin.to_string(), call.decided));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The plugin whose answer decided since the last call (`None`: nobody did).
pub fn take_decider() -> Option<String> {
    let calls = std::mem::take(&mut *lock(&CALLS));
    calls.into_iter().rev().find(|(_, _, decided)| *decided).map(|(_, plugin, _)| plugin)
}

impl Harness {
    pub async fn start(
        mut config: Config,
        config_path: Option<&Path>,
        target: &Target<'_>,
        setup: &Setup,
    ) -> Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary data_dir")?;
        let cache = super::cache_dir(&config);
        config.data_dir = dir.path().to_path_buf();
        // A scratch store of its own, never the configured (maybe shared) database.
        config.store.backend = crate::config::StoreBackend::Sled;
        config.store.url.clear();
        config.plugin_cache_dir = cache.clone().unwrap_or_else(|| dir.path().join("plugin-cache"));
        config.mail_auth.verify = false;
        config.dns.reverse_lookup = false;
        config.smtp.greet_delay = Duration::ZERO;
        config.submission.greet_delay = Duration::ZERO;
        // The session is on loopback whatever the transcript's client is.
        config.tls.allow_plaintext_auth = crate::config::PlaintextAuth::Always;
        for d in &setup.domains {
            if !config.is_local_domain(d) {
                config.local_domains.push(d.clone());
            }
        }
        let tenant = install(&mut config, config_path, target, setup)?;
        let namespace = ferrymail_plugin_host::kv_namespace(tenant.as_deref(), &target.name);

        let config = Arc::new(config);
        let store = crate::control::client::open_store(&config).await?;
        for (address, password) in &setup.accounts {
            let hash = crate::passwords::hash(password)?;
            store.add_account(address, &hash).await.with_context(|| format!("account {address}"))?;
        }
        let dns = Arc::new(Dns::new(config.dns.clone()));
        let store_services = StoreServices::new(store.clone(), dns.clone(), config.clone());
        let services = Arc::new(TestServices { store: store_services, dns: fake_dns(&setup.dns) });
        let options = RuntimeOptions {
            cache_dir: Some(config.plugin_cache_dir()),
            base_dir: config_path.and_then(Path::parent).map(Path::to_path_buf),
            hostname: config.hostname.clone(),
        };
        let runtime = PluginRuntime::new(&config.policy_config(), services, options).await?;
        ferrymail_policy::observe::set_observer(Box::new(Recorder));
        let added = Arc::new(Mutex::new(None));
        let policy: SharedPolicy = Arc::new(Watched { inner: runtime.policy(), added: added.clone() });
        let state = Arc::new(ServerState::new(config.clone(), store, dns, policy.clone(), None));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1:0")?;
        Ok(Harness {
            state,
            policy,
            listener,
            client: setup.client,
            submission: setup.submission,
            namespace,
            added,
            _dir: dir,
        })
    }

    /// Connects a client and runs the server's side of its session.
    pub async fn connect(&self) -> Result<tokio::net::TcpStream> {
        let addr = self.listener.local_addr()?;
        let (client, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), self.listener.accept());
        let (client, (stream, peer)) = (client?, accepted?);
        let (service, limits) = match self.submission {
            true => (Service::Submission, &self.state.config.submission),
            false => (Service::Smtp, &self.state.config.smtp),
        };
        let info = SessionInfo::new(self.state.next_session_id(), service, self.client, peer.port());
        let cfg = crate::smtp::driver::session_config(&self.state, limits, &info);
        let driver =
            crate::smtp::driver::Driver::new(self.state.clone(), cfg, self.policy.clone(), info, Conn::Plain(stream));
        tokio::spawn(driver.run());
        Ok(client)
    }

    /// The plugin's kv entry now.
    pub async fn kv(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.state.store.kv_get(&self.namespace, key.as_bytes()).await?)
    }

    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.state.store.close()).await;
    }
}

/// Declares the plugin under test (over a declaration of that name in the
/// config: its config, grants and failure policy stay) and puts it in the
/// chain it runs in, if it is not there yet: the tenant's chain with
/// `--tenant`, else the global chain where tenant plugins would run.
/// Returns the tenant it runs for.
fn install(
    config: &mut Config,
    config_path: Option<&Path>,
    target: &Target<'_>,
    setup: &Setup,
) -> Result<Option<String>> {
    let wasm = std::path::absolute(target.wasm)?;
    let decl = config.plugins.entry(target.name.clone()).or_insert_with(|| PluginDecl {
        path: String::new(),
        config: serde_json::json!({}),
        failure: Default::default(),
        grants: Default::default(),
    });
    decl.path = wasm.display().to_string();
    if !setup.config.is_empty() {
        if !decl.config.is_object() {
            decl.config = serde_json::json!({});
        }
        let table = decl.config.as_object_mut().expect("an object");
        for (k, v) in &setup.config {
            table.insert(k.clone(), v.clone());
        }
    }
    let name = &target.name;
    let Some(t) = target.tenant else {
        let in_a_chain = config.chain.contains(name) || config.tenants.values().any(|t| t.chain.contains(name));
        if !in_a_chain {
            let at = config.chain.iter().position(|p| p == "@tenant").map_or(0, |i| i + 1);
            config.chain.insert(at, name.clone());
        }
        return Ok(None);
    };
    let tenant_name = match config.tenants.contains_key(t) {
        true => t.to_string(),
        // Without a [tenants.T] table, T names the tenant's one domain
        // (tenant names have no dots: acme.test becomes acme-test).
        false if t.contains('.') => {
            let tenant_name = t.to_ascii_lowercase().replace('.', "-");
            let tenant = config.tenants.entry(tenant_name.clone()).or_default();
            tenant.domains.push(t.to_ascii_lowercase());
            tenant_name
        }
        false => anyhow::bail!(
            "--tenant {t}: no [tenants.{t}] in {}; declare it (with its domains) or name a domain",
            config_path.map_or("the configuration".into(), |p| p.display().to_string())
        ),
    };
    let tenant = config.tenants.get_mut(&tenant_name).expect("present");
    if !tenant.chain.contains(name) {
        tenant.chain.insert(0, name.clone());
    }
    Ok(Some(tenant_name))
}

/// The server's services over the test's store, with the transcript's DNS.
struct TestServices {
    store: StoreServices,
    dns: MemoryHost,
}

fn fake_dns(records: &[DnsRecord]) -> MemoryHost {
    records.iter().fold(MemoryHost::new(), |host, r| match r {
        DnsRecord::A(name, ip) => host.a_record(name, *ip),
        DnsRecord::Txt(name, text) => host.txt_record(name, text),
        DnsRecord::Mx(name, pref, exchange) => host.mx_record(name, *pref, exchange),
    })
}

#[async_trait]
impl HostServices for TestServices {
    async fn account_exists(&self, address: &str) -> Result<bool, ServiceError> {
        self.store.account_exists(address).await
    }
    async fn verify_password(&self, address: &str, password: &str) -> Result<bool, ServiceError> {
        self.store.verify_password(address, password).await
    }
    fn is_local_domain(&self, domain: &str) -> bool {
        self.store.is_local_domain(domain)
    }
    fn client_may_relay(&self, ip: IpAddr) -> bool {
        self.store.client_may_relay(ip)
    }
    async fn kv_get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, ServiceError> {
        self.store.kv_get(ns, key).await
    }
    async fn kv_set(&self, ns: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), ServiceError> {
        self.store.kv_set(ns, key, value, ttl).await
    }
    async fn kv_incr(&self, ns: &str, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, ServiceError> {
        self.store.kv_incr(ns, key, delta, ttl).await
    }
    async fn kv_delete(&self, ns: &str, key: &str) -> Result<(), ServiceError> {
        self.store.kv_delete(ns, key).await
    }
    async fn dns_txt(&self, name: &str) -> Result<Vec<String>, ServiceError> {
        self.dns.dns_txt(name).await
    }
    async fn dns_a(&self, name: &str) -> Result<Vec<IpAddr>, ServiceError> {
        self.dns.dns_a(name).await
    }
    async fn dns_aaaa(&self, name: &str) -> Result<Vec<IpAddr>, ServiceError> {
        self.dns.dns_aaaa(name).await
    }
    async fn dns_mx(&self, name: &str) -> Result<Vec<(u16, String)>, ServiceError> {
        self.dns.dns_mx(name).await
    }
}

/// The chain's policy, keeping the header fields its data hook added
/// (as the driver writes them) for `header` expectations.
struct Watched {
    inner: SharedPolicy,
    added: Added,
}

#[async_trait]
impl Policy for Watched {
    async fn connect(&self, s: &SessionInfo) -> Verdict {
        self.inner.connect(s).await
    }
    async fn helo(&self, s: &SessionInfo, name: &str, ehlo: bool) -> Verdict {
        self.inner.helo(s, name, ehlo).await
    }
    async fn auth(&self, request: &AuthRequest) -> AuthOutcome {
        self.inner.auth(request).await
    }
    async fn mail(&self, s: &SessionInfo, from: &str) -> Verdict {
        self.inner.mail(s, from).await
    }
    async fn rcpt(&self, s: &SessionInfo, envelope: &Envelope, rcpt: &str) -> Verdict {
        self.inner.rcpt(s, envelope, rcpt).await
    }
    async fn data(&self, s: &SessionInfo, envelope: &Envelope, message: &[u8]) -> DataVerdict {
        let decision = self.inner.data(s, envelope, message).await;
        let fields = decision
            .added_fields()
            .filter(|(n, v)| ferrymail_proto::smtp::trace::plugin_header(n, v).is_some())
            .map(|(n, v)| (n.to_string(), v.replace(['\r', '\n'], " ")))
            .collect();
        *lock(&self.added) = Some(fields);
        decision
    }
    async fn vrfy(&self, s: &SessionInfo, arg: &str) -> Reply {
        self.inner.vrfy(s, arg).await
    }
    async fn expn(&self, s: &SessionInfo, arg: &str) -> Reply {
        self.inner.expn(s, arg).await
    }
    async fn route(&self, ctx: &RouteContext) -> Route {
        self.inner.route(ctx).await
    }
    async fn retry(&self, ctx: &RetryContext) -> RetryDecision {
        self.inner.retry(ctx).await
    }
    async fn event(&self, event: &DeliveryEvent) {
        self.inner.event(event).await
    }

    async fn end(&self, s: &SessionInfo) {
        self.inner.end(s).await
    }
}
