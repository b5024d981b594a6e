//! Issue 16 item 2: every answer of a guest is untrusted input. The malformed
//! test plugin gives a bad answer at each hook; the host refuses it and
//! applies the plugin's failure policy, for every hook.

mod common;

use common::*;
use ferrymail_policy::*;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn malformed(attack: &str, failure: &str) -> ferrymail_plugin_host::PolicyConfig {
    config(&format!(
        r#"
chain = ["malformed", "auth", "local", "relay", "vrfy-expn", "retry"]
[plugins.malformed]
path = "@WASM@/test_malformed.wasm"
failure = "{failure}"
config = {{ attack = "{attack}" }}
"#
    ))
}

fn temp() -> Reply {
    Reply::new(451, "4.3.0", "Temporary policy failure, try again later")
}

async fn policy(attack: &str, failure: &str) -> SharedPolicy {
    runtime(&malformed(attack, failure), Arc::new(host())).await.policy()
}

#[tokio::test(flavor = "multi_thread")]
async fn reply_injection_in_the_enhanced_code_is_the_plugins_failure() {
    let s = session("192.0.2.1");
    let p = policy("mail-inject", "tempfail").await;
    assert_eq!(p.mail(&s, "a@b.example").await, Verdict::Tempfail(temp()));
    // With failure = "skip" the chain goes on as if the plugin had continued.
    let p = policy("mail-inject", "skip").await;
    assert_eq!(p.mail(&s, "a@b.example").await, Verdict::Continue);
    let p = policy("rcpt-inject", "tempfail").await;
    assert_eq!(p.rcpt(&s, &envelope("a@b.example"), "alice@localhost").await, Verdict::Tempfail(temp()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reject_with_a_success_code_is_the_plugins_failure() {
    let p = policy("reject-250", "tempfail").await;
    assert_eq!(p.mail(&session("192.0.2.1"), "a@b.example").await, Verdict::Tempfail(temp()));
}

#[tokio::test(flavor = "multi_thread")]
async fn header_injection_is_the_plugins_failure() {
    let mut env = envelope("a@b.example");
    env.rcpt_to.push("alice@localhost".into());
    let msg = b"Subject: hi\r\n\r\nbody\r\n";
    let d = policy("header-inject", "tempfail").await.data(&session("192.0.2.1"), &env, msg).await;
    assert_eq!(d.verdict, Verdict::Tempfail(temp()));
    let d = policy("header-inject", "skip").await.data(&session("192.0.2.1"), &env, msg).await;
    assert_eq!(d, DataVerdict::default(), "none of the bad answer is used");
}

#[tokio::test(flavor = "multi_thread")]
async fn vrfy_reply_injection_is_the_plugins_failure() {
    let p = policy("vrfy-inject", "tempfail").await;
    assert_eq!(p.vrfy(&session("192.0.2.1"), "alice").await, temp());
    let p = policy("vrfy-inject", "skip").await;
    assert_eq!(p.vrfy(&session("192.0.2.1"), "alice").await.code, 252, "the default answer");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_name_with_line_breaks_is_the_plugins_failure() {
    let req = |pw: &str| AuthRequest {
        session: session("192.0.2.1"),
        mechanism: "PLAIN".into(),
        username: "alice@localhost".into(),
        password: pw.into(),
    };
    assert_eq!(policy("auth-bad", "tempfail").await.auth(&req("secret")).await, AuthOutcome::Tempfail);
    // Skipped, the next plugin (the default auth) decides on the password.
    let p = policy("auth-bad", "skip").await;
    assert_eq!(p.auth(&req("secret")).await, AuthOutcome::Ok { user: "alice@localhost".into(), tenant: None });
    assert_eq!(p.auth(&req("wrong")).await, AuthOutcome::Fail);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_to_a_malformed_address_is_the_plugins_failure() {
    let ctx =
        RouteContext { sender: "a@b.example".into(), recipient: "alice@localhost".into(), tenant: None, depth: 0 };
    assert_eq!(policy("route-bad", "tempfail").await.route(&ctx).await, Route::Reject(temp()));
    let routed = policy("route-bad", "skip").await.route(&ctx).await;
    assert_eq!(routed, Route::Local { account: "alice@localhost".into() });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zero_retry_interval_is_the_plugins_failure() {
    let now = SystemTime::now();
    let ctx = RetryContext {
        queue_id: "q1".into(),
        sender: "a@b.example".into(),
        recipient: "x@y.example".into(),
        tenant: None,
        attempts: 1,
        first_queued: now,
        now,
        last_reply: Reply::new(451, "4.4.1", "no answer"),
        warned: false,
    };
    // tempfail: the configured interval; skip: the next plugin (the default
    // retry plugin, same schedule). Never the plugin's zero.
    let interval = Duration::from_secs(15 * 60);
    assert_eq!(policy("retry-zero", "tempfail").await.retry(&ctx).await, RetryDecision::RetryAfter(interval));
    assert_eq!(policy("retry-zero", "skip").await.retry(&ctx).await, RetryDecision::RetryAfter(interval));
}

/// Plugin instance globals persist across sessions of one tenant (that is
/// documented), but a handle the host lent for one data call is dead after
/// it: reading through it traps instead of reaching an earlier message.
#[tokio::test(flavor = "multi_thread")]
async fn a_lent_message_is_unreachable_after_its_call() {
    let p = policy("stale-handle", "tempfail").await;
    let s = session("192.0.2.1");
    let mut env = envelope("a@b.example");
    env.rcpt_to.push("alice@localhost".into());
    let d = p.data(&s, &env, b"Subject: secret\r\n\r\nthe first session's body\r\n").await;
    assert_eq!(d.verdict, Verdict::Continue);
    // The same warm instance serves the next session's RCPT.
    let v = p.rcpt(&s, &envelope("c@d.example"), "alice@localhost").await;
    assert_eq!(v, Verdict::Tempfail(temp()), "the stale handle must trap, not leak");
}
