//! Hostile-client defences: the connect verdict, the pregreet test, error
//! limits and the tarpit, address size limits, bare LF, mail loops.

use super::*;

#[test]
fn connect_refusal_is_the_only_reply_rfc5321_3_1() {
    let mut s = SmtpSession::new(SmtpConfig::default(), info());
    assert_eq!(s.next_event(t0()), SmtpEvent::Connect);
    s.verdict(Verdict::Reject(Reply::new(554, "5.7.1", "go away")));
    assert_eq!(s.next_event(t0()), SmtpEvent::Close);
    assert_eq!(s.ending(), Some(Ending::Refused));
    assert_eq!(String::from_utf8(s.take_output()).unwrap(), "554 5.7.1 go away\r\n", "no 220 before it");
}

fn greet_delayed() -> SmtpSession {
    let cfg = SmtpConfig { hostname: "mx.test".into(), greet_delay: secs(2), ..Default::default() };
    let mut s = SmtpSession::new(cfg, info());
    assert_eq!(s.next_event(t0()), SmtpEvent::Connect);
    s.verdict(Verdict::Continue);
    s
}

#[test]
fn greeting_waits_for_the_greet_delay() {
    let mut s = greet_delayed();
    assert_eq!(s.next_event(t0()), SmtpEvent::NeedInput);
    assert_eq!(String::from_utf8(s.take_output()).unwrap(), "220-mx.test ESMTP ferrymail\r\n");
    assert_eq!(s.poll_timeout(), Some(t0() + secs(2)));
    s.handle_timeout(t0() + secs(2));
    assert_eq!(s.next_event(t0() + secs(2)), SmtpEvent::NeedInput);
    assert_eq!(String::from_utf8(s.take_output()).unwrap(), "220 mx.test ESMTP ferrymail ready\r\n");
    assert_eq!(s.poll_timeout(), Some(t0() + secs(302)), "then the command phase");
    assert_eq!(codes(&talk(&mut s, b"EHLO c\r\n")), ["250"]);
}

/// Issue 16 item 10: a client that talks before the greeting was accepted.
#[test]
fn pregreet_talker_is_refused() {
    let mut s = greet_delayed();
    assert_eq!(s.next_event(t0()), SmtpEvent::NeedInput);
    s.take_output();
    s.feed(b"EHLO bot\r\n");
    assert_eq!(s.next_event(t0() + secs(1)), SmtpEvent::Close);
    assert_eq!(s.ending(), Some(Ending::Pregreet));
    let out = String::from_utf8(s.take_output()).unwrap();
    assert_eq!(out, "521 5.5.1 mx.test Protocol error: talking before the greeting\r\n");
}

#[test]
fn pregreet_before_the_first_line_is_refused_too() {
    let mut s = greet_delayed();
    s.feed(b"HELO x\r\n");
    assert_eq!(s.next_event(t0()), SmtpEvent::Close);
    assert_eq!(s.ending(), Some(Ending::Pregreet));
}

#[test]
fn refused_rcpt_counts_as_an_error_and_is_tarpitted() {
    let cfg = SmtpConfig { max_errors: 6, soft_error_limit: 3, error_delay: secs(1), ..Default::default() };
    let mut s = open(cfg);
    talk(&mut s, b"EHLO c\r\nMAIL FROM:<a@b.test>\r\n");
    let mut now = t0();
    let mut replies = Vec::new();
    for i in 0..6 {
        s.feed(format!("RCPT TO:<nobody{i}@y.test>\r\n").as_bytes());
        assert!(matches!(s.next_event(now), SmtpEvent::Rcpt { .. }));
        s.verdict(Verdict::Reject(Reply::new(550, "5.1.1", "No such user")));
        let start = now;
        loop {
            match s.next_event(now) {
                SmtpEvent::Pause(until) => now = until,
                SmtpEvent::NeedInput | SmtpEvent::Close => break,
                e => panic!("{e:?}"),
            }
        }
        replies.push((now - start, String::from_utf8(s.take_output()).unwrap()));
    }
    let delays: Vec<u64> = replies.iter().map(|(d, _)| d.as_secs()).collect();
    assert_eq!(delays, [0, 0, 0, 1, 1, 0], "errors past the soft limit wait; the last closes");
    assert!(replies[5].1.ends_with("421 4.7.0 localhost Too many errors, closing connection\r\n"));
    assert_eq!(s.ending(), Some(Ending::TooManyErrors));
}

#[test]
fn temporary_refusals_do_not_count() {
    let cfg = SmtpConfig { max_errors: 2, ..Default::default() };
    let mut s = open(cfg);
    talk(&mut s, b"EHLO c\r\nMAIL FROM:<a@b.test>\r\n");
    for _ in 0..5 {
        s.feed(b"RCPT TO:<greylisted@y.test>\r\n");
        assert!(matches!(s.next_event(t0()), SmtpEvent::Rcpt { .. }));
        s.verdict(Verdict::Tempfail(Reply::new(450, "4.2.0", "Greylisted")));
    }
    assert_eq!(s.next_event(t0()), SmtpEvent::NeedInput);
    assert!(!s.is_closed());
}

