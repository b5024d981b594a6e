//! What keeps one client from taking the server for itself: concurrent
//! connections per address and network ([`connections`]), and failed
//! logins and unknown recipients counted across sessions ([`failures`]),
//! and the login path every protocol takes through them ([`login`]).

pub mod connections;
pub mod failures;
pub mod login;

pub use connections::{ConnectionLimits, ConnectionPolicy, ConnectionSlot, Exceeded};
pub use failures::{FailurePolicy, Failures, LoginAttempt, Refused};
pub use login::Login;

use ferrymail_policy::{SessionInfo, logsafe};

/// The log line of a failed login, the same for every protocol and stable
/// for fail2ban (docs/fail2ban.md): the message, then `client=`, before
/// any field a client chose.
pub fn log_failed(info: &SessionInfo, user: &str, failures: u32) {
    tracing::warn!(
        client = %info.client_ip,
        service = %info.service.as_str(),
        session = %info.id,
        failures,
        user = %logsafe(user),
        "auth failed"
    );
}

/// The log line of a login refused because of earlier failures.
pub fn log_refused(info: &SessionInfo, user: &str, refused: Refused) {
    tracing::warn!(
        client = %info.client_ip,
        service = %info.service.as_str(),
        session = %info.id,
        limit = %refused.scope(),
        failures = refused.failures(),
        user = %logsafe(user),
        "auth refused: too many failures"
    );
}
