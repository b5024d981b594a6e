//! `ferrymail serve`: open the store, bind every listener, and run until
//! SIGTERM/SIGINT; SIGHUP reloads the policy.

use crate::config::Config;
use crate::control;
use crate::policy::NativePolicy;
use crate::state::ServerState;
use anyhow::{Context, Result};
use ferrymail_policy::{Service, SharedPolicy};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

pub async fn run(config: Config, config_path: Option<PathBuf>) -> Result<()> {
    let config = Arc::new(config);
    check_data_dir(&config)?;
    let store = control::client::open_store(&config)?;
    let tls = match crate::tls::acceptor(&config) {
        Ok(t) => Some(t),
        Err(e) if config.tls.cert.is_empty() => {
            tracing::warn!(error = %e, "no TLS: STARTTLS and STLS will not be offered");
            None
        }
        Err(e) => return Err(e),
    };
    let policy = build_policy(&config, &store)?;
    let outbound = Arc::new(crate::outbound::client::Settings::new(&config)?);
    let state = Arc::new(ServerState::new(config.clone(), store, policy, tls));

    // Bind everything before serving anything: a port conflict is reported
    // at start-up, not half-way into service.
    let smtp = crate::listener::bind("smtp.listen", &config.smtp.listen).await?;
    let submission = crate::listener::bind("submission.listen", &config.submission.listen).await?;
    let pop3 = crate::listener::bind("pop3.listen", &config.pop3.listen).await?;
    let control_listener = control::server::bind(&config.control_socket())?;

    let (shutdown_tx, shutdown) = watch::channel(false);
    for l in smtp {
        tokio::spawn(crate::smtp::serve(state.clone(), Service::Smtp, config.smtp.clone(), l, shutdown.clone()));
    }
    for l in submission {
        tokio::spawn(crate::smtp::serve(state.clone(), Service::Submission, config.submission.clone(), l, shutdown.clone()));
    }
    for l in pop3 {
        tokio::spawn(crate::pop3::serve(state.clone(), config.pop3.clone(), l, shutdown.clone()));
    }
    if !config.imap.listen.is_empty() {
        tracing::info!("imap: configured but not served in this version");
    }
    tokio::spawn(crate::outbound::run(state.clone(), outbound, shutdown.clone()));
    let (reload_tx, mut reload_rx) = mpsc::channel::<control::server::ReloadRequest>(4);
    tokio::spawn(control::server::serve(control_listener, state.clone(), reload_tx));
    tracing::info!(hostname = %config.hostname, data_dir = %config.data_dir.display(), "ferrymail started");

    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                if let Err(e) = reload(&state, config_path.as_deref()) {
                    tracing::error!(error = %e, "reload failed; keeping the running configuration");
                }
            }
            Some(reply) = reload_rx.recv() => {
                let _ = reply.send(reload(&state, config_path.as_deref()).map_err(|e| e.to_string()));
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    // Every 250 already sent is on disk; a last flush covers the rest.
    let _ = state.store.flush_now();
    let _ = std::fs::remove_file(config.control_socket());
    Ok(())
}

fn check_data_dir(config: &Config) -> Result<()> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("config key data_dir: cannot create {}", dir.display()))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").with_context(|| format!("config key data_dir: {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn build_policy(config: &Arc<Config>, store: &ferrymail_store::Store) -> Result<SharedPolicy> {
    let r = &config.retry;
    Ok(Arc::new(NativePolicy::new(store.clone(), (**config).clone()).with_retry(r.interval, r.warn_after, r.give_up_after)))
}

/// Re-reads the configuration file and swaps in a new policy; sessions in
/// progress keep the one they started with.
fn reload(state: &Arc<ServerState>, config_path: Option<&std::path::Path>) -> Result<String> {
    let config = Arc::new(Config::load(config_path)?);
    let policy = build_policy(&config, &state.store)?;
    state.set_policy(policy);
    tracing::info!("reloaded configuration and policy");
    Ok("reloaded".into())
}
