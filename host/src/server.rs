//! `ferrymail serve`: [`serve`] is the outer layer (signals, binding from
//! the configuration); [`run`] serves listeners it is given until a
//! shutdown future completes, so tests run the whole server in-process.

use crate::config::Config;
use crate::control;
use crate::control::server::ReloadRequest;
use crate::dns::Dns;
use crate::listener::Bound;
use crate::policy::StoreServices;
use crate::state::ServerState;
use anyhow::{Context, Result};
use ferrymail_plugin_host::{PluginRuntime, RuntimeOptions};
use ferrymail_policy::Service;
use ferrymail_store::SharedStore;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

/// `ferrymail serve`: the thin outer layer. Installs the signal handlers,
/// opens the store and binds what the configuration names, then [`run`]s
/// until SIGTERM or SIGINT; SIGHUP reloads.
pub async fn serve(config: Config, config_path: Option<PathBuf>) -> Result<()> {
    // Handlers first: a SIGHUP that arrives once the ports accept
    // connections must reload, not kill (the default action).
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let config = Arc::new(config);
    check_data_dir(&config)?;
    let store = control::client::open_store(&config).await?;
    // Bind everything before anything else: a port conflict is reported at
    // start-up as the one line, before any log output. Listening waits for
    // the plugins (`run`).
    let listeners = Listeners::bind(&config)?;
    let reloads = Reloads::new();
    let hangups = reloads.sender();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            // Nobody waits for the outcome; reload() logs it.
            let (reply, _) = tokio::sync::oneshot::channel();
            if hangups.send(reply).await.is_err() {
                return;
            }
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    let socket = config.control_socket();
    let result = run(Server { config, config_path, store }, listeners, reloads, shutdown).await;
    let _ = std::fs::remove_file(socket);
    result
}

/// What [`run`] serves with, besides its sockets.
pub struct Server {
    pub config: Arc<Config>,
    /// The file a reload reads again (`None`: defaults and environment).
    pub config_path: Option<PathBuf>,
    pub store: SharedStore,
}

/// The sockets the server accepts on, bound by the caller: from the
/// configuration in [`serve`] (listening only once the plugins are ready),
/// on port 0 in tests. An empty list is a listener that is off.
#[derive(Default)]
pub struct Listeners {
    pub smtp: Vec<Bound>,
    pub submission: Vec<Bound>,
    pub submissions: Vec<Bound>,
    pub pop3: Vec<Bound>,
    pub pop3s: Vec<Bound>,
    pub imap: Vec<Bound>,
    pub imaps: Vec<Bound>,
    /// `/metrics` and `/healthz` (Prometheus), when `[metrics]` is on.
    pub metrics: Vec<Bound>,
    /// The control socket (`ferrymail reload`, `user add`, `sendmail`).
    pub control: Option<UnixListener>,
}

impl Listeners {
    /// Binds every configured address; an error names the config key.
    pub fn bind(config: &Config) -> Result<Self> {
        use crate::listener::bind;
        crate::listener::no_overlap(&[
            ("smtp.listen", &config.smtp.listen),
            ("submission.listen", &config.submission.listen),
            ("submissions.listen", &config.submissions.listen),
            ("pop3.listen", &config.pop3.listen),
            ("pop3s.listen", &config.pop3s.listen),
            ("imap.listen", &config.imap.listen),
            ("imaps.listen", &config.imaps.listen),
            ("metrics.listen", &config.metrics.listen),
        ])?;
        Ok(Listeners {
            smtp: bind("smtp.listen", &config.smtp.listen)?,
            submission: bind("submission.listen", &config.submission.listen)?,
            submissions: bind("submissions.listen", &config.submissions.listen)?,
            pop3: bind("pop3.listen", &config.pop3.listen)?,
            pop3s: bind("pop3s.listen", &config.pop3s.listen)?,
            imap: bind("imap.listen", &config.imap.listen)?,
            imaps: bind("imaps.listen", &config.imaps.listen)?,
            metrics: bind("metrics.listen", &config.metrics.listen)?,
            control: Some(control::server::bind(&config.control_socket())?),
        })
    }
}

/// Reload requests, from SIGHUP and from `ferrymail reload` over the
/// control socket; each is answered with the outcome.
pub struct Reloads {
    tx: mpsc::Sender<ReloadRequest>,
    rx: mpsc::Receiver<ReloadRequest>,
}

impl Reloads {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel(4);
        Reloads { tx, rx }
    }

    pub fn sender(&self) -> mpsc::Sender<ReloadRequest> {
        self.tx.clone()
    }
}

