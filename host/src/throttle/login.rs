//! The login path SMTP AUTH, POP3 and IMAP share: refuse at once when this
//! client or account failed too often lately, else ask the policy; a
//! failure is counted, logged (the fail2ban line) and paid for with the
//! delay before the answer. Each protocol then words the outcome.

use crate::state::ServerState;
use ferrymail_policy::{AuthOutcome, AuthRequest, Policy, SessionInfo};
use ferrymail_store::schema::Account;

/// How a login ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// The policy accepted it: the user it named, and that user's tenant.
    Ok { user: String, tenant: Option<String> },
    /// Bad credentials (the failure delay has passed).
    Fail,
    /// The policy could not decide (a plugin failed, a store was down).
    Tempfail,
    /// Too many failures lately: the password was not checked.
    Refused,
}

/// What the client sent: the login name as typed (for logs and the
/// failure count), the name the policy is asked about (SMTP: as typed;
/// POP3 and IMAP: qualified with our first domain), and the password.
pub struct Credentials<'a> {
    pub mechanism: String,
    pub login: &'a str,
    pub username: String,
    pub password: String,
}

/// One login with `credentials`. Failures are counted
/// under the qualified name, across protocols; `protocol` labels the
/// login metrics ("smtp", "pop3", "imap").
pub async fn login(
    protocol: &'static str,
    state: &ServerState,
    policy: &dyn Policy,
    info: &SessionInfo,
    credentials: Credentials<'_>,
) -> Login {
    let Credentials { mechanism, login, username, password } = credentials;
    let account = crate::policy::qualify(login, &state.config);
    let attempt = match state.failures.begin_login(info.client_ip, &account) {
        Ok(attempt) => attempt,
        Err(refused) => {
            super::log_refused(info, login, refused);
            return Login::Refused;
        }
    };
    let request = AuthRequest { session: info.clone(), mechanism, username, password };
    match policy.auth(&request).await {
        AuthOutcome::Ok { user, tenant } => {
            attempt.succeeded();
            crate::metrics::login(protocol, true);
            Login::Ok { user, tenant }
        }
        AuthOutcome::Fail => {
            let (delay, failures) = attempt.failed();
            crate::metrics::login(protocol, false);
            super::log_failed(info, login, failures);
            tokio::time::sleep(delay).await;
            Login::Fail
        }
        AuthOutcome::Tempfail => Login::Tempfail,
    }
}

/// A [`login`] for the mailbox protocols (POP3, IMAP), which need the
/// account the policy named, and its tenant. `Err` is how it ended
/// otherwise: `Login::Fail` also when that account does not exist (a
/// policy naming a user the store does not have), `Login::Tempfail` when
/// the store failed.
pub async fn mailbox_login(
    protocol: &'static str,
    state: &ServerState,
    policy: &dyn Policy,
    info: &SessionInfo,
    credentials: Credentials<'_>,
) -> Result<(Account, Option<String>), Login> {
    let (user, tenant) = match login(protocol, state, policy, info, credentials).await {
        Login::Ok { user, tenant } => (user, tenant),
        other => return Err(other),
    };
    match state.store.account(&user).await {
        Ok(Some(account)) => Ok((account, tenant)),
        Ok(None) => Err(Login::Fail),
        Err(_) => Err(Login::Tempfail),
    }
}
