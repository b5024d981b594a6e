//! The embedded default chain: local delivery, relay control, auth,
//! VRFY/EXPN and the retry schedule, as wasm components.

mod common;

use common::*;
use ferrymail_plugin_host::{DEFAULT_POLICY_TOML, PolicyConfig};
use ferrymail_policy::*;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn default_config() -> PolicyConfig {
    toml::from_str(DEFAULT_POLICY_TOML).unwrap()
}

#[test]
fn the_embedded_toml_is_the_default() {
    assert_eq!(default_config(), PolicyConfig::default());
}

#[tokio::test(flavor = "multi_thread")]
async fn local_recipients_and_relay_control() {
    let rt = runtime(&default_config(), Arc::new(host())).await;
    let p = rt.policy();
    let stranger = session("192.0.2.1");
    let env = envelope("bob@example.org");
    assert_eq!(p.rcpt(&stranger, &env, "alice@localhost").await, Verdict::Accept);
    assert_eq!(p.rcpt(&stranger, &env, "ALICE@LocalHost").await, Verdict::Accept);
    match p.rcpt(&stranger, &env, "nobody@localhost").await {
        Verdict::Reject(r) => assert_eq!((r.code, r.enhanced.as_deref()), (550, Some("5.1.1"))),
        v => panic!("{v:?}"),
    }
    match p.rcpt(&stranger, &env, "carol@example.net").await {
        Verdict::Reject(r) => assert_eq!((r.code, r.enhanced.as_deref()), (554, Some("5.7.1"))),
        v => panic!("{v:?}"),
    }
    // relay_networks and authenticated users may relay.
    assert_eq!(p.rcpt(&session("10.0.0.1"), &env, "carol@example.net").await, Verdict::Accept);
    let user = authed("192.0.2.1", "alice@localhost", None);
    assert_eq!(p.rcpt(&user, &env, "carol@example.net").await, Verdict::Accept);
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_against_accounts() {
    let rt = runtime(&default_config(), Arc::new(host())).await;
    let p = rt.policy();
    let req = |u: &str, pw: &str| AuthRequest {
        session: session("192.0.2.1"),
        mechanism: "PLAIN".into(),
        username: u.into(),
        password: pw.into(),
    };
    assert_eq!(
        p.auth(&req("Alice@localhost", "secret")).await,
        AuthOutcome::Ok { user: "alice@localhost".into(), tenant: None }
    );
    assert_eq!(p.auth(&req("alice@localhost", "wrong")).await, AuthOutcome::Fail);
    assert_eq!(p.auth(&req("nobody@localhost", "secret")).await, AuthOutcome::Fail);
}

#[tokio::test(flavor = "multi_thread")]
async fn vrfy_252_and_expn_502_by_default_reveal_when_configured() {
    let rt = runtime(&default_config(), Arc::new(host())).await;
    let s = session("192.0.2.1");
    assert_eq!(rt.policy().vrfy(&s, "alice@localhost").await.code, 252);
    assert_eq!(rt.policy().expn(&s, "staff@localhost").await.code, 502);

    let mut cfg = default_config();
    cfg.vrfy = DisclosureModeAlias::Reveal;
    cfg.expn = DisclosureModeAlias::Reveal;
    cfg.plugins.insert(
        "local".into(),
        toml::from_str(
            r#"path = "builtin:local"
config = { aliases = { "staff@localhost" = ["alice@localhost", "bob@example.org"] } }"#,
        )
        .unwrap(),
    );
    rt.reload(&cfg).await.unwrap();
    let p = rt.policy();
    assert_eq!(p.vrfy(&s, "<alice@localhost>").await, Reply::new(250, "2.1.5", "<alice@localhost>"));
    assert_eq!(p.vrfy(&s, "nobody@localhost").await.code, 550);
    assert_eq!(p.vrfy(&s, "someone@example.org").await.code, 252);
    assert_eq!(p.expn(&s, "staff@localhost").await, Reply::new(250, "2.1.5", "<alice@localhost>\n<bob@example.org>"));
}

use ferrymail_plugin_host::DisclosureMode as DisclosureModeAlias;

#[tokio::test(flavor = "multi_thread")]
async fn routes_local_alias_catch_all_and_mx() {
    let mut cfg = default_config();
    cfg.plugins.insert(
        "local".into(),
        toml::from_str(
            r#"path = "builtin:local"
config = { aliases = { "postmaster@localhost" = ["alice@localhost"] }, catch_all = { "catch.example" = "alice@localhost" } }"#,
        )
        .unwrap(),
    );
    let host = Arc::new(host().local_domain("catch.example"));
    let rt = runtime(&cfg, host).await;
    let p = rt.policy();
    let ctx = |r: &str| RouteContext { sender: "b@example.org".into(), recipient: r.into(), tenant: None, depth: 0 };
    assert_eq!(p.route(&ctx("Alice@localhost")).await, Route::Local { account: "alice@localhost".into() });
    assert_eq!(p.route(&ctx("postmaster@localhost")).await, Route::Alias { targets: vec!["alice@localhost".into()] });
    assert_eq!(p.route(&ctx("anyone@catch.example")).await, Route::Alias { targets: vec!["alice@localhost".into()] });
    assert_eq!(p.route(&ctx("carol@Example.NET")).await, Route::Mx { domain: "example.net".into() });
    assert!(matches!(p.route(&ctx("nobody@localhost")).await, Route::Reject(r) if r.code == 550));
    assert_eq!(p.rcpt(&session("192.0.2.1"), &envelope(""), "x@catch.example").await, Verdict::Accept);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_follows_the_configured_schedule() {
    let mut cfg = default_config();
    cfg.retry.interval = Duration::from_secs(600);
    retry_schedule(&cfg).await;
    // Without a retry plugin in the chain the embedded one still decides,
    // on the same schedule: the host has no second copy of the algorithm.
    cfg.chain.retain(|p| p != "retry");
    retry_schedule(&cfg).await;
}

async fn retry_schedule(cfg: &ferrymail_plugin_host::PolicyConfig) {
    let rt = runtime(cfg, Arc::new(host())).await;
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let ctx = |age_secs: u64, warned: bool| RetryContext {
        queue_id: "q1".into(),
        sender: "alice@localhost".into(),
        recipient: "carol@example.net".into(),
        tenant: None,
        attempts: 3,
        first_queued: start,
        now: start + Duration::from_secs(age_secs),
        last_reply: Reply::new(451, "4.4.1", "try later"),
        warned,
    };
    let p = rt.policy();
    let ten = Duration::from_secs(600);
    assert_eq!(p.retry(&ctx(60, false)).await, RetryDecision::RetryAfter(ten));
    assert_eq!(p.retry(&ctx(4 * 3600, false)).await, RetryDecision::WarnAndRetry(ten));
    assert_eq!(p.retry(&ctx(4 * 3600, true)).await, RetryDecision::RetryAfter(ten));
    assert_eq!(p.retry(&ctx(5 * 86400, true)).await, RetryDecision::Bounce);
}

/// Issue 16 item 10: per-tenant message-rate limits as a default plugin.
/// Each tenant counts its own messages (the kv namespace is the tenant's),
/// RCPT refuses once the count is reached so no body is sent in vain.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_per_tenant_user_and_ip() {
    let cfg = config(
        r#"
chain = ["@tenant", "auth", "local", "relay"]
[plugins.rate-limit]
path = "builtin:rate-limit"
config = { limits = [{ per = "tenant", max = 2, window = "1h" }] }
[tenants.acme]
domains = ["acme.test"]
chain = ["rate-limit"]
[tenants.beta]
domains = ["beta.test"]
chain = ["rate-limit"]
[tenants.beta.plugin_config.rate-limit]
limits = [{ per = "user", max = 1, window = "1h" }, { per = "ip", max = 3, window = "1h" }]
"#,
    );
    let host = host().local_domain("acme.test").account("ann@acme.test", "pw").account("bo@beta.test", "pw");
    let p = runtime(&cfg, Arc::new(host)).await.policy();
    let over =
        |v: &Verdict| matches!(v, Verdict::Tempfail(r) if r.code == 450 && r.enhanced.as_deref() == Some("4.7.1"));
    let message = |rcpt: &str| Envelope { mail_from: "x@example.org".into(), rcpt_to: vec![rcpt.into()] };
    let s = session("192.0.2.7");
    for _ in 0..2 {
        assert_eq!(p.rcpt(&s, &envelope("x@example.org"), "ann@acme.test").await, Verdict::Accept);
        assert_eq!(p.data(&s, &message("ann@acme.test"), b"Subject: x\r\n\r\nx\r\n").await.verdict, Verdict::Continue);
    }
    // The third message for acme is refused at RCPT, from any client.
    assert!(over(&p.rcpt(&session("198.51.100.1"), &envelope("y@example.org"), "ann@acme.test").await));
    // Other tenants count their own messages, by their own rules: beta
    // limits its users (one message each) and client addresses.
    let bo = authed("192.0.2.7", "bo@beta.test", Some("beta"));
    assert_eq!(p.mail(&bo, "bo@beta.test").await, Verdict::Continue);
    assert!(over(&p.mail(&bo, "bo@beta.test").await));
    assert_eq!(p.rcpt(&s, &envelope("x@example.org"), "bo@beta.test").await, Verdict::Accept);
}
