//! Never returns from RCPT: the deadline must stop it.

use ferrymail_plugin_sdk::*;

struct Looper;

#[plugin]
impl Plugin for Looper {
    fn new() -> Self {
        Looper
    }

    fn rcpt(&self, _s: &Session, _e: &Envelope, rcpt: &str) -> Verdict {
        let mut n: u64 = rcpt.len() as u64;
        loop {
            // Opaque to the optimiser so the loop is not removed.
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
            if n == 42 {
                return Verdict::Accept;
            }
        }
    }
}
