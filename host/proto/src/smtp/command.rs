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
    Mail {
        from: String,
        params: MailParams,
    },
    Rcpt {
        to: String,
    },
    Data,
    Rset,
    Noop,
    Quit,
    Help(String),
    Vrfy(String),
    Expn(String),
    Verb,
    StartTls,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
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
        Request::Mail { from } => {
            let (path, params) = split_path(line).ok_or(ParseError::Syntax(MAIL_SYNTAX))?;
            check_params(params, true)?;
            Command::Mail {
                params: MailParams {
                    size: (from.size > 0).then_some(from.size),
                    eight_bit: from.flags & MAIL_BODY_8BITMIME != 0,
                    smtputf8: from.flags & MAIL_SMTPUTF8 != 0,
                },
                from: path_address(&from.address, path, true)?,
            }
        }
        Request::Rcpt { to } => {
            let (path, params) = split_path(line).ok_or(ParseError::Syntax(RCPT_SYNTAX))?;
            check_params(params, false)?;
            Command::Rcpt { to: path_address(&to.address, path, false)? }
        }
        Request::Data => Command::Data,
        Request::Rset => Command::Rset,
        Request::Noop { .. } => Command::Noop,
        Request::Quit => Command::Quit,
        Request::Help { value } => Command::Help(value.into_owned()),
        Request::Vrfy { value } => Command::Vrfy(value.into_owned()),
        Request::Expn { value } => Command::Expn(value.into_owned()),
        // RFC 3207 4: "STARTTLS" CRLF, no parameters. smtp-proto ignores
        // anything after the keyword (and CRs inside it).
        Request::StartTls => {
            let bare: Vec<u8> = line.iter().copied().filter(|&b| b != b'\r').collect();
            if !bare.trim_ascii().eq_ignore_ascii_case(b"STARTTLS") {
                return Err(ParseError::Syntax("STARTTLS (no parameters)"));
            }
            Command::StartTls
        }
        // smtp-proto skips leading spaces and CRs inside the keyword, so
        // " AUTH x" or "\rAUTH x" get here although the keyword check above
        // did not see AUTH: answer them as bad syntax, never panic.
        Request::Auth { .. } => {
            return Err(ParseError::Syntax("AUTH mechanism [initial-response]"));
        }
        other => Command::NotImplemented(other.name()),
    })
}

const MAIL_SYNTAX: &str = "MAIL FROM:<reverse-path> [parameters]";
const RCPT_SYNTAX: &str = "RCPT TO:<forward-path> [parameters]";

/// The raw path of a MAIL/RCPT line (between the first `<` and the `>` that
/// closes it outside a quoted string) and the parameter text after it.
fn split_path(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = line.iter().position(|&b| b == b'<')? + 1;
    let (mut in_quote, mut escaped) = (false, false);
    for (i, &b) in line[start..].iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_quote => escaped = true,
            b'"' => in_quote = !in_quote,
            b'>' if !in_quote => return Some((&line[start..start + i], &line[start + i + 1..])),
            _ => {}
        }
    }
    None
}

/// RFC 5321 4.1.1.11 / 3.3: a MAIL or RCPT parameter of an extension we do
/// not offer gets 555. We offer SIZE (RFC 1870), 8BITMIME (RFC 6152: BODY=7BIT
/// or 8BITMIME), SMTPUTF8 (RFC 6531) and AUTH (RFC 4954 5: AUTH=) on MAIL, and
/// no RCPT parameter at all: BODY=BINARYMIME needs CHUNKING (RFC 3030), RET,
/// ENVID, NOTIFY and ORCPT need DSN (RFC 3461), and so on.
fn check_params(params: &[u8], mail: bool) -> Result<(), ParseError> {
    for token in params.split(u8::is_ascii_whitespace).filter(|t| !t.is_empty()) {
        let (keyword, value) = match token.iter().position(|&b| b == b'=') {
            Some(i) => (&token[..i], Some(&token[i + 1..])),
            None => (token, None),
        };
        let upper = keyword.to_ascii_uppercase();
        let offered = mail
            && match (upper.as_slice(), value) {
                (b"SIZE" | b"AUTH", Some(_)) | (b"SMTPUTF8", None) => true,
                (b"BODY", Some(v)) => v.eq_ignore_ascii_case(b"7BIT") || v.eq_ignore_ascii_case(b"8BITMIME"),
                _ => false,
            };
        if !offered {
            let shown: String =
                String::from_utf8_lossy(token).chars().filter(char::is_ascii_graphic).take(64).collect();
            return Err(ParseError::Parameter(shown.to_ascii_uppercase()));
        }
    }
    Ok(())
}

/// The envelope address of a path smtp-proto accepted as `parsed` (its
/// local part unquoted), given the raw path text the client sent.
fn path_address(parsed: &str, raw: &[u8], sender: bool) -> Result<String, ParseError> {
    if parsed.is_empty() {
        // smtp-proto answers "" both for the null path <> and for
        // <Postmaster>; the raw text tells them apart.
        let bare: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\r').collect();
        return match bare.trim_ascii() {
            b"" => Ok(String::new()),
            // RFC 5321 4.5.1: RCPT TO:<Postmaster>, any case, no domain. A
            // reverse-path is a full mailbox or <> (4.1.2): not for MAIL.
            p if !sender && p.eq_ignore_ascii_case(b"postmaster") => Ok("Postmaster".into()),
            _ => Err(ParseError::BadAddress { sender }),
        };
    }
    // RFC 5321 4.1.2: qtextSMTP and quoted-pairSMTP exclude control
    // characters, which smtp-proto lets through inside quotes.
    if parsed.bytes().any(|b| b.is_ascii_control()) {
        return Err(ParseError::BadAddress { sender });
    }
    Ok(requote(parsed))
}

/// RFC 5321 4.1.2: a local part that is not a Dot-string goes back into a
/// Quoted-string, so `"john doe"@example.org` stays a valid path instead of
/// `john doe@example.org`. Quotes a Dot-string does not need are dropped.
fn requote(address: &str) -> String {
    // The domain cannot hold an '@'; a quoted local part can.
    let Some((local, domain)) = address.rsplit_once('@') else {
        return address.to_string();
    };
    if is_dot_string(local) {
        return address.to_string();
    }
    let mut out = String::with_capacity(address.len() + 4);
    out.push('"');
    for c in local.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str("\"@");
    out.push_str(domain);
    out
}

/// Dot-string = Atom *("." Atom); atext with RFC 6531's UTF8-non-ascii.
fn is_dot_string(local: &str) -> bool {
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom.bytes().all(|b| b >= 0x80 || b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
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
