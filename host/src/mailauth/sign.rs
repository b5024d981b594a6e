//! Outbound DKIM signatures (RFC 6376), added to mail from authenticated
//! users and to our delivery reports once the content is final: after the
//! trace and plugin headers, before the store write, so nothing we add
//! later (Return-Path on read) is covered.

use super::keys::{ActiveKey, Key, Keys};
use mail_auth::common::crypto::{Algorithm, Sha256, SigningKey};
use mail_auth::common::headers::{HeaderWriter, Writable};
use mail_auth::dkim::{Canonicalization, DkimSigner};

/// The fields signed when present. Each present one is listed once more
/// than it occurs and each absent one once ("oversigning", RFC 6376 8.15
/// and 5.4.2): nobody on the way can add a second From or Subject, or one
/// the author left out, without breaking the signature. Trace fields
/// (Received, Return-Path) are not signed: relays add those.
const SIGNED: &[&str] = &[
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Sender",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// The `h=` list for a message whose header section is `headers`.
fn signed_fields(headers: &[u8]) -> Vec<String> {
    let present: Vec<&[u8]> = field_names(headers).collect();
    let mut out = Vec::new();
    for name in SIGNED {
        let count = present.iter().filter(|n| n.eq_ignore_ascii_case(name.as_bytes())).count();
        // mail-auth signs every instance of a listed name once and lists
        // each entry it found no instance for: a name given twice yields
        // all instances plus one empty one.
        out.push(name.to_string());
        if count > 0 {
            out.push(name.to_string());
        }
    }
    out
}

/// Field names of the header section, in order.
fn field_names(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message
        .split(|&b| b == b'\n')
        .take_while(|line| !line.is_empty() && *line != b"\r")
        .filter(|line| !line.starts_with(b" ") && !line.starts_with(b"\t"))
        .filter_map(|line| line.iter().position(|&b| b == b':').map(|i| line[..i].trim_ascii()))
}

/// The domain of the first address in the From field (RFC 5322 3.6.2).
pub fn from_domain(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::new().parse_headers(message)?;
    let addr = parsed.from()?.first()?.address()?;
    let (_, domain) = addr.rsplit_once('@')?;
    Some(domain.trim_end_matches('.').to_ascii_lowercase())
}

/// The shared key, lent to one signing (mail-auth's signer owns its key).
struct Lent<'a>(&'a Key);

impl SigningKey for Lent<'_> {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        match self.0 {
            Key::Ed25519(k) => k.sign(input),
            Key::Rsa(k) => k.sign(input),
        }
    }

    fn algorithm(&self) -> Algorithm {
        match self.0 {
            Key::Ed25519(k) => k.algorithm(),
            Key::Rsa(k) => k.algorithm(),
        }
    }
}

/// The `DKIM-Signature:` field (with its CRLF) for `message` under `key`,
/// or an error text for the log.
pub fn signature(key: &ActiveKey, message: &[u8]) -> Result<String, String> {
    DkimSigner::from_key(Lent(&key.key))
        .domain(&key.domain)
        .selector(&key.selector)
        .headers(signed_fields(message))
        // relaxed/relaxed survives the whitespace changes relays make.
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
        .sign(message)
        .map(|s| unfold_last(s.to_header()))
        .map_err(|e| e.to_string())
}

/// mail-auth folds b= every 76 columns, and when the value ends on the
/// fold the field ends "\r\n\t;". RFC 6376 3.7 deletes the whitespace
/// around b= when verifying, but dkimpy keeps it and fails; without the
/// fold both agree (the signed form has no whitespace there).
fn unfold_last(header: String) -> String {
    match header.strip_suffix("\r\n\t;\r\n") {
        Some(head) => format!("{head};\r\n"),
        None => header,
    }
}

/// Prepends a signature by `domain`'s active key, if it has one. Returns
/// whether it signed; a failure is logged and the message goes unsigned.
/// 8-bit content is made 7-bit first ([`seven_bit_before_signing`]).
pub fn sign_as(keys: &Keys, domain: &str, message: &mut Vec<u8>, log_id: &str) -> bool {
    let Some(key) = keys.active(domain) else { return false };
    seven_bit_before_signing(message, log_id);
    match signature(&key, message) {
        Ok(header) => {
            message.splice(0..0, header.into_bytes());
            tracing::info!(msg = %log_id, domain = %key.domain, selector = %key.selector, "dkim signed");
            true
        }
        Err(e) => {
            tracing::error!(msg = %log_id, domain = %key.domain, error = %e, "dkim signing failed; sent unsigned");
            false
        }
    }
}

/// RFC 6376 5.3: the signer converts 8-bit content to a 7-bit transfer
/// encoding before it signs. A relay must convert it for a server without
/// 8BITMIME (RFC 6152 3), and a conversion after signing changes the body
/// the signature covers; our outbound client bounces signed 8-bit mail
/// rather than break its signature. Each 8-bit MIME part becomes
/// quoted-printable (the outbound client's own conversion); what cannot be
/// converted (8-bit header fields, RFC 6532) is signed as it is and goes
/// to 8BITMIME servers only.
fn seven_bit_before_signing(message: &mut Vec<u8>, log_id: &str) {
    use ferrymail_proto::client::seven_bit;
    if !seven_bit::has_eight_bit(message) {
        return;
    }
    match seven_bit::convert(message) {
        Ok(converted) => {
            *message = converted;
            tracing::info!(msg = %log_id, "8-bit content made quoted-printable before dkim signing");
        }
        Err(why) => {
            tracing::info!(msg = %log_id, why = %why, "8-bit content signed as it is; only 8BITMIME servers will take it")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_fields_are_oversigned_and_absent_ones_signed_empty() {
        let h = signed_fields(b"From: a@b\r\nSubject: x\r\nReceived: y\r\n\r\nSubject: body, not a header\r\n");
        let count = |n: &str| h.iter().filter(|x| x.as_str() == n).count();
        assert_eq!(count("From"), 2, "RFC 6376 8.15: one more than present");
        assert_eq!(count("Subject"), 2);
        assert_eq!(count("Cc"), 1, "absent: signed as absent (5.4.2)");
        assert_eq!(count("Received"), 0, "trace fields are not signed");
    }

    #[test]
    fn eight_bit_content_is_made_7bit_before_signing_rfc6376_5_3() {
        let mut m = "From: a@b\r\nSubject: x\r\n\r\ncaf\u{e9}\r\n".as_bytes().to_vec();
        seven_bit_before_signing(&mut m, "t");
        assert!(m.is_ascii() && m.ends_with(b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n"));
        // RFC 6532 header fields cannot be converted: left as they are.
        let before = "Subject: caf\u{e9}\r\n\r\nx\u{e9}\r\n".as_bytes().to_vec();
        let mut h = before.clone();
        seven_bit_before_signing(&mut h, "t");
        assert_eq!(h, before);
    }

    #[test]
    fn from_domain_reads_the_author_not_the_envelope() {
        assert_eq!(from_domain(b"From: \"A\" <a@Mail.Example>\r\nTo: b@c\r\n\r\nx").as_deref(), Some("mail.example"));
        assert_eq!(from_domain(b"To: b@c\r\n\r\nx"), None);
    }
}
