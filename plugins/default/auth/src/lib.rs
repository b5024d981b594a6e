//! Default plugin `auth`: logins (SMTP AUTH, POP3, IMAP) against the
//! server's accounts. The host compares the password hash; this plugin
//! never sees one. Config: `default_domain` qualifies bare user names
//! ("alice" → "alice@DOMAIN"); without it they fail.

use ferrymail_plugin_sdk::*;
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Auth {
    default_domain: Option<String>,
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
}
