//! What a plugin costs per language: the kits' example plugin (the same
//! RCPT/DATA plugin in Rust, Python, JavaScript and C, plugins/kits/*/example)
//! through the real plugin runtime, with the in-memory host.
//!
//! - first load: `PluginRuntime::new` with no compiled-code cache, i.e.
//!   wasmtime compiling the component (what a server's first start or a
//!   reload of a new component pays; later starts load from the cache);
//! - instantiate: one RCPT with `warm_instances = 0`, so every call builds
//!   a fresh instance (minus the warm per-call cost, that is instantiation);
//! - per call: one RCPT into a warm instance (the example refuses `trap@…`:
//!   one hook call, no host calls), and one DATA (a kv counter and a header).
//!
//! Medians of several runs. Needs the components: FM_KIT_WASM_DIR holding
//! rust.wasm, python.wasm, js.wasm, c.wasm (any subset); without it the
//! bench says so and exits (as under `cargo test --all-targets`). Run:
//!   FM_KIT_WASM_DIR=/tmp/kits cargo bench -p ferrymail-benches --bench plugin_kits

use ferrymail_plugin_host::testing::MemoryHost;
use ferrymail_plugin_host::{PluginRuntime, PolicyConfig, RuntimeOptions};
use ferrymail_policy::{Envelope, Service, SessionInfo, Verdict};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn config(wasm: &Path, warm: usize) -> PolicyConfig {
    let text = format!(
        "chain = [\"example\"]\n[plugins.example]\npath = {:?}\n[sandbox]\nwarm_instances = {warm}\n",
        wasm.display().to_string()
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("bench config: {e}\n{text}"))
}

fn runtime(rt: &tokio::runtime::Runtime, cfg: &PolicyConfig, cache: Option<PathBuf>) -> PluginRuntime {
    let options = RuntimeOptions { cache_dir: cache, ..Default::default() };
    rt.block_on(PluginRuntime::new(cfg, Arc::new(MemoryHost::new()), options)).unwrap_or_else(|e| panic!("{e}"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn session() -> SessionInfo {
    SessionInfo::new("bench", Service::Smtp, "10.0.0.1".parse().unwrap(), 40000)
}

/// Median time of one call, over `runs` batches of `per_batch` calls.
fn per_call<F: std::future::Future>(
    rt: &tokio::runtime::Runtime,
    runs: usize,
    per_batch: u32,
    mut call: impl FnMut() -> F,
) -> Duration {
    let samples = (0..runs)
        .map(|_| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..per_batch {
                    std::hint::black_box(call().await);
                }
                t.elapsed() / per_batch
            })
        })
        .collect();
    median(samples)
}

fn measure(lang: &str, wasm: &Path) {
    let rt = tokio();
    let size = std::fs::metadata(wasm).map(|m| m.len()).unwrap_or(0);
    // First load: compile with no cache, three times.
    let loads: Vec<Duration> = (0..3)
        .map(|_| {
            let t = Instant::now();
            drop(runtime(&rt, &config(wasm, 1), None));
            t.elapsed()
        })
        .collect();
    let first_load = median(loads);

    let cache = std::env::temp_dir().join("ferrymail-bench-kit-cache");
    let (s, env, full) = (
        session(),
        Envelope::default(),
        Envelope { mail_from: "a@example.org".into(), rcpt_to: vec!["bob@example.com".into()] },
    );
    let warm = runtime(&rt, &config(wasm, 4), Some(cache.clone()));
    let p = warm.policy();
    let msg = b"From: a@example.org\r\nSubject: bench\r\n\r\nhello\r\n".to_vec();
    rt.block_on(async {
        for _ in 0..50 {
            assert!(matches!(p.rcpt(&s, &env, "trap@example.com").await, Verdict::Reject(_)), "{lang}: no refusal");
        }
    });
    let rcpt = per_call(&rt, 7, 500, || p.rcpt(&s, &env, "trap@example.com"));
    let data = per_call(&rt, 7, 200, || p.data(&s, &full, &msg));

    let cold = runtime(&rt, &config(wasm, 0), Some(cache));
    let q = cold.policy();
    let new_instance = per_call(&rt, 7, 10, || q.rcpt(&s, &env, "trap@example.com"));
    println!(
        "{lang:<7} size {:>5.1} MB  first load {:>8.2?}  instantiate+call {:>9.2?}  rcpt call {:>8.2?}  data call {:>8.2?}",
        size as f64 / 1e6,
        first_load,
        new_instance,
        rcpt,
        data
    );
}

fn main() {
    let Some(dir) = std::env::var_os("FM_KIT_WASM_DIR").map(PathBuf::from) else {
        println!("plugin_kits: set FM_KIT_WASM_DIR to a directory with rust.wasm, python.wasm, js.wasm, c.wasm");
        return;
    };
    for lang in ["rust", "python", "js", "c"] {
        let wasm = dir.join(format!("{lang}.wasm"));
        if wasm.is_file() {
            measure(lang, &wasm);
        }
    }
}
