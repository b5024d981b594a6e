//! Runaway plugins: an endless loop, a memory hog, a trap. Each becomes the
//! plugin's failure policy within the deadline, and other sessions keep
//! being served meanwhile (on a single-threaded executor, so the looping
//! plugin must yield).

mod common;

use common::*;
use ferrymail_policy::{Reply, Verdict};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cfg(bad: &str, failure: &str, extra: &str) -> ferrymail_plugin_host::PolicyConfig {
    config(&format!(
        r#"
chain = ["@tenant", "fast"]
[plugins.bad]
path = "@WASM@/{bad}.wasm"
failure = "{failure}"
[plugins.fast]
path = "@WASM@/test_echo.wasm"
config = {{ rcpt = {{ action = "accept" }} }}
[tenants.slow]
domains = ["slow.example"]
chain = ["bad"]
[sandbox]
deadline = "200ms"
memory_limit = 33554432
{extra}
"#
    ))
}

fn tempfail() -> Verdict {
    Verdict::Tempfail(Reply::new(451, "4.3.0", "Temporary policy failure, try again later"))
}

/// Run the bad plugin in the background and count fast calls served meanwhile.
async fn bad_call_while_serving(rt: &ferrymail_plugin_host::PluginRuntime) -> (Verdict, Duration, usize) {
    let policy = rt.policy();
    let started = Instant::now();
    let bad = tokio::spawn(async move {
        let v = policy.rcpt(&session("192.0.2.1"), &envelope("a@b.example"), "x@slow.example").await;
        (v, started.elapsed())
    });
    let mut served = 0;
    while !bad.is_finished() {
        let v = rt.policy().rcpt(&session("192.0.2.2"), &envelope("c@d.example"), "y@fast.example").await;
        assert_eq!(v, Verdict::Accept);
        served += 1;
        tokio::task::yield_now().await;
    }
    let (v, took) = bad.await.unwrap();
    (v, took, served)
}

#[tokio::test(flavor = "current_thread")]
async fn an_endless_loop_hits_the_deadline_and_others_are_served() {
    let rt = runtime(&cfg("test_looper", "tempfail", ""), Arc::new(host())).await;
    let (v, took, served) = bad_call_while_serving(&rt).await;
    assert_eq!(v, tempfail());
    assert!(took >= Duration::from_millis(200), "stopped early: {took:?}");
    assert!(took < Duration::from_millis(900), "deadline overrun: {took:?}");
    assert!(served > 0, "no other session was served while the plugin looped");
}

#[tokio::test(flavor = "current_thread")]
async fn fuel_mode_stops_the_loop_too() {
    let rt = runtime(&cfg("test_looper", "tempfail", "interrupt = \"fuel\"\nfuel = 20000000"), Arc::new(host())).await;
    let (v, took, _) = bad_call_while_serving(&rt).await;
    assert_eq!(v, tempfail());
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_memory_hog_hits_the_cap() {
    let rt = runtime(&cfg("test_hog", "tempfail", ""), Arc::new(host())).await;
    let (v, took, _) = bad_call_while_serving(&rt).await;
    assert_eq!(v, tempfail());
    assert!(took < Duration::from_millis(900), "{took:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn skip_falls_through_to_the_next_plugin() {
    let rt = runtime(&cfg("test_hog", "skip", ""), Arc::new(host())).await;
    let (v, _, _) = bad_call_while_serving(&rt).await;
    assert_eq!(v, Verdict::Accept, "the global `fast` plugin should decide");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_discards_the_instance_and_the_next_call_gets_a_fresh_one() {
    let rt = runtime(&cfg("test_trap", "tempfail", ""), Arc::new(host())).await;
    let p = rt.policy();
    let mut s = session("192.0.2.1");
    s.tenant = Some("slow".into());
    for _ in 0..3 {
        let v = p.rcpt(&session("192.0.2.1"), &envelope("a@b.example"), "x@slow.example").await;
        assert_eq!(v, tempfail());
        // The same plugin still answers other hooks: a new instance.
        assert_eq!(p.mail(&s, "a@b.example").await, Verdict::Accept);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_calls_of_one_plugin_use_separate_instances() {
    let rt = Arc::new(runtime(&cfg("test_trap", "tempfail", ""), Arc::new(host())).await);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let p = rt.policy();
        tasks.push(tokio::spawn(async move {
            let v = p.rcpt(&session("192.0.2.9"), &envelope("a@b.example"), &format!("u{i}@fast.example")).await;
            assert_eq!(v, Verdict::Accept);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
