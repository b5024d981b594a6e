//! Session tests, one per RFC rule; each name cites its section.

mod authorization;
mod robustness;
mod stls;
mod timers;
mod transaction;

use super::*;
use ferrymail_policy::SessionInfo;
use std::sync::OnceLock;
use std::time::Instant;

/// The tests' epoch; tests move the clock by adding to it.
pub(super) fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

pub(super) fn info() -> SessionInfo {
    SessionInfo::new("p1", ferrymail_policy::Service::Pop3, "192.0.2.9".parse().unwrap(), 40000)
}

pub(super) fn cfg() -> Pop3Config {
    Pop3Config { greeting_host: "pop.example".into(), stls_available: true, ..Pop3Config::default() }
}

/// Feeds `input`, runs to the next event and returns it with the output.
pub(super) fn send(s: &mut Pop3Session, input: &str) -> (Pop3Event, String) {
    s.feed(input.as_bytes());
    step(s)
}

pub(super) fn step(s: &mut Pop3Session) -> (Pop3Event, String) {
    let event = s.next_event(t0());
    (event, String::from_utf8_lossy(&s.take_output()).into_owned())
}

pub(super) fn fresh() -> Pop3Session {
    let mut s = Pop3Session::new(cfg(), info());
    s.take_output();
    s
}

/// Three messages: 100, 200 and 300 octets.
pub(super) fn maildrop() -> Vec<MaildropEntry> {
    (1..=3).map(|i| MaildropEntry { uid: format!("uid-{i}"), size: i * 100 }).collect()
}

pub(super) fn logged_in() -> Pop3Session {
    logged_in_with(cfg())
}

pub(super) fn logged_in_with(cfg: Pop3Config) -> Pop3Session {
    let mut s = Pop3Session::new(cfg, info());
    let (event, _) = send(&mut s, "USER u\r\nPASS p\r\n");
    assert!(matches!(event, Pop3Event::AuthRequested { .. }));
    s.auth_done(AuthDone::Ok { maildrop: maildrop(), user: "u@x.test".into(), tenant: None });
    s.take_output();
    s
}

pub(super) fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
