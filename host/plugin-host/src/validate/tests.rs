//! One test per rule, named after the section it enforces.

use super::*;
use crate::bindings::wit::{
    AuthOk, AuthResult, DataResult, Destination, Header, RelayHost, Reply, RetryDecision, Verdict,
};

fn reply(code: u16, enhanced: &str, text: &str) -> Reply {
    Reply { code, enhanced: (!enhanced.is_empty()).then(|| enhanced.to_string()), text: text.to_string() }
}

fn reject(code: u16, enhanced: &str, text: &str) -> Verdict {
    Verdict::Reject(reply(code, enhanced, text))
}

/// Issue 16 item 2, seen on the wire: an enhanced code carrying CRLF and a
/// second reply desynchronised the client. Now the answer is refused.
#[test]
fn enhanced_code_injection_is_refused_rfc3463_2() {
    let e = reject(550, "5.7.1\r\n250 2.1.5 ok\r\n354", "denied").check().unwrap_err();
    assert!(e.0.contains("RFC 3463"), "{e}");
    assert!(e.to_string().contains("\\r\\n"), "the log shows the payload escaped: {e}");
}

#[test]
fn enhanced_code_grammar_rfc3463_2() {
    for ok in ["5.7.1", "5.123.456", "5.0.0"] {
        assert_eq!(enhanced_code(ok, 550), Ok(()), "{ok}");
    }
    for bad in ["5.7", "5.7.1.1", "5.1234.1", "5..1", "3.0.0", "5.a.1", " 5.7.1", "5.7.1 ", "5.7.-1", "٥.7.1"] {
        assert!(enhanced_code(bad, 550).is_err(), "{bad}");
    }
    // An empty enhanced code is the same as none.
    assert_eq!(reject(550, "", "no").check(), Ok(()));
}

#[test]
fn enhanced_class_matches_the_reply_code_rfc3463_2() {
    assert!(enhanced_code("2.0.0", 550).is_err());
    assert!(enhanced_code("4.7.1", 550).is_err());
    assert!(reject(550, "4.7.1", "x").check().is_err());
    assert_eq!(Verdict::Tempfail(reply(450, "4.7.1", "later")).check(), Ok(()));
}

#[test]
fn reply_code_grammar_rfc5321_4_2() {
    for bad in [0, 99, 199, 560, 599, 600, 1000, u16::MAX] {
        assert!(Some(reply(bad, "", "x")).check().is_err(), "{bad}");
    }
    for ok in [211, 250, 252, 354, 421, 554, 555] {
        assert_eq!(Some(reply(ok, "", "x")).check(), Ok(()), "{ok}");
    }
}

/// The verdict names the class (WIT `verdict`): a reject with 250 would
/// turn a refusal into an acceptance.
#[test]
fn reply_code_class_per_verdict() {
    assert!(reject(250, "", "ok?").check().is_err());
    assert!(reject(450, "", "later?").check().is_err());
    assert!(Verdict::Tempfail(reply(550, "", "never?")).check().is_err());
    assert!(Verdict::Tempfail(reply(250, "", "ok?")).check().is_err());
    assert!(Verdict::Disconnect(reply(250, "", "bye?")).check().is_err());
    assert_eq!(Verdict::Disconnect(reply(421, "4.7.0", "bye")).check(), Ok(()));
    assert_eq!(Verdict::Disconnect(reply(554, "5.7.1", "bye")).check(), Ok(()));
    assert_eq!(Verdict::Accept.check(), Ok(()));
    assert_eq!(Verdict::Continue.check(), Ok(()));
}

#[test]
fn reply_text_is_textstring_rfc5321_4_2() {
    assert_eq!(reject(550, "5.7.1", "no\tway, sorry").check(), Ok(()));
    // Several lines are separated by "\n" (the WIT's reply).
    assert_eq!(reject(550, "5.7.1", "first\nsecond").check(), Ok(()));
    for bad in ["no\r\n250 ok", "no\rway", "nul\0", "bell\x07", "del\x7f", "größe"] {
        assert!(reject(550, "5.7.1", bad).check().is_err(), "{bad:?}");
    }
}

#[test]
fn reply_lines_at_most_512_octets_rfc5321_4_5_3_1_5() {
    // "550 5.7.1 " is 10 octets, CRLF 2: 500 octets of text fill the line.
    assert_eq!(reject(550, "5.7.1", &"x".repeat(500)).check(), Ok(()));
    assert!(reject(550, "5.7.1", &"x".repeat(501)).check().is_err());
    assert_eq!(reject(550, "", &"x".repeat(506)).check(), Ok(()));
    assert!(reject(550, "", &"x".repeat(507)).check().is_err());
    let many = vec!["line"; MAX_REPLY_LINES + 1].join("\n");
    assert!(reject(550, "", &many).check().is_err());
}

