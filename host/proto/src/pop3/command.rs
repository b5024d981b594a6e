//! Parsing one command line (RFC 1939 3): a case-insensitive keyword, then
//! arguments separated by single spaces.

/// A message-number argument. Digits that overflow are kept as "no such
/// message" rather than a syntax error: the client asked for a message that
/// does not exist, it did not send garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MsgNum(pub usize);

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Command {
    User(String),
    Pass(String),
    Auth { mechanism: String, initial: Option<String> },
    Stls,
    Capa,
    Quit,
    Stat,
    List(Option<MsgNum>),
    Retr(MsgNum),
    Dele(MsgNum),
    Noop,
    Rset,
    Top(MsgNum, u32),
    Uidl(Option<MsgNum>),
}

/// Why a line is not a command; the text is the `-ERR` reply.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ParseError {
    Unknown,
    Syntax(&'static str),
}

impl ParseError {
    pub(super) fn reply(&self) -> &'static str {
        match self {
            Self::Unknown => "unknown command",
            Self::Syntax(s) => s,
        }
    }
}

/// Control characters are refused outright: user names and passwords flow
/// into logs and directory look-ups, where a NUL or CR could truncate or
/// forge a record.
fn clean(line: &[u8]) -> Result<&str, ParseError> {
    if line.iter().any(|&b| b < 0x20 && b != b'\t') {
        return Err(ParseError::Syntax("control characters not allowed"));
    }
    std::str::from_utf8(line).map_err(|_| ParseError::Syntax("command is not valid UTF-8"))
}

pub(super) fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = clean(line)?;
    let (keyword, rest) = match line.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (line, None),
    };
    let keyword = keyword.to_ascii_uppercase();
    // PASS takes the rest of the line verbatim: RFC 1939 7 lets the password
    // contain spaces since PASS has exactly one argument.
    if keyword == "PASS" {
        return match rest {
            Some(pw) if !pw.is_empty() => Ok(Command::Pass(pw.to_owned())),
            _ => Err(ParseError::Syntax("usage: PASS password")),
        };
    }
    let args: Vec<&str> = match rest {
        None => Vec::new(),
        Some(r) => r.split(' ').collect(),
    };
    if args.iter().any(|a| a.is_empty()) {
        return Err(ParseError::Syntax("arguments are separated by single spaces"));
    }
    let cmd = match (keyword.as_str(), args.as_slice()) {
        ("USER", [name]) => Command::User((*name).to_owned()),
        ("AUTH", [mech]) => Command::Auth { mechanism: mech.to_ascii_uppercase(), initial: None },
        ("AUTH", [mech, ir]) => Command::Auth { mechanism: mech.to_ascii_uppercase(), initial: Some((*ir).to_owned()) },
        ("STLS", []) => Command::Stls,
        ("CAPA", []) => Command::Capa,
        ("QUIT", []) => Command::Quit,
        ("STAT", []) => Command::Stat,
        ("LIST", []) => Command::List(None),
        ("LIST", [n]) => Command::List(Some(msg_num(n)?)),
        ("RETR", [n]) => Command::Retr(msg_num(n)?),
        ("DELE", [n]) => Command::Dele(msg_num(n)?),
        ("NOOP", []) => Command::Noop,
        ("RSET", []) => Command::Rset,
        ("TOP", [n, lines]) => Command::Top(msg_num(n)?, line_count(lines)?),
        ("UIDL", []) => Command::Uidl(None),
        ("UIDL", [n]) => Command::Uidl(Some(msg_num(n)?)),
        ("USER", _) => return Err(ParseError::Syntax("usage: USER name")),
        ("AUTH", _) => {
            return Err(ParseError::Syntax("usage: AUTH mechanism [initial-response]"));
        }
        ("TOP", _) => return Err(ParseError::Syntax("usage: TOP msg n")),
        ("LIST" | "UIDL", _) => return Err(ParseError::Syntax("usage: LIST|UIDL [msg]")),
        ("RETR" | "DELE", _) => return Err(ParseError::Syntax("usage: RETR|DELE msg")),
        ("STLS" | "CAPA" | "QUIT" | "STAT" | "NOOP" | "RSET", _) => {
            return Err(ParseError::Syntax("no arguments allowed"));
        }
        _ => return Err(ParseError::Unknown),
    };
    Ok(cmd)
}

/// Only plain digits: `str::parse` would also take "+1".
fn digits(s: &str) -> Option<u64> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| n.saturating_mul(10).saturating_add(u64::from(b - b'0'))))
}

fn msg_num(s: &str) -> Result<MsgNum, ParseError> {
    let n = digits(s).ok_or(ParseError::Syntax("invalid message number"))?;
    Ok(MsgNum(usize::try_from(n).unwrap_or(usize::MAX)))
}

/// TOP's line count saturates: asking for more lines than exist means all.
fn line_count(s: &str) -> Result<u32, ParseError> {
    let n = digits(s).ok_or(ParseError::Syntax("invalid line count"))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_case_insensitive_rfc1939_3() {
        assert_eq!(parse(b"stat"), Ok(Command::Stat));
        assert_eq!(parse(b"LiSt 2"), Ok(Command::List(Some(MsgNum(2)))));
        assert_eq!(parse(b"top 1 10"), Ok(Command::Top(MsgNum(1), 10)));
        assert_eq!(
            parse(b"auth plain AGEAYg=="),
            Ok(Command::Auth { mechanism: "PLAIN".into(), initial: Some("AGEAYg==".into()) })
        );
    }

    #[test]
    fn arguments_are_separated_by_single_spaces_rfc1939_3() {
        assert!(matches!(parse(b"RETR  1"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"STAT "), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"USER a b"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"NOOP x"), Err(ParseError::Syntax(_))));
        assert_eq!(parse(b"XYZZY"), Err(ParseError::Unknown));
        assert_eq!(parse(b""), Err(ParseError::Unknown));
    }

    #[test]
    fn pass_takes_rest_of_line_with_spaces_rfc1939_7() {
        assert_eq!(parse(b"PASS a b  c "), Ok(Command::Pass("a b  c ".into())));
        assert_eq!(parse(b"USER me@example.org"), Ok(Command::User("me@example.org".into())));
        assert!(matches!(parse(b"PASS"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"PASS "), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn message_numbers_are_plain_digits_rfc1939_3() {
        for bad in ["-1", "+1", "1a", "x", "1.0"] {
            let line = format!("RETR {bad}");
            assert!(matches!(parse(line.as_bytes()), Err(ParseError::Syntax(_))), "{bad}");
        }
        assert_eq!(parse(b"RETR 0"), Ok(Command::Retr(MsgNum(0))));
        assert_eq!(parse(b"DELE 99999999999999999999999999"), Ok(Command::Dele(MsgNum(usize::MAX))));
        assert_eq!(parse(b"TOP 1 99999999999"), Ok(Command::Top(MsgNum(1), u32::MAX)));
    }

    #[test]
    fn nul_and_invalid_utf8_are_syntax_errors() {
        assert!(matches!(parse(b"USER a\0b"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"PASS \xff\xfe"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"\xffSTAT"), Err(ParseError::Syntax(_))));
    }
}
