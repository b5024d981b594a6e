//! Command sequencing and replies, rule by rule.

use super::*;

#[test]
fn greeting_rfc5321_4_2() {
    let mut s = SmtpSession::new(SmtpConfig::default(), info());
    assert_eq!(s.next_event(t0()), SmtpEvent::Connect);
    assert!(!s.has_output(), "nothing is said before the connect verdict");
    s.verdict(Verdict::Continue);
    assert_eq!(s.next_event(t0()), SmtpEvent::NeedInput);
    assert!(String::from_utf8(s.take_output()).unwrap().starts_with("220 localhost ESMTP"));
}

#[test]
fn ehlo_advertises_extensions_rfc5321_4_1_1_1() {
    let out = talk(&mut session(), b"EHLO client.test\r\n");
    for ext in ["PIPELINING", "SIZE 26214400", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"] {
        assert!(out.contains(&format!("250-{ext}\r\n")) || out.contains(&format!("250 {ext}\r\n")), "{ext}: {out}");
    }
    assert!(!out.contains("STARTTLS") && !out.contains("AUTH"));
}

#[test]
fn helo_is_single_line() {
    assert_eq!(talk(&mut session(), b"HELO c\r\n"), "250 mx.test Hello c\r\n");
}

#[test]
fn mail_before_helo_is_503_rfc5321_4_1_4() {
    assert_eq!(codes(&talk(&mut session(), b"MAIL FROM:<a@b.test>\r\n")), ["503"]);
}

#[test]
fn rcpt_before_mail_is_503_rfc5321_3_3() {
    assert_eq!(codes(&talk(&mut session(), b"HELO c\r\nRCPT TO:<a@b.test>\r\n")), ["250", "503"]);
}

#[test]
fn data_without_recipients_rfc5321_3_3() {
    let out = talk(&mut session(), b"HELO c\r\nDATA\r\nMAIL FROM:<a@b.test>\r\nDATA\r\n");
    assert_eq!(codes(&out), ["250", "503", "250", "554"]);
}

#[test]
fn nested_mail_is_503_rfc5321_4_1_4() {
    let out = talk(&mut session(), b"HELO c\r\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\n");
    assert_eq!(codes(&out), ["250", "250", "503"]);
}

