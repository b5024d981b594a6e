//! `ferrymail plugin test PLUGIN.wasm --transcript FILE`: runs a plugin
//! through a scripted SMTP session against the server's own code — its
//! driver, session state machine, chain walk with its end-of-chain
//! defaults, delivery and store — in this process, on a temporary store,
//! and checks the replies, who decided them, the header fields the chain
//! added and the plugin's kv entries. No server to run, nothing to build.
//! The format: docs/plugin-test.md.
//!
//! # Layout
//! - [`transcript`]: the format's parser
//! - `harness`: the in-process server and what it replaces (DNS, SPF)
//! - `replay`: the client side, the checks and the diff
//! - [`record`]: `--record`, a proxy that writes a live session as a transcript

mod harness;
pub mod record;
mod replay;
pub mod transcript;

use crate::config::Config;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// What `plugin test` was asked.
pub struct Args<'a> {
    pub wasm: &'a Path,
    pub transcript: &'a Path,
    pub tenant: Option<&'a str>,
    /// The plugin's name in the chain (default: the file's stem).
    pub name: Option<&'a str>,
}

/// Runs the transcript; prints the report. `Ok(false)`: an expectation failed.
pub async fn run(config: Config, config_path: Option<&Path>, args: Args<'_>) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(args.transcript)
        .with_context(|| format!("--transcript {}", args.transcript.display()))?;
    let dir = args.transcript.parent().unwrap_or(Path::new("."));
    let shown = args.transcript.display().to_string();
    let transcript = transcript::parse(&text, dir).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    anyhow::ensure!(args.wasm.is_file(), "{}: no such file", args.wasm.display());
    let name = match args.name {
        Some(n) => n.to_string(),
        None => default_name(args.wasm),
    };
    let target = harness::Target { wasm: args.wasm, name: name.clone(), tenant: args.tenant };
    let started = std::time::Instant::now();
    let harness = harness::Harness::start(config, config_path, &target, &transcript.setup).await?;
    let load = started.elapsed();
    let outcome = replay::replay(&harness, &transcript.steps, &shown).await;
    harness.close().await;
    let outcome = outcome?;
    let where_ = args.tenant.map_or("the global chain".to_string(), |t| format!("tenant {t}'s chain"));
    println!("plugin {name} ({}) in {where_}; loaded in {} ms", args.wasm.display(), load.as_millis());
    print!("{}", outcome.report);
    match outcome.failed {
        0 => println!("ok: {} expectations held", outcome.checked),
        n => println!("FAILED: {n} of {} expectations did not hold", outcome.checked),
    }
    Ok(outcome.failed == 0)
}

/// The compiled-code cache of the plugin tools (`plugin test`, `plugin
/// check`): the configured one, or the server's default if it exists, else
/// the user's (`$XDG_CACHE_HOME` or `~/.cache`, `ferrymail/plugin-cache`),
/// so a big component compiles once, not on every run.
pub fn cache_dir(config: &Config) -> Option<PathBuf> {
    let server = config.plugin_cache_dir();
    if !config.plugin_cache_dir.as_os_str().is_empty() || server.is_dir() {
        return Some(server);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let dir = base.join("ferrymail").join("plugin-cache");
    std::fs::create_dir_all(&dir).ok()?;
    std::path::absolute(&dir).ok()
}

/// A chain name from a file name: `spam_words.wasm` → `spam-words`.
fn default_name(wasm: &Path) -> String {
    let stem = wasm.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    if name.is_empty() { "plugin".into() } else { name }
}
