//! TLS for STARTTLS, STLS and the implicit-TLS ports (server side) with
//! rustls; the certificate is read at start-up and again on SIGHUP.

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

/// The certificate file the server uses: `tls.cert`, or the generated one.
pub fn cert_path(config: &Config) -> PathBuf {
    if config.tls.cert.is_empty() {
        config.data_dir.join("tls").join("self-signed.crt")
    } else {
        config.tls.cert.clone().into()
    }
}

/// (certificate path, key path, generated now).
fn self_signed(config: &Config) -> Result<(PathBuf, PathBuf, bool)> {
    let dir = config.data_dir.join("tls");
    let (cert, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key, false));
    }
    write_self_signed(&config.hostname, &cert, &key, true)?;
    tracing::debug!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok((cert, key, true))
}

/// Generates a self-signed certificate for `hostname` into `cert` and
/// `key` (PEM; the key readable by its owner only). Without `overwrite`,
/// existing files are an error.
pub fn write_self_signed(hostname: &str, cert: &Path, key: &Path, overwrite: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (cert_pem, key_pem) = generate(hostname).context("generating a self-signed certificate")?;
    for (path, pem, mode) in [(key, key_pem, 0o600), (cert, cert_pem, 0o644)] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).mode(mode);
        if overwrite {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
        file.write_all(pem.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
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