fn data(headers: &[(&str, &str)]) -> DataResult {
    DataResult {
        verdict: Verdict::Continue,
        add_headers: headers.iter().map(|(n, v)| Header { name: n.to_string(), value: v.to_string() }).collect(),
    }
}

#[test]
fn header_names_are_ftext_rfc5322_3_6_8() {
    assert_eq!(data(&[("X-Spam-Score", "1.0"), ("X!#$~", "ok")]).check(), Ok(()));
    for bad in ["", "X Spam", "X:Spam", "X-\r\nBcc", "Größe", "X\t"] {
        assert!(data(&[(bad, "v")]).check().is_err(), "{bad:?}");
    }
}

#[test]
fn header_values_fold_only_before_wsp_rfc5322_2_2_3() {
    assert_eq!(data(&[("X-Long", "part one\r\n\tpart two\r\n  part three")]).check(), Ok(()));
    for bad in [
        "a\r\nBcc: victim@example.org", // a second header field
        "a\nb",                         // bare LF
        "a\rb",                         // bare CR
        "a\r\n",                        // a line break with nothing folded
        "a\r\n\r\nbody",                // the end of the header section
        "nul\0",
        "non-ascii ü",
    ] {
        assert!(data(&[("X-Test", bad)]).check().is_err(), "{bad:?}");
    }
}

#[test]
fn no_folded_line_of_only_wsp_rfc5322_3_2_2() {
    assert!(data(&[("X-Test", "a\r\n \r\n b")]).check().is_err());
}

#[test]
fn header_lines_at_most_998_octets_rfc5322_2_1_1() {
    // "X-Test: " is 8 octets.
    assert_eq!(data(&[("X-Test", &"v".repeat(990))]).check(), Ok(()));
    assert!(data(&[("X-Test", &"v".repeat(991))]).check().is_err());
    let folded = format!("{}\r\n {}", "v".repeat(900), "w".repeat(997));
    assert_eq!(data(&[("X-Test", &folded)]).check(), Ok(()));
    assert!(data(&[("X-Test", &"v\r\n ".repeat(MAX_HEADER_VALUE))]).check().is_err());
    let too_many: Vec<(&str, &str)> = vec![("X-A", "b"); MAX_HEADERS + 1];
    assert!(data(&too_many).check().is_err());
}

#[test]
fn data_result_verdict_is_checked_too() {
    let mut d = data(&[]);
    d.verdict = reject(250, "", "ok?");
    assert!(d.check().is_err());
}

fn ok(user: &str, tenant: Option<&str>) -> AuthResult {
    AuthResult::Ok(AuthOk { user: user.to_string(), tenant: tenant.map(str::to_string) })
}

