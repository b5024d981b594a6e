//! The second-language example: a componentize-py plugin, loaded and
//! answering through the real runtime. Built by
//! `plugins/examples/build-python.sh` (CI runs it before the tests).

mod common;

use common::*;
use ferrymail_plugin_host::{PluginRuntime, RuntimeOptions};
use ferrymail_policy::{Reply, Verdict};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

fn python_wasm() -> PathBuf {
    let path = match std::env::var_os("FM_TEST_PYTHON_WASM") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plugins/target/python/spamwords.wasm"),
    };
    assert!(
        path.exists(),
        "{} is missing: build it with plugins/examples/build-python.sh (needs python3 and PyPI access once)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn python_plugin_filters_data_end_to_end() {
    init_logs();
    let cfg = config(&format!(
        r#"
chain = ["spamwords"]
[plugins.spamwords]
path = "{}"
config = {{ words = ["lottery", "viagra"] }}
"#,
        python_wasm().display()
    ));
    let cache = tempfile::tempdir().unwrap();
    let options = RuntimeOptions { cache_dir: Some(cache.path().to_path_buf()), ..Default::default() };
    let host = Arc::new(host());
    let t = Instant::now();
    let rt = PluginRuntime::new(&cfg, host.clone(), options.clone()).await.unwrap();
    let cold = t.elapsed();
    let t = Instant::now();
    let _warm = PluginRuntime::new(&cfg, host.clone(), options).await.unwrap();
    let cached = t.elapsed();
    eprintln!("python component: load {cold:?} compiling, {cached:?} from the disk cache");

    assert_eq!(rt.plugins()[0].hooks, vec!["data"]);
    let p = rt.policy();
    let mut env = envelope("a@b.example");
    env.rcpt_to.push("alice@localhost".into());
    let s = session("192.0.2.1");

    let spam = p.data(&s, &env, b"Subject: You are a LOTTERY winner\r\n\r\nclaim now\r\n").await;
    assert_eq!(
        spam.verdict,
        Verdict::Reject(Reply::new(550, "5.7.1", "Message refused: contains a forbidden word (lottery)"))
    );
    assert_eq!(host.kv_keys("g/p:spamwords"), vec!["refused"]);

    let t = Instant::now();
    let ham = p.data(&s, &env, b"Subject: lunch\r\n\r\nat noon?\r\n").await;
    eprintln!("python data hook on a warm instance: {:?}", t.elapsed());
    assert_eq!(ham.verdict, Verdict::Continue);
    assert_eq!(ham.add_headers, vec![("X-Spamwords".into(), "clean; checked 2 words".into())]);
}
