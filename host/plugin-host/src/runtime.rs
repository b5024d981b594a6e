//! [`PluginRuntime`]: compiles plugins, builds chain snapshots, swaps them
//! on reload. Compiled components are kept across reloads (same bytes, same
//! component) and cached on disk by wasmtime when a cache directory is given.

use crate::bindings::Full;
use crate::chain::{Element, Snapshot};
use crate::config::{Interrupt, PolicyConfig};
use crate::directory::Directory;
use crate::milter::Milter;
use crate::plan::{self, Plan, Source};
use crate::plugin::{Binding, HookIndices, LoadedPlugin, instantiate};
use crate::policy::SnapshotPolicy;
use crate::sandbox::{self, Ctx, Scope, namespace};
use crate::services::HostServices;
use crate::{Error, PluginSummary};
use ferrymail_policy::SharedPolicy;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine};

/// Where the runtime keeps things; the server fills this from its config.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Directory for wasmtime's compiled-code cache (e.g. `data_dir/plugin-cache`);
    /// `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
    /// Relative plugin paths resolve against this (e.g. the config file's
    /// directory); `None`: the working directory.
    pub base_dir: Option<PathBuf>,
    /// Our host name, as milters are told it (the `j` macro).
    pub hostname: String,
}

/// Compiled components, by identity and content.
struct Compiled {
    engine: Engine,
    /// The engine's compiled-code cache, when there is one.
    cache: Option<Cache>,
    interrupt: Interrupt,
    linker: Arc<Linker<Ctx>>,
    components: HashMap<String, (Arc<[u8]>, Component)>,
}

/// The plugin runtime. Cheap to share behind an `Arc`; `policy()` is the
/// current chain snapshot, `reload()` replaces it atomically.
pub struct PluginRuntime {
    host: Arc<dyn HostServices>,
    options: RuntimeOptions,
    compiled: tokio::sync::Mutex<Compiled>,
    current: RwLock<Arc<Snapshot>>,
    summary: RwLock<Vec<PluginSummary>>,
    generation: AtomicU64,
}

/// Also returns the compiled-code cache: its hit and miss counts tell
/// whether a compilation was served from disk.
pub(crate) fn new_engine_cached(
    interrupt: Interrupt,
    cache_dir: Option<&PathBuf>,
) -> wasmtime::Result<(Engine, Option<Cache>)> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(interrupt == Interrupt::Epoch);
    config.consume_fuel(interrupt == Interrupt::Fuel);
    let mut cache = None;
    if let Some(dir) = cache_dir {
        std::fs::create_dir_all(dir).map_err(|e| wasmtime::format_err!("plugin cache {}: {e}", dir.display()))?;
        let mut cc = CacheConfig::new();
        cc.with_directory(dir);
        let c = Cache::new(cc)?;
        config.cache(Some(c.clone()));
        cache = Some(c);
    }
    let engine = Engine::new(&config)?;
    if interrupt == Interrupt::Epoch {
        sandbox::start_ticker(&engine);
    }
    Ok((engine, cache))
}

pub(crate) fn new_linker(engine: &Engine) -> wasmtime::Result<Linker<Ctx>> {
    let mut linker = Linker::new(engine);
    // WASI is always linked (wasip2 guests import wasi:cli and wasi:io even
    // without I/O); what it can reach is decided per store by the grants.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Full::add_to_linker::<_, HasSelf<Ctx>>(&mut linker, |c| c)?;
    Ok(linker)
}

impl PluginRuntime {
    /// Check the config, compile and load every plugin it uses, and build
    /// the first snapshot. Errors list every problem found. Must run inside
    /// a Tokio runtime (compilation goes to `spawn_blocking`).
    pub async fn new(cfg: &PolicyConfig, host: Arc<dyn HostServices>, options: RuntimeOptions) -> Result<Self, Error> {
        let interrupt = cfg.sandbox.interrupt;
        let (engine, cache) = new_engine_cached(interrupt, options.cache_dir.as_ref()).map_err(Error::Engine)?;
        let linker = Arc::new(new_linker(&engine).map_err(Error::Engine)?);
        let compiled = Compiled { engine, cache, interrupt, linker, components: HashMap::new() };
        let runtime = PluginRuntime {
            host,
            options,
            compiled: tokio::sync::Mutex::new(compiled),
            current: RwLock::new(Arc::new(empty_snapshot())),
            summary: RwLock::new(Vec::new()),
            generation: AtomicU64::new(0),
        };
        runtime.reload(cfg).await?;
        Ok(runtime)
    }

    /// The current chains, for a session to hold from start to end.
    pub fn policy(&self) -> SharedPolicy {
        Arc::new(SnapshotPolicy(self.current.read().unwrap_or_else(|e| e.into_inner()).clone()))
    }