impl Default for Reloads {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `listeners` until `shutdown` completes, then stops accepting,
/// closes the store and returns. Binds nothing and reads no signals, so a
/// test runs a whole server in-process on ports it bound itself (the
/// mini-redis model).
pub async fn run(
    server: Server,
    listeners: Listeners,
    reloads: Reloads,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let Server { config, config_path, store } = server;
    let metrics = crate::metrics::start(&config);
    let outbound = Arc::new(crate::outbound::client::Settings::new(&config)?);
    // Start-up problems are logged once the server is up, so that a fatal
    // error stays the only line on stderr.
    let (tls, tls_note) = match crate::tls::server_tls(&config) {
        Ok(t) => (Some(t.acceptor), t.generated.map(Ok)),
        Err(e) if config.tls.cert.is_empty() => (None, Some(Err(e))),
        Err(e) => return Err(e),
    };
    let dns = Arc::new(Dns::new(config.dns.clone()));
    let services = Arc::new(StoreServices::new(store.clone(), dns.clone(), config.clone()));
    let plugins = Arc::new(start_plugins(&config, config_path.as_deref(), services.clone()).await?);
    let state = Arc::new(ServerState::new(config.clone(), store, dns, plugins.policy(), tls));
    let reloader = Reloader { state: state.clone(), plugins, services, config_path };
    match tls_note {
        Some(Ok(cert)) => {
            tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate (set tls.cert/tls.key for a real one)")
        }
        Some(Err(e)) => tracing::warn!(
            error = %format!("{e:#}"),
            "no TLS: STARTTLS and STLS will not be offered, implicit-TLS connections are closed"
        ),
        None => {}
    }

    warn_without_postmaster(&state).await;

    let (shutdown_tx, stopped) = watch::channel(false);
    // Every plugin is ready: only now does the kernel accept connections
    // (see `Bound`), so no client waits on a server that cannot answer.
    let Listeners { smtp, submission, submissions, pop3, pop3s, imap, imaps, metrics: metrics_listeners, control } =
        listeners;
    let listen = |l: Vec<Bound>| l.into_iter().map(Bound::listen).collect::<Result<Vec<TcpListener>>>();
    let (smtp, submission, submissions) = (listen(smtp)?, listen(submission)?, listen(submissions)?);
    let (pop3, pop3s, imap, imaps) = (listen(pop3)?, listen(pop3s)?, listen(imap)?, listen(imaps)?);
    let metrics_listeners = listen(metrics_listeners)?;
    let mail_listeners = [&smtp, &submission, &submissions, &pop3, &pop3s, &imap, &imaps].iter().map(|l| l.len()).sum();
    let smtp_services = [(Service::Smtp, &config.smtp, smtp, false)].into_iter().chain([
        (Service::Submission, &config.submission, submission, false),
        (Service::Submission, &config.submission, submissions, true),
    ]);
    for (service, limits, listeners, implicit_tls) in smtp_services {
        for l in listeners {
            let stopped = stopped.clone();
            tokio::spawn(crate::smtp::serve(state.clone(), service, limits.clone(), l, implicit_tls, stopped));
        }
    }
    for (listeners, implicit_tls) in [(pop3, false), (pop3s, true)] {
        for l in listeners {
            tokio::spawn(crate::pop3::serve(state.clone(), config.pop3.clone(), l, implicit_tls, stopped.clone()));
        }
    }
    for (listeners, implicit_tls) in [(imap, false), (imaps, true)] {
        for l in listeners {
            tokio::spawn(crate::imap::serve(state.clone(), config.imap.clone(), l, implicit_tls, stopped.clone()));
        }
    }
    tokio::spawn(crate::outbound::run(state.clone(), outbound, stopped.clone()));
    state.listeners.expect(mail_listeners);
    if let Some(metrics) = metrics {
        let endpoint =
            crate::metrics::http::Endpoint { metrics, store: state.store.clone(), listeners: state.listeners.clone() };
        for l in metrics_listeners {
            tokio::spawn(crate::metrics::http::serve(endpoint.clone(), l, stopped.clone()));
        }
    }
    crate::sweeps::spawn(&state.store);
    let Reloads { tx: reload_tx, rx: mut reload_rx } = reloads;
    if let Some(control) = control {
        let mut stopped = stopped.clone();
        let serve = control::server::serve(control, state.clone(), reload_tx);
        tokio::spawn(async move {
            tokio::select! {
                _ = serve => {}
                _ = stopped.changed() => {}
            }
        });
    }
    // Messages `sendmail` left while no server ran.
    tokio::spawn(crate::sendmail::pickup::run_maildrop(state.clone()));
    tracing::info!(hostname = %config.hostname, data_dir = %config.data_dir.display(), "ferrymail started");
    crate::service_manager::ready();

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            Some(reply) = reload_rx.recv() => {
                crate::service_manager::reloading();
                let _ = reply.send(reloader.reload().await.map_err(|e| format!("{e:#}")));
                crate::service_manager::ready();
            }
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down");
    crate::service_manager::stopping();
    let _ = shutdown_tx.send(true);
    // Every 250 already sent is on disk; closing flushes what nobody
    // awaited (plugin kv writes) and stops the store's threads.
    // Bounded: a store stuck in I/O must not keep the process from exiting
    // (everything acknowledged is durable already).
    match tokio::time::timeout(std::time::Duration::from_secs(10), state.store.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "closing the store"),
        Err(_) => tracing::warn!("the store did not close within 10 s; exiting anyway"),
    }
    Ok(())
}