#[test]
fn full_transaction_pipelined_rfc2920() {
    let mut s = session();
    s.feed(b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nRCPT TO:<z@y.test>\r\nDATA\r\n");
    let mut events = Vec::new();
    loop {
        match s.next_event(t0()) {
            SmtpEvent::NeedInput => break,
            SmtpEvent::Helo { .. } | SmtpEvent::Mail { .. } => s.verdict(Verdict::Continue),
            e @ SmtpEvent::Rcpt { .. } => {
                events.push(e);
                s.verdict(Verdict::Accept)
            }
            e => panic!("{e:?}"),
        }
    }
    assert_eq!(events.len(), 2);
    let out = String::from_utf8(s.take_output()).unwrap();
    assert_eq!(codes(&out), ["250", "250", "250", "250", "354"]);
    s.feed(b"Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
    match s.next_event(t0()) {
        SmtpEvent::Message(m) => assert_eq!(m, b"Subject: hi\r\n\r\n.dot\r\n"),
        e => panic!("{e:?}"),
    }
    assert_eq!(s.envelope().rcpt_to, ["x@y.test", "z@y.test"]);
    s.reply(Reply::new(250, "2.0.0", "queued"));
    assert_eq!(s.next_event(t0()), SmtpEvent::Close);
    assert_eq!(codes(&String::from_utf8(s.take_output()).unwrap()), ["250", "221"]);
    assert_eq!(s.envelope().rcpt_to.len(), 0, "transaction over after DATA");
}

#[test]
fn decision_blocks_later_pipelined_commands_rfc2920_3_1() {
    let mut s = session();
    s.feed(b"HELO c\r\nNOOP\r\n");
    assert!(matches!(s.next_event(t0()), SmtpEvent::Helo { .. }));
    assert_eq!(s.next_event(t0()), SmtpEvent::NeedInput, "NOOP must wait for the HELO decision");
    assert!(!s.has_output());
    s.verdict(Verdict::Continue);
    assert_eq!(s.next_event(t0()), SmtpEvent::NeedInput);
    assert_eq!(codes(&String::from_utf8(s.take_output()).unwrap()), ["250", "250"]);
}

#[test]
fn rcpt_continue_means_relay_denied() {
    let mut s = session();
    talk(&mut s, b"HELO c\r\nMAIL FROM:<a@b.test>\r\n");
    s.feed(b"RCPT TO:<x@elsewhere.test>\r\n");
    assert!(matches!(s.next_event(t0()), SmtpEvent::Rcpt { .. }));
    s.verdict(Verdict::Continue);
    s.next_event(t0());
    assert_eq!(String::from_utf8(s.take_output()).unwrap(), "554 5.7.1 Relay access denied\r\n");
}

#[test]
fn plugin_reply_is_sent_verbatim() {
    let mut s = session();
    talk(&mut s, b"HELO c\r\nMAIL FROM:<a@b.test>\r\n");
    s.feed(b"RCPT TO:<x@y.test>\r\n");
    s.next_event(t0());
    s.verdict(Verdict::Reject(Reply::new(550, "5.1.1", "No such user")));
    s.next_event(t0());
    assert_eq!(String::from_utf8(s.take_output()).unwrap(), "550 5.1.1 No such user\r\n");
}

#[test]
fn disconnect_verdict_closes() {
    let mut s = session();
    s.feed(b"HELO c\r\nNOOP\r\n");
    s.next_event(t0());
    s.verdict(Verdict::Disconnect(Reply::new(421, "4.7.0", "go away")));
    assert_eq!(s.next_event(t0()), SmtpEvent::Close);
    assert_eq!(String::from_utf8(s.take_output()).unwrap(), "421 4.7.0 go away\r\n");
}

#[test]
fn too_many_recipients_is_452_rfc5321_4_5_3_1_10() {
    let mut s = session();
    let mut input = b"HELO c\r\nMAIL FROM:<a@b.test>\r\n".to_vec();
    for i in 0..101 {
        input.extend_from_slice(format!("RCPT TO:<u{i}@y.test>\r\n").as_bytes());
    }
    let out = talk(&mut s, &input);
    let c = codes(&out);
    assert_eq!(c.iter().filter(|&&c| c == "250").count(), 102);
    assert_eq!(c.last(), Some(&"452"));
    assert!(out.ends_with("452 4.5.3 Too many recipients\r\n"));
}

#[test]
fn size_param_over_limit_is_552_rfc1870_6_1() {
    let out = talk(&mut session(), b"EHLO c\r\nMAIL FROM:<a@b.test> SIZE=999999999\r\n");
    assert!(out.ends_with("552 5.3.4 Message size exceeds fixed maximum message size\r\n"));
}

#[test]
fn command_line_limit_is_500_rfc5321_4_5_3_1_4() {
    let mut line = b"NOOP ".to_vec();
    line.extend(vec![b'x'; 600]);
    line.extend_from_slice(b"\r\nNOOP\r\n");
    assert_eq!(codes(&talk(&mut session(), &line)), ["500", "250"]);
}

#[test]
fn unknown_and_syntax_errors_rfc5321_4_2_4() {
    let out = talk(&mut session(), b"XYZZY\r\nHELO c\r\nMAIL FROM:bad\r\nVRFY\r\n");
    assert_eq!(codes(&out), ["500", "250", "501", "501"]);
}

#[test]
fn nul_in_command_is_an_error_not_a_panic() {
    let out = talk(&mut session(), b"HE\0LO c\r\nMAIL\0FROM:<a@b>\r\n");
    assert_eq!(codes(&out), ["501", "501"]);
}

#[test]
fn too_many_errors_closes_with_421() {
    let mut s = session();
    let out = talk(&mut s, &b"BAD\r\n".repeat(25));
    assert_eq!(codes(&out).len(), 21);
    assert!(out.ends_with("Too many errors, closing connection\r\n"));
    assert_eq!(s.next_event(t0()), SmtpEvent::Close);
}

#[test]
fn help_noop_rset_verb_quit_rfc5321_4_1_1() {
    let out = talk(&mut session(), b"HELP\r\nNOOP\r\nRSET\r\nVERB\r\nQUIT\r\n");
    assert_eq!(codes(&out), ["214", "250", "250", "250", "221"]);
}

#[test]
fn vrfy_and_expn_ask_the_policy_rfc5321_3_5() {
    let mut s = session();
    s.feed(b"VRFY joe\r\n");
    assert_eq!(s.next_event(t0()), SmtpEvent::Vrfy("joe".into()));
    s.reply(Reply::new(252, "2.5.0", "maybe"));
    s.feed(b"EXPN list\r\n");
    assert_eq!(s.next_event(t0()), SmtpEvent::Expn("list".into()));
}

#[test]
fn rset_clears_transaction_rfc5321_4_1_1_5() {
    let out = talk(&mut session(), b"HELO c\r\nMAIL FROM:<a@b.test>\r\nRSET\r\nRCPT TO:<x@y.test>\r\n");
    assert_eq!(codes(&out), ["250", "250", "250", "503"]);
}

#[test]
fn bad_data_gets_554_and_the_session_continues() {
    let out = talk(
        &mut session(),
        b"HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\nx\n.\nMAIL FROM:<evil@b.test>\r\n.\r\nNOOP\r\n",
    );
    assert_eq!(codes(&out), ["250", "250", "250", "354", "554", "250"]);
}

#[test]
fn smuggled_commands_after_bare_lf_dot_are_message_text() {
    let mut s = session();
    talk(&mut s, b"HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\n");
    s.feed(b"body\n.\nRCPT TO:<victim@y.test>\r\n");
    assert_eq!(s.next_event(t0()), SmtpEvent::NeedInput, "no command may be read from inside DATA");
}

#[test]
fn non_ascii_needs_smtputf8_rfc6531_3_5() {
    let out =
        talk(&mut session(), "EHLO c\r\nMAIL FROM:<jöe@b.test>\r\nMAIL FROM:<jöe@b.test> SMTPUTF8\r\n".as_bytes());
    assert_eq!(codes(&out), ["250", "553", "250"]);
}

/// Deterministic fuzz: random bytes in every phase never panic.
#[test]
fn random_input_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let prefixes: [&[u8]; 3] = [b"", b"EHLO c\r\n", b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"];
    let alphabet = b"\r\n.:<>@ \0\xffMAILRCPTDATAEHLOAUTH=";
    for i in 0..3000 {
        let mut s = auth_session(i % 2 == 0);
        talk(&mut s, prefixes[i % 3]);
        let len = (next() % 300) as usize;
        let junk: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
        talk(&mut s, &junk);
    }
}

/// The event `line` raises inside a transaction.
fn rcpt_event(s: &mut SmtpSession, line: &[u8]) -> SmtpEvent {
    talk(s, b"EHLO c\r\nMAIL FROM:<a@b.test>\r\n");
    s.feed(line);
    s.next_event(t0())
}

#[test]
fn bare_postmaster_is_accepted_and_qualified_rfc5321_4_5_1() {
    for line in [&b"RCPT TO:<Postmaster>\r\n"[..], b"RCPT TO:<postmaster>\r\n", b"rcpt to:<POSTMASTER>\r\n"] {
        let mut s = session();
        assert_eq!(rcpt_event(&mut s, line), SmtpEvent::Rcpt { to: "postmaster@mx.test".into() }, "{line:?}");
        s.verdict(Verdict::Accept);
        s.next_event(t0());
        assert_eq!(s.envelope().rcpt_to, ["postmaster@mx.test"]);
        assert!(String::from_utf8(s.take_output()).unwrap().ends_with("250 2.1.5 Recipient ok\r\n"));
    }
    // The driver names the domain (the first local domain).
    let cfg = SmtpConfig { postmaster: Some("postmaster@example.org".into()), ..Default::default() };
    let mut s = open(cfg);
    assert_eq!(
        rcpt_event(&mut s, b"RCPT TO:<Postmaster>\r\n"),
        SmtpEvent::Rcpt { to: "postmaster@example.org".into() }
    );
}

#[test]
fn postmaster_is_no_reverse_path_and_null_forward_path_is_refused_rfc5321_4_1_2() {
    // Reverse-path = Path / "<>": a bare Postmaster is not a mailbox, and
    // must not turn into the null sender either.
    let out = talk(
        &mut session(),
        b"EHLO c\r\nMAIL FROM:<Postmaster>\r\nMAIL FROM:<>\r\nRCPT TO:<>\r\nRCPT TO:<postmaster.x>\r\n",
    );
    assert_eq!(codes(&out), ["250", "501", "250", "501", "501"]);
    assert!(out.contains("501 5.1.7 "), "{out}");
}

#[test]
fn quoted_local_part_stays_quoted_rfc5321_4_1_2() {
    for (sent, envelope) in [
        (r#""john doe"@example.org"#, r#""john doe"@example.org"#),
        (r#""a@b"@example.org"#, r#""a@b"@example.org"#),
        (r#""a\"b\\c"@example.org"#, r#""a\"b\\c"@example.org"#),
        (r#""a..b"@example.org"#, r#""a..b"@example.org"#),
        // Quotes a Dot-string does not need are dropped: the same mailbox.
        (r#""john.doe"@example.org"#, "john.doe@example.org"),
        ("john.doe@example.org", "john.doe@example.org"),
    ] {
        let mut s = session();
        talk(&mut s, b"EHLO c\r\n");
        s.feed(format!("MAIL FROM:<{sent}>\r\n").as_bytes());
        assert_eq!(
            s.next_event(t0()),
            SmtpEvent::Mail { from: envelope.into(), params: MailParams::default() },
            "{sent}"
        );
        s.verdict(Verdict::Continue);
        assert_eq!(s.envelope().mail_from, envelope);
        s.feed(format!("RCPT TO:<{sent}>\r\n").as_bytes());
        assert_eq!(s.next_event(t0()), SmtpEvent::Rcpt { to: envelope.into() }, "{sent}");
    }
}

#[test]
fn control_characters_in_quoted_local_part_are_501_rfc5321_4_1_2() {
    let out =
        talk(&mut session(), b"EHLO c\r\nMAIL FROM:<\"a\tb\"@example.org>\r\nMAIL FROM:<\"a\x01b\"@example.org>\r\n");
    assert_eq!(codes(&out), ["250", "501", "501"]);
}

#[test]
fn parameters_of_unoffered_extensions_are_555_rfc5321_4_1_1_11() {
    for line in [
        "MAIL FROM:<a@b.test> BODY=BINARYMIME", // RFC 3030: needs CHUNKING
        "MAIL FROM:<a@b.test> RET=HDRS",        // RFC 3461 DSN
        "MAIL FROM:<a@b.test> ret=FULL",
        "MAIL FROM:<a@b.test> ENVID=abc",
        "MAIL FROM:<a@b.test> SIZE=10 REQUIRETLS", // RFC 8689
        "MAIL FROM:<a@b.test> MT-PRIORITY=3",      // RFC 6710
        "MAIL FROM:<a@b.test> HOLDFOR=10",         // RFC 4865
        "MAIL FROM:<a@b.test> XFOO=1",
        "MAIL FROM:<\"a>b\"@b.test> NOTIFY=NEVER",
    ] {
        let out = talk(&mut session(), format!("EHLO c\r\n{line}\r\n").as_bytes());
        assert_eq!(codes(&out), ["250", "555"], "{line}: {out}");
        assert!(out.contains("\r\n555 5.5.4 Unsupported parameter "), "{line}: {out}");
    }
    let out = talk(&mut session(), b"EHLO c\r\nMAIL FROM:<a@b.test> BODY=BINARYMIME\r\n");
    assert!(out.ends_with("555 5.5.4 Unsupported parameter BODY=BINARYMIME\r\n"), "{out}");
    for line in [
        "RCPT TO:<x@y.test> NOTIFY=NEVER",
        "RCPT TO:<x@y.test> ORCPT=rfc822;x@y.test",
        "RCPT TO:<x@y.test> NOTIFY=SUCCESS,FAILURE",
    ] {
        let out = talk(&mut session(), format!("EHLO c\r\nMAIL FROM:<a@b.test>\r\n{line}\r\n").as_bytes());
        assert_eq!(codes(&out), ["250", "250", "555"], "{line}: {out}");
        assert!(out.contains("\r\n555 5.5.4 Unsupported parameter "), "{line}: {out}");
    }
}

#[test]
fn parameters_of_offered_extensions_are_accepted_rfc1870_rfc6152_rfc6531_rfc4954() {
    let mut s = session();
    talk(&mut s, b"EHLO c\r\n");
    s.feed(b"MAIL FROM:<a@b.test> size=100 BODY=8bitmime SMTPUTF8 AUTH=<>\r\n");
    assert_eq!(
        s.next_event(t0()),
        SmtpEvent::Mail {
            from: "a@b.test".into(),
            params: MailParams { size: Some(100), eight_bit: true, smtputf8: true }
        }
    );
    s.verdict(Verdict::Continue);
    let out = talk(&mut s, b"RSET\r\nMAIL FROM:<a@b.test> BODY=7BIT\r\n");
    assert_eq!(codes(&out), ["250", "250", "250"]);
}

#[test]
fn starttls_takes_no_argument_rfc3207_4() {
    let mut s = auth_session(false);
    let out = talk(&mut s, b"EHLO c\r\nSTARTTLS x\r\nSTARTTLS  \r\n");
    assert_eq!(codes(&out), ["250", "501", "220"]);
    assert!(out.contains("501 5.5.4 Syntax: STARTTLS"), "{out}");
    assert!(s.is_tls(), "STARTTLS with trailing blanks still starts TLS");
    // Without STARTTLS on offer, the syntax is still checked first.
    assert_eq!(codes(&talk(&mut session(), b"STARTTLS now\r\n")), ["501"]);
}
