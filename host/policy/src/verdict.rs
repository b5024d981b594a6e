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
    /// Edits of the received header section (milters), applied in order
    /// before `add_headers` are prepended; see [`crate::edits`].
    #[serde(default)]
    pub edits: Vec<crate::edits::HeaderEdit>,
    /// Accept the message and drop it (a milter's SMFIR_DISCARD).
    #[serde(default)]
    pub discard: bool,
}

impl Default for DataVerdict {
    fn default() -> Self {
        DataVerdict { verdict: Verdict::Continue, add_headers: Vec::new(), edits: Vec::new(), discard: false }
    }
}

impl DataVerdict {
    /// Every field the chain added, prepended or by an edit.
    pub fn added_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        let edited = self.edits.iter().filter_map(|e| match e {
            crate::edits::HeaderEdit::Append { name, value } | crate::edits::HeaderEdit::Insert { name, value, .. } => {
                Some((name.as_str(), value.as_str()))
            }
            crate::edits::HeaderEdit::Change { .. } => None,
        });
        self.add_headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).chain(edited)
    }
}
