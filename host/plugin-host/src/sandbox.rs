//! One plugin instance's store: its WASI context (empty unless granted),
//! its memory cap, and the per-call deadline.
//!
//! The deadline counts guest time only: time awaiting host calls (DNS, kv,
//! argon2) is subtracted, since those have their own timeout and a slow DNS
//! server is not the plugin's fault. Epoch mode checks every tick and yields
//! to the executor, so a looping plugin never starves other sessions.

use crate::config::{Capabilities, Grants, Interrupt, SandboxConfig};
use crate::directory::{Directory, Reentry};
use crate::services::HostServices;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The epoch ticker's period; deadlines are rounded up to it.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Fuel mode: yield to the executor after this much fuel.
const FUEL_YIELD: u64 = 1_000_000;

/// What every call of one (tenant, plugin) binding shares.
pub(crate) struct Scope {
    pub plugin: String,
    pub tenant: Option<String>,
    /// The merged config, as the JSON the `config` import returns.
    pub config: String,
    /// The kv namespace: (tenant, plugin), never chosen by the plugin.
    pub namespace: String,
    pub caps: Capabilities,
    pub grants: Grants,
    pub host: Arc<dyn HostServices>,
    pub sandbox: SandboxConfig,
    /// Tenant domains, for the `directory` imports and their scope checks.
    pub directory: Arc<Directory>,
    /// The tenant's share of plugin execution (`sandbox.tenant_concurrency`
    /// permits), shared by every binding of the tenant in one snapshot;
    /// `None` for the global chain. A call holds a permit while its guest
    /// code runs, not while it waits on a host call.
    pub limit: Option<Arc<tokio::sync::Semaphore>>,
}

impl Scope {
    pub(crate) fn tenant_label(&self) -> &str {
        self.tenant.as_deref().unwrap_or("-")
    }
}

/// The kv namespace of (tenant, plugin). The prefixes keep "global" plugin
/// data apart from a tenant that happens to be called "global".
pub(crate) fn namespace(tenant: Option<&str>, plugin: &str) -> String {
    match tenant {
        Some(t) => format!("t:{t}/p:{plugin}"),
        None => format!("g/p:{plugin}"),
    }
}

/// Error raised into the guest when its time is up.
#[derive(Debug, thiserror::Error)]
#[error("deadline of {0:?} exceeded")]
pub(crate) struct DeadlineExceeded(pub Duration);

/// Guest-time accounting for the call in progress.
pub(crate) struct Clock {
    started: Instant,
    in_host: Duration,
}

impl Clock {
    fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.in_host)
    }
}

/// A store's data: the `T` in `Store<T>`.
pub(crate) struct Ctx {
    pub scope: Arc<Scope>,
    wasi: WasiCtx,
    pub table: ResourceTable,
    limits: StoreLimits,
    clock: Clock,
    /// The tenant's permit while the guest runs (`Scope::limit`); handed
    /// back while it waits on a host call.
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The chains, for `directory.resolve`, while a hook call runs (see
    /// [`Reentry`]); `None` between calls.
    pub reentry: Option<Reentry>,
}

impl Ctx {
    /// Account for time spent waiting on the host.
    pub(crate) fn add_host_time(&mut self, d: Duration) {
        self.clock.in_host += d;
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

fn wasi_ctx(grants: &Grants) -> wasmtime::Result<WasiCtx> {
    let mut b = WasiCtxBuilder::new();
    for (k, v) in &grants.env {
        b.env(k, v);
    }
    for p in &grants.preopens {
        let perms = if p.read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
        b.preopened_dir(&p.host, &p.guest, perms)
            .map_err(|e| wasmtime::format_err!("grants.preopens {}: {e}", p.host.display()))?;
    }
    if grants.network {
        b.inherit_network().allow_ip_name_lookup(true);
    }
    if grants.stdio {
        b.inherit_stdout().inherit_stderr();
    }
    Ok(b.build())
}

/// A fresh store for one instance of the binding's plugin.
pub(crate) fn new_store(engine: &Engine, scope: &Arc<Scope>) -> wasmtime::Result<Store<Ctx>> {
    let limits = StoreLimitsBuilder::new().memory_size(scope.sandbox.memory_limit).trap_on_grow_failure(true).build();
    let ctx = Ctx {
        scope: scope.clone(),
        wasi: wasi_ctx(&scope.grants)?,
        table: ResourceTable::new(),
        limits,
        clock: Clock { started: Instant::now(), in_host: Duration::ZERO },
        permit: None,
        reentry: None,
    };
    let mut store = Store::new(engine, ctx);
    store.limiter(|c| &mut c.limits);
    match scope.sandbox.interrupt {
        Interrupt::Epoch => {
            let deadline = scope.sandbox.deadline;
            store.epoch_deadline_callback(move |ctx| {
                let used = ctx.data().clock.guest_time();
                if used >= deadline {
                    return Err(DeadlineExceeded(deadline).into());
                }
                Ok(UpdateDeadline::Yield(1))
            });
        }
        Interrupt::Fuel => store.fuel_async_yield_interval(Some(FUEL_YIELD))?,
    }
    arm(&mut store)?;
    Ok(store)
}

/// Start the clock for one call (instantiation counts as a call too).
pub(crate) fn arm(store: &mut Store<Ctx>) -> wasmtime::Result<()> {
    store.data_mut().clock = Clock { started: Instant::now(), in_host: Duration::ZERO };
    match store.data().scope.sandbox.interrupt {
        Interrupt::Epoch => store.set_epoch_deadline(1),
        Interrupt::Fuel => {
            let fuel = store.data().scope.sandbox.fuel;
            store.set_fuel(fuel)?;
        }
    }
    Ok(())
}

/// Advances the engine's epoch every [`TICK`] while the engine lives.
pub(crate) fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("ferrymail-plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawning the plugin epoch thread");
}
