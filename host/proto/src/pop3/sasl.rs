//! AUTH PLAIN (RFC 5034 with the PLAIN mechanism of RFC 4616): base64
//! decoding and splitting the response into identity and password.

/// A decoded PLAIN response the driver can check.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct PlainCredentials {
    pub user: String,
    pub password: String,
}

/// Why a PLAIN response was refused; the text is the `-ERR` reply.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Malformed(pub &'static str);

/// Decodes a client response line. A lone "=" is the empty response (RFC
/// 5034 4), which PLAIN can never use, so it is simply malformed here.
pub(super) fn decode_plain(response: &str) -> Result<PlainCredentials, Malformed> {
    let bytes = base64_decode(response.as_bytes()).ok_or(Malformed("invalid base64"))?;
    let mut parts = bytes.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed(
            "PLAIN response must be authzid NUL authcid NUL passwd",
        ));
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| Malformed("not UTF-8"));
    let (authzid, user, password) = (text(authzid)?, text(authcid)?, text(password)?);
    if user.is_empty() || password.is_empty() {
        return Err(Malformed("empty user or password"));
    }
    // Same reason as for command lines: the name reaches logs and look-ups.
    if user.chars().any(char::is_control) {
        return Err(Malformed("control characters not allowed"));
    }
    // Acting as another user (RFC 4616 2) has no policy behind it yet, so
    // only the trivial authorization identity is accepted.
    if !authzid.is_empty() && authzid != user {
        return Err(Malformed("[AUTH] authorization identity not permitted"));
    }
    Ok(PlainCredentials { user, password })
}

fn sextet(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Strict RFC 4648 4 base64: padded, no whitespace, '=' only at the end.
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    if s == b"=" {
        return Some(Vec::new());
    }
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let groups = s.len() / 4;
    let mut out = Vec::with_capacity(groups * 3);
    for (i, chunk) in s.chunks_exact(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != groups) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | sextet(c)?;
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_rejects_junk_rfc4648_4() {
        assert_eq!(base64_decode(b"").unwrap(), b"");
        assert_eq!(base64_decode(b"Zg==").unwrap(), b"f");
        assert_eq!(base64_decode(b"Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode(b"Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode(b"Zm9vYg==").unwrap(), b"foob");
        for bad in [
            &b"Zg="[..],
            b"Z===",
            b"Zg==Zm9v",
            b"Zm9v\0AAA",
            b"Zm 9",
            b"Z=g=",
        ] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn plain_splits_authzid_authcid_passwd_rfc4616_2() {
        // "\0user@example.org\0pass word"
        let ok = decode_plain("AHVzZXJAZXhhbXBsZS5vcmcAcGFzcyB3b3Jk").unwrap();
        assert_eq!(ok.user, "user@example.org");
        assert_eq!(ok.password, "pass word");
        // "u\0u\0p": authzid equal to authcid is allowed.
        assert_eq!(decode_plain("dQB1AHA=").unwrap().user, "u");
        // "x\0u\0p": proxy authorization is refused.
        assert!(decode_plain("eAB1AHA=").is_err());
        // "\0u" and "\0\0p" and "\0u\0p\0x"
        for bad in ["AHU=", "AABw", "AHUAcAB4", "=", "!!!!"] {
            assert!(decode_plain(bad).is_err(), "{bad}");
        }
    }
}
