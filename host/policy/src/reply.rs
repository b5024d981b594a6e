//! SMTP replies (RFC 5321 4.2) with enhanced status codes (RFC 3463).

use serde::{Deserialize, Serialize};
use std::fmt;

/// One SMTP reply: a three-digit code, an optional enhanced status code
/// ("x.y.z"), and human-readable text. Multi-line text is split on `\n`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Self {
        Reply { code, enhanced: (!enhanced.is_empty()).then(|| enhanced.to_string()), text: text.into() }
    }

    /// A reply without an enhanced code (greetings, HELO, and replies sent
    /// before EHLO where ENHANCEDSTATUSCODES is not negotiated).
    pub fn plain(code: u16, text: impl Into<String>) -> Self {
        Reply { code, enhanced: None, text: text.into() }
    }

    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// Wire form: `code-text` continuation lines and a final `code text`,
    /// each line prefixed with the enhanced code when present. Text is
    /// sanitised: CR, LF inside a line and other control bytes never reach the
    /// wire, so plugin-provided text cannot inject extra reply lines.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.text.len());
        let lines: Vec<&str> = if self.text.is_empty() { vec![""] } else { self.text.split('\n').collect() };
        let code = self.code.clamp(200, 599);
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.extend_from_slice(format!("{code}{sep}").as_bytes());
            if let Some(e) = &self.enhanced {
                out.extend_from_slice(e.as_bytes());
                out.push(b' ');
            }
            out.extend(line.bytes().map(|b| if b.is_ascii_control() && b != b'\t' { b' ' } else { b }));
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.enhanced {
            Some(e) => write!(f, "{} {} {}", self.code, e, self.text.replace('\n', " / ")),
            None => write!(f, "{} {}", self.code, self.text.replace('\n', " / ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line() {
        assert_eq!(Reply::new(250, "2.1.0", "Ok").to_wire(), b"250 2.1.0 Ok\r\n");
    }

    #[test]
    fn multi_line_rfc5321_4_2_1() {
        let r = Reply::plain(250, "mx.test\nPIPELINING\nSIZE 100");
        assert_eq!(r.to_wire(), b"250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
    }

    #[test]
    fn control_bytes_cannot_inject_lines() {
        let r = Reply::new(550, "5.7.1", "no\rway\x00");
        assert_eq!(r.to_wire(), b"550 5.7.1 no way \r\n");
    }
}
