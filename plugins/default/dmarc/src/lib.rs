//! Default plugin `dmarc`: what a DMARC failure means for this tenant
//! (RFC 7489 6.7: the receiver decides, the domain's policy is a request).
//! The host checks SPF, DKIM and DMARC and puts its
//! `Authentication-Results` field first in the message (removing any that
//! claim its name); this plugin reads that field and, when `dmarc=fail`,
//! acts on the domain's `policy.dmarc`:
//!
//! - `refuse`: 550 5.7.1, the sender's server bounces it,
//! - `quarantine`: accepted, filed in the recipient's Junk folder (the
//!   plugin adds `X-Ferrymail-Quarantine`, which the host honours),
//! - `stamp`: accepted as any other message, the field tells the reader.
//!
//! Config: `reject` (what `p=reject` gets; default "refuse"),
//! `quarantine` (what `p=quarantine` gets; default "quarantine").

use ferrymail_plugin_sdk::*;
use serde::Deserialize;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Action {
    Refuse,
    Quarantine,
    Stamp,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Dmarc {
    reject: Action,
    quarantine: Action,
}

impl Default for Dmarc {
    fn default() -> Self {
        Dmarc { reject: Action::Refuse, quarantine: Action::Quarantine }
    }
}

/// From the host's field: the dmarc result, the policy and the From domain.
struct Found {
    result: String,
    policy: String,
    domain: String,
}

/// Reads `dmarc=RESULT … header.from=D policy.dmarc=P` out of one
/// Authentication-Results value (RFC 8601 2.2: resinfo after the first `;`).
fn parse(value: &str) -> Option<Found> {
    let resinfo = value.split(';').skip(1).find(|r| r.trim_start().to_ascii_lowercase().starts_with("dmarc="))?;
    let mut found = Found { result: String::new(), policy: "none".into(), domain: String::new() };
    for token in resinfo.split_whitespace() {
        let Some((key, val)) = token.split_once('=') else { continue };
        match key.to_ascii_lowercase().as_str() {
            "dmarc" => found.result = val.to_ascii_lowercase(),
            "policy.dmarc" => found.policy = val.to_ascii_lowercase(),
            "header.from" => found.domain = val.to_string(),
            _ => {}
        }
    }
    Some(found)
}

#[plugin]
impl Plugin for Dmarc {
    fn new() -> Self {
        host::config().unwrap_or_else(|e| {
            host::warn(&format!("bad config, using the defaults: {e}"));
            Dmarc::default()
        })
    }

    fn data(&self, _s: &Session, _e: &Envelope, msg: &Message) -> DataResult {
        // Only the first field is the host's: a sender's own fields come after it.
        let headers = msg.headers();
        let Some(first) = headers.first().filter(|h| h.name.eq_ignore_ascii_case("authentication-results")) else {
            return DataResult::verdict(Verdict::Continue);
        };
        let Some(found) = parse(&first.value).filter(|f| f.result == "fail") else {
            return DataResult::verdict(Verdict::Continue);
        };
        let action = match found.policy.as_str() {
            "reject" => self.reject,
            "quarantine" => self.quarantine,
            _ => Action::Stamp,
        };
        match action {
            Action::Refuse => DataResult::verdict(Verdict::reject(
                550,
                "5.7.1",
                format!("Message refused: it fails the DMARC policy of {} (p=reject)", found.domain),
            )),
            Action::Quarantine => DataResult::verdict(Verdict::Continue)
                .add_header("X-Ferrymail-Quarantine", format!("dmarc=fail policy.dmarc={}", found.policy)),
            Action::Stamp => DataResult::verdict(Verdict::Continue),
        }
    }
}
