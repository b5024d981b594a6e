//! Panics on RCPT (a trap, with panic = "abort"); accepts MAIL, so the host
//! can show the instance is replaced after a trap.

use ferrymail_plugin_sdk::*;

struct Trap;

#[plugin]
impl Plugin for Trap {
    fn new() -> Self {
        Trap
    }

    fn mail(&self, _s: &Session, _sender: &str) -> Verdict {
        Verdict::Accept
    }

    fn rcpt(&self, _s: &Session, _e: &Envelope, rcpt: &str) -> Verdict {
        panic!("trap plugin asked about {rcpt}")
    }
}
