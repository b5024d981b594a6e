//! The SMTP session, rule by rule. Time is made up: `t0()` is a fixed
//! instant and tests move the clock by adding to it; nothing sleeps.

mod auth;
mod commands;
mod limits;
mod timers;

pub(super) use super::*;
pub(super) use ferrymail_policy::{Reply, SessionInfo, Verdict};
use std::sync::OnceLock;
pub(super) use std::time::{Duration, Instant};

/// The tests' epoch.
pub(super) fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn info() -> SessionInfo {
    SessionInfo::new("t1", ferrymail_policy::Service::Smtp, "192.0.2.7".parse().unwrap(), 40000)
}

/// A session past the connect hook, its greeting taken.
pub(super) fn open(cfg: SmtpConfig) -> SmtpSession {
    open_with(cfg, info())
}

pub(super) fn open_with(cfg: SmtpConfig, info: SessionInfo) -> SmtpSession {
    let mut s = SmtpSession::new(cfg, info);
    assert_eq!(s.next_event(t0()), SmtpEvent::Connect);
    s.verdict(Verdict::Continue);
    s.next_event(t0());
    s.take_output();
    s
}

pub(super) fn session() -> SmtpSession {
    open(SmtpConfig { hostname: "mx.test".into(), ..Default::default() })
}

/// Feeds `input` and answers every decision with an accepting default,
/// returning the wire output.
pub(super) fn talk(s: &mut SmtpSession, input: &[u8]) -> String {
    s.feed(input);
    drive(s)
}

pub(super) fn drive(s: &mut SmtpSession) -> String {
    drive_at(s, t0())
}

/// As [`drive`], at `now`; a tarpit pause moves the clock to its end.
pub(super) fn drive_at(s: &mut SmtpSession, mut now: Instant) -> String {
    loop {
        match s.next_event(now) {
            SmtpEvent::NeedInput | SmtpEvent::Close => break,
            SmtpEvent::Pause(until) => now = until,
            SmtpEvent::Connect | SmtpEvent::Helo { .. } | SmtpEvent::Mail { .. } => s.verdict(Verdict::Continue),
            SmtpEvent::Rcpt { .. } => s.verdict(Verdict::Accept),
            SmtpEvent::Vrfy(_) | SmtpEvent::Expn(_) => s.reply(Reply::new(252, "2.5.0", "maybe")),
            SmtpEvent::Message(_) => s.reply(Reply::new(250, "2.0.0", "queued")),
            SmtpEvent::StartTls => s.tls_established(),
            SmtpEvent::Auth { password, .. } => s.auth_result(if password == "good" {
                AuthResult::Ok { user: "u@x.test".into(), tenant: None }
            } else {
                AuthResult::Fail
            }),
        }
    }
    String::from_utf8(s.take_output()).unwrap()
}

pub(super) fn codes(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.as_bytes().get(3) == Some(&b' ')).map(|l| &l[..3]).collect()
}

pub(super) fn auth_session(tls: bool) -> SmtpSession {
    let cfg = SmtpConfig { auth: true, starttls: true, require_auth: true, ..Default::default() };
    let mut info = info();
    info.tls = tls;
    open_with(cfg, info)
}
