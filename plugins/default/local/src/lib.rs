//! Default plugin `local`: recipients in local domains. Accepts existing
//! accounts, aliases and catch-all domains at RCPT (others: 550 5.1.1) and
//! routes them at queue time; other domains go to their MX, or to
//! `smarthost` when set.
//!
//! Config (per tenant through plugin_config):
//! - `aliases`: address → list of addresses (`"sales@acme.example" = ["ann@acme.example"]`)
//! - `catch_all`: domain → address for unknown users of that domain
//! - `smarthost`: "host:port" for all non-local mail

use ferrymail_plugin_sdk::*;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Config {
    aliases: HashMap<String, Vec<String>>,
    catch_all: HashMap<String, String>,
    smarthost: Option<String>,
}

struct Local {
    aliases: HashMap<String, Vec<String>>,
    catch_all: HashMap<String, String>,
    smarthost: Option<(String, u16)>,
}

/// What a local address is.
enum Found {
    Alias(Vec<String>),
    Account(String),
    CatchAll(String),
    Unknown,
    Error(HostError),
}

impl Local {
    fn find(&self, rcpt: &str) -> Found {
        let addr = rcpt.to_lowercase();
        if let Some(targets) = self.aliases.get(&addr) {
            return Found::Alias(targets.clone());
        }
        match directory::account_exists(&addr) {
            Ok(true) => return Found::Account(addr),
            Ok(false) => {}
            Err(e) => return Found::Error(e),
        }
        match self.catch_all.get(&domain_of(&addr)) {
            Some(t) => Found::CatchAll(t.clone()),
            None => Found::Unknown,
        }
    }
}

fn is_local(rcpt: &str) -> bool {
    let d = domain_of(rcpt);
    // RFC 5321 4.5.1: bare "postmaster" is always ours.
    (d.is_empty() && rcpt.eq_ignore_ascii_case("postmaster")) || (!d.is_empty() && directory::is_local_domain(&d))
}

fn unknown(rcpt: &str) -> Reply {
    Reply::new(550, "5.1.1", format!("<{rcpt}>: Recipient address rejected: User unknown"))
}

#[plugin]
impl Plugin for Local {
    fn new() -> Self {
        let c: Config = host::config().unwrap_or_else(|e| {
            host::warn(&e);
            Config::default()
        });
        let smarthost = c.smarthost.and_then(|s| {
            let (h, p) = s.rsplit_once(':')?;
            Some((h.to_string(), p.parse().ok()?))
        });
        Local {
            aliases: c.aliases.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect(),
            catch_all: c.catch_all.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect(),
            smarthost,
        }
    }

    fn rcpt(&self, _s: &Session, _e: &Envelope, rcpt: &str) -> Verdict {
        if !is_local(rcpt) {
            return Verdict::Continue;
        }
        match self.find(rcpt) {
            Found::Alias(_) | Found::Account(_) | Found::CatchAll(_) => Verdict::Accept,
            Found::Unknown if domain_of(rcpt).is_empty() => Verdict::Accept,
            Found::Unknown => Verdict::Reject(unknown(rcpt)),
            Found::Error(e) => {
                host::warn(&format!("account look-up for {rcpt}: {e}"));
                Verdict::tempfail(451, "4.3.0", "Temporary lookup failure")
            }
        }
    }

    fn route(&self, ctx: &RouteContext) -> Option<Destination> {
        let rcpt = &ctx.recipient;
        if !is_local(rcpt) {
            return Some(match &self.smarthost {
                Some((host, port)) => Destination::Relay(RelayHost { host: host.clone(), port: *port }),
                None => Destination::Mx(domain_of(rcpt)),
            });
        }
        Some(match self.find(rcpt) {
            Found::Alias(targets) => Destination::Alias(targets),
            Found::Account(a) => Destination::Local(a),
            Found::CatchAll(t) => Destination::Alias(vec![t]),
            Found::Unknown => Destination::Reject(unknown(rcpt)),
            Found::Error(_) => Destination::Reject(Reply::new(451, "4.3.0", "Temporary lookup failure")),
        })
    }
}
