//! Tenant isolation: a plugin running for tenant T sees and affects only
//! T's recipients and accounts. Tenant "a" runs the hostile test plugin
//! (plugins/tests/hostile), which answers for other tenants' users and
//! accounts; the host must refuse each such answer as a plugin failure.

mod common;

use common::*;
use ferrymail_plugin_host::testing::MemoryHost;
use ferrymail_policy::*;
use std::sync::Arc;

/// Tenant a's hostile plugin with `a_config` (TOML inline-table body), and
/// `failure` as its failure policy; tenant b runs the plain hostile probe.
fn cfg(a_config: &str, failure: &str) -> ferrymail_plugin_host::PolicyConfig {
    config(&format!(
        r#"
chain = ["@tenant", "auth", "local", "relay"]
[plugins.hostile]
path = "@WASM@/test_hostile.wasm"
failure = "{failure}"
[tenants.a]
domains = ["a.test"]
chain = ["hostile"]
plugin_config.hostile = {{ tag = "a", {a_config} }}
[tenants.b]
domains = ["b.test"]
chain = ["hostile"]
plugin_config.hostile = {{ tag = "b" }}
"#
    ))
}

fn accounts() -> Arc<MemoryHost> {
    Arc::new(host().account("mallory@a.test", "pw").account("ann@a.test", "pw").account("bob@b.test", "pw"))
}

fn login(user: &str) -> AuthRequest {
    AuthRequest {
        session: session("192.0.2.1"),
        mechanism: "PLAIN".into(),
        username: user.into(),
        password: "pw".into(),
    }
}

