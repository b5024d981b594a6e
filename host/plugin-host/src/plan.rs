//! Checks a [`PolicyConfig`] and resolves it into what the runtime loads:
//! which plugins, each tenant's effective chain, each (tenant, plugin)'s
//! merged config. Every problem is collected, each naming its key.

use crate::builtin;
use crate::config::{PluginDecl, PolicyConfig, TENANT_MARKER};
use crate::milter;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Where a component's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Builtin(&'static [u8]),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub(crate) struct PlannedPlugin {
    pub decl: PluginDecl,
    pub source: Source,
    pub builtin: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// Plugins used by some chain.
    pub plugins: BTreeMap<String, PlannedPlugin>,
    /// The chain for sessions without a tenant.
    pub global: Vec<String>,
    /// Each tenant's effective chain (its chain spliced into the global one).
    pub tenants: BTreeMap<String, Vec<String>>,
    /// Merged config per (tenant or None, plugin).
    pub configs: HashMap<(Option<String>, String), Value>,
    /// Lower-case domain to tenant.
    pub domains: HashMap<String, String>,
    /// Milters named by some chain (`milter:NAME`), by NAME.
    pub milters: BTreeMap<String, crate::milter::MilterDecl>,
    /// The embedded `retry` plugin with the `[retry]` schedule: it decides
    /// when no plugin of a chain does, so its algorithm is the only one.
    pub retry_fallback: Option<(PlannedPlugin, Value)>,
}

/// The name the retry fallback goes by in logs (not a valid plugin name,
/// so no configured plugin can share it).
pub(crate) const RETRY_FALLBACK: &str = "builtin:retry";

/// Names end up in kv namespaces and log lines: keep them plain.
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Tables merge key by key, recursively; anything else is replaced.
pub(crate) fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn defaults_for(path: &str, cfg: &PolicyConfig) -> Value {
    let h = |d| humantime::format_duration(d).to_string();
    match path {
        "builtin:retry" => json!({
            "interval": h(cfg.retry.interval),
            "warn_after": h(cfg.retry.warn_after),
            "give_up_after": h(cfg.retry.give_up_after),
        }),
        "builtin:vrfy-expn" => json!({ "vrfy": cfg.vrfy.as_str(), "expn": cfg.expn.as_str() }),
        _ => json!({}),
    }
}

/// The declaration of `name`: explicit, or implicit for an embedded plugin.
fn declaration(cfg: &PolicyConfig, name: &str) -> Option<PluginDecl> {
    cfg.plugins.get(name).cloned().or_else(|| {
        builtin::component(name).map(|_| PluginDecl {
            path: format!("builtin:{name}"),
            config: json!({}),
            failure: Default::default(),
            grants: Default::default(),
        })
    })
}

fn compose(global: &[String], tenant: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |n: &String| {
        if !out.contains(n) {
            out.push(n.clone());
        }
    };
    if !global.iter().any(|n| n == TENANT_MARKER) {
        tenant.iter().for_each(&mut push);
    }
    for n in global {
        if n == TENANT_MARKER {
            tenant.iter().for_each(&mut push);
        } else {
            push(n);
        }
    }
    out
}

