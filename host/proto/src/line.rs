//! Command-line framing shared by the SMTP and POP3 sessions.
//!
//! Commands end at LF; a CR before it is stripped. Accepting a bare LF as a
//! command terminator is safe (unlike in DATA, where it is the smuggling
//! vector) and matches what deployed servers do for broken clients.

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
    /// Inside an over-long line: drop bytes until the next LF.
    discarding: bool,
}

impl LineBuffer {
    pub fn new() -> Self {
        Self::default()
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
                        self.buf.clear();
                        self.scanned = 0;
                        return None;
                    }
                    if self.buf.len() > max {
                        self.buf.clear();
                        self.scanned = 0;
                        self.discarding = true;
                        return Some(Line::TooLong);
                    }
                    self.scanned = self.buf.len();
                    return None;
                }
            }
        }
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
