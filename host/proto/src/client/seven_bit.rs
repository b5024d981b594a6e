//! Downgrading 8-bit content for a server that does not offer 8BITMIME
//! (RFC 6152 3: the client must convert the message to 7 bits, or return
//! it to the sender).
//!
//! Each MIME leaf whose body holds 8-bit octets is re-encoded as
//! quoted-printable (RFC 2045 6.7) and its Content-Transfer-Encoding
//! changed; multiparts and `message/rfc822` parts are converted part by
//! part, the way Sendmail and Postfix do it. What cannot be converted
//! without changing its meaning is refused: 8-bit octets in a header (that
//! needs RFC 2047 rewriting of structured fields), in a multipart preamble
//! or epilogue, or in a body that claims to be base64 or quoted-printable
//! already. A message without MIME headers becomes `text/plain` with its
//! charset UTF-8 when the octets are UTF-8, `unknown-8bit` (RFC 1428) else.

use std::fmt;

/// Why a message cannot go to a 7-bit server as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotConvertible(pub &'static str);

impl fmt::Display for NotConvertible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Nested multiparts deeper than this are refused rather than recursed into.
const MAX_DEPTH: usize = 32;
/// RFC 2045 6.7 (5): encoded lines at most 76 characters.
const QP_LINE: usize = 76;

pub fn has_eight_bit(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| b >= 0x80)
}

/// Whether the header section carries a `DKIM-Signature` field. Such a
/// message is not converted: the new transfer encoding changes the body
/// the signature covers (RFC 6376 5.3 leaves the conversion to the
/// signer, before it signs), and the receiver would see `dkim=fail`.
pub fn is_dkim_signed(message: &[u8]) -> bool {
    let (header, _) = split(message);
    fields(header).into_iter().any(|(s, e)| field_name(&header[s..e]).eq_ignore_ascii_case(b"dkim-signature"))
}

/// The message with every 8-bit body part made quoted-printable.
pub fn convert(message: &[u8]) -> Result<Vec<u8>, NotConvertible> {
    if !has_eight_bit(message) {
        return Ok(message.to_vec());
    }
    let (header, body) = split(message);
    let mut out = Vec::with_capacity(message.len() + message.len() / 8);
    if field(header, b"mime-version").is_none() && field(header, b"content-type").is_none() {
        // Plain RFC 5322 text with 8-bit octets: label it, then encode it.
        if has_eight_bit(header) {
            return Err(NotConvertible("8-bit octets in the message header"));
        }
        let charset = if std::str::from_utf8(body).is_ok() { "utf-8" } else { "unknown-8bit" };
        out.extend_from_slice(&without_field(header, b"content-transfer-encoding"));
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
        out.extend_from_slice(format!("Content-Type: text/plain; charset={charset}\r\n").as_bytes());
        out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        quoted_printable(body, &mut out);
        return Ok(out);
    }
    entity(message, false, 0, &mut out)?;
    Ok(out)
}

/// Converts one MIME entity (header, blank line, body) into `out`.
/// `digest`: inside multipart/digest, where the default type is message/rfc822.
fn entity(bytes: &[u8], digest: bool, depth: usize, out: &mut Vec<u8>) -> Result<(), NotConvertible> {
    if !has_eight_bit(bytes) {
        out.extend_from_slice(bytes);
        return Ok(());
    }
    if depth > MAX_DEPTH {
        return Err(NotConvertible("MIME structure nested too deeply"));
    }
    let (header, body) = split(bytes);
    if has_eight_bit(header) {
        return Err(NotConvertible("8-bit octets in a header"));
    }
    let content_type = field(header, b"content-type").unwrap_or_default();
    let (mime_type, params) = content_type.split_once(';').unwrap_or((content_type.as_str(), ""));
    let mime_type = mime_type.trim().to_ascii_lowercase();
    let mime_type = if mime_type.is_empty() && digest { "message/rfc822".to_string() } else { mime_type };
    let cte = field(header, b"content-transfer-encoding").unwrap_or_default().trim().to_ascii_lowercase();
    if let Some(subtype) = mime_type.strip_prefix("multipart/") {
        let boundary = param(params, "boundary").ok_or(NotConvertible("multipart without a boundary"))?;
        out.extend_from_slice(&header_with_cte(header, None));
        return multipart(body, boundary.as_bytes(), subtype == "digest", depth, out);
    }
    if mime_type == "message/rfc822" || mime_type == "message/global" {
        // RFC 2046 5.2.1: never encoded itself; its own parts are.
        out.extend_from_slice(&header_with_cte(header, Some("7bit")));
        return entity(body, false, depth + 1, out);
    }
    match cte.as_str() {
        "" | "7bit" | "8bit" => {}
        "binary" => return Err(NotConvertible("binary content needs BINARYMIME")),
        _ => return Err(NotConvertible("8-bit octets in an encoded body part")),
    }
    out.extend_from_slice(&header_with_cte(header, Some("quoted-printable")));
    quoted_printable(body, out);
    Ok(())
}