fn route_ctx(recipient: &str, tenant: Option<&str>) -> RouteContext {
    RouteContext {
        sender: "x@example.org".into(),
        recipient: recipient.into(),
        tenant: tenant.map(str::to_string),
        depth: 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_ok_naming_another_tenants_user_is_a_plugin_failure() {
    let rt = runtime(&cfg(r#"auth_as = "bob@b.test""#, "tempfail"), accounts()).await;
    // Before: Ok { user: bob@b.test, tenant: b } — mallory got bob's maildrop.
    assert_eq!(rt.policy().auth(&login("mallory@a.test")).await, AuthOutcome::Tempfail);
    // failure = "skip": the answer is ignored, the next plugin (auth) decides.
    let rt = runtime(&cfg(r#"auth_as = "bob@b.test""#, "skip"), accounts()).await;
    assert_eq!(
        rt.policy().auth(&login("mallory@a.test")).await,
        AuthOutcome::Ok { user: "mallory@a.test".into(), tenant: Some("a".into()) }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_ok_may_name_only_the_users_own_tenant() {
    let rt = runtime(&cfg(r#"auth_as = "ann@a.test", auth_tenant = "b""#, "tempfail"), accounts()).await;
    assert_eq!(rt.policy().auth(&login("mallory@a.test")).await, AuthOutcome::Tempfail);
    // A user of a domain of no tenant is not the tenant's either.
    let rt = runtime(&cfg(r#"auth_as = "alice@localhost""#, "tempfail"), accounts()).await;
    assert_eq!(rt.policy().auth(&login("mallory@a.test")).await, AuthOutcome::Tempfail);
    // Its own users are the tenant's to map logins to.
    let rt = runtime(&cfg(r#"auth_as = "Ann@A.test""#, "tempfail"), accounts()).await;
    assert_eq!(
        rt.policy().auth(&login("mallory@a.test")).await,
        AuthOutcome::Ok { user: "Ann@A.test".into(), tenant: Some("a".into()) }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_global_chain_may_not_name_a_tenants_user_for_a_qualified_login() {
    let cfg = config(
        r#"
chain = ["hostile", "auth", "local", "relay"]
[plugins.hostile]
path = "@WASM@/test_hostile.wasm"
config = { auth_as = "bob@b.test" }
[tenants.b]
domains = ["b.test"]
chain = []
"#,
    );
    let rt = runtime(&cfg, accounts()).await;
    assert_eq!(rt.policy().auth(&login("alice@localhost")).await, AuthOutcome::Tempfail);
    // A bare login name has no tenant yet: the global chain qualifies it.
    assert_eq!(
        rt.policy().auth(&login("bob")).await,
        AuthOutcome::Ok { user: "bob@b.test".into(), tenant: Some("b".into()) }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn route_local_into_another_tenants_account_is_a_plugin_failure() {
    let rt = runtime(&cfg(r#"route_local = "bob@b.test""#, "tempfail"), accounts()).await;
    let p = rt.policy();
    // Before: Local { account: bob@b.test } — a's mail filed into b's mailbox.
    assert!(matches!(p.route(&route_ctx("ann@a.test", None)).await, Route::Reject(r) if r.code == 451));
    // Outgoing mail of tenant a runs a's route chain: same rule.
    assert!(matches!(p.route(&route_ctx("x@example.org", Some("a"))).await, Route::Reject(r) if r.code == 451));
    // skip: the next plugin (local) routes the recipient to its own account.
    let rt = runtime(&cfg(r#"route_local = "bob@b.test""#, "skip"), accounts()).await;
    assert_eq!(rt.policy().route(&route_ctx("ann@a.test", None)).await, Route::Local { account: "ann@a.test".into() });
    // Its own accounts are fine.
    let rt = runtime(&cfg(r#"route_local = "mallory@a.test""#, "tempfail"), accounts()).await;
    assert_eq!(
        rt.policy().route(&route_ctx("ann@a.test", None)).await,
        Route::Local { account: "mallory@a.test".into() }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn route_alias_may_name_own_or_remote_addresses_only() {
    for targets in [r#"["bob@b.test"]"#, r#"["ann@a.test", "Bob@B.Test"]"#, r#"["alice@localhost"]"#] {
        let rt = runtime(&cfg(&format!("route_alias = {targets}"), "tempfail"), accounts()).await;
        let route = rt.policy().route(&route_ctx("ann@a.test", None)).await;
        assert!(matches!(&route, Route::Reject(r) if r.code == 451), "{targets}: {route:?}");
    }
    let rt = runtime(&cfg(r#"route_alias = ["mallory@a.test", "friend@example.org"]"#, "tempfail"), accounts()).await;
    assert_eq!(
        rt.policy().route(&route_ctx("ann@a.test", None)).await,
        Route::Alias { targets: vec!["mallory@a.test".into(), "friend@example.org".into()] }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_chain_resolving_its_own_recipient_stops_at_the_depth_limit() {
    // a's route hook answers what directory.resolve says about the same
    // recipient, and resolve runs a's route chain again. The innermost
    // resolve is refused, that hook continues, `local` files the message,
    // and every level above returns that. Without the limit the nesting
    // ran until call_timeout and the answer was a tempfail.
    let rt = runtime(&cfg("route_resolve = true", "tempfail"), accounts()).await;
    let started = std::time::Instant::now();
    assert_eq!(rt.policy().route(&route_ctx("ann@a.test", None)).await, Route::Local { account: "ann@a.test".into() });
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_recipient_of_no_tenant_is_routed_by_the_global_chain() {
    let rt = runtime(&cfg(r#"route_local = "mallory@a.test""#, "tempfail"), accounts()).await;
    // Tenant a's user writes to alice@localhost: the global chain files it,
    // not a's route hook (before: a's hook answered for alice).
    assert_eq!(
        rt.policy().route(&route_ctx("alice@localhost", Some("a"))).await,
        Route::Local { account: "alice@localhost".into() }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_holds_the_recipients_of_one_tenant() {
    let rt = runtime(&cfg(r#"resolve = "bob@b.test""#, "tempfail"), accounts()).await;
    let p = rt.policy();
    let s = session("192.0.2.1");
    let mut env = envelope("x@example.org");
    env.rcpt_to.push("ann@a.test".into());
    // RFC 5321 4.5.3.1.10 / RFC 3463 X.5.3: b's recipient comes in its own
    // transaction, where a's hooks never see it (before: 250, and b's rcpt
    // hook saw ann@a.test in the envelope).
    match p.rcpt(&s, &env, "bob@b.test").await {
        Verdict::Tempfail(r) => assert_eq!((r.code, r.enhanced.as_deref()), (452, Some("4.5.3"))),
        v => panic!("{v:?}"),
    }
    assert!(matches!(p.rcpt(&s, &env, "alice@localhost").await, Verdict::Tempfail(r) if r.code == 452));
    assert_eq!(p.rcpt(&s, &env, "mallory@a.test").await, Verdict::Accept);
    // An authenticated user's tenant owns the whole transaction.
    let ann = authed("192.0.2.1", "ann@a.test", Some("a"));
    assert_eq!(p.rcpt(&ann, &env, "bob@b.test").await, Verdict::Accept);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_hook_never_decides_for_several_tenants() {
    let rt = runtime(&cfg(r#"resolve = "bob@b.test""#, "tempfail"), accounts()).await;
    let p = rt.policy();
    let s = session("192.0.2.1");
    let msg = b"Subject: hi\r\n\r\nbody\r\n";
    let mut env = envelope("x@example.org");
    env.rcpt_to = vec!["ann@a.test".into(), "mallory@a.test".into()];
    let d = p.data(&s, &env, msg).await;
    assert_eq!(d.verdict, Verdict::Continue);
    // Only a's plugin ran, and it saw only a's recipients.
    assert_eq!(d.add_headers, vec![("X-Hostile-a".into(), r#"saw ["ann@a.test", "mallory@a.test"]"#.into())]);
    // Before: both tenants' hooks ran on both recipients, and b's header
    // went into a's copy. Mixed recipients never reach a data hook now.
    env.rcpt_to.push("bob@b.test".into());
    let d = p.data(&s, &env, msg).await;
    assert!(matches!(d.verdict, Verdict::Tempfail(r) if r.code == 451), "{:?}", d.add_headers);
    assert!(d.add_headers.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sender_address_does_not_choose_whose_retry_hook_runs() {
    use std::time::{Duration, SystemTime};
    let rt = runtime(&cfg("retry_bounce = true", "tempfail"), accounts()).await;
    let ctx = |tenant: Option<&str>| RetryContext {
        queue_id: "1".into(),
        sender: "forged@a.test".into(),
        recipient: "someone@example.org".into(),
        tenant: tenant.map(str::to_string),
        attempts: 1,
        first_queued: SystemTime::now(),
        now: SystemTime::now(),
        last_reply: Reply::new(451, "4.4.1", "try later"),
        warned: false,
    };
    // Anyone may write a.test as the sender: a's hook must not bounce (or
    // hold) mail it never saw (before: Bounce from a's plugin).
    assert_eq!(rt.policy().retry(&ctx(None)).await, RetryDecision::RetryAfter(Duration::from_secs(15 * 60)));
    // Mail a's own user sent (the queue entry's tenant) is a's to decide.
    assert_eq!(rt.policy().retry(&ctx(Some("a"))).await, RetryDecision::Bounce);
}
