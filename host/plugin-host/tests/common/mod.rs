//! Helpers shared by the integration tests: real components from
//! `plugins/` (built by build.rs), an in-memory host, sessions.

#![allow(dead_code)]

use ferrymail_plugin_host::testing::MemoryHost;
use ferrymail_plugin_host::{PluginRuntime, PolicyConfig, RuntimeOptions, builtin};
use ferrymail_policy::{Envelope, Service, SessionInfo};
use std::net::IpAddr;
use std::sync::Arc;

/// Path of a guest built by build.rs, e.g. `wasm("test_echo")`.
pub fn wasm(name: &str) -> String {
    let path = format!("{}/{name}.wasm", builtin::WASM_DIR);
    assert!(std::path::Path::new(&path).exists(), "{path} missing: build.rs should have built it");
    path
}

pub fn config(toml_text: &str) -> PolicyConfig {
    let text = toml_text.replace("@WASM@", builtin::WASM_DIR);
    toml::from_str(&text).unwrap_or_else(|e| panic!("test config: {e}\n{text}"))
}

pub fn host() -> MemoryHost {
    MemoryHost::new()
        .local_domain("localhost")
        .account("alice@localhost", "secret")
        .relay_client("10.0.0.1".parse().unwrap())
}

pub async fn runtime(cfg: &PolicyConfig, host: Arc<MemoryHost>) -> PluginRuntime {
    init_logs();
    PluginRuntime::new(cfg, host, RuntimeOptions::default()).await.unwrap_or_else(|e| panic!("{e}"))
}

pub fn session(ip: &str) -> SessionInfo {
    let ip: IpAddr = ip.parse().unwrap();
    let mut s = SessionInfo::new("s1", Service::Smtp, ip, 40000);
    s.helo = Some("client.example".into());
    s
}

pub fn authed(ip: &str, user: &str, tenant: Option<&str>) -> SessionInfo {
    let mut s = session(ip);
    s.service = Service::Submission;
    s.auth_user = Some(user.into());
    s.tenant = tenant.map(str::to_string);
    s
}

pub fn envelope(from: &str) -> Envelope {
    Envelope { mail_from: from.into(), rcpt_to: Vec::new() }
}

/// Plugin failures are logged; show them when a test fails.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("info").try_init();
}
