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
    let bytes = crate::sasl::decode(response).map_err(|_| Malformed("invalid base64"))?;
    match crate::sasl::parse_plain(&bytes) {
        Ok((user, password)) => Ok(PlainCredentials { user, password }),
        Err(_) => Err(Malformed("[AUTH] malformed PLAIN response or authorization identity not permitted")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
