//! Header edits (a milter's SMFIR_ADDHEADER, INSHEADER and CHGHEADER),
//! applied to the header section of the message as received. Indexes are
//! those the milter saw: `Insert` counts fields from the top (0: first),
//! `Change` counts fields of that name (1: the first), case-insensitively.
//! Names and values are checked by the host before an edit gets here.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeaderEdit {
    /// A new field at the end of the header section.
    Append { name: String, value: String },
    /// A new field before the `index`th field (past the end: appended).
    Insert { index: u32, name: String, value: String },
    /// Replace the value of the `index`th field called `name`; an empty
    /// value removes the field. No such field: nothing happens.
    Change { name: String, index: u32, value: String },
}

/// (start, end) of each field of the header section, and where it ends.
fn fields(message: &[u8]) -> (Vec<(usize, usize)>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    let line_end =
        |from: usize| message[from..].iter().position(|&b| b == b'\n').map_or(message.len(), |i| from + i + 1);
    while pos < message.len() {
        if message[pos] == b'\r' || message[pos] == b'\n' {
            break; // the empty line before the body
        }
        let mut end = line_end(pos);
        while end < message.len() && matches!(message[end], b' ' | b'\t') {
            end = line_end(end);
        }
        out.push((pos, end));
        pos = end;
    }
    (out, pos)
}

fn field(name: &str, value: &str) -> Vec<u8> {
    format!("{name}: {}\r\n", value.trim_start()).into_bytes()
}

fn is_named(message: &[u8], (start, end): (usize, usize), name: &str) -> bool {
    let line = &message[start..end];
    line.iter().position(|&b| b == b':').is_some_and(|i| line[..i].trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
}

/// `message` with `edits` applied, in order.
pub fn apply(message: &[u8], edits: &[HeaderEdit]) -> Vec<u8> {
    let mut msg = message.to_vec();
    for edit in edits {
        let (spans, header_end) = fields(&msg);
        let (at, remove, insert) = match edit {
            HeaderEdit::Append { name, value } => (header_end, 0, field(name, value)),
            HeaderEdit::Insert { index, name, value } => {
                let at = spans.get(*index as usize).map_or(header_end, |s| s.0);
                (at, 0, field(name, value))
            }
            HeaderEdit::Change { name, index, value } => {
                let Some(&(start, end)) =
                    spans.iter().filter(|&&s| is_named(&msg, s, name)).nth((*index as usize).saturating_sub(1))
                else {
                    continue;
                };
                let new = if value.is_empty() { Vec::new() } else { field(name, value) };
                (start, end - start, new)
            }
        };
        msg.splice(at..at + remove, insert);
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"From: a@b\r\nSubject: one\r\nX-Tag: 1\r\nx-tag: 2\r\n continued\r\n\r\nbody\r\nX-Tag: not a header\r\n";

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn append_goes_after_the_last_field() {
        let out = apply(MSG, &[HeaderEdit::Append { name: "X-Spam".into(), value: "Yes".into() }]);
        assert!(s(out).contains(" continued\r\nX-Spam: Yes\r\n\r\nbody"));
    }

    #[test]
    fn insert_at_zero_is_first_and_past_the_end_is_last() {
        let out = apply(MSG, &[HeaderEdit::Insert { index: 0, name: "DKIM-Signature".into(), value: "v=1".into() }]);
        assert!(s(out).starts_with("DKIM-Signature: v=1\r\nFrom: a@b\r\n"));
        let out = apply(MSG, &[HeaderEdit::Insert { index: 99, name: "X-Last".into(), value: "z".into() }]);
        assert!(s(out).contains("continued\r\nX-Last: z\r\n\r\n"));
    }

    #[test]
    fn change_counts_fields_of_that_name_and_replaces_folded_lines_whole() {
        let out = s(apply(MSG, &[HeaderEdit::Change { name: "X-TAG".into(), index: 2, value: "two".into() }]));
        assert!(out.contains("X-Tag: 1\r\nX-TAG: two\r\n\r\nbody"), "{out}");
        assert!(out.ends_with("X-Tag: not a header\r\n"), "the body is never edited");
    }

    #[test]
    fn an_empty_value_deletes_and_a_missing_field_is_left_alone() {
        let out = s(apply(MSG, &[HeaderEdit::Change { name: "Subject".into(), index: 1, value: String::new() }]));
        assert!(!out.contains("Subject"));
        let same = apply(MSG, &[HeaderEdit::Change { name: "Subject".into(), index: 2, value: "x".into() }]);
        assert_eq!(same, MSG);
    }
}
