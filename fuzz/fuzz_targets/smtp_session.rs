//! A whole SMTP session fed arbitrary client bytes in arbitrary reads, with
//! every decision answered from the input too: it must never panic, never
//! loop, and keep its output well-formed (CRLF-terminated reply lines with
//! a 3-digit code).
#![no_main]

use ferrymail_policy::{Reply, Service, SessionInfo, Verdict};
use ferrymail_proto::smtp::{AuthResult, SmtpConfig, SmtpEvent, SmtpSession};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fn check_output(out: &[u8]) {
    if out.is_empty() {
        return;
    }
    assert!(out.ends_with(b"\r\n"), "output not CRLF-terminated: {out:?}");
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert!(line.ends_with(b"\r"), "bare LF in output");
        assert!(line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit), "bad reply line {line:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let cfg = SmtpConfig {
        starttls: knobs & 1 != 0,
        auth: knobs & 2 != 0,
        auth_without_tls: knobs & 4 != 0,
        require_auth: knobs & 8 != 0,
        max_recipients: 3,
        max_message_size: 4096,
        ..SmtpConfig::default()
    };
    let info = SessionInfo::new("f", Service::Smtp, "192.0.2.1".parse().unwrap(), 1);
    let mut s = SmtpSession::new(cfg, info);
    // The clock is input too: each decision byte also moves it, so
    // timeouts, the greeting delay and the tarpit are explored.
    let mut now = Instant::now();
    let chunk = usize::from(knobs >> 4) * 7 + 1;
    let mut decisions = input.iter().rev().copied().cycle();
    for piece in input.chunks(chunk) {
        s.feed(piece);
        // Bounded: every event consumes input or a decision.
        for _ in 0..10_000 {
            let d = decisions.next().unwrap_or(0);
            now += Duration::from_secs(u64::from(d % 16) * 30);
            match s.next_event(now) {
                SmtpEvent::NeedInput => {
                    if d % 7 == 0 {
                        s.handle_timeout(now);
                        continue;
                    }
                    break;
                }
                SmtpEvent::Close => break,
                SmtpEvent::Pause(until) => now = until,
                SmtpEvent::Connect | SmtpEvent::Helo { .. } | SmtpEvent::Mail { .. } | SmtpEvent::Rcpt { .. } => s
                    .verdict(match d % 5 {
                        0 => Verdict::Continue,
                        1 => Verdict::Reject(Reply::new(550, "5.7.1", "no")),
                        2 => Verdict::Tempfail(Reply::new(451, "4.7.1", "later")),
                        3 => Verdict::Disconnect(Reply::new(421, "4.7.0", "bye")),
                        _ => Verdict::Accept,
                    }),
                SmtpEvent::Vrfy(_) | SmtpEvent::Expn(_) => s.reply(Reply::new(252, "2.5.2", "maybe")),
                SmtpEvent::Message(content) => {
                    assert!(content.len() <= 4096);
                    s.reply(if d % 2 == 0 { Reply::new(250, "2.0.0", "ok") } else { Reply::new(452, "4.3.1", "full") })
                }
                SmtpEvent::StartTls => s.tls_established(),
                SmtpEvent::Auth { .. } => s.auth_result(match d % 3 {
                    0 => AuthResult::Ok { user: "u".into(), tenant: None },
                    1 => AuthResult::Fail,
                    _ => AuthResult::Tempfail,
                }),
            }
            check_output(&s.take_output());
        }
        check_output(&s.take_output());
        if s.is_closed() {
            break;
        }
    }
});
