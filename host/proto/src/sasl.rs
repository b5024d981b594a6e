//! SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) decoding,
//! shared by SMTP AUTH (RFC 4954) and POP3 AUTH (RFC 5034). Verifying the
//! credentials is the policy's job.

use base64::{Engine, engine::general_purpose::STANDARD};

/// Longest AUTH line, RFC 4954 4: 12288 octets.
pub const MAX_AUTH_LINE: usize = 12288;

/// "Username:" and "Password:", the LOGIN mechanism's challenges.
pub const LOGIN_USER_CHALLENGE: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASS_CHALLENGE: &str = "UGFzc3dvcmQ6";

#[derive(Debug, PartialEq, Eq)]
pub enum SaslError {
    /// Not base64 (RFC 4954 4: 501).
    Encoding,
    /// Decoded but malformed, or an authorization identity we do not support.
    Credentials,
}

/// Decodes one client response; "=" is the empty response (RFC 4954 4).
/// Strict RFC 4648 4: padded, no embedded whitespace.
pub fn decode(response: &str) -> Result<Vec<u8>, SaslError> {
    let response = response.trim_end_matches([' ', '\t']);
    if response == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(response).map_err(|_| SaslError::Encoding)
}

/// PLAIN: `[authzid] NUL authcid NUL passwd`. A non-empty authzid different
/// from authcid (acting as someone else) is refused: we do not support proxy
/// authorization.
pub fn parse_plain(decoded: &[u8]) -> Result<(String, String), SaslError> {
    let mut parts = decoded.split(|&b| b == 0);
    let (Some(authz), Some(authc), Some(pass), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(SaslError::Credentials);
    };
    let authc = String::from_utf8(authc.to_vec()).map_err(|_| SaslError::Credentials)?;
    let pass = String::from_utf8(pass.to_vec()).map_err(|_| SaslError::Credentials)?;
    // The name reaches logs and look-ups: no control characters in it.
    if authc.is_empty() || pass.is_empty() || authc.chars().any(char::is_control) {
        return Err(SaslError::Credentials);
    }
    if !authz.is_empty() && authz != authc.as_bytes() {
        return Err(SaslError::Credentials);
    }
    Ok((authc, pass))
}

pub fn utf8(decoded: Vec<u8>) -> Result<String, SaslError> {
    String::from_utf8(decoded).map_err(|_| SaslError::Credentials)
}

/// A user name (LOGIN's first response): UTF-8, not empty, and without
/// control characters, which would forge lines in logs and confuse
/// directory look-ups.
pub fn identity(decoded: Vec<u8>) -> Result<String, SaslError> {
    let name = utf8(decoded)?;
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(SaslError::Credentials);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rfc4616_2() {
        let d = decode(&STANDARD.encode(b"\0tim\0tanstaaftanstaaf")).unwrap();
        assert_eq!(parse_plain(&d).unwrap(), ("tim".into(), "tanstaaftanstaaf".into()));
    }

    #[test]
    fn plain_with_matching_authzid() {
        assert!(parse_plain(b"tim\0tim\0pw").is_ok());
        assert_eq!(parse_plain(b"root\0tim\0pw"), Err(SaslError::Credentials));
    }

    #[test]
    fn malformed_plain() {
        assert_eq!(parse_plain(b"nopw"), Err(SaslError::Credentials));
        assert_eq!(parse_plain(b"\0\0pw"), Err(SaslError::Credentials));
        assert_eq!(parse_plain(b"a\0b\0c\0d"), Err(SaslError::Credentials));
    }

    #[test]
    fn bad_base64_rfc4954_4() {
        assert_eq!(decode("!!!"), Err(SaslError::Encoding));
        assert_eq!(decode("=").unwrap(), b"");
    }

    #[test]
    fn strict_base64_rfc4648_4() {
        assert_eq!(decode("Zm9vYg==").unwrap(), b"foob");
        for bad in ["Zg=", "Z===", "Zg==Zm9v", "Zm 9", "Z=g="] {
            assert_eq!(decode(bad), Err(SaslError::Encoding), "{bad}");
        }
    }

    #[test]
    fn control_characters_in_names_refused() {
        assert_eq!(parse_plain(b"\0u\x07\0pw"), Err(SaslError::Credentials));
        assert_eq!(parse_plain(b"\0u\0"), Err(SaslError::Credentials));
        // Issue 16 item 6: an AUTH LOGIN name with LF forged log lines.
        assert_eq!(identity(b"mallory\nFAKE auth ok".to_vec()), Err(SaslError::Credentials));
        assert_eq!(identity(Vec::new()), Err(SaslError::Credentials));
        assert_eq!(identity(b"alice@a.test".to_vec()).unwrap(), "alice@a.test");
    }
}
