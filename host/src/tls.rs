//! TLS for STARTTLS and STLS (server side) with rustls.

use anyhow::{Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's TLS, as loaded at start-up.
pub struct ServerTls {
    pub acceptor: TlsAcceptor,
    /// The self-signed certificate, when this start generated it: the
    /// server logs that once it is up (nothing here logs, so a start-up
    /// error stays the only line on stderr).
    pub generated: Option<PathBuf>,
}

/// The acceptor from the configured PEM files, or from a self-signed
/// certificate for `hostname` generated once into `data_dir/tls/`.
pub fn server_tls(config: &Config) -> Result<ServerTls> {
    let (cert_path, key_path, generated) = if config.tls.cert.is_empty() {
        self_signed(config)?
    } else {
        (config.tls.cert.clone().into(), config.tls.key.clone().into(), false)
    };
    let certs = load_certs(&cert_path)?;
    let key = load_key(&key_path)?;
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!("config key tls.cert/tls.key: {} does not match {}", cert_path.display(), key_path.display())
        })?;
    Ok(ServerTls { acceptor: TlsAcceptor::from(Arc::new(server)), generated: generated.then_some(cert_path) })
}

/// (certificate path, key path, generated now).
fn self_signed(config: &Config) -> Result<(PathBuf, PathBuf, bool)> {
    let dir = config.data_dir.join("tls");
    let (cert, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key, false));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (cert_pem, key_pem) = generate(&config.hostname).context("generating a self-signed certificate")?;
    std::fs::write(&cert, cert_pem).with_context(|| format!("writing {}", cert.display()))?;
    std::fs::write(&key, key_pem).with_context(|| format!("writing {}", key.display()))?;
    tracing::debug!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok((cert, key, true))
}

/// A self-signed certificate naming `hostname` as subject CN and as its one
/// subjectAltName (rcgen's simple helper leaves a placeholder CN), in PEM.
fn generate(hostname: &str) -> Result<(String, String), rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(vec![hostname.to_string()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, hostname);
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
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
