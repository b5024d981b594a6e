//! Default plugin `auth`: logins (SMTP AUTH, POP3, IMAP) against the
//! server's accounts, and which envelope senders a logged-in user may use.
//! The host compares the password hash; this plugin never sees one.
//!
//! Senders: the host itself lets a user use its own address and the null
//! sender and refuses every other one (553 5.7.1) unless a plugin accepts
//! it. This plugin accepts, at MAIL FROM, an address that routes to the
//! user (one `directory.resolve` step: an alias or catch-all whose targets
//! include the user, or a local route to the user's account) and the
//! addresses `senders` grants.
//!
//! Config:
//! - `default_domain` qualifies bare user names ("alice" → "alice@DOMAIN");
//!   without it they fail;
//! - `senders`: user → addresses it may also send as; `"@domain"` grants
//!   the whole domain (`"alice@a.test" = ["ceo@a.test", "@shop.a.test"]`).

use ferrymail_plugin_sdk::*;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Auth {
    default_domain: Option<String>,
    senders: HashMap<String, Vec<String>>,
}

impl Auth {
    /// `sender` is granted to `user` by `senders`, or routes to `user`.
    fn may_send_as(&self, user: &str, sender: &str) -> bool {
        let sender = sender.to_lowercase();
        let granted = self.senders.iter().filter(|(u, _)| u.eq_ignore_ascii_case(user)).flat_map(|(_, v)| v);
        for g in granted {
            let g = g.to_lowercase();
            let hit = match g.strip_prefix('@') {
                Some(domain) => domain_of(&sender) == domain,
                None => g == sender,
            };
            if hit {
                return true;
            }
        }
        match directory::resolve(&sender) {
            Ok(Destination::Local(account)) => account.eq_ignore_ascii_case(user),
            Ok(Destination::Alias(targets)) => targets.iter().any(|t| t.eq_ignore_ascii_case(user)),
            // Another tenant's address: not this plugin's to look at.
            Ok(_) | Err(HostError::Denied) => false,
            Err(e) => {
                host::warn(&format!("resolving sender {sender}: {e}"));
                false
            }
        }
    }
}

#[plugin]
impl Plugin for Auth {
    fn new() -> Self {
        host::config().unwrap_or_else(|e| {
            host::warn(&e);
            Auth::default()
        })
    }

    fn auth(&self, req: &AuthRequest) -> AuthResult {
        let mut user = req.username.trim().to_lowercase();
        if !user.contains('@') {
            match &self.default_domain {
                Some(d) => user = format!("{user}@{}", d.to_lowercase()),
                None => return AuthResult::Fail,
            }
        }
        match directory::verify_password(&user, &req.password) {
            Ok(true) => AuthResult::ok(user),
            Ok(false) => AuthResult::Fail,
            Err(e) => {
                host::warn(&format!("password check for {user} failed: {e}"));
                AuthResult::Tempfail
            }
        }
    }

    fn mail(&self, s: &Session, sender: &str) -> Verdict {
        let Some(user) = &s.auth_user else {
            return Verdict::Continue;
        };
        // The host's own rule covers the user's address and `<>`.
        if sender.is_empty() || sender.eq_ignore_ascii_case(user) || !self.may_send_as(user, sender) {
            return Verdict::Continue;
        }
        Verdict::Accept
    }
}
