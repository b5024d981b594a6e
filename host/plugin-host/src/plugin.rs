//! A loaded plugin (compiled, pre-linked, hooks found) and its bindings:
//! one per (tenant, plugin), each with its own warm instances, config and kv
//! namespace. Instances are never shared across tenants and are discarded
//! after any failure (a trapped instance cannot be re-entered).

use crate::bindings::hooks;
use crate::config::{FailurePolicy, PluginDecl};
use crate::directory::Reentry;
use crate::sandbox::{self, Ctx, DeadlineExceeded, Scope};
use crate::validate::{Answer, Invalid, Shown};
use ferrymail_policy::observe::{self, Failure, HookCall, Outcome};
use std::future::Future;
use std::sync::{Arc, Mutex};
use wasmtime::component::{Instance, InstancePre};
use wasmtime::error::Context as _;
use wasmtime::{Engine, Store, Trap};

macro_rules! hook_table {
    ($($hook:ident),*) => {
        /// Which hooks a component exports (found by name at load).
        #[derive(Default)]
        pub(crate) struct HookIndices { $(pub $hook: Option<hooks::$hook::GuestIndices>,)* }

        /// The callable hooks of one instance.
        pub(crate) struct Hooks { $(pub $hook: Option<hooks::$hook::Guest>,)* }

        impl HookIndices {
            /// Every hook this host can call, in WIT order.
            pub(crate) const ALL: &[&'static str] = &[$(stringify!($hook)),*];

            pub(crate) fn find(pre: &InstancePre<Ctx>) -> Self {
                HookIndices { $($hook: hooks::$hook::GuestIndices::new(pre).ok(),)* }
            }

            /// Loading type-checks each hook: a plugin built against an
            /// incompatible WIT fails here, at install time.
            pub(crate) fn load(&self, store: &mut Store<Ctx>, instance: &Instance) -> wasmtime::Result<Hooks> {
                Ok(Hooks { $($hook: match &self.$hook {
                    Some(i) => Some(i.load(&mut *store, instance)
                        .with_context(|| format!("hook `{}` does not match ferrymail:plugin@{}", stringify!($hook), crate::WIT_VERSION))?),
                    None => None,
                },)* })
            }

            pub(crate) fn names(&self) -> Vec<&'static str> {
                let mut v = Vec::new();
                $(if self.$hook.is_some() { v.push(stringify!($hook)); })*
                v
            }
        }
    };
}

hook_table!(connect, helo, auth, mail, rcpt, data, vrfy, expn, route, retry, events);

/// A component ready to instantiate, shared by all its bindings.
pub(crate) struct LoadedPlugin {
    pub name: String,
    pub decl: PluginDecl,
    pub pre: InstancePre<Ctx>,
    pub indices: HookIndices,
}

/// A warm instance: its store and its hooks.
pub(crate) struct Warm {
    pub store: Store<Ctx>,
    pub hooks: Hooks,
}

/// One plugin serving one tenant (or none).
pub(crate) struct Binding {
    pub plugin: Arc<LoadedPlugin>,
    pub scope: Arc<Scope>,
    engine: Engine,
    idle: Mutex<Vec<Warm>>,
}

impl Binding {
    pub(crate) fn new(plugin: Arc<LoadedPlugin>, scope: Arc<Scope>, engine: Engine) -> Self {
        Binding { plugin, scope, engine, idle: Mutex::new(Vec::new()) }
    }

    pub(crate) fn failure(&self) -> FailurePolicy {
        self.plugin.decl.failure
    }

