//! `ferrymail plugin check`: hooks, imports, WIT version.

mod common;

use common::wasm;
use ferrymail_plugin_host::inspect;

#[tokio::test(flavor = "multi_thread")]
async fn reports_hooks_and_capabilities() {
    let info = inspect(&std::fs::read(wasm("test_echo")).unwrap()).await.unwrap();
    assert!(info.compatible, "{:?}", info.problems);
    assert_eq!(info.hooks, vec!["mail", "rcpt", "data"]);
    assert_eq!(info.wit_versions, vec!["0.1.0"]);
    assert!(info.imports.contains(&"ferrymail:plugin/kv@0.1.0".to_string()), "{:?}", info.imports);
    assert!(!info.imports.iter().any(|i| i.starts_with("ferrymail:plugin/dns")), "echo never calls dns");
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_what_is_not_a_plugin() {
    assert!(inspect(b"not wasm").await.is_err());
    // A core module is not a component.
    let core = b"\0asm\x01\0\0\0";
    assert!(inspect(core).await.is_err());
}
