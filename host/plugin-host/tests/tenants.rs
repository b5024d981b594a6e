//! Two tenants with different chains and configs on one runtime; the kv
//! store of one is invisible to the other.

mod common;

use common::*;
use ferrymail_policy::{AuthOutcome, AuthRequest, Reply, Verdict};
use std::sync::Arc;

const TENANTS: &str = r#"
chain = ["@tenant", "auth", "local", "relay"]
[plugins.policy]
path = "@WASM@/test_echo.wasm"
config = { rcpt = { action = "reject", code = 550, enhanced = "5.7.1", text = "base policy" } }
[plugins.kvprobe]
path = "@WASM@/test_echo.wasm"

[tenants.acme]
domains = ["acme.example"]
chain = ["policy", "kvprobe"]
[tenants.acme.plugin_config.policy]
rcpt = { action = "continue" }
[tenants.acme.plugin_config.kvprobe]
kv_tag = "A"

[tenants.bravo]
domains = ["Bravo.Example"]
chain = ["policy"]
[tenants.bravo.plugin_config.policy.rcpt]
text = "bravo policy"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn each_domain_gets_its_tenants_decisions() {
    let rt = runtime(&config(TENANTS), Arc::new(host())).await;
    let p = rt.policy();
    let s = session("192.0.2.1");
    let env = envelope("x@example.org");
    // bravo: the shared plugin with bravo's config merged over the base.
    assert_eq!(p.rcpt(&s, &env, "u@bravo.example").await, Verdict::Reject(Reply::new(550, "5.7.1", "bravo policy")));
    // acme: policy continues, kvprobe answers.
    assert_eq!(
        p.rcpt(&s, &env, "u@acme.example").await,
        Verdict::Reject(Reply::new(550, "5.7.1", "tag A saw nothing"))
    );
    // No tenant: the global chain only (local rejects the unknown user).
    assert!(
        matches!(p.rcpt(&s, &env, "nobody@localhost").await, Verdict::Reject(r) if r.code == 550 && r.text.contains("User unknown"))
    );
    assert_eq!(rt.tenant_for_domain("BRAVO.example."), Some("bravo".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_cannot_see_each_others_kv() {
    let mut cfg = config(TENANTS);
    // Give bravo the same probe plugin with another tag.
    let bravo = cfg.tenants.get_mut("bravo").unwrap();
    bravo.chain = vec!["kvprobe".into()];
    bravo.plugin_config.clear();
    bravo.plugin_config.insert("kvprobe".into(), serde_json::json!({ "kv_tag": "B" }));
    let host = Arc::new(host());
    let rt = runtime(&cfg, host.clone()).await;
    let p = rt.policy();
    let (s, env) = (session("192.0.2.1"), envelope("x@example.org"));
    let text = |v: Verdict| v.reply().unwrap().text.clone();
    assert_eq!(text(p.rcpt(&s, &env, "u@acme.example").await), "tag A saw nothing");
    assert_eq!(text(p.rcpt(&s, &env, "u@bravo.example").await), "tag B saw nothing");
    assert_eq!(text(p.rcpt(&s, &env, "u@acme.example").await), "tag A saw A");
    assert_eq!(text(p.rcpt(&s, &env, "u@bravo.example").await), "tag B saw B");
    // The namespaces are (tenant, plugin), chosen by the host.
    assert_eq!(host.kv_keys("t:acme/p:kvprobe"), vec!["k"]);
    assert_eq!(host.kv_keys("t:bravo/p:kvprobe"), vec!["k"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn submission_uses_the_authenticated_users_tenant() {
    let host = Arc::new(host().account("ann@acme.example", "pw"));
    let rt = runtime(&config(TENANTS), host).await;
    let p = rt.policy();
    let req = AuthRequest {
        session: session("192.0.2.1"),
        mechanism: "PLAIN".into(),
        username: "ann@acme.example".into(),
        password: "pw".into(),
    };
    let outcome = p.auth(&req).await;
    assert_eq!(outcome, AuthOutcome::Ok { user: "ann@acme.example".into(), tenant: Some("acme".into()) });
    // Ann sends to a bravo recipient: acme's chain decides (kvprobe), not bravo's.
    let s = authed("192.0.2.1", "ann@acme.example", Some("acme"));
    let v = p.rcpt(&s, &envelope("ann@acme.example"), "u@bravo.example").await;
    assert_eq!(v.reply().map(|r| r.text.as_str()), Some("tag A saw nothing"));
}

#[tokio::test(flavor = "multi_thread")]
async fn config_errors_name_their_keys() {
    let mut cfg = config(TENANTS);
    cfg.chain.push("missing".into());
    cfg.tenants.get_mut("bravo").unwrap().domains.push("acme.example".into());
    cfg.tenants.get_mut("bravo").unwrap().plugin_config.insert("kvprobe".into(), serde_json::json!({}));
    let err =
        ferrymail_plugin_host::PluginRuntime::new(&cfg, Arc::new(host()), Default::default()).await.err().unwrap();
    let text = err.to_string();
    assert!(text.contains("chain: no plugin named \"missing\""), "{text}");
    assert!(text.contains("tenants.bravo.domains: \"acme.example\" also belongs to tenant \"acme\""), "{text}");
    assert!(text.contains("tenants.bravo.plugin_config.kvprobe"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn milter_config_errors_name_their_keys() {
    let mut cfg = config(TENANTS);
    cfg.chain.insert(0, "milter:nope".into());
    cfg.tenants.get_mut("bravo").unwrap().chain.push("milter:absent".into());
    for (name, socket, timeout) in [("bad", "127.0.0.1:11332", "1s"), ("slow", "inet:127.0.0.1:11332", "0s")] {
        let decl = format!("socket = \"{socket}\"\ntimeout = \"{timeout}\"\n");
        cfg.milters.insert(name.into(), toml::from_str(&decl).unwrap());
    }
    let err =
        ferrymail_plugin_host::PluginRuntime::new(&cfg, Arc::new(host()), Default::default()).await.err().unwrap();
    let text = err.to_string();
    assert!(text.contains("chain: no milter named \"nope\" (declare [milters.nope])"), "{text}");
    assert!(text.contains("tenants.bravo.chain: no milter named \"absent\""), "{text}");
    assert!(text.contains("milters.bad.socket: \"127.0.0.1:11332\": expected inet:HOST:PORT or unix:PATH"), "{text}");
    assert!(text.contains("milters.slow.timeout: must be more than 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_milter_in_one_tenants_chain_gets_its_failure_policy_there_only() {
    let mut cfg = config(TENANTS);
    cfg.tenants.get_mut("bravo").unwrap().chain.insert(0, "milter:gone".into());
    let decl = "socket = \"unix:/nonexistent/ferrymail-test.sock\"\ntimeout = \"2s\"\n";
    cfg.milters.insert("gone".into(), toml::from_str(decl).unwrap());
    let rt = ferrymail_plugin_host::PluginRuntime::new(&cfg, Arc::new(host()), Default::default()).await.unwrap();
    let p = rt.policy();
    let s = session("192.0.2.1");
    let env = envelope("x@example.org");
    let v = p.rcpt(&s, &env, "u@bravo.example").await;
    assert_eq!(v.reply().map(|r| r.code), Some(451), "{v:?}");
    let v = p.rcpt(&session("192.0.2.2"), &env, "u@acme.example").await;
    assert_ne!(v.reply().map(|r| r.code), Some(451), "acme's chain has no milter: {v:?}");
    p.end(&s).await;
}
