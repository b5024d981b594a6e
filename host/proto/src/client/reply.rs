//! Replies as a client reads them (RFC 5321 4.2): `ddd-text` continuation
//! lines, then `ddd text` (or a bare `ddd`), each line with the same code.
//! Remote input is untrusted: limits on line length and line count, control
//! bytes replaced, and malformed replies reported instead of guessed at.

use crate::line::{Line, LineBuffer};
use ferrymail_policy::Reply;

/// RFC 5321 4.5.3.1.5 allows 512 octets per reply line; deployed servers
/// exceed it, so we accept more but not without bound.
pub const MAX_REPLY_LINE: usize = 4096;
/// Lines in one reply (a long EHLO list stays far below).
pub const MAX_REPLY_LINES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("malformed reply line: {0}")]
    Malformed(String),
    #[error("reply line longer than {MAX_REPLY_LINE} octets")]
    LineTooLong,
    #[error("reply with more than {MAX_REPLY_LINES} lines")]
    TooManyLines,
}

#[derive(Debug, Default)]
pub struct ReplyParser {
    lines: LineBuffer,
    code: Option<u16>,
    texts: Vec<String>,
}

impl ReplyParser {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.lines.extend(bytes);
    }

    /// Forgets buffered input: after STARTTLS, nothing the server sent in
    /// plaintext may be taken as a reply inside TLS (RFC 3207 4.2's rule,
    /// applied by the client against response injection).
    pub fn clear(&mut self) {
        self.lines.clear();
        self.code = None;
        self.texts.clear();
    }

    /// Input is buffered that no complete reply was made of yet.
    pub fn has_pending(&self) -> bool {
        !self.lines.is_empty() || self.code.is_some()
    }

    /// The next complete reply, `None` when more input is needed. After an
    /// error the connection cannot be trusted and should be dropped.
    pub fn next_reply(&mut self) -> Option<Result<Reply, ReplyError>> {
        loop {
            let line = match self.lines.next_line(MAX_REPLY_LINE)? {
                Line::Complete(l) => l,
                Line::TooLong => return Some(Err(ReplyError::LineTooLong)),
            };
            let (code, last, text) = match split_line(&line) {
                Some(parts) => parts,
                None => return Some(Err(ReplyError::Malformed(printable(&line)))),
            };
            if self.code.is_some_and(|c| c != code) {
                return Some(Err(ReplyError::Malformed(format!("code changed within a reply: {}", printable(&line)))));
            }
            self.code = Some(code);
            self.texts.push(text);
            if self.texts.len() > MAX_REPLY_LINES {
                return Some(Err(ReplyError::TooManyLines));
            }
            if last {
                self.code = None;
                return Some(Ok(build(code, std::mem::take(&mut self.texts))));
            }
        }
    }
}

/// `(code, is_last, text)` of one line, or `None` if it is not a reply line.
/// The first digit must be 2–5 (RFC 5321 4.2.1: 1yz is not used in SMTP).
fn split_line(line: &[u8]) -> Option<(u16, bool, String)> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return None;
    }
    let code = digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Some((code, true, String::new())),
        Some(b' ') => Some((code, true, printable(&line[4..]))),
        Some(b'-') => Some((code, false, printable(&line[4..]))),
        Some(_) => None,
    }
}

/// Remote text as we keep it: lossy UTF-8, no control characters.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Joins the lines, taking the enhanced code (RFC 2034 / RFC 3463) off the
/// front of each when the first line has one whose class matches the code.
fn build(code: u16, texts: Vec<String>) -> Reply {
    let enhanced = texts.first().and_then(|t| enhanced_prefix(t, code)).map(str::to_string);
    let text = match &enhanced {
        Some(e) => texts
            .iter()
            .map(|t| t.strip_prefix(e.as_str()).map(str::trim_start).unwrap_or(t))
            .collect::<Vec<_>>()
            .join("\n"),
        None => texts.join("\n"),
    };
    Reply { code, enhanced, text }
}

/// `class.subject.detail` at the start of `text`, class equal to the first
/// digit of `code` (RFC 3463 2: the class must agree with the reply).
pub fn enhanced_prefix(text: &str, code: u16) -> Option<&str> {
    let token = text.split(' ').next()?;
    let mut parts = token.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    let number = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
    let ok = parts.next().is_none()
        && class.len() == 1
        && class.as_bytes()[0] == b'0' + (code / 100) as u8
        && number(subject, 3)
        && number(detail, 3);
    ok.then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Vec<Result<Reply, ReplyError>> {
        let mut p = ReplyParser::default();
        p.feed(input);
        std::iter::from_fn(|| p.next_reply()).collect()
    }

    #[test]
    fn multiline_rfc5321_4_2_1() {
        let r = parse(b"250-mx.test hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
        assert_eq!(r, vec![Ok(Reply::plain(250, "mx.test hello\nPIPELINING\nSIZE 1000"))]);
    }

    #[test]
    fn bare_code_and_bare_lf_are_accepted() {
        assert_eq!(parse(b"250\n"), vec![Ok(Reply::plain(250, ""))]);
    }

    #[test]
    fn enhanced_codes_rfc3463_are_split_off() {
        let r = parse(b"550-5.1.1 no such\r\n550 5.1.1 user\r\n").remove(0).unwrap();
        assert_eq!((r.enhanced.as_deref(), r.text.as_str()), (Some("5.1.1"), "no such\nuser"));
        // RFC 3463 2: a class that disagrees with the code is not an enhanced code.
        let r = parse(b"550 4.1.1 odd\r\n").remove(0).unwrap();
        assert_eq!((r.enhanced, r.text.as_str()), (None, "4.1.1 odd"));
    }

    #[test]
    fn split_input_is_resumed() {
        let mut p = ReplyParser::default();
        p.feed(b"220-a\r\n22");
        assert!(p.next_reply().is_none());
        p.feed(b"0 b\r\n");
        assert_eq!(p.next_reply(), Some(Ok(Reply::plain(220, "a\nb"))));
        assert!(!p.has_pending());
    }

    #[test]
    fn hostile_replies_are_errors_not_panics() {
        assert!(matches!(parse(b"25\r\n")[0], Err(ReplyError::Malformed(_))));
        assert!(matches!(parse(b"abc def\r\n")[0], Err(ReplyError::Malformed(_))));
        assert!(matches!(parse(b"199 one-yz is not SMTP\r\n")[0], Err(ReplyError::Malformed(_))));
        assert!(matches!(parse(b"250-a\r\n550 b\r\n")[0], Err(ReplyError::Malformed(_))));
        assert!(matches!(parse(b"250x\r\n")[0], Err(ReplyError::Malformed(_))));
        let long = [b"250 ".as_slice(), &vec![b'a'; MAX_REPLY_LINE + 10], b"\r\n"].concat();
        assert_eq!(parse(&long)[0], Err(ReplyError::LineTooLong));
        let many = b"250-x\r\n".repeat(MAX_REPLY_LINES + 1);
        assert_eq!(parse(&many)[0], Err(ReplyError::TooManyLines));
        assert_eq!(parse(b"250 a\x00\x1bb\xff\r\n")[0].as_ref().unwrap().text, "a  b\u{fffd}");
    }
}
