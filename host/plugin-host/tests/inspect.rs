//! `ferrymail plugin check`: hooks, imports, WIT version, missing imports
//! with their likely cause, compile time and the compile cache.

mod common;

use common::wasm;
use ferrymail_plugin_host::inspect;

#[tokio::test(flavor = "multi_thread")]
async fn reports_hooks_and_capabilities() {
    let info = inspect(&std::fs::read(wasm("test_echo")).unwrap(), None).await.unwrap();
    assert!(info.compatible, "{:?}", info.problems);
    assert_eq!(info.hooks, vec!["mail", "rcpt", "data"]);
    assert_eq!(info.wit_versions, vec!["0.1.0"]);
    assert!(info.imports.contains(&"ferrymail:plugin/kv@0.1.0".to_string()), "{:?}", info.imports);
    assert!(!info.imports.iter().any(|i| i.starts_with("ferrymail:plugin/dns")), "echo never calls dns");
    assert!(info.missing.is_empty());
    assert_eq!(info.cache_hit, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_hooks_and_names_every_missing_import_when_imports_do_not_link() {
    // Exports rcpt and data, imports wasi:http as componentize-js output
    // does without disableFeatures http: the hooks are still listed.
    let info = inspect(&std::fs::read(wasm("test_http_import")).unwrap(), None).await.unwrap();
    assert!(!info.compatible);
    assert_eq!(info.hooks, vec!["rcpt", "data"]);
    let missing: Vec<&str> = info.missing.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].starts_with("wasi:http/types@0.2."), "{missing:?}");
    assert!(info.missing[0].likely_cause.contains("componentize-js without disableFeatures"), "{:?}", info.missing);
    // Nothing else is wrong with it: the hooks type-check once the import is stubbed.
    assert!(info.problems.is_empty(), "{:?}", info.problems);
}

#[tokio::test(flavor = "multi_thread")]
async fn says_whether_the_compile_cache_served_it() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(wasm("test_echo")).unwrap();
    let first = inspect(&bytes, Some(dir.path().to_path_buf())).await.unwrap();
    assert_eq!(first.cache_hit, Some(false));
    // The entry is written before compilation returns.
    let second = inspect(&bytes, Some(dir.path().to_path_buf())).await.unwrap();
    assert_eq!(second.cache_hit, Some(true));
    assert!(second.compatible);
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_what_is_not_a_plugin() {
    assert!(inspect(b"not wasm", None).await.is_err());
    // A core module is not a component.
    let core = b"\0asm\x01\0\0\0";
    assert!(inspect(core, None).await.is_err());
}
