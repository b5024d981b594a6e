//! Default plugin `relay`: who may send to other domains. Authenticated
//! users and clients in the server's `relay_networks` may; anyone else gets
//! 554 5.7.1 for a non-local recipient. Local recipients are left to the
//! `local` plugin. Config: `allow_authenticated` (default true).

use ferrymail_plugin_sdk::*;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default)]
struct Relay {
    allow_authenticated: bool,
}

impl Default for Relay {
    fn default() -> Self {
        Relay { allow_authenticated: true }
    }
}

#[plugin]
impl Plugin for Relay {
    fn new() -> Self {
        host::config().unwrap_or_default()
    }

    fn rcpt(&self, s: &Session, _e: &Envelope, rcpt: &str) -> Verdict {
        let domain = domain_of(rcpt);
        if domain.is_empty() || directory::is_local_domain(&domain) {
            return Verdict::Continue;
        }
        let authenticated = self.allow_authenticated && s.auth_user.is_some();
        if authenticated || directory::client_may_relay(&s.client_ip) {
            return Verdict::Accept;
        }
        Verdict::reject(554, "5.7.1", format!("<{rcpt}>: Relay access denied"))
    }
}
