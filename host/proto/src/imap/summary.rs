//! What FETCH ENVELOPE, BODY and BODYSTRUCTURE answer, computed once when
//! a message is stored (delivery, APPEND) and kept beside its content, so
//! fetching a mailbox's metadata never reads or parses the messages.

use super::structure;

/// The three pre-rendered answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub envelope: Vec<u8>,
    pub body: Vec<u8>,
    pub bodystructure: Vec<u8>,
}

/// Tags the layout, so a later one can be told apart (and recomputed).
const MAGIC: &[u8; 4] = b"IMS1";

impl Summary {
    /// Parses `raw` (the stored content; a `Return-Path:` line in front
    /// changes nothing here).
    pub fn compute(raw: &[u8]) -> Summary {
        let mut envelope = Vec::new();
        structure::envelope(&mut envelope, raw);
        let mut body = Vec::new();
        structure::body_structure(&mut body, raw, false);
        let mut bodystructure = Vec::new();
        structure::body_structure(&mut bodystructure, raw, true);
        Summary { envelope, body, bodystructure }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.envelope.len() + self.body.len() + self.bodystructure.len());
        out.extend_from_slice(MAGIC);
        for part in [&self.envelope, &self.body, &self.bodystructure] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    /// `None` for bytes of another layout (or damaged): recompute then.
    pub fn decode(bytes: &[u8]) -> Option<Summary> {
        let mut rest = bytes.strip_prefix(MAGIC)?;
        let mut take = || {
            let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let part = rest.get(4..4 + len)?.to_vec();
            rest = &rest[4 + len..];
            Some(part)
        };
        let (envelope, body, bodystructure) = (take()?, take()?, take()?);
        rest.is_empty().then_some(Summary { envelope, body, bodystructure })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_round_trips_and_refuses_other_bytes() {
        let s = Summary::compute(b"Subject: hi\r\nFrom: a@b.c\r\n\r\nbody\r\n");
        assert!(
            s.envelope.starts_with(b"(NIL \"hi\" ((NIL NIL \"a\" \"b.c\"))"),
            "{:?}",
            String::from_utf8_lossy(&s.envelope)
        );
        assert_eq!(Summary::decode(&s.encode()), Some(s.clone()));
        let mut bad = s.encode();
        bad.push(0);
        assert_eq!(Summary::decode(&bad), None);
        assert_eq!(Summary::decode(b"IMS1\xff\xff\xff\xff"), None);
        assert_eq!(Summary::decode(b""), None);
    }

    #[test]
    fn a_return_path_line_changes_nothing() {
        let content = b"Subject: x\r\nContent-Type: text/plain\r\n\r\nline\r\n";
        let mut read_back = b"Return-Path: <a@b.c>\r\n".to_vec();
        read_back.extend_from_slice(content);
        assert_eq!(Summary::compute(content), Summary::compute(&read_back));
    }
}
