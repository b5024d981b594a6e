//! What FETCH ENVELOPE, BODY and BODYSTRUCTURE answer, computed once when
//! a message is stored (delivery, APPEND) and kept beside its content, so
//! fetching a mailbox's metadata never reads or parses the messages.

use super::{search, structure};
use mail_parser::MessageParser;

/// The three pre-rendered answers, and what SEARCH compares header keys
/// and sent dates with. One buffer (the encoded form itself), so reading a
/// mailbox's summaries costs one allocation each, not five.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The encoded summary; the parts below are ranges of it.
    raw: Vec<u8>,
    parts: [std::ops::Range<usize>; 4],
    /// The Date: field, Unix seconds.
    pub sent: Option<i64>,
}

/// Tags the layout, so a later one can be told apart (and recomputed: an
/// `IMS1` summary, without the search fields, is recomputed on first use;
/// an `IMS2` one, with the sent date in UTC and ENVELOPE without address
/// groups, too).
const MAGIC: &[u8; 4] = b"IMS3";

impl Summary {
    /// Parses `raw` (the stored content; a `Return-Path:` line in front
    /// changes nothing here).
    pub fn compute(raw: &[u8]) -> Summary {
        // One parse for everything.
        let parsed = MessageParser::new().parse(raw);
        let msg = parsed.as_ref();
        let mut envelope = Vec::new();
        structure::envelope_of(&mut envelope, msg);
        let mut body = Vec::new();
        structure::body_structure_of(&mut body, msg, raw, false);
        let mut bodystructure = Vec::new();
        structure::body_structure_of(&mut bodystructure, msg, raw, true);
        let headers = search::header_lines(msg, raw);
        let parts = [&envelope, &body, &bodystructure, &headers];
        let mut out = Vec::with_capacity(28 + parts.iter().map(|p| p.len()).sum::<usize>());
        out.extend_from_slice(MAGIC);
        for part in parts {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&search::sent_of(msg).unwrap_or(i64::MIN).to_le_bytes());
        Summary::decode(out).expect("a summary just encoded decodes")
    }

    /// ENVELOPE's answer.
    pub fn envelope(&self) -> &[u8] {
        &self.raw[self.parts[0].clone()]
    }

    /// BODY's answer.
    pub fn body(&self) -> &[u8] {
        &self.raw[self.parts[1].clone()]
    }

    /// BODYSTRUCTURE's answer.
    pub fn bodystructure(&self) -> &[u8] {
        &self.raw[self.parts[2].clone()]
    }

    /// Header fields, decoded and in lower case, one `name:value` line each.
    pub fn headers(&self) -> &[u8] {
        &self.raw[self.parts[3].clone()]
    }

    /// The message's search row ([`super::search`]'s compact form of the
    /// fields SEARCH compares most), kept per message on first use.
    pub fn search_row(&self) -> Vec<u8> {
        search::row_of(self.headers(), self.sent)
    }

    /// The bytes to store.
    pub fn encode(&self) -> Vec<u8> {
        self.raw.clone()
    }

    /// [`Summary::encode`] without a copy.
    pub fn into_encoded(self) -> Vec<u8> {
        self.raw
    }

    /// The stored bytes (taken without a copy); `None` for bytes of another
    /// layout (or damaged): recompute then.
    pub fn decode(raw: Vec<u8>) -> Option<Summary> {
        let mut at = MAGIC.len();
        if raw.get(..at)? != MAGIC {
            return None;
        }
        let mut take = || {
            let len = u32::from_le_bytes(raw.get(at..at + 4)?.try_into().ok()?) as usize;
            let start = at + 4;
            let end = start.checked_add(len).filter(|&e| e <= raw.len())?;
            at = end;
            Some(start..end)
        };
        let parts = [take()?, take()?, take()?, take()?];
        let sent = i64::from_le_bytes(raw.get(at..)?.try_into().ok()?);
        let sent = (sent != i64::MIN).then_some(sent);
        Some(Summary { raw, parts, sent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_round_trips_and_refuses_other_bytes() {
        let s = Summary::compute(b"Subject: hi\r\nFrom: a@b.c\r\n\r\nbody\r\n");
        assert!(
            s.envelope().starts_with(b"(NIL \"hi\" ((NIL NIL \"a\" \"b.c\"))"),
            "{:?}",
            String::from_utf8_lossy(s.envelope())
        );
        assert_eq!(Summary::decode(s.encode()), Some(s.clone()));
        let mut bad = s.encode();
        bad.push(0);
        assert_eq!(Summary::decode(bad), None);
        assert_eq!(Summary::decode(b"IMS3\xff\xff\xff\xff".to_vec()), None);
        assert_eq!(Summary::decode(b"IMS1\0\0\0\0\0\0\0\0\0\0\0\0".to_vec()), None, "the old layout is recomputed");
        let mut older = s.encode();
        older[..4].copy_from_slice(b"IMS2");
        assert_eq!(Summary::decode(older), None, "IMS2 (UTC sent date, no groups) is recomputed");
        assert_eq!(s.headers(), b"subject:hi\nfrom: <a@b.c>\n");
        assert_eq!(Summary::decode(Vec::new()), None);
    }

    #[test]
    fn a_return_path_line_changes_nothing() {
        let content = b"Subject: x\r\nContent-Type: text/plain\r\n\r\nline\r\n";
        let mut read_back = b"Return-Path: <a@b.c>\r\n".to_vec();
        read_back.extend_from_slice(content);
        let (a, b) = (Summary::compute(content), Summary::compute(&read_back));
        assert_eq!((a.envelope(), a.body(), a.bodystructure()), (b.envelope(), b.body(), b.bodystructure()));
    }
}