    async fn checkout(&self) -> wasmtime::Result<Warm> {
        if let Some(warm) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(warm);
        }
        instantiate(&self.engine, &self.plugin, &self.scope).await
    }

    fn checkin(&self, warm: Warm) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.scope.sandbox.warm_instances {
            idle.push(warm);
        }
    }

    /// Run one hook call on a warm (or new) instance. `None` means the plugin
    /// failed: it trapped, ran out of time or memory, or answered something
    /// [`Answer::check`] refuses. The failure is logged here (a trapped
    /// instance is discarded); the caller applies the failure policy.
    /// `reentry` is lent to the instance for this call only.
    pub(crate) async fn call<R, F, Fut>(&self, hook: &'static str, reentry: &Reentry, f: F) -> Option<R>
    where
        R: Answer,
        F: FnOnce(Warm) -> Fut,
        Fut: Future<Output = (Warm, wasmtime::Result<R>)>,
    {
        let run = async {
            // The tenant's share of plugin execution; waiting for it counts
            // towards `call_timeout`.
            let permit = match &self.scope.limit {
                Some(limit) => Some(limit.clone().acquire_owned().await?),
                None => None,
            };
            let mut warm = self.checkout().await?;
            warm.store.data_mut().permit = permit;
            warm.store.data_mut().reentry = Some(reentry.clone());
            sandbox::arm(&mut warm.store)?;
            let (mut warm, result) = f(warm).await;
            warm.store.data_mut().permit = None;
            // An idle instance holding the chains would keep them alive.
            warm.store.data_mut().reentry = None;
            let value = result?;
            // A bad answer is not a broken instance: keep it warm.
            self.checkin(warm);
            value.check()?;
            wasmtime::error::Ok(value)
        };
        let started = std::time::Instant::now();
        let (failure, outcome) = match tokio::time::timeout(self.scope.sandbox.call_timeout, run).await {
            Ok(Ok(v)) => {
                self.report(hook, started, Outcome::Answered(&Shown(&v)), v.decides());
                return Some(v);
            }
            Ok(Err(e)) => describe(&e),
            Err(_) => (Failure::Deadline, format!("call_timeout of {:?} exceeded", self.scope.sandbox.call_timeout)),
        };
        let outcome = ferrymail_policy::logsafe(&outcome).to_string();
        tracing::warn!(
            plugin = %self.scope.plugin,
            tenant = %self.scope.tenant_label(),
            hook,
            failure_policy = ?self.failure(),
            error = %outcome,
            "plugin failed"
        );
        let decided = self.failure() == FailurePolicy::Tempfail;
        self.report(hook, started, Outcome::Failed(failure, &outcome), decided);
        None
    }

    fn report(&self, hook: &'static str, started: std::time::Instant, outcome: Outcome<'_>, decided: bool) {
        observe::report(&HookCall {
            plugin: &self.scope.plugin,
            tenant: self.scope.tenant.as_deref(),
            hook,
            elapsed: started.elapsed(),
            outcome,
            decided,
        });
    }
}

/// A new instance in a new store, hooks loaded.
pub(crate) async fn instantiate(engine: &Engine, plugin: &LoadedPlugin, scope: &Arc<Scope>) -> wasmtime::Result<Warm> {
    let mut store = sandbox::new_store(engine, scope)?;
    let instance = plugin.pre.instantiate_async(&mut store).await?;
    let hooks = plugin.indices.load(&mut store, &instance)?;
    Ok(Warm { store, hooks })
}

/// One line saying what went wrong, naming the sandbox limit if one hit.
/// The wasm backtrace stays out of the log line (it is in the error chain
/// for debugging).
fn describe(e: &wasmtime::Error) -> (Failure, String) {
    if let Some(invalid) = e.downcast_ref::<Invalid>() {
        return (Failure::Invalid, invalid.to_string());
    }
    if let Some(d) = e.chain().find_map(|c| c.downcast_ref::<DeadlineExceeded>()) {
        return (Failure::Deadline, d.to_string());
    }
    let full = format!("{e:#}");
    if full.contains("growing memory") {
        return (Failure::Memory, "memory cap (sandbox.memory_limit) reached".into());
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => (Failure::Fuel, "fuel exhausted (sandbox.fuel)".into()),
        Some(Trap::Interrupt) => (Failure::Deadline, "interrupted (deadline)".into()),
        Some(trap) => (Failure::Trap, format!("trap: {trap}")),
        None => (Failure::Other, full.lines().next().unwrap_or_default().to_string()),
    }
}
