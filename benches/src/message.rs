//! Test messages: RFC 5322 headers and a body of printable lines, dot-stuffed
//! and terminated for the SMTP DATA phase.

/// The body: `size` octets of 78-character lines (CRLF included). A line
/// starting with a dot every few lines exercises the server's unstuffing.
pub fn body(size: usize) -> Vec<u8> {
    let size = size.max(2);
    let mut out = Vec::with_capacity(size);
    let mut n = 0u64;
    while out.len() < size {
        let room = size - out.len();
        // Full 78-octet lines while at least 80 octets remain, so the last
        // line is never shorter than CRLF itself.
        let text_len = if room >= 80 { 76 } else { room - 2 };
        let mut line: Vec<u8> = if n % 16 == 5 {
            b".a line that starts with a dot, stuffed on the wire ".to_vec()
        } else {
            format!("line {n:06} of the ferrymail benchmark message body, ").into_bytes()
        };
        line.resize(text_len, b'x');
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
        n += 1;
    }
    out
}

/// The whole DATA payload for one message: headers, the body dot-stuffed
/// (RFC 5321 4.5.2) and the `.` terminator.
pub fn data_payload(from: &str, to: &str, message_id: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 400);
    out.extend_from_slice(
        format!(
            "From: <{from}>\r\nTo: <{to}>\r\nSubject: ferrymail-load benchmark message\r\n\
             Message-ID: <{message_id}>\r\nDate: Thu, 26 Nov 2026 12:00:00 +0000\r\n\r\n"
        )
        .as_bytes(),
    );
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_exact_size_and_crlf_lines() {
        for size in [2, 10, 100, 2048, 10_000] {
            let b = body(size);
            assert_eq!(b.len(), size);
            assert!(b.ends_with(b"\r\n"));
            assert!(!b.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
        }
    }

    #[test]
    fn payload_is_stuffed_and_terminated() {
        let p = data_payload("a@b", "c@d", "1@x", &body(2048));
        assert!(p.ends_with(b"\r\n.\r\n"));
        assert!(p.windows(4).any(|w| w == b"\n..a"));
    }
}
