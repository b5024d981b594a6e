//! Default plugin `rate-limit`: message-rate limits per tenant, per
//! authenticated user and per client address, counted in the host's kv
//! store (fixed windows: `kv.incr` sets the expiry when it creates a
//! counter). Over a limit: 450 4.7.1, the client tries again later.
//!
//! The kv namespace is the host's choice, (tenant, plugin): every tenant
//! running this plugin has counters of its own, and its config
//! (`plugin_config.rate-limit`) sets its own limits.
//!
//! Config: `limits = [{ per = "tenant" | "user" | "ip" | "sender", max = N,
//! window = "1h" }, …]`.
//! - `tenant`: messages for the tenant whose chain runs this plugin
//!   (inbound: the recipients' tenant; submission: the sender's). Counted
//!   once per message in the data hook; RCPT already answers 450 once the
//!   count is reached, so a client over the limit does not send the body.
//!   In the global chain it counts mail of no tenant.
//! - `user`: per authenticated user, counted at MAIL FROM (sessions without
//!   AUTH are not counted).
//! - `ip`: per client address, counted at MAIL FROM.
//! - `sender`: the authenticated user, else the client address (a forged
//!   MAIL FROM must not let a spammer reset its counter).
//!
//! Without `limits`, `max` (100) and `window` ("1h") make one `sender`
//! limit, as the earlier example plugin did. MAIL hooks run in the
//! session's chain: the global one before AUTH, so `ip` limits belong in
//! the global chain, before `auth` (whose accept ends the chain).

use ferrymail_plugin_sdk::*;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default)]
struct Config {
    max: i64,
    window: String,
    limits: Vec<LimitConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config { max: 100, window: "1h".into(), limits: Vec::new() }
    }
}

#[derive(Deserialize)]
struct LimitConfig {
    per: Per,
    max: i64,
    window: String,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Per {
    Tenant,
    User,
    Ip,
    Sender,
}

struct Limit {
    per: Per,
    max: i64,
    /// Seconds.
    window: u64,
}

impl Limit {
    fn exceeded(&self, n: i64) -> Verdict {
        let whom = match self.per {
            Per::Tenant => "for this domain",
            Per::User => "for this user",
            Per::Ip => "from this address",
            Per::Sender => "from this sender",
        };
        Verdict::tempfail(
            450,
            "4.7.1",
            format!(
                "Rate limit exceeded: {n} of at most {} messages per {} s {whom}; try again later",
                self.max, self.window
            ),
        )
    }

    /// The counter this limit keeps for session `s`, if it counts it.
    fn key(&self, s: &Session) -> Option<String> {
        match (self.per, &s.auth_user) {
            (Per::Tenant, _) => Some("tenant".into()),
            (Per::User | Per::Sender, Some(u)) => Some(format!("user:{}", u.to_lowercase())),
            (Per::User, None) => None,
            (Per::Ip | Per::Sender, _) => Some(format!("ip:{}", s.client_ip)),
        }
    }

    /// Adds `delta` to this limit's counter for `s` and checks it: `at_most`
    /// messages may have been counted (`max` after counting this one,
    /// `max - 1` before a message that is not counted yet).
    fn check(&self, s: &Session, delta: i64, at_most: i64) -> Option<Verdict> {
        let key = self.key(s)?;
        match kv::incr(&key, delta, Some(self.window)) {
            Ok(n) if n > at_most => Some(self.exceeded(n)),
            Ok(_) => None,
            Err(e) => {
                // Fail open: a limit must not stop all mail when the store is slow.
                host::warn(&format!("rate-limit counter {key} unavailable: {e}"));
                None
            }
        }
    }
}

struct RateLimit {
    limits: Vec<Limit>,
}

fn seconds(window: &str) -> u64 {
    humantime::parse_duration(window).map(|d| d.as_secs()).unwrap_or_else(|e| {
        host::warn(&format!("rate-limit window {window:?}: {e}; using 1h"));
        3600
    })
}

#[plugin]
impl Plugin for RateLimit {
    fn new() -> Self {
        let c: Config = host::config().unwrap_or_else(|e| {
            host::warn(&e);
            Config::default()
        });
        let mut limits: Vec<Limit> =
            c.limits.iter().map(|l| Limit { per: l.per, max: l.max, window: seconds(&l.window).max(1) }).collect();
        if limits.is_empty() {
            limits.push(Limit { per: Per::Sender, max: c.max, window: seconds(&c.window).max(1) });
        }
        RateLimit { limits }
    }

    fn mail(&self, s: &Session, _sender: &str) -> Verdict {
        let counted = self.limits.iter().filter(|l| l.per != Per::Tenant);
        counted.filter_map(|l| l.check(s, 1, l.max)).next().unwrap_or(Verdict::Continue)
    }

    fn rcpt(&self, s: &Session, _e: &Envelope, _rcpt: &str) -> Verdict {
        // Read without counting: the message is counted once, at DATA.
        let tenant = self.limits.iter().filter(|l| l.per == Per::Tenant);
        tenant.filter_map(|l| l.check(s, 0, l.max - 1)).next().unwrap_or(Verdict::Continue)
    }

    fn data(&self, s: &Session, _e: &Envelope, _msg: &Message) -> DataResult {
        let tenant = self.limits.iter().filter(|l| l.per == Per::Tenant);
        DataResult::verdict(tenant.filter_map(|l| l.check(s, 1, l.max)).next().unwrap_or(Verdict::Continue))
    }
}
