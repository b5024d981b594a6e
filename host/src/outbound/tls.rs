//! The client side of STARTTLS: a rustls connector that verifies server
//! certificates (webpki roots plus an optional CA file) or, for
//! opportunistic TLS, accepts any certificate while still checking that
//! the handshake was signed by the certificate's key.

use crate::config::{DeliveryConfig, TlsVerify};
use anyhow::{Context, Result};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;
use tokio_rustls::TlsConnector;

pub fn connector(config: &DeliveryConfig) -> Result<TlsConnector> {
    let provider = crate::tls::provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let client = match config.tls_verify {
        TlsVerify::NoVerify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
        TlsVerify::Verify => {
            let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            if !config.tls_ca_file.is_empty() {
                let pem = std::fs::read(&config.tls_ca_file)
                    .with_context(|| format!("config key delivery.tls_ca_file: cannot read {}", config.tls_ca_file))?;
                for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                    let cert = cert.with_context(|| {
                        format!("config key delivery.tls_ca_file: {} is not PEM", config.tls_ca_file)
                    })?;
                    roots.add(cert).context("config key delivery.tls_ca_file: unusable certificate")?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(TlsConnector::from(Arc::new(client)))
}

/// The name to present (SNI) and, when verifying, to check: the MX host
/// name, or its address when the name is a literal.
pub fn server_name(host: &str, ip: std::net::IpAddr) -> ServerName<'static> {
    ServerName::try_from(host.trim_end_matches('.').to_string()).unwrap_or(ServerName::IpAddress(ip.into()))
}

/// Whether a handshake failure is a certificate verdict (as opposed to a
/// protocol or network failure), which opportunistic TLS must not paper
/// over by falling back to plaintext when verification was asked for.
pub fn is_certificate_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)))
}

/// Accepts any certificate (RFC 7435 opportunistic security: encryption
/// without authentication beats plaintext), but handshake signatures are
/// still verified so the session key is bound to the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
