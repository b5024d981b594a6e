//! Reload: a session holding the old snapshot finishes on it; the next
//! session gets the new chain; a reload that fails keeps the old chain.

mod common;

use common::*;
use ferrymail_policy::Verdict;
use std::sync::Arc;

fn answering(text: &str) -> ferrymail_plugin_host::PolicyConfig {
    config(&format!(
        r#"
chain = ["p"]
[plugins.p]
path = "@WASM@/test_echo.wasm"
config = {{ rcpt = {{ action = "reject", code = 550, enhanced = "5.7.1", text = "{text}" }} }}
"#
    ))
}

fn text(v: Verdict) -> String {
    v.reply().map(|r| r.text.clone()).unwrap_or_else(|| format!("{v:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_under_traffic() {
    let rt = Arc::new(runtime(&answering("old"), Arc::new(host())).await);
    let (s, env) = (session("192.0.2.1"), envelope("a@b.example"));

    // Sessions in progress: each holds the policy it started with and keeps
    // asking while the reload happens.
    let mut sessions = Vec::new();
    for _ in 0..8 {
        let policy = rt.policy();
        let (s, env) = (s.clone(), env.clone());
        sessions.push(tokio::spawn(async move {
            for _ in 0..50 {
                assert_eq!(text(policy.rcpt(&s, &env, "x@y.example").await), "old");
                tokio::task::yield_now().await;
            }
        }));
    }
    rt.reload(&answering("new")).await.unwrap();
    for t in sessions {
        t.await.unwrap();
    }
    assert_eq!(rt.generation(), 2);
    assert_eq!(text(rt.policy().rcpt(&s, &env, "x@y.example").await), "new");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_fails_to_load_keeps_the_old_chain() {
    let rt = runtime(&answering("old"), Arc::new(host())).await;
    let mut bad = answering("new");
    bad.plugins.get_mut("p").unwrap().path = "/nonexistent/plugin.wasm".into();
    let err = rt.reload(&bad).await.unwrap_err().to_string();
    assert!(err.contains("plugin p (/nonexistent/plugin.wasm): reading"), "{err}");

    let mut not_a_plugin = answering("new");
    not_a_plugin.plugins.get_mut("p").unwrap().path =
        format!("{}/../../../Cargo.toml", ferrymail_plugin_host::builtin::WASM_DIR);
    assert!(rt.reload(&not_a_plugin).await.is_err());

    assert_eq!(rt.generation(), 1);
    let v = rt.policy().rcpt(&session("192.0.2.1"), &envelope(""), "x@y.example").await;
    assert_eq!(text(v), "old");
}
