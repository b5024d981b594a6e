//! Client session flows against scripted servers.

use super::*;
use ferrymail_policy::Reply;

const EHLO_FULL: &[u8] =
    b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n";
const EHLO_PLAIN: &[u8] = b"250 mx.test\r\n";

fn txn(rcpts: &[&str]) -> Transaction {
    Transaction {
        from: "s@a.test".into(),
        rcpts: rcpts.iter().map(|r| r.to_string()).collect(),
        size: 100,
        eight_bit: false,
    }
}

/// Feeds `input`, returns the events up to the next read or `Ready`, and the output.
fn step(s: &mut ClientSession, input: &[u8]) -> (Vec<ClientEvent>, String) {
    s.feed(input);
    let mut events = Vec::new();
    loop {
        let ev = s.next_event();
        let stop = matches!(
            ev,
            ClientEvent::NeedInput(_)
                | ClientEvent::Ready
                | ClientEvent::SendContent
                | ClientEvent::StartTls
                | ClientEvent::Closed
        );
        events.push(ev);
        if stop {
            return (events, String::from_utf8(s.take_output()).unwrap());
        }
    }
}

fn ready(ehlo: &[u8]) -> ClientSession {
    let mut s = ClientSession::new("out.test", TlsMode::Off);
    assert_eq!(step(&mut s, b"220 mx.test ESMTP\r\n").1, "EHLO out.test\r\n");
    assert_eq!(step(&mut s, ehlo).0.last(), Some(&ClientEvent::Ready));
    s
}

fn outcomes(events: &[ClientEvent]) -> Vec<Outcome> {
    events
        .iter()
        .find_map(|e| match e {
            ClientEvent::Done(r) => Some(r.iter().map(|r| r.outcome).collect()),
            _ => None,
        })
        .expect("a Done event")
}

#[test]
fn pipelined_transaction_rfc2920_3_1() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test", "c@b.test"]));
    let (ev, out) = step(&mut s, b"");
    assert_eq!(out, "MAIL FROM:<s@a.test> SIZE=100\r\nRCPT TO:<a@b.test>\r\nRCPT TO:<c@b.test>\r\nDATA\r\n");
    assert_eq!(ev, [ClientEvent::NeedInput(Phase::Command)]);
    let (ev, _) = step(&mut s, b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go\r\n");
    assert_eq!(ev, [ClientEvent::SendContent]);
    s.content_sent();
    let (ev, _) = step(&mut s, b"");
    assert_eq!(ev, [ClientEvent::NeedInput(Phase::DataDone)]);
    let (ev, _) = step(&mut s, b"250 2.0.0 queued\r\n");
    assert_eq!(outcomes(&ev), [Outcome::Delivered, Outcome::Failed]);
    let ClientEvent::Done(r) = &ev[0] else { panic!() };
    assert_eq!(r[1].reply, Reply::new(550, "5.1.1", "no such user"));
    // The failed recipient leaves state at the server: RSET first next time.
    s.begin(&txn(&["a@b.test"]));
    assert!(step(&mut s, b"").1.starts_with("RSET\r\nMAIL FROM:"));
}

#[test]
fn lock_step_without_pipelining_and_helo_fallback_rfc5321_3_2() {
    let mut s = ClientSession::new("out.test", TlsMode::Opportunistic);
    step(&mut s, b"220 old.test\r\n");
    assert_eq!(step(&mut s, b"502 what?\r\n").1, "HELO out.test\r\n");
    assert_eq!(step(&mut s, b"250 old.test\r\n").0.last(), Some(&ClientEvent::Ready));
    s.begin(&txn(&["a@b.test", "c@b.test"]));
    assert_eq!(step(&mut s, b"").1, "MAIL FROM:<s@a.test>\r\n", "no SIZE without the extension");
    assert_eq!(step(&mut s, b"250 ok\r\n").1, "RCPT TO:<a@b.test>\r\n");
    assert_eq!(step(&mut s, b"451 later\r\n").1, "RCPT TO:<c@b.test>\r\n");
    let (ev, out) = step(&mut s, b"250 ok\r\n");
    assert_eq!((out.as_str(), ev.as_slice()), ("DATA\r\n", [ClientEvent::NeedInput(Phase::DataInit)].as_slice()));
    assert_eq!(step(&mut s, b"354 go\r\n").0, [ClientEvent::SendContent]);
    s.content_sent();
    let (ev, _) = step(&mut s, b"250 ok\r\n");
    assert_eq!(outcomes(&ev), [Outcome::Deferred, Outcome::Delivered]);
}

#[test]
fn no_data_when_every_recipient_is_refused() {
    let mut s = ready(EHLO_PLAIN);
    s.begin(&txn(&["a@b.test"]));
    step(&mut s, b"");
    step(&mut s, b"250 ok\r\n");
    let (ev, out) = step(&mut s, b"550 no\r\n");
    assert_eq!(out, "");
    assert_eq!(outcomes(&ev), [Outcome::Failed]);
}

#[test]
fn pipelined_354_without_recipients_gets_a_lone_dot_rfc2920_3_1() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test"]));
    step(&mut s, b"");
    let (_, out) = step(&mut s, b"250 ok\r\n550 no\r\n354 go\r\n");
    assert_eq!(out, ".\r\n");
    let (ev, _) = step(&mut s, b"250 empty\r\n");
    assert_eq!(outcomes(&ev), [Outcome::Failed]);
}

