//! Modified UTF-7 mailbox names (RFC 3501 5.1.3): what clients send and
//! see. The store keeps names as UTF-8.

use base64::Engine;
use base64::alphabet::Alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use std::sync::LazyLock;

/// RFC 3501 5.1.3: base64 with `,` for `/`, and no padding.
static MODIFIED: LazyLock<GeneralPurpose> = LazyLock::new(|| {
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").expect("a valid alphabet");
    let config =
        GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::RequireNone);
    GeneralPurpose::new(&alphabet, config)
});

/// UTF-8 → modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&MODIFIED.encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Modified UTF-7 → UTF-8; `None` for anything RFC 3501 5.1.3 does not
/// allow (8-bit bytes, bad base64, an encoded printable character, a
/// shift that is not the shortest, broken surrogates).
pub fn decode(name: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        if !(0x20..=0x7e).contains(&b) {
            return None;
        }
        if b != b'&' {
            out.push(b as char);
            i += 1;
            continue;
        }
        let end = i + 1 + name[i + 1..].iter().position(|&c| c == b'-')?;
        let chunk = &name[i + 1..end];
        i = end + 1;
        if chunk.is_empty() {
            out.push('&');
            continue;
        }
        let bytes = MODIFIED.decode(chunk).ok()?;
        if bytes.len() % 2 != 0 {
            return None;
        }
        let units: Vec<u16> = bytes.chunks(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
        let text = String::from_utf16(&units).ok()?;
        // Printable ASCII must stand for itself; two shifts in a row
        // should have been one.
        if text.chars().any(|c| (' '..='~').contains(&c))
            || name.get(i) == Some(&b'&') && name.get(i + 1) != Some(&b'-')
        {
            return None;
        }
        out.push_str(&text);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3501_5_1_3_example_round_trips() {
        // The RFC's example: "~peter/mail/台北/日本語".
        let utf7 = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        let utf8 = "~peter/mail/台北/日本語";
        assert_eq!(decode(utf7.as_bytes()).as_deref(), Some(utf8));
        assert_eq!(encode(utf8), utf7);
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode(b"Tom &- Jerry").as_deref(), Some("Tom & Jerry"));
    }

    #[test]
    fn invalid_modified_utf7_is_refused_rfc3501_5_1_3() {
        for bad in [
            &b"&Jjo!"[..],         // unterminated
            b"&U,BTFw",            // unterminated
            b"&AGE-",              // "a" encoded: must be plain
            b"caf\xc3\xa9",        // raw 8-bit
            b"&2D0-",              // a lone surrogate
            b"&U,BTFw-&ZeVnLIqe-", // two adjacent shifts
            b"&U,BTFw=-",          // padding
        ] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
