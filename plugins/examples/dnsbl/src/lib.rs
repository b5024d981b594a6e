//! Example `dnsbl` (host DNS import): refuses mail from clients listed in
//! a DNS blocklist (RFC 5782), checked once per transaction at MAIL FROM.
//! Authenticated sessions are not checked. Needs `grants.dns = true`.
//!
//! Config: `zones` (["zen.spamhaus.org"]), `action` ("reject" or "tempfail").

use ferrymail_plugin_sdk::*;
use serde::Deserialize;
use std::net::IpAddr;

#[derive(Deserialize)]
#[serde(default)]
struct Dnsbl {
    zones: Vec<String>,
    action: String,
}

impl Default for Dnsbl {
    fn default() -> Self {
        Dnsbl { zones: vec!["zen.spamhaus.org".into()], action: "reject".into() }
    }
}

/// The query name for `ip` in `zone` (RFC 5782 2.1 and 2.4).
fn query(ip: IpAddr, zone: &str) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let hex: String = v6.octets().iter().map(|b| format!("{b:02x}")).collect();
            let nibbles: Vec<String> = hex.chars().rev().map(String::from).collect();
            format!("{}.{zone}", nibbles.join("."))
        }
    }
}

#[plugin]
impl Plugin for Dnsbl {
    fn new() -> Self {
        host::config().unwrap_or_default()
    }

    fn mail(&self, s: &Session, _sender: &str) -> Verdict {
        if s.auth_user.is_some() {
            return Verdict::Continue;
        }
        let Ok(ip) = s.client_ip.parse::<IpAddr>() else {
            return Verdict::Continue;
        };
        for zone in &self.zones {
            let name = query(ip, zone);
            match dns::a(&name) {
                // RFC 5782 2.1: listed entries answer 127.0.0.2 and up.
                Ok(answers) if answers.iter().any(|a| a.starts_with("127.")) => {
                    let why = dns::txt(&name).ok().and_then(|t| t.into_iter().next()).unwrap_or_default();
                    let text = format!("Client host [{ip}] blocked using {zone}; {why}");
                    host::info(&text);
                    return if self.action == "tempfail" {
                        Verdict::tempfail(451, "4.7.1", text)
                    } else {
                        Verdict::reject(554, "5.7.1", text)
                    };
                }
                Ok(_) => {}
                Err(e) => host::warn(&format!("{zone}: {e}")),
            }
        }
        Verdict::Continue
    }
}
