//! SMTP replies on the wire (RFC 5321 4.2) and the reply tables of the
//! server session.
//!
//! Encoding is defensive: a reply may carry text or an enhanced code that
//! came from a plugin, and nothing in it may add a reply line or change the
//! code the client reads.

use super::command::ParseError;
use super::data::DataError;
use ferrymail_policy::Reply;

/// Appends the wire form of `reply`: `code-text` continuation lines and a
/// final `code text`, each prefixed with the enhanced code (RFC 2034).
/// Control bytes in the text become spaces; an enhanced code that does not
/// follow RFC 3463's grammar, or whose class disagrees with the reply code,
/// is left out; a code outside 200–599 is clamped into it.
pub fn encode(reply: &Reply, out: &mut Vec<u8>) {
    let code = reply.code.clamp(200, 599);
    let enhanced = reply.enhanced.as_deref().filter(|e| is_enhanced_code(e, code));
    let lines: Vec<&str> = if reply.text.is_empty() { vec![""] } else { reply.text.split('\n').collect() };
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.extend_from_slice(format!("{code}{sep}").as_bytes());
        if let Some(e) = enhanced {
            out.extend_from_slice(e.as_bytes());
            out.push(b' ');
        }
        out.extend(line.bytes().map(|b| if b.is_ascii_control() && b != b'\t' { b' ' } else { b }));
        out.extend_from_slice(b"\r\n");
    }
}

/// The wire form of one reply, for callers outside a session.
pub fn to_wire(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + reply.text.len());
    encode(reply, &mut out);
    out
}

/// RFC 3463 2: `class "." subject "." detail`, class 2, 4 or 5 and equal to
/// the reply's first digit, subject and detail 1–3 digits.
pub fn is_enhanced_code(e: &str, code: u16) -> bool {
    let mut parts = e.split('.');
    let (Some(class), Some(subject), Some(detail), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let number = |s: &str| (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    matches!(class, "2" | "4" | "5")
        && u16::from(class.as_bytes()[0] - b'0') == code / 100
        && number(subject)
        && number(detail)
}

pub(super) fn r(code: u16, enhanced: &str, text: &str) -> Reply {
    Reply::new(code, enhanced, text)
}

pub(super) fn parse_error(e: ParseError) -> Reply {
    match e {
        ParseError::Unknown => r(500, "5.5.2", "Command not recognized"),
        ParseError::Syntax(syntax) => r(501, "5.5.4", &format!("Syntax: {syntax}")),
        ParseError::BadAddress { sender: true } => r(501, "5.1.7", "Bad sender address syntax"),
        ParseError::BadAddress { sender: false } => r(501, "5.1.3", "Bad recipient address syntax"),
        ParseError::Parameter(p) => r(555, "5.5.4", &format!("Unsupported parameter {p}")),
    }
}

pub(super) fn data_error(e: DataError, max_line: usize) -> Reply {
    match e {
        DataError::TooBig => r(552, "5.3.4", "Message size exceeds fixed maximum message size"),
        DataError::LineTooLong => {
            r(554, "5.6.0", &format!("Message refused: a line is longer than {max_line} octets (RFC 5321 4.5.3.1.6)"))
        }
        DataError::BareLineEnding => {
            r(554, "5.6.0", "Message refused: bare CR or LF in content; lines must end in CRLF (RFC 5321 2.3.8)")
        }
        DataError::Nul => r(554, "5.6.0", "Message refused: NUL octets in content"),
    }
}

pub(super) fn help() -> Reply {
    Reply::new(
        214,
        "2.0.0",
        "Commands supported:\nHELO EHLO MAIL RCPT DATA RSET NOOP QUIT\nHELP VRFY EXPN VERB STARTTLS AUTH\nEnd of HELP info",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line() {
        assert_eq!(to_wire(&Reply::new(250, "2.1.0", "Ok")), b"250 2.1.0 Ok\r\n");
    }

    #[test]
    fn multi_line_rfc5321_4_2_1() {
        let r = Reply::plain(250, "mx.test\nPIPELINING\nSIZE 100");
        assert_eq!(to_wire(&r), b"250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
    }

    #[test]
    fn control_bytes_cannot_inject_lines() {
        let r = Reply::new(550, "5.7.1", "no\rway\x00");
        assert_eq!(to_wire(&r), b"550 5.7.1 no way \r\n");
    }

    /// Issue 16 item 2, seen on the wire: an enhanced code carrying CRLF
    /// and a second reply desynchronised the client.
    #[test]
    fn an_enhanced_code_outside_rfc3463_grammar_is_dropped() {
        let r = Reply::new(550, "5.7.1\r\n250 2.1.5 ok\r\n354", "denied");
        assert_eq!(to_wire(&r), b"550 denied\r\n");
        // The class must match the reply code (RFC 3463 2).
        assert_eq!(to_wire(&Reply::new(550, "2.0.0", "x")), b"550 x\r\n");
        for bad in ["5.7", "5.7.1.1", "5.1234.1", "5..1", "3.0.0", "5.a.1", " 5.7.1"] {
            assert!(!is_enhanced_code(bad, 550), "{bad}");
        }
        assert!(is_enhanced_code("5.123.456", 550));
    }

    #[test]
    fn codes_outside_the_smtp_range_are_clamped() {
        assert_eq!(to_wire(&Reply::plain(999, "x")), b"599 x\r\n");
        assert_eq!(to_wire(&Reply::plain(0, "x")), b"200 x\r\n");
    }
}