pub(crate) fn plan(cfg: &PolicyConfig, base_dir: Option<&Path>) -> Result<Plan, Vec<String>> {
    let mut errors = Vec::new();
    let mut plan = Plan::default();
    let check_chain = |key: String, chain: &[String], marker_ok: bool, errors: &mut Vec<String>| {
        for name in chain {
            if name == TENANT_MARKER {
                if !marker_ok {
                    errors.push(format!("{key}: \"{TENANT_MARKER}\" belongs in the global chain only"));
                }
            } else if let Some(milter) = name.strip_prefix(milter::PREFIX) {
                if !cfg.milters.contains_key(milter) {
                    errors.push(format!("{key}: no milter named \"{milter}\" (declare [milters.{milter}])"));
                }
            } else if declaration(cfg, name).is_none() {
                errors.push(format!("{key}: no plugin named \"{name}\" (declare [plugins.{name}])"));
            }
        }
        if chain.iter().filter(|n| *n == TENANT_MARKER).count() > 1 {
            errors.push(format!("{key}: \"{TENANT_MARKER}\" appears more than once"));
        }
    };
    check_chain("chain".into(), &cfg.chain, true, &mut errors);
    plan.global = compose(&cfg.chain, &[]);
    for (tname, t) in &cfg.tenants {
        if !valid_name(tname) {
            errors.push(format!("tenants.{tname}: tenant names are lower-case letters, digits, '-' and '_'"));
        }
        check_chain(format!("tenants.{tname}.chain"), &t.chain, false, &mut errors);
        let chain = compose(&cfg.chain, &t.chain);
        for d in &t.domains {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if let Some(other) = plan.domains.insert(d.clone(), tname.clone()) {
                errors.push(format!("tenants.{tname}.domains: \"{d}\" also belongs to tenant \"{other}\""));
            }
        }
        for p in t.plugin_config.keys() {
            if !chain.contains(p) {
                errors.push(format!("tenants.{tname}.plugin_config.{p}: \"{p}\" is not in this tenant's chain"));
            }
        }
        plan.tenants.insert(tname.clone(), chain);
    }
    for (name, decl) in &cfg.plugins {
        if !valid_name(name) {
            errors.push(format!("plugins.{name}: plugin names are lower-case letters, digits, '-' and '_'"));
        }
        if !decl.config.is_object() {
            errors.push(format!("plugins.{name}.config: must be a table"));
        }
    }
    for (name, decl) in &cfg.milters {
        errors.extend(milter::check_decl(name, decl));
    }
    let used = plan.global.iter().chain(plan.tenants.values().flatten());
    for name in used.clone() {
        if let Some(m) = name.strip_prefix(milter::PREFIX)
            && let Some(decl) = cfg.milters.get(m)
        {
            plan.milters.insert(m.to_string(), decl.clone());
        }
    }
    for name in used {
        if plan.plugins.contains_key(name) {
            continue;
        }
        let Some(decl) = declaration(cfg, name) else {
            continue;
        };
        let source = match decl.path.strip_prefix("builtin:") {
            Some(b) => match builtin::component(b) {
                Some(bytes) => Source::Builtin(bytes),
                None => {
                    let known = builtin::NAMES.join(", ");
                    errors.push(format!("plugins.{name}.path: no embedded plugin \"{b}\" (there are: {known})"));
                    continue;
                }
            },
            None => Source::File(match base_dir {
                Some(b) => b.join(&decl.path),
                None => PathBuf::from(&decl.path),
            }),
        };
        let builtin = matches!(source, Source::Builtin(_));
        plan.plugins.insert(name.clone(), PlannedPlugin { decl, source, builtin });
    }
    for (name, p) in &plan.plugins {
        let mut base = defaults_for(&p.decl.path, cfg);
        merge(&mut base, &p.decl.config);
        plan.configs.insert((None, name.clone()), base.clone());
        for (tname, t) in &cfg.tenants {
            let mut c = base.clone();
            if let Some(over) = t.plugin_config.get(name) {
                merge(&mut c, over);
            }
            plan.configs.insert((Some(tname.clone()), name.clone()), c);
        }
    }
    let fallback = PlannedPlugin {
        decl: PluginDecl {
            path: RETRY_FALLBACK.into(),
            config: json!({}),
            failure: Default::default(),
            grants: Default::default(),
        },
        source: Source::Builtin(builtin::component("retry").expect("the retry plugin is embedded")),
        builtin: true,
    };
    plan.retry_fallback = Some((fallback, defaults_for(RETRY_FALLBACK, cfg)));
    check_sandbox(cfg, &mut errors);
    if errors.is_empty() { Ok(plan) } else { Err(errors) }
}

fn check_sandbox(cfg: &PolicyConfig, errors: &mut Vec<String>) {
    let s = &cfg.sandbox;
    if s.deadline.is_zero() {
        errors.push("sandbox.deadline: must be more than 0".into());
    }
    if s.memory_limit < (1 << 20) {
        errors.push("sandbox.memory_limit: at least 1048576 bytes".into());
    }
    if s.fuel == 0 {
        errors.push("sandbox.fuel: must be more than 0".into());
    }
    if s.call_timeout < s.deadline {
        errors.push("sandbox.call_timeout: must be at least sandbox.deadline".into());
    }
    if s.warm_instances > 1024 {
        errors.push("sandbox.warm_instances: at most 1024".into());
    }
    if cfg.retry.interval.is_zero() {
        errors.push("retry.interval: must be more than 0".into());
    }
}
