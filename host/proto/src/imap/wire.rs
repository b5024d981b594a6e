//! Writing response syntax (RFC 3501 9): strings quoted when they can be,
//! literals when they cannot, and dates.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};

/// `string`: quoted if it is short 7-bit text without CR/LF, else a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() <= 1024 && s.iter().all(|&b| b.is_ascii() && b != b'\r' && b != b'\n' && b != 0);
    if quotable {
        quoted(out, s);
    } else {
        literal(out, s);
    }
}

/// `nstring`: NIL for `None`.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

pub fn quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// `astring` for a mailbox name: an atom when every byte allows it.
pub fn astring(out: &mut Vec<u8>, s: &[u8]) {
    let atom = !s.is_empty()
        && s.iter().all(|&b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
        && !s.eq_ignore_ascii_case(b"NIL");
    if atom { out.extend_from_slice(s) } else { string(out, s) }
}

/// RFC 3501 9 `date-time`: `"17-Jul-1996 02:44:25 -0700"`, in UTC.
pub fn date_time(out: &mut Vec<u8>, unix: i64) {
    let t = Utc.timestamp_opt(unix, 0).single().unwrap_or_default();
    out.extend_from_slice(t.format("\"%d-%b-%Y %H:%M:%S +0000\"").to_string().as_bytes());
}

/// An APPEND date-time as Unix seconds.
pub fn unix(t: &DateTime<FixedOffset>) -> i64 {
    t.timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_or_literal_rfc3501_4_3() {
        let mut out = Vec::new();
        string(&mut out, b"say \"hi\"\\");
        assert_eq!(out, b"\"say \\\"hi\\\"\\\\\"");
        let mut out = Vec::new();
        string(&mut out, b"two\r\nlines");
        assert_eq!(out, b"{10}\r\ntwo\r\nlines");
        let mut out = Vec::new();
        string(&mut out, "Grüße".as_bytes());
        assert!(out.starts_with(b"{7}\r\n"));
    }

    #[test]
    fn astring_is_an_atom_when_allowed() {
        let mut out = Vec::new();
        astring(&mut out, b"Sent");
        astring(&mut out, b" ");
        astring(&mut out, b"a b");
        astring(&mut out, b"");
        assert_eq!(out, b"Sent\" \"\"a b\"\"\"");
    }

    #[test]
    fn date_time_rfc3501_9() {
        let mut out = Vec::new();
        date_time(&mut out, 837_570_265);
        assert_eq!(out, b"\"17-Jul-1996 02:24:25 +0000\"");
    }
}
