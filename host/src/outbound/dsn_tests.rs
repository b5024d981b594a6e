use super::*;
use ferrymail_store::schema::{QueuedRoute, RecipientState};

/// "550 5.1.1 text" as a typed reply (what the SMTP client records).
fn reply(line: &str) -> StoredReply {
    let code = line[..3].parse().unwrap();
    let rest = line.get(4..).unwrap_or("");
    match rest.split_once(' ') {
        Some((e, text)) if enhanced_prefix(e, code).is_some() => {
            StoredReply { code, enhanced: Some(e.into()), text: text.into() }
        }
        _ => StoredReply { code, enhanced: None, text: rest.into() },
    }
}
use mail_parser::{MessageParser, MimeHeaders};

fn rcpt(address: &str, reply: &str, remote: Option<&str>) -> QueueRecipient {
    let mut r = QueueRecipient::new(address, QueuedRoute::Mx { domain: "far.test".into() });
    r.state = RecipientState::Failed;
    r.last_reply = Some(self::reply(reply));
    r.remote_mta = remote.map(str::to_string);
    r
}

fn report<'a>(kind: Kind, recipients: Vec<&'a QueueRecipient>, original: &'a [u8]) -> Vec<u8> {
    build(&Report {
        kind,
        hostname: "mx.here.test",
        queue_id: "00000000000000ab",
        to: "alice@here.test",
        arrival: 1_700_000_000,
        now: 1_700_000_600,
        recipients,
        original,
    })
}

#[test]
fn failure_report_is_a_multipart_report_rfc3464_rfc6522() {
    let a = rcpt("bad@far.test", "550 5.1.1 <bad@far.test>: no such user", Some("mx1.far.test"));
    let b = rcpt("gone@nx.test", "550 5.1.2 Domain nx.test does not exist (NXDOMAIN)", None);
    let original = b"Subject: hello\r\nFrom: <alice@here.test>\r\nMessage-ID: <m1@here.test>\r\n\r\nsecret body\r\n";
    let bytes = report(Kind::Failure, vec![&a, &b], original);
    let msg = MessageParser::default().parse(&bytes).expect("parseable");
    let ct = msg.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
    assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
    assert_eq!(msg.subject(), Some("Undelivered Mail Returned to Sender"));
    let types: Vec<String> = msg.parts[1..]
        .iter()
        .map(|p| p.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or(""))).unwrap_or_default())
        .collect();
    assert_eq!(types, ["text/plain", "message/delivery-status", "text/rfc822-headers"]);
    let text = String::from_utf8_lossy(&bytes);
    for field in [
        "Reporting-MTA: dns; mx.here.test",
        "Final-Recipient: rfc822; bad@far.test",
        "Action: failed",
        "Status: 5.1.1",
        "Remote-MTA: dns; mx1.far.test",
        "Diagnostic-Code: smtp; 550 5.1.1 <bad@far.test>: no such user",
        "Status: 5.1.2",
        "Diagnostic-Code: X-Ferrymail; 550 5.1.2 Domain nx.test",
        "Auto-Submitted: auto-replied",
        "Message-ID: <m1@here.test>",
    ] {
        assert!(text.contains(field), "missing {field:?} in\n{text}");
    }
    assert!(!text.contains("secret body"), "only the headers go back");
    assert!(bytes.split(|&b| b == b'\n').all(|l| l.len() <= 998), "RFC 5322 2.1.1 line limit");
}

#[test]
fn delay_report_says_delayed_with_a_4xx_status() {
    let a = rcpt("slow@far.test", "451 4.7.1 try later", Some("mx1.far.test"));
    let text = String::from_utf8(report(Kind::Delay, vec![&a], b"Subject: x\r\n\r\n")).unwrap();
    assert!(text.contains("Action: delayed") && text.contains("Status: 4.7.1"), "{text}");
    assert!(text.contains("Subject: Delayed Mail"));
}

#[test]
fn status_codes_rfc3464_2_3_4() {
    assert_eq!(status(Some(&reply("550 5.7.1 spam")), Kind::Failure), "5.7.1");
    assert_eq!(status(Some(&reply("550 no enhanced code")), Kind::Failure), "5.0.0");
    // Given up after temporary failures: delivery time expired (RFC 3463 3.5).
    assert_eq!(status(Some(&reply("451 4.4.1 refused")), Kind::Failure), "4.4.7");
    assert_eq!(status(Some(&reply("250 2.0.0 odd")), Kind::Failure), "5.0.0");
    assert_eq!(status(Some(&reply("451 4.4.1 refused")), Kind::Delay), "4.4.1");
    assert_eq!(status(None, Kind::Delay), "4.0.0");
    let garbage = StoredReply { code: 0, enhanced: None, text: "garbage".into() };
    assert_eq!(status(Some(&garbage), Kind::Failure), "5.0.0");
    // An enhanced code only in the text (a server that did not offer
    // ENHANCEDSTATUSCODES but wrote one anyway) still counts.
    let in_text = StoredReply { code: 550, enhanced: None, text: "5.2.2 mailbox full".into() };
    assert_eq!(status(Some(&in_text), Kind::Failure), "5.2.2");
}

#[test]
fn hostile_remote_text_cannot_inject_fields() {
    let a = rcpt("x@far.test", "550 5.0.0 no\r\nFinal-Recipient: rfc822; victim@x", Some("mx\r\nBcc: y"));
    let text = String::from_utf8(report(Kind::Failure, vec![&a], b"")).unwrap();
    assert_eq!(text.matches("\r\nFinal-Recipient:").count(), 1, "{text}");
    assert!(!text.contains("\r\nBcc:"));
}

#[test]
fn utf8_recipient_is_typed_utf8_rfc6533() {
    let a = rcpt("jürgen@far.test", "550 5.1.1 no", None);
    let text = String::from_utf8(report(Kind::Failure, vec![&a], b"")).unwrap();
    assert!(text.contains("Final-Recipient: utf-8; jürgen@far.test"));
}
