//! A POP3 session fed arbitrary bytes in arbitrary reads, with decisions
//! and message contents drawn from the input: no panic, no endless loop,
//! every output line CRLF-terminated.
#![no_main]

use ferrymail_policy::{Service, SessionInfo};
use ferrymail_proto::pop3::{AuthDone, MaildropEntry, Pop3Config, Pop3Event, Pop3Session};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let cfg = Pop3Config {
        stls_available: knobs & 1 != 0,
        auth_plain: knobs & 2 != 0,
        plaintext_auth: knobs & 4 != 0,
        ..Pop3Config::default()
    };
    let info = SessionInfo::new("f", Service::Pop3, "192.0.2.1".parse().unwrap(), 1);
    let mut s = Pop3Session::new(cfg, info);
    let mut now = Instant::now();
    let chunk = usize::from(knobs >> 3) * 5 + 1;
    // Message contents come from the input itself, so RETR/TOP see odd
    // line endings and dots.
    let stored: Vec<u8> = input.iter().rev().take(300).copied().collect();
    let maildrop: Vec<MaildropEntry> = (0..3).map(|i| MaildropEntry { uid: format!("u{i}"), size: 10 + i }).collect();
    let mut d = input.len();
    for piece in input.chunks(chunk) {
        s.feed(piece);
        for _ in 0..10_000 {
            d = d.wrapping_mul(31).wrapping_add(7);
            now += Duration::from_secs((d % 8) as u64 * 100);
            if d % 11 == 0 {
                s.handle_timeout(now);
            }
            let event = s.next_event(now);
            let out = s.take_output();
            assert!(out.is_empty() || out.ends_with(b"\r\n"), "output not CRLF-terminated");
            match event {
                Pop3Event::NeedInput | Pop3Event::Close => break,
                Pop3Event::Flush => {}
                Pop3Event::AuthRequested { .. } => s.auth_done(match d % 4 {
                    0 => AuthDone::Fail,
                    1 => AuthDone::InUse,
                    2 => AuthDone::Tempfail,
                    _ => AuthDone::Ok { maildrop: maildrop.clone(), user: "u".into(), tenant: None },
                }),
                Pop3Event::MessageNeeded { .. } => {
                    if d % 5 == 0 {
                        s.message_unavailable()
                    } else {
                        s.message_ready(&stored)
                    }
                }
                Pop3Event::UpdateRequested { .. } => s.update_done(d % 2 == 0),
                Pop3Event::StartTls => s.tls_established(),
            }
        }
    }
});
