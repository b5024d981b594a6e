//! The native policy: the same decisions as the default plugin chain, in
//! plain Rust. The server uses the wasm chain; this is the test double that
//! lets protocol tests run without wasm, and the reference the default
//! plugins are checked against.

use crate::config::Config;
use crate::passwords;
use async_trait::async_trait;
use ferrymail_policy::*;
use ferrymail_store::SharedStore;
use std::time::Duration;

pub struct NativePolicy {
    store: SharedStore,
    config: Config,
    retry_interval: Duration,
    warn_after: Duration,
    give_up_after: Duration,
}

impl NativePolicy {
    pub fn new(store: SharedStore, config: Config) -> Self {
        NativePolicy {
            store,
            config,
            retry_interval: Duration::from_secs(15 * 60),
            warn_after: Duration::from_secs(4 * 3600),
            give_up_after: Duration::from_secs(5 * 86400),
        }
    }

    pub fn with_retry(mut self, interval: Duration, warn_after: Duration, give_up_after: Duration) -> Self {
        self.retry_interval = interval;
        self.warn_after = warn_after;
        self.give_up_after = give_up_after;
        self
    }

    fn is_local(&self, address: &str) -> bool {
        match address.rsplit_once('@') {
            Some((_, domain)) => self.config.is_local_domain(domain),
            // RFC 5321 4.5.1: "postmaster" without a domain is ours.
            None => address.eq_ignore_ascii_case("postmaster"),
        }
    }
}

/// `postmaster` without a domain means the postmaster of our first domain.
pub fn qualify(address: &str, config: &Config) -> String {
    if address.contains('@') {
        address.to_string()
    } else {
        format!("{address}@{}", config.local_domains.first().map(String::as_str).unwrap_or(&config.hostname))
    }
}

#[async_trait]
impl Policy for NativePolicy {
    async fn auth(&self, request: &AuthRequest) -> AuthOutcome {
        let account = match self.store.account(&request.username).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                passwords::verify_unknown_async(request.password.clone()).await;
                return AuthOutcome::Fail;
            }
            Err(_) => return AuthOutcome::Tempfail,
        };
        if passwords::verify_async(request.password.clone(), account.password_hash).await {
            AuthOutcome::Ok { user: account.address, tenant: None }
        } else {
            AuthOutcome::Fail
        }
    }

    async fn rcpt(&self, session: &SessionInfo, _envelope: &Envelope, rcpt: &str) -> Verdict {
        if self.is_local(rcpt) {
            return match self.store.account(&qualify(rcpt, &self.config)).await {
                Ok(Some(_)) => Verdict::Accept,
                Ok(None) => Verdict::Reject(Reply::new(
                    550,
                    "5.1.1",
                    format!("<{rcpt}>: Recipient address rejected: User unknown"),
                )),
                Err(_) => Verdict::Tempfail(Reply::new(451, "4.3.0", "Temporary lookup failure")),
            };
        }
        let trusted = session.auth_user.is_some() || self.config.may_relay(session.client_ip);
        if trusted { Verdict::Accept } else { Verdict::Continue }
    }

    async fn route(&self, ctx: &RouteContext) -> Route {
        if self.is_local(&ctx.recipient) {
            Route::Local { account: qualify(&ctx.recipient, &self.config).to_lowercase() }
        } else {
            let domain = ctx.recipient.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
            Route::Mx { domain: domain.to_lowercase() }
        }
    }

    async fn retry(&self, ctx: &RetryContext) -> RetryDecision {
        let age = ctx.now.duration_since(ctx.first_queued).unwrap_or_default();
        if age >= self.give_up_after {
            RetryDecision::Bounce
        } else if age >= self.warn_after && !ctx.warned {
            RetryDecision::WarnAndRetry(self.retry_interval)
        } else {
            RetryDecision::RetryAfter(self.retry_interval)
        }
    }
}
