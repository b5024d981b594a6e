//! One SMTP command line to a typed command, on top of smtp-proto's RFC 5321
//! grammar, plus the commands it does not know (VERB).

use smtp_proto::{Error as ProtoError, MAIL_BODY_8BITMIME, MAIL_SMTPUTF8, Request};

/// Parameters of MAIL FROM that this server honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// SIZE= (RFC 1870), when the client declared one.
    pub size: Option<usize>,
    /// BODY=8BITMIME (RFC 6152).
    pub eight_bit: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    Mail { from: String, params: MailParams },
    Rcpt { to: String },
    Data,
    Rset,
    Noop,
    Quit,
    Help(String),
    Vrfy(String),
    Expn(String),
    Verb,
    StartTls,
    Auth { mechanism: String, initial: Option<String> },
    /// A command we recognise but do not offer (BDAT, ETRN, LHLO, ...).
    NotImplemented(&'static str),
}

/// Why a line is not a command we can act on; each maps to one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// 500 5.5.2 (RFC 5321 4.2.4).
    Unknown,
    /// 501 5.5.4 with the expected syntax.
    Syntax(&'static str),
    /// 501 5.1.7 / 5.1.3 (RFC 3463 3.2).
    BadAddress { sender: bool },
    /// 555 5.5.4: MAIL/RCPT parameter not recognised (RFC 5321 4.1.1.11).
    Parameter(String),
}

pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let keyword_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let keyword = &line[..keyword_end];
    if keyword.eq_ignore_ascii_case(b"VERB") {
        return Ok(Command::Verb);
    }
    if keyword.eq_ignore_ascii_case(b"AUTH") {
        return parse_auth(&line[keyword_end..]);
    }
    if line.contains(&0) {
        return Err(ParseError::Syntax("commands must not contain NUL"));
    }
    let mut framed = Vec::with_capacity(line.len() + 2);
    framed.extend_from_slice(line);
    framed.extend_from_slice(b"\r\n");
    let request = Request::parse(&mut framed.iter()).map_err(map_error)?;
    Ok(match request {
        Request::Helo { host } => Command::Helo(host.into_owned()),
        Request::Ehlo { host } => Command::Ehlo(host.into_owned()),
        Request::Mail { from } => Command::Mail {
            params: MailParams {
                size: (from.size > 0).then_some(from.size),
                eight_bit: from.flags & MAIL_BODY_8BITMIME != 0,
                smtputf8: from.flags & MAIL_SMTPUTF8 != 0,
            },
            from: from.address.into_owned(),
        },
        Request::Rcpt { to } => Command::Rcpt { to: to.address.into_owned() },
        Request::Data => Command::Data,
        Request::Rset => Command::Rset,
        Request::Noop { .. } => Command::Noop,
        Request::Quit => Command::Quit,
        Request::Help { value } => Command::Help(value.into_owned()),
        Request::Vrfy { value } => Command::Vrfy(value.into_owned()),
        Request::Expn { value } => Command::Expn(value.into_owned()),
        Request::StartTls => Command::StartTls,
        // smtp-proto skips leading spaces and CRs inside the keyword, so
        // " AUTH x" or "\rAUTH x" get here although the keyword check above
        // did not see AUTH: answer them as bad syntax, never panic.
        Request::Auth { .. } => return Err(ParseError::Syntax("AUTH mechanism [initial-response]")),
        other => Command::NotImplemented(other.name()),
    })
}

fn parse_auth(rest: &[u8]) -> Result<Command, ParseError> {
    const SYNTAX: &str = "AUTH mechanism [initial-response]";
    let text = std::str::from_utf8(rest).map_err(|_| ParseError::Syntax(SYNTAX))?;
    let mut words = text.split_ascii_whitespace();
    let mechanism = words.next().ok_or(ParseError::Syntax(SYNTAX))?.to_ascii_uppercase();
    let initial = words.next().map(str::to_string);
    if words.next().is_some() {
        return Err(ParseError::Syntax(SYNTAX));
    }
    Ok(Command::Auth { mechanism, initial })
}

fn map_error(e: ProtoError) -> ParseError {
    match e {
        ProtoError::UnknownCommand => ParseError::Unknown,
        ProtoError::InvalidSenderAddress => ParseError::BadAddress { sender: true },
        ProtoError::InvalidRecipientAddress => ParseError::BadAddress { sender: false },
        ProtoError::SyntaxError { syntax } => ParseError::Syntax(syntax),
        ProtoError::InvalidParameter { param } => ParseError::Parameter(param.to_string()),
        ProtoError::UnsupportedParameter { param } => ParseError::Parameter(param),
        _ => ParseError::Syntax("command"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_with_params_rfc1870_rfc6152() {
        let c = parse(b"MAIL FROM:<a@b.test> SIZE=1000 BODY=8BITMIME").unwrap();
        assert_eq!(
            c,
            Command::Mail {
                from: "a@b.test".into(),
                params: MailParams { size: Some(1000), eight_bit: true, smtputf8: false }
            }
        );
    }

    #[test]
    fn null_reverse_path_rfc5321_4_5_5() {
        assert!(matches!(parse(b"MAIL FROM:<>"), Ok(Command::Mail { from, .. }) if from.is_empty()));
    }

    #[test]
    fn keywords_are_case_insensitive_rfc5321_2_4() {
        assert_eq!(parse(b"rcpt to:<x@y.test>").unwrap(), Command::Rcpt { to: "x@y.test".into() });
        assert_eq!(parse(b"vErB").unwrap(), Command::Verb);
    }

    #[test]
    fn garbage_is_unknown_not_a_panic() {
        for junk in [&b""[..], b"\xff\xfe", b"MAIL", b"RCPT TO", b"\0\0\0", b"DATA\0x"] {
            let _ = parse(junk);
        }
        assert_eq!(parse(b"FOO bar"), Err(ParseError::Unknown));
    }

    /// Found by fuzzing (fuzz/ smtp_command): these used to hit an
    /// `unreachable!` and panic the session task.
    #[test]
    fn disguised_auth_keyword_is_a_syntax_error_not_a_panic() {
        for line in [&b" AUTH PLAIN x"[..], b"\rAUTH PLAIN", b"\r\rAUTH $\nQ\rQ\xff", b"AU\rTH LOGIN"] {
            assert!(matches!(parse(line), Err(ParseError::Syntax(_))), "{line:?}");
        }
    }

    #[test]
    fn auth_with_initial_response_rfc4954_4() {
        assert_eq!(
            parse(b"AUTH plain AGEAYg==").unwrap(),
            Command::Auth { mechanism: "PLAIN".into(), initial: Some("AGEAYg==".into()) }
        );
    }
}