fn multipart(
    body: &[u8],
    boundary: &[u8],
    digest: bool,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), NotConvertible> {
    // Delimiter lines are "--boundary" (RFC 2046 5.1.1); a part runs from
    // the line after one delimiter to the CRLF before the next.
    let mut delimiters = Vec::new();
    let mut pos = 0;
    for line in body.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if let Some(rest) = text.strip_prefix(b"--").and_then(|t| t.strip_prefix(boundary)) {
            let closing = rest.starts_with(b"--");
            if rest.trim_ascii().is_empty() || closing {
                delimiters.push((pos, pos + line.len(), closing));
                if closing {
                    break;
                }
            }
        }
        pos += line.len();
    }
    let Some(&(first, _, _)) = delimiters.first() else {
        return Err(NotConvertible("multipart without a delimiter"));
    };
    let (last_start, last_end, _) = *delimiters.last().unwrap_or(&(first, first, true));
    if has_eight_bit(&body[..first]) || has_eight_bit(&body[last_end..]) {
        return Err(NotConvertible("8-bit octets in a multipart preamble or epilogue"));
    }
    out.extend_from_slice(&body[..first]);
    for pair in delimiters.windows(2) {
        let ((start, line_end, _), (next, _, _)) = (pair[0], pair[1]);
        out.extend_from_slice(&body[start..line_end]);
        // The line break before the next delimiter belongs to it (RFC 2046
        // 5.1.1); converting it as the part's last line break keeps it.
        entity(&body[line_end..next], digest, depth + 1, out)?;
    }
    out.extend_from_slice(&body[last_start..]);
    Ok(())
}

/// Header and body of an entity; the blank line stays with the header.
fn split(bytes: &[u8]) -> (&[u8], &[u8]) {
    let mut pos = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        pos += line.len();
        if line == b"\r\n" || line == b"\n" {
            return (&bytes[..pos], &bytes[pos..]);
        }
    }
    (bytes, &[])
}

/// Logical (unfolded) header lines, each with its raw extent.
fn fields(header: &[u8]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut pos = 0;
    for line in header.split_inclusive(|&b| b == b'\n') {
        let start = pos;
        pos += line.len();
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        match (line.first(), out.last_mut()) {
            (Some(b' ' | b'\t'), Some(last)) => last.1 = pos,
            _ => out.push((start, pos)),
        }
    }
    out
}

fn field_name(raw: &[u8]) -> &[u8] {
    let end = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
    raw[..end].trim_ascii()
}

/// The unfolded value of the first field called `name` (lowercase).
fn field(header: &[u8], name: &[u8]) -> Option<String> {
    fields(header).into_iter().map(|(s, e)| &header[s..e]).find(|raw| field_name(raw).eq_ignore_ascii_case(name)).map(
        |raw| {
            let value = &raw[raw.iter().position(|&b| b == b':').map_or(raw.len(), |i| i + 1)..];
            String::from_utf8_lossy(value).split_ascii_whitespace().collect::<Vec<_>>().join(" ")
        },
    )
}

fn without_field(header: &[u8], name: &[u8]) -> Vec<u8> {
    let (kept, _) = split(header);
    let mut out = Vec::with_capacity(kept.len());
    let spans = fields(header);
    for &(s, e) in &spans {
        if !field_name(&header[s..e]).eq_ignore_ascii_case(name) {
            out.extend_from_slice(&header[s..e]);
        }
    }
    out
}

/// The header without its Content-Transfer-Encoding, plus the new one
/// (if any), plus the blank line.
fn header_with_cte(header: &[u8], cte: Option<&str>) -> Vec<u8> {
    let mut out = without_field(header, b"content-transfer-encoding");
    if let Some(cte) = cte {
        out.extend_from_slice(format!("Content-Transfer-Encoding: {cte}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A Content-Type parameter value, unquoted (RFC 2045 5.1).
fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches('"')).filter(|v| !v.is_empty())
    })
}

