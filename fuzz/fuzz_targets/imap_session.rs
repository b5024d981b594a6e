//! An IMAP session fed arbitrary bytes in arbitrary reads, with logins,
//! store answers, message contents and the clock drawn from the input: no
//! panic, no endless loop, every output chunk CRLF-terminated. This is the
//! command parser's fuzz target too: every command goes through
//! imap-codec's framing and grammar here.
#![no_main]

use ferrymail_policy::{Service, SessionInfo};
use ferrymail_proto::imap::{
    Answer, CopyOutcome, Failure, ImapConfig, ImapEvent, ImapSession, ListedMailbox, LoginDone, MailboxChange,
    MailboxStatus, MessageData, MessageFlags, Request, SelectedMailbox, Summary,
};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let cfg = ImapConfig {
        starttls_available: knobs & 1 != 0,
        plaintext_auth: knobs & 2 != 0,
        max_line: 1000,
        max_literal: 4096,
        content_batch: 2,
        meta_batch: 3,
        ..ImapConfig::default()
    };
    let info = SessionInfo::new("f", Service::Imap, "192.0.2.1".parse().unwrap(), 1);
    let mut s = ImapSession::new(cfg, info);
    let mut now = Instant::now();
    let chunk = usize::from(knobs >> 2) * 5 + 1;
    // Stored messages come from the input, so FETCH and SEARCH parse
    // hostile MIME.
    let stored: Vec<u8> = input.iter().rev().take(600).copied().collect();
    let mut d = input.len();
    let status = MailboxStatus { messages: 5, unseen: 2, uid_next: 9, uid_validity: 1, highest_modseq: 3, size: 10, recent: 0 };
    for piece in input.chunks(chunk) {
        s.feed(piece);
        for _ in 0..10_000 {
            d = d.wrapping_mul(31).wrapping_add(7);
            now += Duration::from_secs((d % 8) as u64 * 300);
            if d % 13 == 0 {
                s.handle_timeout(now);
            }
            if d % 17 == 0 {
                s.mailbox_changed(match d % 3 {
                    0 => MailboxChange::Appended { uid: (d % 20) as u32, recent: false },
                    1 => MailboxChange::Expunged { uids: vec![(d % 10) as u32] },
                    _ => MailboxChange::Flags { uid: (d % 10) as u32, flags: MessageFlags::system(d as u32 & 31) },
                });
            }
            let event = s.next_event(now);
            let out = s.take_output();
            assert!(out.is_empty() || out.ends_with(b"\r\n"), "output not CRLF-terminated");
            let fail = |d: usize| match d % 4 {
                0 => Failure::NoSuchMailbox,
                1 => Failure::Exists,
                2 => Failure::Cannot("no".into()),
                _ => Failure::Unavailable,
            };
            match event {
                ImapEvent::NeedInput | ImapEvent::Close => break,
                ImapEvent::Flush => {}
                ImapEvent::StartTls => s.tls_established(),
                ImapEvent::Login { .. } => s.login_done(match d % 4 {
                    0 => LoginDone::Fail,
                    1 => LoginDone::Tempfail,
                    2 => LoginDone::Limit,
                    _ => LoginDone::Ok { user: "u".into(), tenant: None },
                }),
                ImapEvent::Request(request) => {
                    let ok = d % 7 != 0;
                    let answer = match request {
                        Request::Select { .. } => Answer::Selected(if ok {
                            let messages = [1, 3, 4, 7, 8].iter().map(|&u| (u, MessageFlags::system(u & 31))).collect();
                            Ok(SelectedMailbox::from_messages(0, status, messages))
                        } else {
                            Err(fail(d))
                        }),
                        Request::List => Answer::Listed(Ok((
                            vec![ListedMailbox { name: "a/b".into(), special_use: Some("\\Sent") }],
                            vec!["x".into()],
                        ))),
                        Request::Status { .. } => Answer::Status(Ok(status)),
                        Request::SearchRows { .. } => Answer::SearchRows(Ok(Default::default())),
                        Request::Messages { uids, content, summary, .. } => Answer::Messages(Ok(uids
                            .iter()
                            .map(|&uid| MessageData {
                                uid,
                                flags: MessageFlags::system(uid & 31),
                                size: stored.len() as u64,
                                internal_date: d as i64 - 1000,
                                modseq: 1,
                                content: content.then(|| stored.clone()),
                                summary: summary.then(|| Summary::compute(&stored)),
                            })
                            .collect())),
                        Request::SetFlags { uids, change, .. } => {
                            Answer::Flags(Ok(uids.iter().map(|&u| (u, change.flags.clone())).collect()))
                        }
                        Request::Expunge { uids, .. } => Answer::Expunged(Ok(uids)),
                        Request::Append { .. } => Answer::Appended(if ok { Ok((1, 9)) } else { Err(fail(d)) }),
                        Request::Copy { uids, .. } => Answer::Copied(Ok(CopyOutcome {
                            uid_validity: 2,
                            mapping: uids.iter().map(|&u| (u, u + 100)).collect(),
                        })),
                        _ => Answer::Done(if ok { Ok(()) } else { Err(fail(d)) }),
                    };
                    // Sometimes the wrong kind of answer: the session must cope.
                    s.answer(if d % 29 == 0 { Answer::Done(Ok(())) } else { answer });
                }
            }
        }
    }
});
