//! Allocates on RCPT until memory runs out: the memory cap must stop it.

use ferrymail_plugin_sdk::*;

struct Hog;

#[plugin]
impl Plugin for Hog {
    fn new() -> Self {
        Hog
    }

    fn rcpt(&self, _s: &Session, _e: &Envelope, _rcpt: &str) -> Verdict {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Touch the pages so the allocation is real.
            hoard.push(vec![1u8; 1 << 20]);
            if std::hint::black_box(hoard.len()) == usize::MAX {
                return Verdict::Accept;
            }
        }
    }
}
