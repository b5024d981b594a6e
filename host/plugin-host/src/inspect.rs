//! `ferrymail plugin check FILE.wasm`: which hooks a component exports,
//! what it imports, whether it loads against this host's WIT, and when it
//! does not, every reason with its likely cause — hooks are listed from
//! the component's exports even when its imports do not link.

use crate::config::{Grants, Interrupt, SandboxConfig};
use crate::plugin::{HookIndices, LoadedPlugin, instantiate};
use crate::runtime::{new_engine_cached, new_linker};
use crate::sandbox::{Ctx, Scope, namespace};
use crate::{Error, WIT_PACKAGE, WIT_VERSION};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceType};

/// What `inspect` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Hooks the component exports that this host knows, in WIT order,
    /// whether or not its imports link.
    pub hooks: Vec<String>,
    /// Every interface the component exports (`ferrymail:plugin/rcpt@0.1.0`, …).
    pub exports: Vec<String>,
    /// Every interface it imports: its capabilities (`ferrymail:plugin/kv@…`)
    /// and WASI.
    pub imports: Vec<String>,
    /// Imports this host does not provide, each with its likely cause.
    pub missing: Vec<MissingImport>,
    /// The `ferrymail:plugin` versions named by its exports and imports.
    pub wit_versions: Vec<String>,
    /// It loads and every hook type-checks against this host's WIT.
    pub compatible: bool,
    /// Why not, when not, besides the missing imports.
    pub problems: Vec<String>,
    /// How long compiling took (or loading it from the cache).
    pub compile_time: Duration,
    /// `Some(true)`: the compiled form came from the cache; `Some(false)`:
    /// compiled now (and stored there); `None`: no cache.
    pub cache_hit: Option<bool>,
}

/// An import the host does not provide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingImport {
    pub name: String,
    /// What usually puts it there, and what to do.
    pub likely_cause: String,
}

/// Compile and check a component without configuring it. Runs the
/// component's start code once, in the sandbox with nothing granted.
/// With `cache_dir`, compiled code is read from and stored in it (as the
/// server does).
pub async fn inspect(wasm: &[u8], cache_dir: Option<PathBuf>) -> Result<PluginInfo, Error> {
    let (engine, cache) = new_engine_cached(Interrupt::Epoch, cache_dir.as_ref()).map_err(Error::Engine)?;
    let mut linker = new_linker(&engine).map_err(Error::Engine)?;
    let bytes = wasm.to_vec();
    let e = engine.clone();
    // wasmtime counts a hit only when a stored entry was read and used.
    let hits = cache.as_ref().map(wasmtime::Cache::cache_hits);
    let started = std::time::Instant::now();
    let component = tokio::task::spawn_blocking(move || Component::from_binary(&e, &bytes))
        .await
        .map_err(|e| Error::Engine(e.into()))?
        .map_err(|e| Error::Inspect(format!("not a valid component: {e:#}")))?;
    let compile_time = started.elapsed();
    let cache_hit = cache.as_ref().zip(hits).map(|(c, h)| c.cache_hits() > h);

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
    // From the export names alone: what the author meant to implement.
    let hooks: Vec<String> = HookIndices::ALL
        .iter()
        .filter(|h| exports.iter().any(|e| interface_of(e, &prefix) == Some(**h)))
        .map(|h| h.to_string())
        .collect();

    let mut problems = Vec::new();
    for v in &wit_versions {
        if !semver_compatible(v, WIT_VERSION) {
            problems.push(format!("built against {WIT_PACKAGE}@{v}; this host implements @{WIT_VERSION}"));
        }
    }
    for e in &exports {
        if let Some(iface) = interface_of(e, &prefix)
            && !HookIndices::ALL.contains(&iface)
        {
            problems.push(format!("export {e} is not a hook this host can call"));
        }
    }
    if hooks.is_empty() {
        problems.push(format!("exports no {WIT_PACKAGE}@{WIT_VERSION} hook interface"));
    }

    // Link, stubbing each import the host lacks with traps, so that every
    // missing import is named (not only the first) and the hooks are still
    // type-checked.
    let mut missing: Vec<MissingImport> = Vec::new();
    let pre = loop {
        match linker.instantiate_pre(&component) {
            Ok(pre) => break Some(pre),
            Err(e) => {
                let text = format!("{e:#}");
                match missing_import_name(&text) {
                    Some(name) if !missing.iter().any(|m| m.name == name) && stub(&mut linker, &component, &name) => {
                        missing.push(MissingImport { likely_cause: likely_cause(&name), name });
                    }
                    _ => {
                        problems.push(format!("imports this host cannot satisfy: {text}"));
                        break None;
                    }
                }
            }
        }
    };
    if let Some(pre) = pre {
        let indices = HookIndices::find(&pre);
        for h in &hooks {
            if !indices.names().contains(&h.as_str()) {
                problems.push(format!("hook `{h}` is exported but does not match {WIT_PACKAGE}@{WIT_VERSION}"));
            }
        }
        if !indices.names().is_empty() {
            let plugin = LoadedPlugin { name: "inspect".into(), decl: inspect_decl(), pre, indices };
            if let Err(e) = instantiate(&engine, &plugin, &inspect_scope()).await {
                problems.push(format!("{e:#}"));
            }
        }
    }
    Ok(PluginInfo {
        compatible: problems.is_empty() && missing.is_empty(),
        hooks,
        exports,
        imports,
        missing,
        wit_versions,
        problems,
        compile_time,
        cache_hit,
    })
}

