//! `ferrymail plugin check FILE.wasm`: which hooks a component exports,
//! what it imports, and whether it loads against this host's WIT.

use crate::config::{Grants, Interrupt, SandboxConfig};
use crate::plugin::{HookIndices, LoadedPlugin, instantiate};
use crate::runtime::{new_engine, new_linker};
use crate::sandbox::{Scope, namespace};
use crate::{Error, WIT_PACKAGE, WIT_VERSION};
use std::sync::Arc;
use wasmtime::component::Component;

/// What `inspect` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Hooks the component exports that this host will call, in WIT order.
    pub hooks: Vec<String>,
    /// Every interface the component exports (`ferrymail:plugin/rcpt@0.1.0`, …).
    pub exports: Vec<String>,
    /// Every interface it imports: its capabilities (`ferrymail:plugin/kv@…`)
    /// and WASI.
    pub imports: Vec<String>,
    /// The `ferrymail:plugin` versions named by its exports and imports.
    pub wit_versions: Vec<String>,
    /// It loads and every hook type-checks against this host's WIT.
    pub compatible: bool,
    /// Why not, when not.
    pub problems: Vec<String>,
}

/// Compile and check a component without configuring it. Runs the
/// component's start code once, in the sandbox with nothing granted.
pub async fn inspect(wasm: &[u8]) -> Result<PluginInfo, Error> {
    let engine = new_engine(Interrupt::Epoch, None).map_err(Error::Engine)?;
    let linker = new_linker(&engine).map_err(Error::Engine)?;
    let bytes = wasm.to_vec();
    let e = engine.clone();
    let component = tokio::task::spawn_blocking(move || Component::from_binary(&e, &bytes))
        .await
        .map_err(|e| Error::Engine(e.into()))?
        .map_err(|e| Error::Inspect(format!("not a valid component: {e:#}")))?;
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(&engine).map(|(n, _)| n.to_string()).collect();
    let imports: Vec<String> = ty.imports(&engine).map(|(n, _)| n.to_string()).collect();
    let prefix = format!("{WIT_PACKAGE}/");
    let mut wit_versions: Vec<String> = exports
        .iter()
        .chain(&imports)
        .filter_map(|n| n.strip_prefix(&prefix)?.split_once('@').map(|(_, v)| v.to_string()))
        .collect();
    wit_versions.sort();
    wit_versions.dedup();

    let mut problems = Vec::new();
    for v in &wit_versions {
        if !semver_compatible(v, WIT_VERSION) {
            problems.push(format!("built against {WIT_PACKAGE}@{v}; this host implements @{WIT_VERSION}"));
        }
    }
    let mut hooks = Vec::new();
    match linker.instantiate_pre(&component) {
        Err(e) => problems.push(format!("imports this host cannot satisfy: {e:#}")),
        Ok(pre) => {
            let indices = HookIndices::find(&pre);
            hooks = indices.names().into_iter().map(String::from).collect();
            // An export that names a hook but was not recognised has the
            // wrong shape (or is a hook from a newer WIT).
            for e in exports.iter().filter_map(|e| e.strip_prefix(&prefix)) {
                let iface = e.split('@').next().unwrap_or(e);
                if !hooks.iter().any(|h| h == iface) {
                    problems.push(format!("export {prefix}{e} is not a hook this host can call"));
                }
            }
            if hooks.is_empty() {
                problems.push(format!("exports no {WIT_PACKAGE}@{WIT_VERSION} hook interface"));
            } else {
                let plugin = LoadedPlugin { name: "inspect".into(), decl: inspect_decl(), pre, indices };
                if let Err(e) = instantiate(&engine, &plugin, &inspect_scope()).await {
                    problems.push(format!("{e:#}"));
                }
            }
        }
    }
    Ok(PluginInfo { compatible: problems.is_empty(), hooks, exports, imports, wit_versions, problems })
}

/// Component-model semver: 0.x versions are compatible within the same minor.
fn semver_compatible(guest: &str, host: &str) -> bool {
    let parts = |v: &str| v.split('.').map(|p| p.parse::<u64>().unwrap_or(u64::MAX)).collect::<Vec<_>>();
    let (g, h) = (parts(guest), parts(host));
    match (g.as_slice(), h.as_slice()) {
        ([0, gm, ..], [0, hm, ..]) => gm == hm,
        ([gx, ..], [hx, ..]) => gx == hx,
        _ => false,
    }
}

fn inspect_decl() -> crate::config::PluginDecl {
    crate::config::PluginDecl {
        path: "inspect".into(),
        config: serde_json::json!({}),
        failure: Default::default(),
        grants: Grants::default(),
    }
}

fn inspect_scope() -> Arc<Scope> {
    let host: Arc<dyn crate::services::HostServices> = Arc::new(crate::testing::MemoryHost::new());
    Arc::new(Scope {
        plugin: "inspect".into(),
        tenant: None,
        config: "{}".into(),
        namespace: namespace(None, "inspect"),
        caps: Grants::default().capabilities(false),
        grants: Grants::default(),
        host: host.clone(),
        sandbox: SandboxConfig::default(),
        directory: Arc::new(crate::directory::Directory::new(Default::default(), host)),
        limit: None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn semver_rules() {
        assert!(super::semver_compatible("0.1.0", "0.1.3"));
        assert!(!super::semver_compatible("0.2.0", "0.1.0"));
        assert!(super::semver_compatible("1.0.0", "1.4.0"));
    }
}
