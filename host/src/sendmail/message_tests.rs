use super::*;

fn opts(extract: bool) -> Options {
    Options {
        extract_recipients: extract,
        sender: "root@mx.test".into(),
        full_name: None,
        hostname: "mx.test".into(),
        unique: "u1".into(),
        date: "Wed, 2 Dec 2026 13:00:00 +0000".into(),
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_lone_dot_ends_input_unless_i() {
    let input = b"Subject: x\n\nline\n.\nafter\n";
    assert_eq!(read_input(input, true), b"Subject: x\r\n\r\nline\r\n");
    assert_eq!(read_input(input, false), b"Subject: x\r\n\r\nline\r\n.\r\nafter\r\n");
}

#[test]
fn every_line_ending_becomes_crlf_rfc5321_2_3_8() {
    assert_eq!(read_input(b"a\r\nb\nc\rd", false), b"a\r\nb\r\nc\r\nd\r\n");
    assert_eq!(read_input(b"", false), b"");
}

#[test]
fn missing_from_date_and_message_id_are_added_rfc6409_8() {
    let p = prepare(b"Subject: hi\r\n\r\nbody\r\n", &args(&["bob@b.test"]), &opts(false)).unwrap();
    let text = String::from_utf8(p.content).unwrap();
    assert_eq!(
        text,
        "From: <root@mx.test>\r\nDate: Wed, 2 Dec 2026 13:00:00 +0000\r\nMessage-ID: <u1@mx.test>\r\nSubject: hi\r\n\r\nbody\r\n"
    );
    assert_eq!(p.recipients, ["bob@b.test"]);
}

#[test]
fn present_fields_are_kept_not_duplicated() {
    let msg = b"From: a@b.test\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nb\r\n";
    let p = prepare(msg, &args(&["c@d.test"]), &opts(false)).unwrap();
    assert_eq!(p.content, msg);
}

#[test]
fn full_name_is_quoted_when_needed() {
    let mut o = opts(false);
    o.full_name = Some("Cron \"Daemon\", the".into());
    let p = prepare(b"Subject: x\r\n\r\n", &args(&["c@d.test"]), &o).unwrap();
    assert!(p.content.starts_with(b"From: \"Cron \\\"Daemon\\\", the\" <root@mx.test>\r\n"));
}

#[test]
fn t_takes_to_cc_bcc_and_removes_bcc() {
    let msg = b"To: a@x.test, B <b@x.test>\r\nCc: c@x.test\r\nBcc: hidden@x.test,\r\n other@x.test\r\nSubject: s\r\n\r\nbody\r\n";
    let p = prepare(msg, &args(&["arg@x.test"]), &opts(true)).unwrap();
    assert_eq!(p.recipients, ["arg@x.test", "a@x.test", "b@x.test", "c@x.test", "hidden@x.test", "other@x.test"]);
    let text = String::from_utf8(p.content).unwrap();
    assert!(!text.contains("hidden") && !text.contains("Bcc"), "{text}");
    assert!(text.contains("Cc: c@x.test\r\nSubject: s\r\n\r\nbody\r\n"), "{text}");
}

#[test]
fn without_t_header_addresses_are_not_recipients() {
    let p = prepare(b"To: a@x.test\r\n\r\n", &args(&["z@x.test"]), &opts(false)).unwrap();
    assert_eq!(p.recipients, ["z@x.test"]);
}

#[test]
fn bare_user_names_are_local_users() {
    let p = prepare(b"Subject: s\r\n\r\n", &args(&["alice", "Bob@X.test", "bob@x.test"]), &opts(false)).unwrap();
    assert_eq!(p.recipients, ["alice@mx.test", "Bob@X.test"], "qualified, duplicates dropped");
}

#[test]
fn comma_separated_arguments_are_several_recipients() {
    let p = prepare(b"Subject: s\r\n\r\n", &args(&["a@x.test,b@x.test"]), &opts(false)).unwrap();
    assert_eq!(p.recipients, ["a@x.test", "b@x.test"]);
}

#[test]
fn no_recipients_and_bad_recipients_are_errors() {
    assert_eq!(prepare(b"Subject: s\r\n\r\n", &[], &opts(true)), Err(PrepareError::NoRecipients));
    assert!(matches!(
        prepare(b"Subject: s\r\n\r\n", &args(&["a b@x.test"]), &opts(false)),
        Err(PrepareError::BadRecipient(_))
    ));
    assert!(matches!(prepare(b"Subject: s\r\n\r\n", &args(&["a@"]), &opts(false)), Err(PrepareError::BadRecipient(_))));
    assert!(matches!(
        prepare(b"Subject: s\r\n\r\n", &args(&["a\n@x.test"]), &opts(false)),
        Err(PrepareError::BadRecipient(_))
    ));
}

#[test]
fn a_message_starting_with_a_blank_line_has_no_headers() {
    assert_eq!(prepare(b"\r\nbody\r\n", &args(&["a@x.test"]), &opts(false)), Err(PrepareError::NoHeaders));
}
