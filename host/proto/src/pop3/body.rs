//! Message content as a multi-line response (RFC 1939 3).
//!
//! Stored mail may use bare LF; the wire needs CRLF, so every line is cut at
//! LF (dropping a CR just before it) and re-terminated with CRLF. A final
//! line without a newline still gets one: otherwise the terminating
//! ".\r\n" would be glued onto it and the client would never see the end.

/// Lines of `content` without their terminators; a trailing newline does
/// not start an extra empty line.
fn lines(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut parts = (!content.is_empty()).then(|| {
        let content = content.strip_suffix(b"\n").unwrap_or(content);
        content.split(|&b| b == b'\n')
    });
    std::iter::from_fn(move || parts.as_mut()?.next()).map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// The size RETR announces and STAT/LIST report for `content`: its octets
/// with CRLF line ends, before byte-stuffing (RFC 1939 11). Stores that keep
/// bare-LF mail use this for [`super::MaildropEntry::size`].
pub fn wire_size(content: &[u8]) -> u64 {
    lines(content).map(|l| l.len() as u64 + 2).sum()
}

/// Appends `content` byte-stuffed and terminated; with `top_lines`, only the
/// header, the blank line and that many body lines (RFC 1939 7, TOP).
pub(super) fn write_multiline(out: &mut Vec<u8>, content: &[u8], top_lines: Option<u32>) {
    let mut in_body = false;
    let mut body_lines: u32 = 0;
    for line in lines(content) {
        if in_body && let Some(max) = top_lines {
            if body_lines >= max {
                break;
            }
            body_lines += 1;
        }
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        in_body |= line.is_empty();
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multiline(content: &[u8], top: Option<u32>) -> String {
        let mut out = Vec::new();
        write_multiline(&mut out, content, top);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn byte_stuffs_leading_dots_rfc1939_3() {
        let got = multiline(b"a\r\n.\r\n..x\r\nb.\r\n", None);
        assert_eq!(got, "a\r\n..\r\n...x\r\nb.\r\n.\r\n");
    }

    #[test]
    fn normalises_bare_lf_and_terminates_last_line_rfc1939_3() {
        assert_eq!(multiline(b"a\nb\r\nc", None), "a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(multiline(b"a\n\n", None), "a\r\n\r\n.\r\n");
        assert_eq!(multiline(b"", None), ".\r\n");
        assert_eq!(multiline(b".", None), "..\r\n.\r\n");
    }

    #[test]
    fn top_sends_header_blank_line_and_n_body_lines_rfc1939_7() {
        let msg = b"From: a\nSubject: s\n\none\n.two\n\nthree\n";
        assert_eq!(multiline(msg, Some(0)), "From: a\r\nSubject: s\r\n\r\n.\r\n");
        assert_eq!(multiline(msg, Some(2)), "From: a\r\nSubject: s\r\n\r\none\r\n..two\r\n.\r\n");
        assert_eq!(multiline(msg, Some(3)), "From: a\r\nSubject: s\r\n\r\none\r\n..two\r\n\r\n.\r\n");
        assert_eq!(multiline(msg, Some(99)), multiline(msg, None));
        // No body at all: the whole header is sent.
        assert_eq!(multiline(b"A: b\r\n", Some(0)), "A: b\r\n.\r\n");
    }

    #[test]
    fn wire_size_counts_crlf_line_ends_before_stuffing_rfc1939_11() {
        assert_eq!(wire_size(b"a\nb\r\n.c"), 3 + 3 + 4);
        assert_eq!(wire_size(b""), 0);
        assert_eq!(wire_size(b"\n"), 2);
        let content = b"x: y\n\n.dot\nlast";
        let sent = multiline(content, None);
        let unstuffed = sent.replace("\r\n..", "\r\n.").len() - ".\r\n".len();
        assert_eq!(wire_size(content), unstuffed as u64);
    }
}