/// RFC 2045 6.7 quoted-printable: line breaks stay hard breaks (CRLF),
/// lines are cut with soft breaks at 76 characters, trailing white space
/// and every octet outside printable ASCII are `=XX`.
pub fn quoted_printable(body: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut lines = body.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        if last && line.is_empty() {
            break;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut width = 0;
        for (i, &b) in line.iter().enumerate() {
            let at_end = i + 1 == line.len();
            let literal = (b == b' ' || b == b'\t') && !at_end || (33..=126).contains(&b) && b != b'=';
            let need = if literal { 1 } else { 3 };
            // Room for the "=" of a soft break after this token.
            if width + need > QP_LINE - 1 {
                out.extend_from_slice(b"=\r\n");
                width = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            width += need;
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qp(s: &[u8]) -> String {
        let mut out = Vec::new();
        quoted_printable(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quoted_printable_rfc2045_6_7() {
        assert_eq!(qp("caf\u{e9} = ok\r\n".as_bytes()), "caf=C3=A9 =3D ok\r\n");
        assert_eq!(qp(b"trailing \r\ntab\t\r\n"), "trailing=20\r\ntab=09\r\n");
        let long = qp(&[b'a'; 200]);
        assert!(long.lines().all(|l| l.len() <= QP_LINE), "{long}");
        assert_eq!(long.replace("=\r\n", "").trim_end(), "a".repeat(200));
        let eight = qp(&[0xe9; 100]);
        assert!(eight.lines().all(|l| l.len() <= QP_LINE && !l.ends_with("=E")), "{eight}");
    }

    #[test]
    fn seven_bit_content_is_untouched() {
        let m = b"Subject: x\r\n\r\nplain\r\n";
        assert_eq!(convert(m).unwrap(), m);
    }

    #[test]
    fn a_plain_8bit_message_gets_mime_labels_rfc6152_3() {
        let out = String::from_utf8(convert("Subject: x\r\n\r\ncaf\u{e9}\r\n".as_bytes()).unwrap()).unwrap();
        assert_eq!(
            out,
            "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n"
        );
        let out = String::from_utf8(convert(b"Subject: x\r\n\r\n\xe9t\xe9\r\n").unwrap()).unwrap();
        assert!(out.contains("charset=unknown-8bit") && out.ends_with("\r\n\r\n=E9t=E9\r\n"), "{out}");
    }

    #[test]
    fn an_8bit_leaf_becomes_quoted_printable() {
        let m = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\u{fc}ber\r\n";
        let out = String::from_utf8(convert(m.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            out,
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=C3=BCber\r\n"
        );
    }

    #[test]
    fn multipart_parts_are_converted_one_by_one() {
        let m = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nascii\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nna\u{ef}ve\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: text/plain\r\n\r\n\u{e9}\r\n--b1--\r\nepilogue\r\n";
        let out = String::from_utf8(convert(m.as_bytes()).unwrap()).unwrap();
        assert!(!has_eight_bit(out.as_bytes()), "{out}");
        assert!(out.contains("--b1\r\nContent-Type: text/plain\r\n\r\nascii\r\n--b1\r\n"), "{out}");
        assert!(out.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\nna=C3=AFve\r\n--b1\r\n"), "{out}");
        assert!(out.contains("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\nSubject: inner\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9\r\n--b1--\r\nepilogue\r\n"), "{out}");
        assert!(out.starts_with(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n"
        ));
    }

    #[test]
    fn what_cannot_be_converted_is_refused_rfc6152_3() {
        for m in [
            "Subject: caf\u{e9}\r\n\r\nbody \u{e9}\r\n",
            "MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\u{e9}\r\n",
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n\u{e9}\r\n",
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\u{e9}\r\n--b\r\n\r\nx\r\n--b--\r\n",
            "MIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\n\u{e9}\r\n",
        ] {
            assert!(convert(m.as_bytes()).is_err(), "{m}");
        }
    }

    #[test]
    fn a_signature_is_found_in_the_header_only_rfc6376_5_3() {
        assert!(is_dkim_signed(b"Received: x\r\nDKIM-Signature: v=1; d=a\r\n\tb=x\r\nFrom: a@b\r\n\r\n\xe9\r\n"));
        assert!(is_dkim_signed(b"dkim-signature:v=1\r\n\r\n"));
        assert!(!is_dkim_signed(b"Subject: x\r\n\r\nDKIM-Signature: in the body\r\n"));
        assert!(!is_dkim_signed(b"X-DKIM-Signature-Note: x\r\n\r\n"));
    }

    #[test]
    fn hostile_structures_do_not_panic() {
        let mut deep = String::from("MIME-Version: 1.0\r\n");
        for i in 0..100 {
            deep.push_str(&format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"));
        }
        deep.push_str("\r\n\u{e9}\r\n");
        for i in (0..100).rev() {
            deep.push_str(&format!("--b{i}--\r\n"));
        }
        assert_eq!(convert(deep.as_bytes()), Err(NotConvertible("MIME structure nested too deeply")));
        for m in [
            &b"MIME-Version: 1.0\r\n\xe9"[..],
            b"\xe9",
            b"Content-Type: multipart/x; boundary=\r\n\r\n\xe9",
            b"\n\n\xe9\n",
        ] {
            let _ = convert(m);
        }
    }
}