#[test]
fn mail_refused_fails_or_defers_everyone() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test", "c@b.test"]));
    step(&mut s, b"");
    let (ev, _) = step(&mut s, b"451 4.3.0 busy\r\n503 no mail\r\n503 no mail\r\n503 no mail\r\n");
    assert_eq!(outcomes(&ev), [Outcome::Deferred, Outcome::Deferred]);
}

#[test]
fn greeting_refusal_is_a_host_failure_rfc5321_3_1() {
    let mut s = ClientSession::new("out.test", TlsMode::Off);
    let (ev, out) = step(&mut s, b"554 go away\r\n");
    assert_eq!(ev, [ClientEvent::HostFailed(Reply::plain(554, "go away")), ClientEvent::Closed]);
    assert_eq!(out, "QUIT\r\n");
}

#[test]
fn closing_421_defers_the_transaction_without_quit_rfc5321_3_8() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test"]));
    step(&mut s, b"");
    let (ev, out) = step(&mut s, b"421 4.3.2 shutting down\r\n");
    assert_eq!(outcomes(&ev), [Outcome::Deferred]);
    assert_eq!((ev.last(), out.as_str()), (Some(&ClientEvent::Closed), ""));
}

#[test]
fn connection_lost_after_the_dot_defers() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test"]));
    step(&mut s, b"");
    step(&mut s, b"250 ok\r\n250 ok\r\n354 go\r\n");
    s.content_sent();
    s.connection_lost(Reply::new(451, "4.4.2", "connection lost"));
    let (ev, _) = step(&mut s, b"");
    assert_eq!(outcomes(&ev), [Outcome::Deferred]);
}

#[test]
fn size_and_smtputf8_refusals_before_sending_rfc1870_6_1_rfc6531_3_2() {
    let mut s = ready(EHLO_FULL);
    let mut big = txn(&["a@b.test"]);
    big.size = 1001;
    s.begin(&big);
    let (ev, out) = step(&mut s, b"");
    assert_eq!((outcomes(&ev), out.as_str()), (vec![Outcome::Failed], ""));
    let mut s = ready(EHLO_PLAIN);
    s.begin(&txn(&["ü@b.test"]));
    let (ev, out) = step(&mut s, b"");
    assert_eq!((outcomes(&ev), out.as_str()), (vec![Outcome::Failed], ""));
    let mut s = ready(EHLO_FULL);
    let mut t = txn(&["ü@b.test"]);
    t.eight_bit = true;
    s.begin(&t);
    assert!(step(&mut s, b"").1.starts_with("MAIL FROM:<s@a.test> SIZE=100 BODY=8BITMIME SMTPUTF8\r\n"));
}

#[test]
fn starttls_then_ehlo_again_rfc3207_4_2() {
    let mut s = ClientSession::new("out.test", TlsMode::Opportunistic);
    step(&mut s, b"220 mx\r\n");
    let (ev, out) = step(&mut s, b"250-mx\r\n250-STARTTLS\r\n250 PIPELINING\r\n");
    assert_eq!((out.as_str(), ev.as_slice()), ("STARTTLS\r\n", [ClientEvent::NeedInput(Phase::Command)].as_slice()));
    // Bytes after the 220 are injected plaintext: discarded, never replies.
    let (ev, _) = step(&mut s, b"220 go ahead\r\n250 injected\r\n");
    assert_eq!(ev, [ClientEvent::StartTls]);
    s.tls_established();
    let (ev, out) = step(&mut s, b"");
    assert_eq!(
        (out.as_str(), ev.as_slice()),
        ("EHLO out.test\r\n", [ClientEvent::NeedInput(Phase::Command)].as_slice())
    );
    assert_eq!(step(&mut s, b"250-mx\r\n250 STARTTLS\r\n").0, [ClientEvent::Ready], "no second STARTTLS");
    assert!(s.is_tls() && !s.extensions().pipelining, "extensions come from the new EHLO");
}

#[test]
fn starttls_refused_opportunistic_goes_on_required_gives_up() {
    let mut s = ClientSession::new("out.test", TlsMode::Opportunistic);
    step(&mut s, b"220 mx\r\n");
    step(&mut s, b"250-mx\r\n250 STARTTLS\r\n");
    assert_eq!(step(&mut s, b"454 4.7.0 no TLS today\r\n").0, [ClientEvent::Ready]);
    let mut s = ClientSession::new("out.test", TlsMode::Require);
    step(&mut s, b"220 mx\r\n");
    let (ev, _) = step(&mut s, b"250 mx\r\n");
    assert!(matches!(&ev[0], ClientEvent::HostFailed(r) if r.code == 451));
}

#[test]
fn garbage_from_the_server_ends_the_session_cleanly() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test"]));
    step(&mut s, b"");
    let (ev, _) = step(&mut s, b"HTTP/1.1 400 Bad Request\r\n");
    assert_eq!(outcomes(&ev), [Outcome::Deferred]);
    assert_eq!(ev.last(), Some(&ClientEvent::Closed));
    // A reply while idle is out of step too.
    let mut s = ready(EHLO_FULL);
    let (ev, _) = step(&mut s, b"250 surprise\r\n");
    assert_eq!(ev, [ClientEvent::Ready], "not read while idle");
}
