//! Default plugin `vrfy-expn`: what VRFY and EXPN reveal (RFC 5321 3.5).
//! Config `vrfy` and `expn`, each "off" (502), "252" (cannot verify, will
//! attempt delivery) or "reveal" (answer with what routing would do, for
//! local domains only). The host fills the defaults from the top-level
//! `vrfy`/`expn` keys; a tenant may override them.

use ferrymail_plugin_sdk::*;
use serde::Deserialize;

#[derive(Deserialize, Clone, Copy, PartialEq)]
enum Mode {
    #[serde(rename = "off")]
    Off,
    #[serde(rename = "252")]
    Cannot,
    #[serde(rename = "reveal")]
    Reveal,
}

#[derive(Deserialize)]
struct VrfyExpn {
    vrfy: Mode,
    expn: Mode,
}

/// The mailbox in "Name <a@b>", "<a@b>" or "a@b".
fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.rfind('<'), arg.rfind('>')) {
        (Some(s), Some(e)) if s < e => arg[s + 1..e].to_string(),
        _ => arg.to_string(),
    }
}

fn cannot(what: &str) -> Reply {
    Reply::new(252, "2.5.0", format!("Cannot {what} user, but will accept message and attempt delivery"))
}

impl VrfyExpn {
    fn answer(&self, arg: &str, expn: bool) -> Reply {
        let (mode, what) = if expn { (self.expn, "EXPN") } else { (self.vrfy, "VRFY") };
        match mode {
            Mode::Off => return Reply::new(502, "5.5.1", format!("{what} not available")),
            Mode::Cannot => return cannot(what),
            Mode::Reveal => {}
        }
        let addr = address(arg);
        let domain = domain_of(&addr);
        if domain.is_empty() || !directory::is_local_domain(&domain) {
            return cannot(what);
        }
        match directory::resolve(&addr) {
            Ok(Destination::Local(account)) => Reply::new(250, "2.1.5", format!("<{account}>")),
            Ok(Destination::Alias(targets)) if expn => {
                let lines: Vec<String> = targets.iter().map(|t| format!("<{t}>")).collect();
                Reply::new(250, "2.1.5", lines.join("\n"))
            }
            Ok(Destination::Alias(_)) => Reply::new(250, "2.1.5", format!("<{addr}>")),
            Ok(Destination::Reject(r)) if r.code >= 500 => Reply::new(550, "5.1.1", format!("<{addr}>: User unknown")),
            Ok(_) => cannot(what),
            Err(e) => {
                host::warn(&format!("resolving {addr}: {e}"));
                Reply::new(451, "4.3.0", "Temporary lookup failure")
            }
        }
    }
}

#[plugin]
impl Plugin for VrfyExpn {
    fn new() -> Self {
        host::config().unwrap_or_else(|e| {
            host::warn(&e);
            VrfyExpn { vrfy: Mode::Cannot, expn: Mode::Off }
        })
    }

    fn vrfy(&self, _s: &Session, arg: &str) -> Option<Reply> {
        Some(self.answer(arg, false))
    }

    fn expn(&self, _s: &Session, arg: &str) -> Option<Reply> {
        Some(self.answer(arg, true))
    }
}