    /// How many snapshots have been installed (1 after `new`).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The loaded plugins and their hooks, for logs and `config check`.
    pub fn plugins(&self) -> Vec<PluginSummary> {
        self.summary.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The tenant owning `domain` in the current config.
    pub fn tenant_for_domain(&self, domain: &str) -> Option<String> {
        let snap = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        snap.directory.tenant_of_domain(&domain.trim_end_matches('.').to_ascii_lowercase()).map(str::to_string)
    }

    /// Load `cfg` and swap it in, only if every plugin loads; otherwise the
    /// running chains stay and the error says why. Sessions holding an older
    /// `policy()` finish on it.
    pub async fn reload(&self, cfg: &PolicyConfig) -> Result<(), Error> {
        let plan = plan::plan(cfg, self.options.base_dir.as_deref()).map_err(Error::Config)?;
        let mut compiled = self.compiled.lock().await;
        if compiled.interrupt != cfg.sandbox.interrupt {
            // Fuel and epochs change the generated code: a new engine.
            let (engine, cache) =
                new_engine_cached(cfg.sandbox.interrupt, self.options.cache_dir.as_ref()).map_err(Error::Engine)?;
            let linker = Arc::new(new_linker(&engine).map_err(Error::Engine)?);
            let interrupt = cfg.sandbox.interrupt;
            *compiled = Compiled { engine, cache, interrupt, linker, components: HashMap::new() };
        }
        // Every file is read before anything compiles: a wrong path is
        // reported at once (the one line of a failed start), not after
        // minutes of compiling the other plugins.
        let mut errors = Vec::new();
        let mut sources = Vec::new();
        for (name, p) in &plan.plugins {
            match read_source(p).await {
                Ok(source) => sources.push((name, p, source)),
                Err(e) => errors.push(format!("plugin {name} ({}): {e:#}", p.decl.path)),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Plugins(errors));
        }
        let mut loaded = HashMap::new();
        let mut fresh = HashMap::new();
        for (name, p, source) in sources {
            match load(&mut compiled, &mut fresh, name, p, source, cfg, &self.host).await {
                Ok(l) => {
                    loaded.insert(name.clone(), Arc::new(l));
                }
                Err(e) => errors.push(format!("plugin {name} ({}): {e:#}", p.decl.path)),
            }
        }
        let (fallback, fallback_config) = plan.retry_fallback.as_ref().expect("plan() sets the retry fallback");
        let fallback_source = read_source(fallback).await.map_err(Error::Engine)?;
        let retry_fallback =
            match load(&mut compiled, &mut fresh, plan::RETRY_FALLBACK, fallback, fallback_source, cfg, &self.host)
                .await
            {
                Ok(l) => Some((Arc::new(l), fallback_config.to_string())),
                Err(e) => {
                    errors.push(format!("the embedded retry plugin: {e:#}"));
                    None
                }
            };
        if !errors.is_empty() {
            return Err(Error::Plugins(errors));
        }
        // Forget components no longer used, keep the rest for next time.
        compiled.components = fresh;
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let retry_fallback = retry_fallback.expect("loaded when there were no errors");
        let snapshot =
            build_snapshot(&plan, &loaded, retry_fallback, cfg, &compiled.engine, &self.host, &self.options.hostname);
        let summary = loaded
            .values()
            .map(|l| PluginSummary { name: l.name.clone(), path: l.decl.path.clone(), hooks: l.indices.names() })
            .collect();
        *self.summary.write().unwrap_or_else(|e| e.into_inner()) = summary;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = snapshot;
        tracing::info!(generation, plugins = loaded.len(), tenants = plan.tenants.len(), "plugin chains loaded");
        Ok(())
    }
}

/// What `new` holds until its first `reload` succeeds (it is never served).
fn empty_snapshot() -> Snapshot {
    Snapshot {
        directory: Arc::new(Directory::new(HashMap::new(), Arc::new(crate::testing::MemoryHost::default()))),
        global: Vec::new(),
        tenants: HashMap::new(),
        milters: HashMap::new(),
        retry_fallback: None,
        retry: Default::default(),
    }
}

/// A plugin's component: its cache key (the path) and bytes.
async fn read_source(p: &plan::PlannedPlugin) -> wasmtime::Result<(String, Arc<[u8]>)> {
    Ok(match &p.source {
        Source::Builtin(b) => (p.decl.path.clone(), Arc::from(*b)),
        Source::File(path) => {
            let bytes =
                tokio::fs::read(path).await.map_err(|e| wasmtime::format_err!("reading {}: {e}", path.display()))?;
            (path.display().to_string(), Arc::from(bytes))
        }
    })
}

/// Compile (or reuse), pre-link, find hooks, and instantiate once to
/// type-check them, so a bad plugin is refused now rather than mid-session.
async fn load(
    compiled: &mut Compiled,
    fresh: &mut HashMap<String, (Arc<[u8]>, Component)>,
    name: &str,
    p: &plan::PlannedPlugin,
    (key, bytes): (String, Arc<[u8]>),
    cfg: &PolicyConfig,
    host: &Arc<dyn HostServices>,
) -> wasmtime::Result<LoadedPlugin> {
    let component = match compiled.components.get(&key).or_else(|| fresh.get(&key)) {
        Some((old, c)) if **old == *bytes => c.clone(),
        _ => compile(compiled, name, bytes.clone()).await?,
    };
    fresh.insert(key, (bytes, component.clone()));
    let pre = compiled.linker.instantiate_pre(&component)?;
    let indices = HookIndices::find(&pre);
    if indices.names().is_empty() {
        wasmtime::bail!("exports no ferrymail:plugin@{} hook (see `ferrymail plugin check`)", crate::WIT_VERSION);
    }
    let loaded = LoadedPlugin { name: name.to_string(), decl: p.decl.clone(), pre, indices };
    let scope = Arc::new(Scope {
        plugin: name.to_string(),
        tenant: None,
        config: "{}".into(),
        namespace: namespace(None, name),
        caps: p.decl.grants.capabilities(p.builtin),
        grants: p.decl.grants.clone(),
        host: host.clone(),
        sandbox: cfg.sandbox.clone(),
        directory: Arc::new(Directory::new(HashMap::new(), host.clone())),
        limit: None,
    });
    instantiate(&compiled.engine, &loaded, &scope).await?;
    Ok(loaded)
}

/// Compiles a component (or loads its compiled form from the cache),
/// saying so in the log: a big component (an 18 MB Python one) takes
/// seconds, and an operator watching a start should know why.
async fn compile(compiled: &Compiled, name: &str, bytes: Arc<[u8]>) -> wasmtime::Result<Component> {
    let mb = bytes.len() as f64 / 1e6;
    tracing::info!(plugin = %name, bytes = bytes.len(), "compiling plugin {name} ({mb:.1} MB)…");
    let started = std::time::Instant::now();
    // wasmtime counts a hit only when a stored entry was read and used.
    let hits = compiled.cache.as_ref().map(Cache::cache_hits);
    let engine = compiled.engine.clone();
    let component = tokio::task::spawn_blocking(move || Component::from_binary(&engine, &bytes)).await??;
    let cache = match (&compiled.cache, hits) {
        (Some(c), Some(h)) if c.cache_hits() > h => "hit",
        (Some(_), _) => "miss",
        (None, _) => "off",
    };
    let elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::info!(plugin = %name, elapsed_ms, cache, "compiled plugin {name} in {elapsed_ms} ms (cache {cache})");
    Ok(component)
}

fn build_snapshot(
    plan: &Plan,
    loaded: &HashMap<String, Arc<LoadedPlugin>>,
    (retry_plugin, retry_config): (Arc<LoadedPlugin>, String),
    cfg: &PolicyConfig,
    engine: &Engine,
    host: &Arc<dyn HostServices>,
    hostname: &str,
) -> Arc<Snapshot> {
    let milters: HashMap<String, Arc<Milter>> =
        plan.milters.iter().map(|(name, decl)| (name.clone(), Arc::new(Milter::new(name, decl, hostname)))).collect();
    // Built before the bindings, which share it; it holds no plugin.
    let directory = Arc::new(Directory::new(plan.domains.clone(), host.clone()));
    let binding = |plugin: Arc<LoadedPlugin>, tenant: Option<&str>, config: String, builtin: bool, limit| {
        let scope = Arc::new(Scope {
            plugin: plugin.name.clone(),
            tenant: tenant.map(str::to_string),
            config,
            namespace: namespace(tenant, &plugin.name),
            caps: plugin.decl.grants.capabilities(builtin),
            grants: plugin.decl.grants.clone(),
            host: host.clone(),
            sandbox: cfg.sandbox.clone(),
            directory: directory.clone(),
            limit,
        });
        Arc::new(Binding::new(plugin, scope, engine.clone()))
    };
    let bind = |tenant: Option<&str>, names: &[String]| -> Vec<Element> {
        let limit = tenant.map(|_| Arc::new(tokio::sync::Semaphore::new(cfg.sandbox.tenant_permits())));
        names
            .iter()
            .map(|name| {
                if let Some(m) = name.strip_prefix(crate::milter::PREFIX) {
                    return Element::Milter(milters[m].clone());
                }
                let config = &plan.configs[&(tenant.map(str::to_string), name.clone())];
                let builtin = plan.plugins[name].builtin;
                Element::Plugin(binding(loaded[name].clone(), tenant, config.to_string(), builtin, limit.clone()))
            })
            .collect()
    };
    Arc::new(Snapshot {
        retry_fallback: Some(binding(retry_plugin, None, retry_config, true, None)),
        global: bind(None, &plan.global),
        tenants: plan.tenants.iter().map(|(t, chain)| (t.clone(), bind(Some(t), chain))).collect(),
        directory,
        milters,
        retry: cfg.retry.clone(),
    })
}
