//! Answers what a hostile (or buggy) plugin would, so the host's checks of
//! guest answers can be shown on the wire. Config `{"attack": NAME}` picks
//! the answer; every hook the attack does not concern continues.
//!
//! - `mail-inject` / `rcpt-inject`: a refusal whose enhanced code carries
//!   CRLF and two more replies (issue 16 item 2, seen on the wire);
//! - `reject-250`: a "reject" with reply code 250;
//! - `header-inject`: a data header whose value smuggles a second field;
//! - `vrfy-inject`: a VRFY reply whose text carries CRLF;
//! - `auth-bad`: `auth-ok` with CRLF in the user name;
//! - `route-bad`: a local route to an address with CRLF;
//! - `retry-zero`: retry after 0 seconds (a busy loop);
//! - `stale-handle`: data keeps the lent message's handle in a global and
//!   the next RCPT reads through it, to show nothing of an earlier session's
//!   message stays reachable.

use ferrymail_plugin_sdk::*;
use serde::Deserialize;
use std::cell::Cell;
use std::mem::ManuallyDrop;

const INJECT: &str = "5.7.1\r\n250 2.1.5 ok\r\n354";

#[derive(Deserialize, Default)]
struct Config {
    attack: String,
}

struct Malformed {
    attack: String,
    stash: Cell<Option<u32>>,
}

fn injected() -> Verdict {
    Verdict::Reject(Reply { code: 550, enhanced: Some(INJECT.into()), text: "denied".into() })
}

#[plugin]
impl Plugin for Malformed {
    fn new() -> Self {
        let c: Config = host::config().unwrap_or_default();
        Malformed { attack: c.attack, stash: Cell::new(None) }
    }

    fn auth(&self, req: &AuthRequest) -> AuthResult {
        match self.attack.as_str() {
            "auth-bad" => AuthResult::ok(format!("{}\r\nadmin@localhost", req.username)),
            _ => AuthResult::Continue,
        }
    }

    fn mail(&self, _s: &Session, _sender: &str) -> Verdict {
        match self.attack.as_str() {
            "mail-inject" => injected(),
            "reject-250" => Verdict::reject(250, "2.1.0", "Sender ok"),
            _ => Verdict::Continue,
        }
    }

    fn rcpt(&self, _s: &Session, _e: &Envelope, _rcpt: &str) -> Verdict {
        match self.attack.as_str() {
            "rcpt-inject" => injected(),
            "stale-handle" => match self.stash.get() {
                Some(handle) => {
                    // SAFETY: deliberately unsound — the handle was a borrow
                    // that ended with the data call; the host must trap here.
                    let stale = ManuallyDrop::new(unsafe { Message::from_handle(handle) });
                    let leaked = String::from_utf8_lossy(&stale.read(0, 200)).into_owned();
                    Verdict::reject(550, "5.7.1", format!("leaked {}", leaked.escape_default()))
                }
                None => Verdict::Continue,
            },
            _ => Verdict::Continue,
        }
    }

    fn data(&self, _s: &Session, _e: &Envelope, msg: &Message) -> DataResult {
        match self.attack.as_str() {
            "header-inject" => DataResult::verdict(Verdict::Continue)
                .add_header("X-Hostile", "a\r\nBcc: victim@example.org\r\n\r\nforged body"),
            "stale-handle" => {
                self.stash.set(Some(msg.handle()));
                DataResult::verdict(Verdict::Continue)
            }
            _ => DataResult::verdict(Verdict::Continue),
        }
    }

    fn vrfy(&self, _s: &Session, _arg: &str) -> Option<Reply> {
        match self.attack.as_str() {
            "vrfy-inject" => Some(Reply::new(252, "2.5.0", "maybe\r\n250 2.1.5 forged")),
            _ => None,
        }
    }

    fn route(&self, ctx: &RouteContext) -> Option<Destination> {
        match self.attack.as_str() {
            "route-bad" => Some(Destination::Local(format!("{}\r\nbob@localhost", ctx.recipient))),
            _ => None,
        }
    }

    fn retry(&self, _ctx: &RetryContext) -> Option<RetryDecision> {
        match self.attack.as_str() {
            "retry-zero" => Some(RetryDecision::RetryAfter(0)),
            _ => None,
        }
    }
}
