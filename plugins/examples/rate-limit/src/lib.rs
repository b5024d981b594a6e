//! Example `rate-limit` (kv counters with TTL): at most `max` messages per
//! `window` per sender, counted at MAIL FROM. The sender is the
//! authenticated user, else the client address (a forged MAIL FROM must
//! not let a spammer reset its counter).
//!
//! Config: `max` (100), `window` ("1h").

use ferrymail_plugin_sdk::*;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default)]
struct Config {
    max: i64,
    window: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { max: 100, window: "1h".into() }
    }
}

struct RateLimit {
    max: i64,
    window: u64,
}

#[plugin]
impl Plugin for RateLimit {
    fn new() -> Self {
        let c: Config = host::config().unwrap_or_default();
        let window = humantime::parse_duration(&c.window).map(|d| d.as_secs()).unwrap_or(3600).max(1);
        RateLimit { max: c.max, window }
    }

    fn mail(&self, s: &Session, _sender: &str) -> Verdict {
        let who = match &s.auth_user {
            Some(u) => format!("user:{}", u.to_lowercase()),
            None => format!("ip:{}", s.client_ip),
        };
        match kv::incr(&who, 1, Some(self.window)) {
            Ok(n) if n > self.max => Verdict::tempfail(
                450,
                "4.7.1",
                format!("Rate limit exceeded: at most {} messages per {} seconds", self.max, self.window),
            ),
            Ok(_) => Verdict::Continue,
            Err(e) => {
                host::warn(&format!("rate-limit counter unavailable: {e}"));
                Verdict::Continue
            }
        }
    }
}
