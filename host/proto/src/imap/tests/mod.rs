//! Session tests, one per RFC rule; each name cites its section. RFC 3501's
//! own examples are the fixtures where it has one.

mod authenticated;
mod not_authenticated;
mod robustness;
mod selected;

use super::*;
use ferrymail_policy::SessionInfo;
use std::sync::OnceLock;
use std::time::Instant;

pub(super) fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

pub(super) fn info() -> SessionInfo {
    SessionInfo::new("i1", ferrymail_policy::Service::Imap, "192.0.2.9".parse().unwrap(), 40000)
}

pub(super) fn cfg() -> ImapConfig {
    ImapConfig { greeting_host: "imap.example".into(), starttls_available: true, ..ImapConfig::default() }
}

/// Feeds `input`, runs to the next event and returns it with the output.
pub(super) fn send(s: &mut ImapSession, input: &str) -> (ImapEvent, String) {
    s.feed(input.as_bytes());
    step(s)
}

pub(super) fn step(s: &mut ImapSession) -> (ImapEvent, String) {
    let event = s.next_event(t0());
    (event, String::from_utf8_lossy(&s.take_output()).into_owned())
}

pub(super) fn fresh() -> ImapSession {
    fresh_with(cfg())
}

pub(super) fn fresh_with(cfg: ImapConfig) -> ImapSession {
    let mut s = ImapSession::new(cfg, info());
    s.take_output();
    s
}

pub(super) fn logged_in() -> ImapSession {
    let mut s = fresh();
    let (event, _) = send(&mut s, "a LOGIN user pass\r\n");
    assert!(matches!(event, ImapEvent::Login { .. }), "{event:?}");
    s.login_done(LoginDone::Ok { user: "user@x.test".into(), tenant: None });
    s.take_output();
    s
}

pub(super) fn status() -> MailboxStatus {
    MailboxStatus {
        messages: 3,
        unseen: 1,
        uid_next: 40,
        uid_validity: 3857529045,
        highest_modseq: 9,
        size: 600,
        recent: 0,
    }
}

/// INBOX selected with UIDs 10, 20, 30; 30 is unseen.
pub(super) fn selected() -> ImapSession {
    let mut s = logged_in();
    let (event, _) = send(&mut s, "s SELECT INBOX\r\n");
    assert_eq!(event, ImapEvent::Request(Request::Select { name: "INBOX".into(), read_only: false }));
    let seen = MessageFlags::system(MessageFlags::SEEN);
    s.answer(Answer::Selected(Ok(SelectedMailbox::from_messages(
        0,
        status(),
        vec![(10, seen.clone()), (20, seen), (30, MessageFlags::default())],
    ))));
    step(&mut s);
    s
}

/// A stored message with UID `uid`.
pub(super) fn message(uid: u32, flags: MessageFlags, content: Option<&str>) -> MessageData {
    MessageData {
        uid,
        flags,
        size: content.map_or(100, |c| c.len() as u64),
        internal_date: 837_570_205,
        modseq: 1,
        content: content.map(|c| c.as_bytes().to_vec()),
        summary: None,
    }
}

pub(super) const MAIL: &str = "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\
From: Terry Gray <gray@cac.washington.edu>\r\n\
Subject: IMAP4rev1 WG mtg summary and minutes\r\n\
To: imap@cac.washington.edu\r\n\
Message-Id: <B27397-0100000@cac.washington.edu>\r\n\
\r\n\
Hello world\r\n";

pub(super) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
