//! Client-controlled text in log lines.
//!
//! A HELO name, an address, a user name or a remote server's reply text
//! goes into the log as one field value, whatever it contains: a CR or LF
//! would start a forged log line, an ESC would drive the operator's
//! terminal, and a space followed by `client=1.2.3.4` would forge a field
//! that fail2ban then trusts. [`LogSafe`] prints such a value the way
//! logfmt does: bare when it is a plain token, otherwise in double quotes
//! with `"` and `\` escaped and every control or invisible formatting
//! character written as an escape (`\n`, `\r`, `\t`, `\u{1b}`).
//!
//! Every log call site that prints a string a client, a peer or a plugin
//! chose uses it: `tracing::info!(user = %logsafe(&name), …)`.

use std::fmt::{self, Write};

/// A `Display` wrapper: see the module documentation.
#[derive(Clone, Copy)]
pub struct LogSafe<'a>(pub &'a str);

/// Wraps `text` for a log field.
pub fn logsafe(text: &str) -> LogSafe<'_> {
    LogSafe(text)
}

/// Needs an escape inside quotes: control characters (C0, DEL, C1), and
/// the Unicode formatting characters that reorder or hide text on a
/// terminal (bidi overrides and isolates, line/paragraph separators,
/// zero-width characters, BOM).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// Printed without quotes: not empty, and nothing that ends a field.
fn bare(text: &str) -> bool {
    !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || hidden(c) || matches!(c, '"' | '\\' | '='))
}

impl fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if bare(self.0) {
            return f.write_str(self.0);
        }
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if hidden(c) || (c.is_whitespace() && c != ' ') => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

impl fmt::Debug for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::logsafe;

    #[test]
    fn plain_tokens_stay_readable() {
        assert_eq!(logsafe("alice@a.test").to_string(), "alice@a.test");
        assert_eq!(logsafe("mail.example.org").to_string(), "mail.example.org");
        assert_eq!(logsafe("jörg@bücher.example").to_string(), "jörg@bücher.example");
    }

    #[test]
    fn line_breaks_and_terminal_escapes_cannot_leave_the_field() {
        let s = logsafe("mallory\n2026-01-01T00:00:00Z  INFO auth ok user=root\r\x1b[2J").to_string();
        assert!(!s.contains(['\n', '\r', '\x1b']), "{s}");
        assert_eq!(s, r#""mallory\n2026-01-01T00:00:00Z  INFO auth ok user=root\r\u{1b}[2J""#);
        assert_eq!(logsafe("a\u{85}b\u{2028}c\u{202e}d").to_string(), r#""a\u{85}b\u{2028}c\u{202e}d""#);
    }

    #[test]
    fn a_value_cannot_forge_another_field() {
        // fail2ban keys on ` client=<HOST>`: a user name must not supply one.
        assert_eq!(logsafe("x client=10.0.0.1").to_string(), r#""x client=10.0.0.1""#);
        assert_eq!(logsafe("client=10.0.0.1").to_string(), r#""client=10.0.0.1""#);
        assert_eq!(logsafe(r#"a"b\c"#).to_string(), r#""a\"b\\c""#);
        assert_eq!(logsafe("").to_string(), r#""""#);
        assert_eq!(logsafe("tab\there").to_string(), r#""tab\there""#);
    }
}