fn check_data_dir(config: &Config) -> Result<()> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("config key data_dir: cannot create {}", dir.display()))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").with_context(|| format!("config key data_dir: {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Compiles and loads the configured plugins; compiled code is cached in
/// data_dir, so later starts are quick.
pub async fn start_plugins(
    config: &Config,
    config_path: Option<&Path>,
    services: Arc<StoreServices>,
) -> Result<PluginRuntime> {
    let started = std::time::Instant::now();
    let runtime = PluginRuntime::new(&config.policy_config(), services, runtime_options(config, config_path)).await?;
    for p in runtime.plugins() {
        tracing::info!(plugin = %p.name, path = %p.path, hooks = %p.hooks.join(","), "plugin loaded");
    }
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "plugins ready");
    Ok(runtime)
}

pub fn runtime_options(config: &Config, config_path: Option<&Path>) -> RuntimeOptions {
    RuntimeOptions {
        cache_dir: Some(config.plugin_cache_dir()),
        // Relative plugin paths are relative to the file that names them.
        base_dir: config_path.and_then(Path::parent).map(Path::to_path_buf),
        hostname: config.hostname.clone(),
    }
}

/// SIGHUP and `ferrymail reload`: re-read the configuration file, load the
/// plugins, and swap the chain for sessions that start from now on. Sessions
/// in progress finish on the chain they started with; if anything fails to
/// load, the running chain stays.
struct Reloader {
    state: Arc<ServerState>,
    plugins: Arc<PluginRuntime>,
    services: Arc<StoreServices>,
    config_path: Option<PathBuf>,
}

impl Reloader {
    async fn reload(&self) -> Result<String> {
        let result = self.try_reload().await;
        if let Err(e) = &result {
            tracing::error!(error = %format!("{e:#}"), "reload failed; the running configuration and chain stay");
        }
        result
    }

    async fn try_reload(&self) -> Result<String> {
        let config = Arc::new(Config::load(self.config_path.as_deref())?);
        let tls = self.reload_tls(&config);
        self.plugins.reload(&config.policy_config()).await?;
        self.services.set_config(config);
        self.state.set_policy(self.plugins.policy());
        let names: Vec<String> = self.plugins.plugins().into_iter().map(|p| p.name).collect();
        tracing::info!(generation = self.plugins.generation(), plugins = %names.join(","), "reloaded configuration and plugins");
        Ok(format!("reloaded: plugins {}; {tls}", names.join(", ")))
    }

    /// The certificate and key, read again: new handshakes use them, those
    /// under way and connections already up keep the old ones. A bad new
    /// pair (unreadable, not PEM, key not matching) keeps the old one.
    fn reload_tls(&self, config: &Config) -> String {
        match crate::tls::server_tls(config) {
            Ok(tls) => {
                self.state.set_tls(tls.acceptor);
                tracing::info!(cert = %crate::tls::cert_path(config).display(), "TLS certificate reloaded");
                "TLS certificate reloaded".into()
            }
            Err(e) => {
                let e = format!("{e:#}");
                tracing::error!(error = %e, "TLS certificate not reloaded; the previous one stays in use");
                format!("TLS certificate NOT reloaded ({e}); the previous one stays in use")
            }
        }
    }
}

/// RFC 5321 4.5.1 makes us accept mail for postmaster; say so at start-up
/// when it has nowhere to go.
async fn warn_without_postmaster(state: &ServerState) {
    let target = state.config.postmaster_address();
    let local = target.rsplit_once('@').is_some_and(|(_, d)| state.config.is_local_domain(d));
    if local && matches!(state.store.account(&target).await, Ok(None)) {
        tracing::warn!(
            postmaster = %target,
            "no such account: mail to postmaster is accepted (RFC 5321 4.5.1) but bounces unless an alias routes it; \
             create it (ferrymail user add) or set `postmaster`"
        );
    }
}
