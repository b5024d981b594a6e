//! Default plugin `retry`: the schedule for failed deliveries. Try again
//! every `interval`, warn the sender once after `warn_after`, return the
//! message after `give_up_after` (humantime strings; the host fills them
//! from `[retry]`, a tenant may override them in its plugin_config).

use ferrymail_plugin_sdk::*;
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize)]
struct Schedule {
    interval: String,
    warn_after: String,
    give_up_after: String,
}

struct Retry {
    interval: u64,
    warn_after: u64,
    give_up_after: u64,
}

fn secs(text: &str, fallback: u64) -> u64 {
    match humantime::parse_duration(text) {
        Ok(d) => d.as_secs(),
        Err(e) => {
            host::warn(&format!("bad duration {text:?}: {e}; using {fallback}s"));
            fallback
        }
    }
}

#[plugin]
impl Plugin for Retry {
    fn new() -> Self {
        let (i, w, g) = (900, 4 * 3600, 5 * 86400);
        match host::config::<Schedule>() {
            Ok(s) => Retry {
                interval: secs(&s.interval, i).max(1),
                warn_after: secs(&s.warn_after, w),
                give_up_after: secs(&s.give_up_after, g),
            },
            Err(e) => {
                host::warn(&e);
                Retry { interval: i, warn_after: w, give_up_after: g }
            }
        }
    }

    fn retry(&self, ctx: &RetryContext) -> Option<RetryDecision> {
        let age = Duration::from_secs(ctx.now.saturating_sub(ctx.first_queued)).as_secs();
        Some(if age >= self.give_up_after {
            RetryDecision::Bounce
        } else if age >= self.warn_after && !ctx.warned {
            RetryDecision::WarnAndRetry(self.interval)
        } else {
            RetryDecision::RetryAfter(self.interval)
        })
    }
}
