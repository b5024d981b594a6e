//! Example `greylist` (kv with TTL): the first attempt of an unknown
//! (client network, sender, recipient) triplet gets 451 4.7.1; a retry after
//! `delay` passes and the triplet is remembered for `remember`.
//! Authenticated sessions are never greylisted.
//!
//! Config: `delay` ("5m"), `window` ("4h": how long a first attempt is
//! remembered), `remember` ("36d").

use ferrymail_plugin_sdk::*;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default)]
struct Config {
    delay: String,
    window: String,
    remember: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { delay: "5m".into(), window: "4h".into(), remember: "36d".into() }
    }
}

struct Greylist {
    delay_ms: u64,
    window: u64,
    remember: u64,
}

fn secs(s: &str, fallback: u64) -> u64 {
    humantime::parse_duration(s).map(|d| d.as_secs()).unwrap_or(fallback)
}

/// IPv4 clients are grouped by /24 (big senders retry from another host of
/// the same farm); IPv6 by /64.
fn network(ip: &str) -> String {
    if let Ok(std::net::IpAddr::V4(v4)) = ip.parse() {
        let o = v4.octets();
        return format!("{}.{}.{}", o[0], o[1], o[2]);
    }
    ip.split(':').take(4).collect::<Vec<_>>().join(":")
}

#[plugin]
impl Plugin for Greylist {
    fn new() -> Self {
        let c: Config = host::config().unwrap_or_default();
        Greylist {
            delay_ms: secs(&c.delay, 300) * 1000,
            window: secs(&c.window, 4 * 3600),
            remember: secs(&c.remember, 36 * 86400),
        }
    }

    fn rcpt(&self, s: &Session, e: &Envelope, rcpt: &str) -> Verdict {
        if s.auth_user.is_some() {
            return Verdict::Continue;
        }
        let triplet = format!("{}|{}|{}", network(&s.client_ip), e.mail_from.to_lowercase(), rcpt.to_lowercase());
        let pass = format!("pass:{triplet}");
        let first = format!("first:{triplet}");
        let now = host::now_ms();
        let result = (|| -> Result<Verdict, HostError> {
            if kv::get(&pass)?.is_some() {
                return Ok(Verdict::Continue);
            }
            let seen = kv::get_string(&first)?.and_then(|t| t.parse::<u64>().ok());
            match seen {
                Some(t) if now.saturating_sub(t) >= self.delay_ms => {
                    kv::set(&pass, b"1", Some(self.remember))?;
                    kv::delete(&first)?;
                    Ok(Verdict::Continue)
                }
                Some(t) => {
                    let wait = (self.delay_ms - now.saturating_sub(t)).div_ceil(1000);
                    Ok(Verdict::tempfail(451, "4.7.1", format!("Greylisted, please try again in {wait} seconds")))
                }
                None => {
                    kv::set(&first, now.to_string().as_bytes(), Some(self.window))?;
                    let wait = self.delay_ms / 1000;
                    Ok(Verdict::tempfail(451, "4.7.1", format!("Greylisted, please try again in {wait} seconds")))
                }
            }
        })();
        result.unwrap_or_else(|e| {
            // A broken store must not block mail: let it through.
            host::warn(&format!("greylist store unavailable: {e}"));
            Verdict::Continue
        })
    }
}
