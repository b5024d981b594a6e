//! Command-line framing shared by the SMTP and POP3 sessions.
//!
//! By default a line ends at LF and a CR before it is stripped, which
//! POP3 clients and remote SMTP servers' replies get away with. The SMTP
//! server frames commands with [`LineBuffer::crlf_only`]: only CRLF ends a
//! command there (RFC 5321 2.3.8), so a bare LF stays inside the line and
//! the session refuses it, the way Postfix's `smtpd_forbid_bare_newline`
//! does. A server that let a bare LF end a command would read a different
//! command stream than one that does not: the desynchronisation that SMTP
//! smuggling (CVE-2023-51764) exploits in DATA.

/// What one call to [`LineBuffer::next_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its CRLF / LF.
    Complete(Vec<u8>),
    /// The line exceeded the limit; its bytes up to the next LF are dropped
    /// so the session can answer once and resynchronise.
    TooLong,
}

/// Buffers input and splits it into lines of at most `max` bytes including
/// the CRLF (RFC 5321 4.5.3.1.4 counts the CRLF in the 512 octets).
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Scanned prefix of `buf` that holds no LF, so rescans stay linear.
    scanned: usize,
    /// Inside an over-long line: drop bytes until the next line end.
    discarding: bool,
    /// Only CRLF ends a line; a bare LF is part of it.
    crlf_only: bool,
}

impl LineBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A buffer where only CRLF ends a line (RFC 5321 2.3.8).
    pub fn crlf_only() -> Self {
        LineBuffer { crlf_only: true, ..Self::default() }
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet returned as lines.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Removes and returns everything buffered (e.g. the start of DATA
    /// content that arrived pipelined behind the command).
    pub fn take_pending(&mut self) -> Vec<u8> {
        self.scanned = 0;
        std::mem::take(&mut self.buf)
    }

    /// Drops buffered input; used after STARTTLS, where anything the client
    /// pipelined before the handshake must be discarded (RFC 3207 4.2).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.scanned = 0;
        self.discarding = false;
    }

    pub fn next_line(&mut self, max: usize) -> Option<Line> {
        loop {
            let lf = self.buf[self.scanned..].iter().position(|&b| b == b'\n');
            match lf {
                Some(rel)
                    if self.crlf_only && (self.scanned + rel == 0 || self.buf[self.scanned + rel - 1] != b'\r') =>
                {
                    // A bare LF: not a line end; the line goes on.
                    self.scanned += rel + 1;
                    if !self.discarding && self.scanned > max {
                        self.buf.drain(..self.scanned);
                        self.scanned = 0;
                        self.discarding = true;
                        return Some(Line::TooLong);
                    }
                    continue;
                }
                Some(rel) => {
                    let end = self.scanned + rel;
                    let rest = self.buf.split_off(end + 1);
                    let mut line = std::mem::replace(&mut self.buf, rest);
                    self.scanned = 0;
                    if self.discarding {
                        self.discarding = false;
                        continue;
                    }
                    if line.len() > max {
                        return Some(Line::TooLong);
                    }
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Some(Line::Complete(line));
                }
                None => {
                    if self.discarding {
                        self.drop_buffered();
                        return None;
                    }
                    if self.buf.len() > max {
                        self.drop_buffered();
                        self.discarding = true;
                        return Some(Line::TooLong);
                    }
                    self.scanned = self.buf.len();
                    return None;
                }
            }
        }
    }

    /// Drops the buffered part of a line being discarded, except a final
    /// CR, which may be the first half of the CRLF that ends it.
    fn drop_buffered(&mut self) {
        let keep_cr = self.crlf_only && self.buf.last() == Some(&b'\r');
        self.buf.clear();
        if keep_cr {
            self.buf.push(b'\r');
        }
        self.scanned = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_crlf_and_lf() {
        let mut b = LineBuffer::new();
        b.extend(b"NOOP\r\nQUIT\nHE");
        assert_eq!(b.next_line(512), Some(Line::Complete(b"NOOP".to_vec())));
        assert_eq!(b.next_line(512), Some(Line::Complete(b"QUIT".to_vec())));
        assert_eq!(b.next_line(512), None);
        b.extend(b"LP\r\n");
        assert_eq!(b.next_line(512), Some(Line::Complete(b"HELP".to_vec())));
    }

    #[test]
    fn limit_counts_crlf_rfc5321_4_5_3_1_4() {
        let mut b = LineBuffer::new();
        let mut ok = vec![b'a'; 510];
        ok.extend_from_slice(b"\r\n");
        b.extend(&ok);
        assert!(matches!(b.next_line(512), Some(Line::Complete(l)) if l.len() == 510));
        let mut long = vec![b'a'; 511];
        long.extend_from_slice(b"\r\n");
        b.extend(&long);
        assert_eq!(b.next_line(512), Some(Line::TooLong));
    }

    #[test]
    fn crlf_only_keeps_a_bare_lf_inside_the_line_rfc5321_2_3_8() {
        let mut b = LineBuffer::crlf_only();
        b.extend(b"NOOP\nQUIT\r\n\nRSET\r\nHE");
        assert_eq!(b.next_line(512), Some(Line::Complete(b"NOOP\nQUIT".to_vec())));
        assert_eq!(b.next_line(512), Some(Line::Complete(b"\nRSET".to_vec())));
        assert_eq!(b.next_line(512), None);
        b.extend(b"LO x\n");
        assert_eq!(b.next_line(512), None, "a bare LF does not end a command");
        b.extend(b"\r\n");
        assert_eq!(b.next_line(512), Some(Line::Complete(b"HELO x\n".to_vec())));
    }

    #[test]
    fn crlf_only_limit_still_holds_with_bare_lfs() {
        let mut b = LineBuffer::crlf_only();
        b.extend(&b"x\n".repeat(400));
        assert_eq!(b.next_line(512), Some(Line::TooLong));
        b.extend(b"tail\r\nNOOP\r\n");
        assert_eq!(b.next_line(512), Some(Line::Complete(b"NOOP".to_vec())));
    }

    #[test]
    fn overlong_without_newline_is_reported_once_then_resyncs() {
        let mut b = LineBuffer::new();
        b.extend(&[b'x'; 600]);
        assert_eq!(b.next_line(512), Some(Line::TooLong));
        b.extend(&[b'x'; 600]);
        assert_eq!(b.next_line(512), None);
        b.extend(b"tail\r\nNOOP\r\n");
        assert_eq!(b.next_line(512), Some(Line::Complete(b"NOOP".to_vec())));
    }
}