#[test]
fn oversized_addresses_are_501_rfc5321_4_5_3_1() {
    let long_local = format!("{}@y.test", "l".repeat(65));
    let long_domain = format!("a@{}.test", vec!["d".repeat(50); 5].join("."));
    // 64 + 1 + 190 = 255 octets: 257 with the brackets.
    let long_path = format!("{}@{}.dd.test", "l".repeat(64), vec!["d".repeat(60); 3].join("."));
    let ok_local = format!("{}@y.test", "l".repeat(64));
    let input = format!(
        "EHLO c\r\nMAIL FROM:<{long_local}>\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<{long_local}>\r\nRCPT TO:<{long_domain}>\r\nRCPT TO:<{long_path}>\r\nRCPT TO:<{ok_local}>\r\n"
    );
    let mut s = open(SmtpConfig { max_command_line: 1000, ..Default::default() });
    let out = talk(&mut s, input.as_bytes());
    assert_eq!(codes(&out), ["250", "501", "250", "501", "501", "501", "250"], "{out}");
    assert!(out.contains("501 5.1.7 Sender address rejected: local part longer than 64 octets (RFC 5321 4.5.3.1.1)"));
    assert!(out.contains("501 5.1.3 Recipient address rejected: local part longer than 64 octets"), "{out}");
    // A domain over 255 octets makes the address longer than smtp-proto's
    // grammar takes: refused as bad syntax before our own check.
    assert!(out.contains("501 5.1.3 Bad recipient address syntax"), "{out}");
    assert!(
        out.contains("501 5.1.3 Recipient address rejected: path longer than 256 octets (RFC 5321 4.5.3.1.3)"),
        "{out}"
    );
}

/// Issue 16 item 10: a bare LF ended an SMTP command line.
#[test]
fn bare_lf_does_not_end_a_command_rfc5321_2_3_8() {
    let mut s = session();
    s.feed(b"NOOP\nRSET\n");
    assert_eq!(s.next_event(t0()), SmtpEvent::NeedInput, "no command yet");
    assert!(!s.has_output());
    let out = talk(&mut s, b"\r\nNOOP\r\n");
    assert_eq!(codes(&out), ["500", "250"], "{out}");
    assert!(out.starts_with("500 5.5.2 Bare CR or LF in command"), "{out}");
    let out = talk(&mut session(), b"NO\rOP\r\n");
    assert_eq!(codes(&out), ["500"]);
}

fn message(s: &mut SmtpSession, content: &[u8]) -> Option<Vec<u8>> {
    talk(s, b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n");
    s.feed(content);
    s.feed(b".\r\n");
    match s.next_event(t0()) {
        SmtpEvent::Message(m) => Some(m),
        _ => None,
    }
}

/// Issue 16 item 7: two servers passed one message back and forth 3,300
/// times. RFC 5321 6.3: a hop count past the limit is refused.
#[test]
fn too_many_received_headers_is_554_5_4_6_rfc5321_6_3() {
    let cfg = SmtpConfig { max_hops: 3, ..Default::default() };
    let mut s = open(cfg.clone());
    assert!(message(&mut s, &b"Received: x\r\n".repeat(2)).is_some());
    let mut s = open(cfg);
    let content = [b"Received: x\r\n".repeat(3), b"Subject: loop\r\n\r\nbody\r\n".to_vec()].concat();
    assert!(message(&mut s, &content).is_none());
    let out = String::from_utf8(s.take_output()).unwrap();
    assert!(out.ends_with("554 5.4.6 Too many hops (3 Received: headers); mail loop suspected\r\n"), "{out}");
    assert!(s.envelope().rcpt_to.is_empty(), "the transaction is over");
    assert_eq!(codes(&talk(&mut s, b"NOOP\r\n")), ["250"]);
}

#[test]
fn trace_headers_name_the_session_facts_rfc5321_4_4() {
    let mut s = session();
    let content = message(&mut s, b"Subject: x\r\n\r\nhi\r\n").unwrap();
    let add = [("X-Spam".to_string(), "no\r\nBcc: x".to_string()), ("bad name".into(), "v".into())];
    let trace = String::from_utf8(s.trace_headers("00ab", "Wed, 2 Dec 2026 02:00:00 +0000", &add)).unwrap();
    assert!(trace.starts_with("X-Spam: no  Bcc: x\r\nReceived: from c (unknown [192.0.2.7])\r\n\tby mx.test (ferrymail) with ESMTP id 00ab\r\n\tfor <c@d.test>;\r\n"), "{trace}");
    assert!(!trace.contains("bad name"));
    assert_eq!(content, b"Subject: x\r\n\r\nhi\r\n");
}
