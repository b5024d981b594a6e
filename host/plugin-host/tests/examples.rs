//! The example plugins, embedded as `builtin:NAME`: each shows a capability
//! import in use (kv with TTL, kv counters, host DNS, the message resource).

mod common;

use common::*;
use ferrymail_plugin_host::testing::MemoryHost;
use ferrymail_policy::{Reply, Verdict};
use std::sync::Arc;
use std::time::Duration;

fn only(name: &str, config: &str, grants: &str) -> ferrymail_plugin_host::PolicyConfig {
    common::config(&format!(
        r#"
chain = ["{name}"]
[plugins.{name}]
path = "builtin:{name}"
config = {config}
grants = {grants}
"#
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn greylist_defers_first_attempt_then_passes_after_delay() {
    let rt = runtime(&only("greylist", r#"{ delay = "1s" }"#, "{}"), Arc::new(host())).await;
    let p = rt.policy();
    let (s, env) = (session("192.0.2.7"), envelope("a@b.example"));
    let first = p.rcpt(&s, &env, "alice@localhost").await;
    assert!(
        matches!(&first, Verdict::Tempfail(r) if r.code == 451 && r.enhanced.as_deref() == Some("4.7.1")),
        "{first:?}"
    );
    // Too early: still deferred.
    assert!(matches!(p.rcpt(&s, &env, "alice@localhost").await, Verdict::Tempfail(_)));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(p.rcpt(&s, &env, "alice@localhost").await, Verdict::Continue);
    // Same /24, same triplet: remembered.
    assert_eq!(p.rcpt(&session("192.0.2.99"), &env, "alice@localhost").await, Verdict::Continue);
    // Authenticated users are never greylisted.
    assert_eq!(p.rcpt(&authed("198.51.100.1", "alice@localhost", None), &env, "z@localhost").await, Verdict::Continue);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_counts_per_client() {
    let rt = runtime(&only("rate-limit", r#"{ max = 2, window = "1h" }"#, "{}"), Arc::new(host())).await;
    let p = rt.policy();
    let s = session("192.0.2.7");
    assert_eq!(p.mail(&s, "a@b.example").await, Verdict::Continue);
    assert_eq!(p.mail(&s, "c@d.example").await, Verdict::Continue);
    assert!(matches!(p.mail(&s, "e@f.example").await, Verdict::Tempfail(r) if r.code == 450));
    assert_eq!(p.mail(&session("192.0.2.8"), "a@b.example").await, Verdict::Continue);
}

#[tokio::test(flavor = "multi_thread")]
async fn dnsbl_asks_the_host_resolver() {
    let host = MemoryHost::new()
        .a_record("7.2.0.192.bl.test", "127.0.0.2".parse().unwrap())
        .txt_record("7.2.0.192.bl.test", "listed for testing");
    let host = Arc::new(host);
    let cfg = only("dnsbl", r#"{ zones = ["bl.test"] }"#, "{ dns = true }");
    let rt = runtime(&cfg, host.clone()).await;
    let p = rt.policy();
    let v = p.mail(&session("192.0.2.7"), "a@b.example").await;
    assert_eq!(
        v,
        Verdict::Reject(Reply::new(554, "5.7.1", "Client host [192.0.2.7] blocked using bl.test; listed for testing"))
    );
    assert_eq!(p.mail(&session("192.0.2.8"), "a@b.example").await, Verdict::Continue);
    assert!(host.dns_queries.lock().unwrap().contains(&"8.2.0.192.bl.test".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn capabilities_not_granted_are_denied() {
    // A file plugin (not builtin) gets no DNS unless granted: the look-up
    // answers `denied`, the plugin logs it and lets the mail through.
    let host = Arc::new(MemoryHost::new().a_record("7.2.0.192.bl.test", "127.0.0.2".parse().unwrap()));
    let mut cfg = only("dnsbl", r#"{ zones = ["bl.test"] }"#, "{ dns = false }");
    let rt = runtime(&cfg, host.clone()).await;
    assert_eq!(rt.policy().mail(&session("192.0.2.7"), "a@b.example").await, Verdict::Continue);
    assert!(host.dns_queries.lock().unwrap().is_empty(), "the host must not have been asked");
    cfg.plugins.get_mut("dnsbl").unwrap().grants.dns = None;
    cfg.plugins.get_mut("dnsbl").unwrap().path =
        format!("{}/example_dnsbl.wasm", ferrymail_plugin_host::builtin::WASM_DIR);
    rt.reload(&cfg).await.unwrap();
    assert_eq!(rt.policy().mail(&session("192.0.2.7"), "a@b.example").await, Verdict::Continue);
    assert!(host.dns_queries.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn header_filter_checks_size_and_headers() {
    let cfg =
        only("header-filter", r#"{ max_size = 200, deny = [{ header = "Subject", contains = "casino" }] }"#, "{}");
    let rt = runtime(&cfg, Arc::new(host())).await;
    let p = rt.policy();
    let (s, env) = (session("192.0.2.7"), envelope("a@b.example"));
    let ok = p.data(&s, &env, b"Subject: hi\r\n\r\nbody\r\n").await;
    assert_eq!(ok.verdict, Verdict::Continue);
    assert_eq!(ok.add_headers, vec![("X-Header-Filter".into(), "passed; size=21".into())]);
    let bad = p.data(&s, &env, b"Subject: Online CASINO\r\n\r\nbody\r\n").await;
    assert!(matches!(bad.verdict, Verdict::Reject(r) if r.code == 550));
    let big = vec![b'x'; 300];
    assert!(matches!(p.data(&s, &env, &big).await.verdict, Verdict::Reject(r) if r.code == 552));
}