/// `rcpt` for `ferrymail:plugin/rcpt@0.1.0`.
fn interface_of<'a>(export: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = export.strip_prefix(prefix)?;
    Some(rest.split('@').next().unwrap_or(rest))
}

/// The import a linking error is about: wasmtime says "component imports
/// instance `NAME`, but a matching implementation was not found".
fn missing_import_name(error: &str) -> Option<String> {
    let rest = error.split_once("component imports ")?.1;
    let name = rest.split_once('`')?.1.split_once('`')?.0;
    Some(name.to_string())
}

/// Defines `name` (an instance or a function the component imports) with
/// functions that trap and placeholder resources. `false`: nothing to stub.
fn stub(linker: &mut Linker<Ctx>, component: &Component, name: &str) -> bool {
    let engine = component.engine().clone();
    let ty = component.component_type();
    let Some((_, item)) = ty.imports(&engine).find(|(n, _)| *n == name) else {
        return false;
    };
    let trap = |what: String| {
        move |_: wasmtime::StoreContextMut<'_, Ctx>, _, _: &[_], _: &mut [_]| -> wasmtime::Result<()> {
            wasmtime::bail!("{what} is not provided by this host")
        }
    };
    match item.ty {
        ComponentItem::ComponentFunc(_) => linker.root().func_new(name, trap(name.to_string())).is_ok(),
        ComponentItem::ComponentInstance(instance) => {
            let Ok(mut inst) = linker.instance(name) else { return false };
            for (export, ext) in instance.exports(&engine) {
                // The instance is new: defining its items cannot collide.
                let _ = match ext.ty {
                    ComponentItem::ComponentFunc(_) => inst.func_new(export, trap(format!("{name}#{export}"))),
                    ComponentItem::Resource(_) => inst.resource(export, ResourceType::host::<()>(), |_, _| Ok(())),
                    _ => Ok(()),
                };
            }
            true
        }
        _ => false,
    }
}

/// Why a component imports what this host lacks, and what to do.
fn likely_cause(import: &str) -> String {
    let (package, version) = import.split_once('@').unwrap_or((import, ""));
    if package.starts_with("wasi:http/") {
        return "componentize-js without disableFeatures: ['http', 'fetch-event'] adds wasi:http \
                (build with the JS kit's build script, which disables them); from another toolchain, \
                an HTTP client is compiled in: plugins reach the network only through host imports"
            .into();
    }
    if let Some(iface) = package.strip_prefix(&format!("{WIT_PACKAGE}/")) {
        return match semver_compatible(version, WIT_VERSION) {
            false => format!(
                "built against {WIT_PACKAGE}@{version}; this host implements @{WIT_VERSION}: \
                 rebuild against the WIT of this host (`ferrymail plugin new` vendors it)"
            ),
            true => format!(
                "`{iface}` is not an import of {WIT_PACKAGE}@{WIT_VERSION} (a newer WIT, or a world of your own \
                 that names it): use the host's wit/ and a world from worlds.wit"
            ),
        };
    }
    if package.starts_with("wasi:") && version.starts_with("0.3") {
        return "WASI 0.3 (preview 3): build for WASI 0.2 (wasm32-wasip2)".into();
    }
    if package.starts_with("wasi:") {
        return "a WASI interface outside WASI 0.2's cli, io, clocks, random, filesystem and sockets \
                (a proposal this host does not provide): drop the dependency that uses it"
            .into();
    }
    "an interface of neither ferrymail:plugin nor WASI 0.2: a library compiled into the plugin \
     imports it; plugins may import only those two"
        .into()
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
    use super::*;

    #[test]
    fn semver_rules() {
        assert!(semver_compatible("0.1.0", "0.1.3"));
        assert!(!semver_compatible("0.2.0", "0.1.0"));
        assert!(semver_compatible("1.0.0", "1.4.0"));
    }

    #[test]
    fn the_missing_import_of_a_linking_error() {
        let e = "component imports instance `wasi:http/types@0.2.4`, but a matching implementation was \
                 not found in the linker: instance export `fields` has the wrong type";
        assert_eq!(missing_import_name(e).as_deref(), Some("wasi:http/types@0.2.4"));
        assert_eq!(missing_import_name("some other error"), None);
    }

    #[test]
    fn likely_causes() {
        assert!(likely_cause("wasi:http/types@0.2.3").contains("disableFeatures"));
        assert!(likely_cause("ferrymail:plugin/host@0.2.0").contains("built against ferrymail:plugin@0.2.0"));
        assert!(likely_cause("ferrymail:plugin/secrets@0.1.0").contains("`secrets` is not an import"));
        assert!(likely_cause("wasi:keyvalue/store@0.2.0").contains("proposal"));
        assert!(likely_cause("acme:thing/x").contains("neither"));
    }
}
