//! Hook calls through wasmtime: what one policy decision costs when it is a
//! call into a warm instance of a Rust plugin component (the in-memory
//! `MemoryHost` answers the plugins' host calls, so this is the runtime's
//! cost, not the store's).
//!
//! - `rcpt/1-plugin/echo`: one RCPT, chain of the test echo plugin (answers
//!   accept, no host calls): the bare cost of one hook call.
//! - `rcpt/1-plugin/relay`: one RCPT through `builtin:relay` (two directory
//!   host calls, accepts a relay client's non-local recipient).
//! - `rcpt/1-plugin/echo-new-instance`: the echo chain with
//!   `warm_instances = 0`: every call instantiates the component (what a call costs when more
//!   calls are in flight than instances are kept warm).
//! - `rcpt/4-plugin/echo`: one RCPT through four echo plugins (three
//!   continue, the last accepts): 4 hook calls.
//! - `txn/4-plugin/mail+rcpt+data`: MAIL, RCPT and DATA (2 KiB) through
//!   the chain rate-limit, header-filter, relay, local: 4 hook calls
//!   (rate-limit at MAIL with a kv counter, relay and local at RCPT, local
//!   with an account look-up, header-filter reading the headers at DATA
//!   and adding one).
//!
//! Every runtime but the new-instance one keeps 4 warm instances per plugin;
//! each is warmed up before measuring, and each measurement awaits the calls
//! one after another on one thread, as one SMTP session does.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use ferrymail_plugin_host::testing::MemoryHost;
use ferrymail_plugin_host::{PluginRuntime, PolicyConfig, RuntimeOptions, builtin};
use ferrymail_policy::{DataVerdict, Envelope, Service, SessionInfo, SharedPolicy, Verdict};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DOMAIN: &str = "bench.test";

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn host() -> MemoryHost {
    MemoryHost::new().local_domain(DOMAIN).account("bench1@bench.test", "pw").relay_client("10.0.0.1".parse().unwrap())
}

fn policy_config(toml_text: &str) -> PolicyConfig {
    policy_config_warm(toml_text, 4)
}

fn policy_config_warm(toml_text: &str, warm: usize) -> PolicyConfig {
    let text = format!("{}\n[sandbox]\nwarm_instances = {warm}\n", toml_text.replace("@WASM@", builtin::WASM_DIR));
    toml::from_str(&text).unwrap_or_else(|e| panic!("bench config: {e}\n{text}"))
}

fn runtime(rt: &tokio::runtime::Runtime, cfg: &PolicyConfig) -> PluginRuntime {
    let options = RuntimeOptions {
        // Compiled code is cached across bench runs (compilation is not
        // what is measured).
        cache_dir: Some(std::env::temp_dir().join("ferrymail-bench-plugin-cache")),
        ..Default::default()
    };
    rt.block_on(PluginRuntime::new(cfg, Arc::new(host()), options)).unwrap_or_else(|e| panic!("{e}"))
}

fn session() -> SessionInfo {
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    let mut s = SessionInfo::new("bench", Service::Smtp, ip, 40000);
    s.helo = Some("client.example".into());
    s
}

fn envelope(rcpts: &[&str]) -> Envelope {
    Envelope { mail_from: "sender@client.example".into(), rcpt_to: rcpts.iter().map(|r| r.to_string()).collect() }
}

fn message() -> Vec<u8> {
    let mut m = b"From: sender@client.example\r\nTo: bench1@bench.test\r\n\
Subject: bench\r\nMessage-ID: <1@client.example>\r\n\r\n"
        .to_vec();
    m.resize(2048 - 2, b'x');
    m.extend_from_slice(b"\r\n");
    m
}

/// Time `iters` sequential RCPTs (after a warm-up).
fn bench_rcpt(c: &mut Criterion, name: &str, cfg: &PolicyConfig, rcpt: &str, expect: Verdict) {
    let rt = tokio();
    let runtime = runtime(&rt, cfg);
    let p: SharedPolicy = runtime.policy();
    let (s, env) = (session(), envelope(&[]));
    rt.block_on(async {
        for _ in 0..200 {
            assert_eq!(p.rcpt(&s, &env, rcpt).await, expect, "{name}");
        }
    });
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(p.rcpt(&s, &env, black_box(rcpt)).await);
                }
                t.elapsed()
            })
        })
    });
}

fn echo_chain(plugins: usize) -> PolicyConfig {
    echo_chain_warm(plugins, 4)
}

fn echo_chain_warm(plugins: usize, warm: usize) -> PolicyConfig {
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
    policy_config_warm(&toml, warm)
}

fn one_plugin(c: &mut Criterion) {
    bench_rcpt(c, "rcpt/1-plugin/echo", &echo_chain(1), "x@y.example", Verdict::Accept);
    let relay = policy_config("chain = [\"relay\"]\n");
    bench_rcpt(c, "rcpt/1-plugin/relay", &relay, "x@y.example", Verdict::Accept);
    bench_rcpt(c, "rcpt/1-plugin/echo-new-instance", &echo_chain_warm(1, 0), "x@y.example", Verdict::Accept);
}

fn four_plugins(c: &mut Criterion) {
    bench_rcpt(c, "rcpt/4-plugin/echo", &echo_chain(4), "x@y.example", Verdict::Accept);

    let cfg = policy_config(
        r#"chain = ["rate-limit", "header-filter", "relay", "local"]
[plugins.rate-limit]
path = "builtin:rate-limit"
config = { max = 1000000000000, window = "1h" }
[plugins.header-filter]
path = "builtin:header-filter"
config = { max_size = 10485760, deny = [{ header = "Subject", contains = "never-matches" }], stamp = "X-Bench-Chain" }
"#,
    );
    let rt = tokio();
    let runtime = runtime(&rt, &cfg);
    let p = runtime.policy();
    let s = session();
    let (empty, full) = (envelope(&[]), envelope(&["bench1@bench.test"]));
    let msg = message();
    let txn = || async {
        let m = p.mail(&s, &empty.mail_from).await;
        let r = p.rcpt(&s, &empty, "bench1@bench.test").await;
        let d: DataVerdict = p.data(&s, &full, &msg).await;
        (m, r, d)
    };
    rt.block_on(async {
        for _ in 0..200 {
            let (m, r, d) = txn().await;
            // MAIL and DATA: every plugin continued (the server accepts).
            assert_eq!(m.reply(), None, "{m:?}");
            assert_eq!(r, Verdict::Accept);
            assert_eq!(d.verdict.reply(), None, "{d:?}");
            assert_eq!(d.add_headers.len(), 1, "{d:?}");
        }
    });
    c.bench_function("txn/4-plugin/mail+rcpt+data", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(txn().await);
                }
                t.elapsed()
            })
        })
    });
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = one_plugin, four_plugins }
criterion_main!(benches);
