//! Constructors for replies and verdicts, so hooks read like policy.

use crate::{AuthOk, AuthResult, DataResult, Header, Reply, Verdict};

impl Reply {
    /// A reply with an enhanced status code (`""` for none).
    pub fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Reply {
        Reply { code, enhanced: (!enhanced.is_empty()).then(|| enhanced.to_string()), text: text.into() }
    }
}

impl Verdict {
    /// A permanent refusal (5xx).
    pub fn reject(code: u16, enhanced: &str, text: impl Into<String>) -> Verdict {
        Verdict::Reject(Reply::new(code, enhanced, text))
    }
    /// A temporary refusal (4xx).
    pub fn tempfail(code: u16, enhanced: &str, text: impl Into<String>) -> Verdict {
        Verdict::Tempfail(Reply::new(code, enhanced, text))
    }
    /// Reply and close the connection.
    pub fn disconnect(code: u16, enhanced: &str, text: impl Into<String>) -> Verdict {
        Verdict::Disconnect(Reply::new(code, enhanced, text))
    }
}

impl DataResult {
    /// Just a verdict, no headers.
    pub fn verdict(verdict: Verdict) -> DataResult {
        DataResult { verdict, add_headers: Vec::new() }
    }
    /// Continue, and add this header field.
    pub fn add_header(mut self, name: &str, value: impl Into<String>) -> DataResult {
        self.add_headers.push(Header { name: name.to_string(), value: value.into() });
        self
    }
}

impl AuthResult {
    /// Good credentials for `user`; the host derives the tenant.
    pub fn ok(user: impl Into<String>) -> AuthResult {
        AuthResult::Ok(AuthOk { user: user.into(), tenant: None })
    }
}

/// The domain part of an address, lower-cased ("" when there is none).
pub fn domain_of(address: &str) -> String {
    address.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default()
}
