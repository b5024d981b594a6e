//! Mail authentication: DKIM signatures on what our users send, and (in
//! [`verify`]) SPF, DKIM and DMARC results for what arrives, through the
//! `mail-auth` crate and the server's resolver.
//!
//! # Layout
//! - [`keys`]: signing keys on disk, per domain and selector
//! - [`sign`]: the `DKIM-Signature` field, oversigned
//! - [`verify`]: SPF, DKIM, DMARC and the `Authentication-Results` field

pub mod keys;
pub mod sign;
pub mod verify;

use crate::config::Config;
use crate::state::ServerState;
use ferrymail_policy::{Envelope, Service, SessionInfo, logsafe};

/// Removes `Authentication-Results` fields that claim our host name (RFC
/// 8601 5) from every message, then, for mail from other servers (port 25,
/// no AUTH) with `mail_auth.verify` on, checks SPF, DKIM and DMARC and
/// prepends our own field.
pub async fn authenticate(
    state: &ServerState,
    session: &SessionInfo,
    envelope: &Envelope,
    content: Vec<u8>,
    log_id: &str,
) -> Vec<u8> {
    let config = &state.config;
    let content = verify::strip_forged(&content, &config.hostname).unwrap_or(content);
    if !config.mail_auth.verify || session.service != Service::Smtp || session.auth_user.is_some() {
        return content;
    }
    let tx = verify::Transaction {
        hostname: &config.hostname,
        client_ip: session.client_ip,
        helo: session.helo.as_deref().unwrap_or(""),
        mail_from: &envelope.mail_from,
    };
    let results = match state.dns.resolver() {
        Ok(resolver) => {
            let auth = mail_auth::MessageAuthenticator(resolver.clone());
            verify::check(&auth, &tx, &content, config.mail_auth.timeout).await
        }
        Err(e) => {
            tracing::warn!(error = %e, "no resolver for SPF/DKIM/DMARC");
            verify::Results {
                header: format!(
                    "Authentication-Results: {}; spf=temperror; dkim=temperror; dmarc=temperror\r\n",
                    config.hostname
                ),
                summary: "no resolver".into(),
            }
        }
    };
    tracing::info!(session = %session.id, msg = %log_id, results = %logsafe(&results.summary), "mail auth");
    let mut out = results.header.into_bytes();
    out.extend_from_slice(&content);
    out
}

/// Signs a message an authenticated user submitted, by the domain of its
/// From field, when that domain has a key and belongs to the user's own
/// tenant (or, for users of no tenant, is a local domain of no tenant): a
/// user of one tenant never gets mail signed as another's.
pub fn sign_submission(keys: &keys::Keys, config: &Config, session: &SessionInfo, message: &mut Vec<u8>, log_id: &str) {
    if session.auth_user.is_none() {
        return;
    }
    let Some(domain) = sign::from_domain(message) else { return };
    if !config.is_local_domain(&domain) || config.tenant_of_domain(&domain) != session.tenant.as_deref() {
        tracing::info!(msg = %log_id, domain = %ferrymail_policy::logsafe(&domain), "not dkim signed: From is not a domain of the sender's tenant");
        return;
    }
    sign::sign_as(keys, &domain, message, log_id);
}
