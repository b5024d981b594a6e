//! TLS for STARTTLS and STLS (server side) with rustls.

use anyhow::{Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The acceptor from the configured PEM files, or from a self-signed
/// certificate for `hostname` generated once into `data_dir/tls/`.
pub fn acceptor(config: &Config) -> Result<TlsAcceptor> {
    let (cert_path, key_path) = if config.tls.cert.is_empty() {
        self_signed(config)?
    } else {
        (config.tls.cert.clone().into(), config.tls.key.clone().into())
    };
    let certs = load_certs(&cert_path)?;
    let key = load_key(&key_path)?;
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| format!("config key tls.cert/tls.key: {} does not match {}", cert_path.display(), key_path.display()))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn self_signed(config: &Config) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let dir = config.data_dir.join("tls");
    let (cert, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
    if !cert.exists() || !key.exists() {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let generated = rcgen::generate_simple_self_signed(vec![config.hostname.clone()])
            .context("generating a self-signed certificate")?;
        std::fs::write(&cert, generated.cert.pem()).with_context(|| format!("writing {}", cert.display()))?;
        std::fs::write(&key, generated.key_pair.serialize_pem()).with_context(|| format!("writing {}", key.display()))?;
        tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate (set tls.cert/tls.key for a real one)");
    }
    Ok((cert, key))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("config key tls.cert: cannot read {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("config key tls.cert: {} is not PEM", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "config key tls.cert: no certificate in {}", path.display());
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("config key tls.key: cannot read {}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("config key tls.key: {} is not PEM", path.display()))?
        .with_context(|| format!("config key tls.key: no private key in {}", path.display()))
}
