//! The `message` resource: the received message lent to data hooks. The
//! bytes are shared (`Arc`) by every plugin of a chain; headers are parsed
//! once per message.

use std::sync::Arc;

/// Backing of one `message` handle in a plugin's resource table.
#[derive(Clone)]
pub struct MessageData {
    pub(crate) bytes: Arc<[u8]>,
    pub(crate) headers: Arc<Vec<(String, String)>>,
}

impl MessageData {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let headers = Arc::new(parse_headers(bytes));
        MessageData { bytes: Arc::from(bytes), headers }
    }

    /// Up to `len` bytes from `offset`, clamped to the message.
    pub(crate) fn read(&self, offset: u64, len: u32) -> Vec<u8> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.bytes.len());
        let end = start.saturating_add(len as usize).min(self.bytes.len());
        self.bytes[start..end].to_vec()
    }
}

/// The header section (RFC 5322 2.2): fields up to the first empty line,
/// continuation lines unfolded, values trimmed. Best effort on malformed
/// input: a line without a colon ends the header section.
pub(crate) fn parse_headers(message: &[u8]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for raw in message.split(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(line);
        if line[0] == b' ' || line[0] == b'\t' {
            match fields.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(text.trim());
                }
                None => break,
            }
            continue;
        }
        match text.split_once(':') {
            Some((name, value)) if !name.is_empty() && !name.contains(' ') => {
                fields.push((name.to_string(), value.trim().to_string()))
            }
            _ => break,
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_rfc5322_2_2_3() {
        let h = parse_headers(b"Subject: a\r\n  folded\r\nFrom: x@y\r\n\r\nbody: no\r\n");
        assert_eq!(h, vec![("Subject".into(), "a folded".into()), ("From".into(), "x@y".into())]);
    }

    #[test]
    fn read_clamps() {
        let m = MessageData::new(b"abc");
        assert_eq!(m.read(1, 10), b"bc");
        assert_eq!(m.read(10, 10), b"");
        assert_eq!(m.read(u64::MAX, u32::MAX), b"");
    }
}
