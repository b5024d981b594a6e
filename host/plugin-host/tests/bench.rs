//! Quick cost measurements (ignored by default; run with
//! `cargo test --release -p ferrymail-plugin-host --test bench -- --ignored --nocapture`).
//! The criterion benchmark comes with the server's benches.

mod common;

use common::*;
use ferrymail_policy::Verdict;
use std::sync::Arc;
use std::time::Instant;

async fn per_call(cfg: &ferrymail_plugin_host::PolicyConfig, n: u32) -> f64 {
    // FM_TEST_BENCH_SCALE=20 for longer runs (profiling).
    let scale: u32 = std::env::var("FM_TEST_BENCH_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let n = n * scale;
    let rt = runtime(cfg, Arc::new(host())).await;
    let p = rt.policy();
    let (s, env) = (session("192.0.2.1"), envelope("a@b.example"));
    for _ in 0..100 {
        p.rcpt(&s, &env, "x@y.example").await;
    }
    let t = Instant::now();
    for _ in 0..n {
        let v = p.rcpt(&s, &env, "x@y.example").await;
        debug_assert_eq!(v, Verdict::Accept);
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn echo_chain(plugins: usize, warm: usize) -> ferrymail_plugin_host::PolicyConfig {
    let mut toml = String::from("chain = [");
    for i in 0..plugins {
        toml.push_str(&format!("\"p{i}\","));
    }
    toml.push_str("]\n");
    for i in 0..plugins {
        let answer = if i + 1 == plugins { "accept" } else { "continue" };
        toml.push_str(&format!(
            "[plugins.p{i}]\npath = \"@WASM@/test_echo.wasm\"\nconfig = {{ rcpt = {{ action = \"{answer}\" }} }}\n"
        ));
    }
    toml.push_str(&format!("[sandbox]\nwarm_instances = {warm}\n"));
    config(&toml)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn hook_call_cost() {
    let one = per_call(&echo_chain(1, 4), 20_000).await;
    let four = per_call(&echo_chain(4, 4), 5_000).await;
    let cold = per_call(&echo_chain(1, 0), 2_000).await;
    let mut fuel = echo_chain(1, 4);
    fuel.sandbox.interrupt = ferrymail_plugin_host::Interrupt::Fuel;
    let fueled = per_call(&fuel, 20_000).await;
    println!("rcpt through a 1-plugin chain, warm instance: {one:.2} µs/call");
    println!("rcpt through a 4-plugin chain, warm instances: {four:.2} µs/call ({:.2} µs per plugin)", four / 4.0);
    println!("rcpt with a new instance per call (warm_instances = 0): {cold:.2} µs/call");
    println!("rcpt, warm instance, fuel mode: {fueled:.2} µs/call");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn python_hook_call_cost() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plugins/target/python/spamwords.wasm");
    assert!(path.exists(), "build it with plugins/examples/build-python.sh");
    let options = ferrymail_plugin_host::RuntimeOptions {
        cache_dir: Some(std::env::temp_dir().join("ferrymail-bench-cache")),
        ..Default::default()
    };
    let mut env = envelope("a@b.example");
    env.rcpt_to.push("alice@localhost".into());
    let s = session("192.0.2.1");
    for warm in [4, 0] {
        let cfg = config(&format!(
            "chain = [\"py\"]\n[plugins.py]\npath = \"{}\"\n[sandbox]\nwarm_instances = {warm}\n",
            path.display()
        ));
        let rt = ferrymail_plugin_host::PluginRuntime::new(&cfg, Arc::new(host()), options.clone()).await.unwrap();
        let p = rt.policy();
        p.data(&s, &env, b"Subject: hi\r\n\r\nbody\r\n").await;
        let n = if warm > 0 { 2000 } else { 100 };
        let t = Instant::now();
        for _ in 0..n {
            p.data(&s, &env, b"Subject: hi\r\n\r\nbody\r\n").await;
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("python data hook, warm_instances = {warm}: {us:.1} µs/call");
    }
}
