//! What a hook answers. The vocabulary is Haraka's, proven in production:
//! `continue` asks the next plugin, everything else ends the chain.

use crate::Reply;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// No opinion: ask the next plugin in the chain.
    Continue,
    /// Yes; stop the chain.
    Accept,
    /// Permanent no (5xx).
    Reject(Reply),
    /// Temporary no (4xx): the client should try again later.
    Tempfail(Reply),
    /// Send the reply and close the connection.
    Disconnect(Reply),
}

impl Verdict {
    pub fn is_final(&self) -> bool {
        !matches!(self, Verdict::Continue)
    }

    /// The reply to send for a refusal, or `None` for continue/accept.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Verdict::Reject(r) | Verdict::Tempfail(r) | Verdict::Disconnect(r) => Some(r),
            Verdict::Continue | Verdict::Accept => None,
        }
    }
}

/// The answer to the data hook: a verdict plus headers to prepend, as an
/// explicit list so every change a plugin makes is visible in the trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataVerdict {
    pub verdict: Verdict,
    pub add_headers: Vec<(String, String)>,
}

impl Default for DataVerdict {
    fn default() -> Self {
        DataVerdict { verdict: Verdict::Continue, add_headers: Vec::new() }
    }
}