#[test]
fn mailbox_syntax_rfc5321_4_1_2() {
    for good in [
        "alice@a.test",
        "a.b+tag@sub.a-b.test",
        "\"john doe\"@a.test",
        "\"q\\\"uote\"@a.test",
        "user@[192.0.2.1]",
        "user@[IPv6:2001:db8::1]",
        "jörg@bücher.test", // RFC 6531
    ] {
        assert_eq!(mailbox(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "alice",
        "@a.test",
        "alice@",
        "a..b@a.test",
        ".a@a.test",
        "a b@a.test",
        "alice@a.test\r\nRCPT TO:<x@y>",
        "alice@-a.test",
        "alice@a-.test",
        "alice@a..test",
        "alice@a_b.test",
        "alice@[300.0.0.1]",
        "alice@[IPv6:zz]",
        "\"unterminated@a.test",
        "\"bad\r\"@a.test",
    ] {
        assert!(mailbox(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn address_size_limits_rfc5321_4_5_3_1() {
    let local64 = "l".repeat(64);
    assert_eq!(mailbox(&format!("{local64}@a.test")), Ok(()));
    assert!(mailbox(&format!("{local64}l@a.test")).is_err(), "local part > 64 (4.5.3.1.1)");
    let label = "d".repeat(63);
    assert_eq!(domain(&label), Ok(()));
    assert!(domain(&format!("{label}d")).is_err(), "label > 63 (RFC 1035 2.3.4)");
    let long_domain = [label.as_str(); 4].join("."); // 255 octets
    assert_eq!(domain(&long_domain), Ok(()));
    assert!(domain(&format!("a{long_domain}")).is_err(), "domain > 255 (4.5.3.1.2)");
    // The whole path: 64 + 1 + 190 = 255 octets > 254 (4.5.3.1.3).
    let domain190 = format!("{}.{}.{}", "d".repeat(63), "d".repeat(63), "d".repeat(62));
    assert!(mailbox(&format!("{local64}@{domain190}")).is_err());
}

#[test]
fn auth_ok_user_must_be_an_account_address() {
    assert_eq!(ok("alice@a.test", None).check(), Ok(()));
    assert_eq!(ok("alice@a.test", Some("acme")).check(), Ok(()));
    assert!(ok("alice", None).check().is_err());
    assert!(ok("alice@a.test\nadmin", None).check().is_err());
    assert!(ok("alice@a.test", Some("Not A Tenant")).check().is_err());
    assert_eq!(AuthResult::Fail.check(), Ok(()));
}

fn route(d: Destination) -> Option<Destination> {
    Some(d)
}

#[test]
fn route_answers_name_addresses_and_hosts_rfc5321_4_1_2() {
    assert_eq!(route(Destination::Local("bob@b.test".into())).check(), Ok(()));
    assert!(route(Destination::Local("bob".into())).check().is_err());
    assert_eq!(route(Destination::Mx("b.test".into())).check(), Ok(()));
    assert!(route(Destination::Mx("b test".into())).check().is_err());
    assert!(route(Destination::Mx("".into())).check().is_err());
    assert_eq!(route(Destination::Alias(vec!["a@b.test".into(), "c@d.test".into()])).check(), Ok(()));
    assert!(route(Destination::Alias(vec!["a@b.test".into(), "nope".into()])).check().is_err());
    assert!(route(Destination::Alias(vec!["a@b.test".into(); MAX_ALIAS_TARGETS + 1])).check().is_err());
    assert_eq!(route(Destination::Discard).check(), Ok(()));
    assert_eq!(None::<Destination>.check(), Ok(()));
    assert_eq!(route(Destination::Reject(reply(451, "4.3.0", "later"))).check(), Ok(()));
    assert!(route(Destination::Reject(reply(250, "", "ok?"))).check().is_err());
}

#[test]
fn relay_hosts_are_domains_or_ip_addresses() {
    let relay = |host: &str, port| route(Destination::Relay(RelayHost { host: host.into(), port })).check();
    for good in ["smtp.example.org", "192.0.2.1", "2001:db8::1", "[192.0.2.1]", "[IPv6:2001:db8::1]"] {
        assert_eq!(relay(good, 25), Ok(()), "{good}");
    }
    for bad in ["", "smtp example", "host\r\n", "[smtp.example]", "-x.example", "a..b"] {
        assert!(relay(bad, 25).is_err(), "{bad:?}");
    }
    assert!(relay("smtp.example.org", 0).is_err());
}

#[test]
fn retry_intervals_are_sane() {
    let ok = |d| Some(d).check();
    assert_eq!(ok(RetryDecision::RetryAfter(1)), Ok(()));
    assert_eq!(ok(RetryDecision::WarnAndRetry(900)), Ok(()));
    assert_eq!(ok(RetryDecision::RetryAfter(30 * 86_400)), Ok(()));
    assert!(ok(RetryDecision::RetryAfter(0)).is_err(), "a busy loop");
    assert!(ok(RetryDecision::WarnAndRetry(u64::MAX)).is_err(), "overflows the clock");
    assert_eq!(ok(RetryDecision::Bounce), Ok(()));
}

/// The decision trace shows each answer on one line, and knows which
/// answers end the chain's walk.
#[test]
fn answers_are_shown_on_one_line_for_the_trace() {
    let v = reject(550, "5.7.1", "no\nnot here");
    assert_eq!(Shown(&v).to_string(), "reject 550 5.7.1 no / not here");
    assert!(v.decides());
    assert_eq!(Shown(&Verdict::Continue).to_string(), "continue");
    assert!(!Verdict::Continue.decides());
    let d =
        DataResult { verdict: Verdict::Continue, add_headers: vec![Header { name: "X".into(), value: "y".into() }] };
    assert_eq!(Shown(&d).to_string(), "continue (+1 header fields)");
    assert_eq!(Shown(&Some(RetryDecision::RetryAfter(60))).to_string(), "retry after 60 s");
    assert_eq!(Shown(&Some(Destination::Mx("example.org".into()))).to_string(), "mx example.org");
    assert_eq!(Shown(&AuthResult::Fail).to_string(), "fail", "never the user name");
}
