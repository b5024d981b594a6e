//! Example `header-filter` (the message resource): refuses messages over
//! `max_size` bytes or with a header matching a rule, and stamps the rest.
//! Reads only the headers, never the body.
//!
//! Config: `max_size` (bytes, 0 = no limit), `deny` (list of
//! `{ header = "Subject", contains = "viagra" }`, case-insensitive),
//! `stamp` (a header name to add, "" for none; default "X-Header-Filter").

use ferrymail_plugin_sdk::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Rule {
    header: String,
    contains: String,
}

#[derive(Deserialize)]
#[serde(default)]
struct HeaderFilter {
    max_size: u64,
    deny: Vec<Rule>,
    stamp: String,
}

impl Default for HeaderFilter {
    fn default() -> Self {
        HeaderFilter { max_size: 0, deny: Vec::new(), stamp: "X-Header-Filter".into() }
    }
}

#[plugin]
impl Plugin for HeaderFilter {
    fn new() -> Self {
        host::config().unwrap_or_else(|e| {
            host::warn(&e);
            HeaderFilter::default()
        })
    }

    fn data(&self, _s: &Session, _e: &Envelope, msg: &Message) -> DataResult {
        let size = msg.size();
        if self.max_size > 0 && size > self.max_size {
            let text = format!("Message too big: {size} bytes, limit {}", self.max_size);
            return DataResult::verdict(Verdict::reject(552, "5.3.4", text));
        }
        for rule in &self.deny {
            let needle = rule.contains.to_lowercase();
            if msg.header(&rule.header).iter().any(|v| v.to_lowercase().contains(&needle)) {
                let text = format!("Message refused: {} header matches a filter", rule.header);
                return DataResult::verdict(Verdict::reject(550, "5.7.1", text));
            }
        }
        let result = DataResult::verdict(Verdict::Continue);
        if self.stamp.is_empty() { result } else { result.add_header(&self.stamp, format!("passed; size={size}")) }
    }
}
