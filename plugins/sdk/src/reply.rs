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
    /// Adds a header field and keeps this result's verdict (`Continue` for
    /// `DataResult::verdict(Verdict::Continue)`). If the chain accepts the
    /// message, the field is prepended above the server's `Received:` line,
    /// below those of plugins earlier in the chain; fields already in the
    /// message, of that name too, stay as they are (nothing is replaced or
    /// removed). If the message is refused, it is dropped with it. The
    /// host checks every field of the answer: the name RFC 5322 ftext, the
    /// value VCHAR and WSP with CRLF only before folding white space, at
    /// most 8 KiB and lines of at most 998 octets, at most 64 fields; one
    /// bad field makes the whole answer invalid, and the plugin's `failure`
    /// policy applies as if it had trapped.
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
