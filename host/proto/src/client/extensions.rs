//! What a server offers in its EHLO reply (RFC 5321 4.1.1.1: one keyword
//! per line after the first, case-insensitive, parameters after a space).

use ferrymail_policy::Reply;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// RFC 2920.
    pub pipelining: bool,
    /// RFC 1870: `Some(0)` means no fixed limit.
    pub size: Option<u64>,
    /// RFC 6152.
    pub eight_bit_mime: bool,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 3207.
    pub starttls: bool,
    /// RFC 2034.
    pub enhanced_status_codes: bool,
}

impl Extensions {
    pub fn parse(ehlo: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in ehlo.text.split('\n').skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else { continue };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                // A SIZE with a bad parameter is offered without a limit we
                // can check; the server will still refuse what is too big.
                "SIZE" => ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "STARTTLS" => ext.starttls = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                _ => {}
            }
        }
        ext
    }

    /// Whether a message of `size` octets is over the advertised limit
    /// (RFC 1870 6.1: the client should not send it).
    pub fn too_big(&self, size: usize) -> bool {
        matches!(self.size, Some(limit) if limit > 0 && size as u64 > limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_rfc5321_4_1_1_1() {
        let r = Reply::plain(
            250,
            "mx.test greets you\npipelining\nSIZE 10240000\n8BITMIME\nSTARTTLS\nSMTPUTF8\nENHANCEDSTATUSCODES\nX-FOO bar",
        );
        let e = Extensions::parse(&r);
        assert!(e.pipelining && e.eight_bit_mime && e.starttls && e.smtputf8 && e.enhanced_status_codes);
        assert_eq!(e.size, Some(10240000));
        assert!(e.too_big(10240001) && !e.too_big(10240000));
    }

    #[test]
    fn the_greeting_line_is_not_a_keyword() {
        let e = Extensions::parse(&Reply::plain(250, "STARTTLS"));
        assert!(!e.starttls);
    }

    #[test]
    fn size_zero_or_garbage_means_no_limit_rfc1870() {
        assert!(!Extensions::parse(&Reply::plain(250, "x\nSIZE 0")).too_big(usize::MAX));
        assert!(!Extensions::parse(&Reply::plain(250, "x\nSIZE lots")).too_big(usize::MAX));
    }
}
