//! SMTP replies (RFC 5321 4.2) with enhanced status codes (RFC 3463).
//! Their wire form is the protocol crate's (`ferrymail_proto::smtp::replies`).

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
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.enhanced {
            Some(e) => write!(f, "{} {} {}", self.code, e, self.text.replace('\n', " / ")),
            None => write!(f, "{} {}", self.code, self.text.replace('\n', " / ")),
        }
    }
}
