//! Chains of real components: order, `continue`, the plugin's own replies.

mod common;

use common::*;
use ferrymail_policy::{Reply, Verdict};
use std::sync::Arc;

const CHAIN: &str = r#"
chain = ["first", "second", "third"]
[plugins.first]
path = "@WASM@/test_echo.wasm"
config = { }
[plugins.second]
path = "@WASM@/test_echo.wasm"
config = { rcpt = { action = "reject", code = 553, enhanced = "5.7.9", text = "second says no" } }
[plugins.third]
path = "@WASM@/test_echo.wasm"
config = { rcpt = { action = "accept" } }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn reject_uses_the_plugins_own_code_and_text_after_continue_falls_through() {
    let rt = runtime(&config(CHAIN), Arc::new(host())).await;
    let v = rt.policy().rcpt(&session("192.0.2.1"), &envelope("a@b.example"), "x@y.example").await;
    // "first" continues (no rcpt answer configured), "second" decides.
    assert_eq!(v, Verdict::Reject(Reply::new(553, "5.7.9", "second says no")));
}

#[tokio::test(flavor = "multi_thread")]
async fn order_matters() {
    let mut cfg = config(CHAIN);
    cfg.chain = vec!["first".into(), "third".into(), "second".into()];
    let rt = runtime(&cfg, Arc::new(host())).await;
    let v = rt.policy().rcpt(&session("192.0.2.1"), &envelope("a@b.example"), "x@y.example").await;
    assert_eq!(v, Verdict::Accept);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_that_only_continues_continues() {
    let mut cfg = config(CHAIN);
    cfg.chain = vec!["first".into()];
    let rt = runtime(&cfg, Arc::new(host())).await;
    let v = rt.policy().rcpt(&session("192.0.2.1"), &envelope("a@b.example"), "x@y.example").await;
    assert_eq!(v, Verdict::Continue);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_of_the_wrong_class_is_the_plugins_failure() {
    let cfg = config(
        r#"
chain = ["liar"]
[plugins.liar]
path = "@WASM@/test_echo.wasm"
config = { rcpt = { action = "reject", code = 250, enhanced = "5.7.1", text = "ok?" } }
"#,
    );
    let rt = runtime(&cfg, Arc::new(host())).await;
    let v = rt.policy().rcpt(&session("192.0.2.1"), &envelope(""), "x@y.example").await;
    // A "reject" with 250 would turn a refusal into an acceptance; repairing
    // the code would guess. The failure policy (tempfail) answers instead.
    assert_eq!(v, Verdict::Tempfail(Reply::new(451, "4.3.0", "Temporary policy failure, try again later")));
}

#[tokio::test(flavor = "multi_thread")]
async fn data_hook_reads_the_lent_message_and_adds_headers() {
    let cfg = config(
        r#"
chain = ["echo"]
[plugins.echo]
path = "@WASM@/test_echo.wasm"
"#,
    );
    let rt = runtime(&cfg, Arc::new(host())).await;
    let mut env = envelope("a@b.example");
    env.rcpt_to.push("alice@localhost".into());
    let msg = b"Subject: hello\r\n  world\r\nFrom: a@b.example\r\n\r\nbody\r\n";
    let d = rt.policy().data(&session("192.0.2.1"), &env, msg).await;
    assert_eq!(d.verdict, Verdict::Continue);
    let expected = format!("size={} subject=hello world first=Subj", msg.len());
    assert_eq!(d.add_headers, vec![("X-Echo".to_string(), expected)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_calls_only_hooks_a_plugin_exports() {
    let cfg = config(CHAIN);
    let rt = runtime(&cfg, Arc::new(host())).await;
    let echo = rt.plugins().into_iter().find(|p| p.name == "first").unwrap();
    assert_eq!(echo.hooks, vec!["mail", "rcpt", "data"]);
    // No plugin has vrfy: the host's default answer, no call made.
    let r = rt.policy().vrfy(&session("192.0.2.1"), "alice").await;
    assert_eq!(r.code, 252);
}
