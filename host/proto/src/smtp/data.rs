//! DATA content reception: end-of-data detection, dot-unstuffing, limits.
//!
//! The content ends only at `CRLF . CRLF` (RFC 5321 4.1.1.4); the CRLF that
//! precedes the dot belongs to the message. A bare LF or bare CR is never a
//! line end here, so `\n.\n`, `\r.\r`, `\n.\r\n` and friends cannot end the
//! message early; that is the SMTP smuggling attack (CVE-2023-51764), which
//! works when two servers disagree about where a message ends. Content with a
//! bare CR or LF is rejected outright (RFC 5321 2.3.8: "CR and LF MUST only
//! occur together as CRLF"), so no downstream server ever sees one from us.
//!
//! The receiver is resumable: it consumes whatever bytes arrived and keeps
//! its state between calls.

/// Why content was refused; decided once the end of data is seen so the
/// client gets a reply in step with its pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataError {
    /// More than the SIZE limit (RFC 1870 6: 552).
    TooBig,
    /// A text line longer than the limit (RFC 5321 4.5.3.1.6).
    LineTooLong,
    /// A CR or LF not part of a CRLF pair (RFC 5321 2.3.8).
    BareLineEnding,
    /// A NUL octet (RFC 5321 2.3.8 / RFC 6152: not allowed without BINARYMIME).
    Nul,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// After CRLF (or at the start): a dot here is special.
    LineStart,
    /// `CRLF .` seen.
    Dot,
    /// `CRLF . CR` seen: one LF away from the end.
    DotCr,
    InLine,
    /// CR seen inside a line.
    Cr,
}

#[derive(Debug)]
pub struct DataReceiver {
    state: State,
    content: Vec<u8>,
    max_size: usize,
    max_line: usize,
    line_len: usize,
    error: Option<DataError>,
}

/// What [`DataReceiver::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum DataProgress {
    /// The end is not in sight yet; all input was consumed.
    More,
    /// The end of data was reached after `consumed` input bytes; anything
    /// after them is the client's next (pipelined) command.
    Done { consumed: usize },
}

impl DataReceiver {
    /// `max_line` counts the CRLF, as RFC 5321 4.5.3.1.6 does.
    pub fn new(max_size: usize, max_line: usize) -> Self {
        DataReceiver { state: State::LineStart, content: Vec::new(), max_size, max_line, line_len: 0, error: None }
    }

    pub fn feed(&mut self, input: &[u8]) -> DataProgress {
        let mut i = 0;
        while i < input.len() {
            // Fast path: copy plain text up to the next CR/LF/NUL in one go.
            if self.state == State::InLine {
                let run =
                    input[i..].iter().position(|&b| b == b'\r' || b == b'\n' || b == 0).unwrap_or(input.len() - i);
                if run > 0 {
                    self.push_text(&input[i..i + run]);
                    i += run;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            if self.step(b) {
                return DataProgress::Done { consumed: i };
            }
        }
        DataProgress::More
    }

    /// The unstuffed content (with its final CRLF) or why it was refused.
    pub fn finish(self) -> Result<Vec<u8>, DataError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.content),
        }
    }

    /// Bytes received so far, for progress logging.
    pub fn len(&self) -> usize {
        self.content.len()
    }

    pub fn is_empty(&self) -> bool {
        self.content.is_empty()
    }

    /// Returns true at the end of data.
    fn step(&mut self, b: u8) -> bool {
        match self.state {
            State::LineStart => {
                if b == b'.' {
                    self.state = State::Dot;
                    self.line_len = 1;
                } else {
                    self.state = State::InLine;
                    self.line_len = 0;
                    self.content_byte(b);
                }
            }
            State::Dot => {
                if b == b'\r' {
                    self.state = State::DotCr;
                } else {
                    // Dot-unstuffing (RFC 5321 4.5.2): the leading dot is dropped.
                    self.state = State::InLine;
                    self.content_byte(b);
                }
            }
            State::DotCr => {
                if b == b'\n' {
                    return true;
                }
                // ".\r" then something else: a line that began with a
                // stuffed dot and holds a bare CR.
                self.fail(DataError::BareLineEnding);
                self.state = State::InLine;
                self.content_byte(b);
            }
            State::InLine => self.content_byte(b),
            State::Cr => {
                if b == b'\n' {
                    self.line_len += 1;
                    self.check_line();
                    self.push_raw(b"\r\n");
                    self.state = State::LineStart;
                    self.line_len = 0;
                } else {
                    self.fail(DataError::BareLineEnding);
                    self.state = State::InLine;
                    self.content_byte(b);
                }
            }
        }
        false
    }

    fn content_byte(&mut self, b: u8) {
        match b {
            b'\r' => {
                self.line_len += 1;
                self.state = State::Cr;
            }
            b'\n' => {
                // Bare LF: content, never a line end for the dot search.
                self.fail(DataError::BareLineEnding);
                self.line_len += 1;
            }
            0 => {
                self.fail(DataError::Nul);
                self.line_len += 1;
            }
            _ => self.push_text(&[b]),
        }
    }

    fn push_text(&mut self, text: &[u8]) {
        self.line_len += text.len();
        self.check_line();
        self.push_raw(text);
    }

    fn check_line(&mut self) {
        if self.line_len > self.max_line {
            self.fail(DataError::LineTooLong);
        }
    }

    fn push_raw(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if self.content.len() + bytes.len() > self.max_size {
            self.fail(DataError::TooBig);
            return;
        }
        self.content.extend_from_slice(bytes);
    }

    fn fail(&mut self, e: DataError) {
        if self.error.is_none() {
            self.error = Some(e);
            // Refused content is not kept: a client streaming gigabytes at a
            // refused transaction costs us no memory.
            self.content = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (DataProgress, Result<Vec<u8>, DataError>) {
        let mut r = DataReceiver::new(1 << 20, 1000);
        let p = r.feed(input);
        (p, r.finish())
    }

    #[test]
    fn ends_at_crlf_dot_crlf_rfc5321_4_1_1_4() {
        let (p, c) = run(b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n");
        assert_eq!(p, DataProgress::Done { consumed: 24 });
        assert_eq!(c.unwrap(), b"Subject: x\r\n\r\nhello\r\n");
    }

    #[test]
    fn empty_message() {
        let (p, c) = run(b".\r\n");
        assert_eq!(p, DataProgress::Done { consumed: 3 });
        assert_eq!(c.unwrap(), b"");
    }

    #[test]
    fn dot_unstuffing_rfc5321_4_5_2() {
        let (_, c) = run(b"..leading\r\n...\r\n.\r\n");
        assert_eq!(c.unwrap(), b".leading\r\n..\r\n");
    }

    #[test]
    fn resumable_across_every_split_point() {
        let msg = b"a\r\n..b\r\n\r\n.\r\n";
        for split in 0..msg.len() {
            let mut r = DataReceiver::new(1 << 20, 1000);
            assert_eq!(r.feed(&msg[..split]), DataProgress::More, "split {split}");
            assert_eq!(r.feed(&msg[split..]), DataProgress::Done { consumed: msg.len() - split });
            assert_eq!(r.finish().unwrap(), b"a\r\n.b\r\n\r\n");
        }
    }

    /// The smuggling variants of CVE-2023-51764: none of them ends the data,
    /// and the content holding them is refused at the real end.
    #[test]
    fn smuggling_variants_never_end_data_rfc5321_2_3_8() {
        for bad in [
            &b"x\n.\nMAIL FROM:<a@b>\r\n"[..],
            b"x\r.\rMAIL FROM:<a@b>\r\n",
            b"x\n.\r\nMAIL FROM:<a@b>\r\n",
            b"x\r\n.\nMAIL FROM:<a@b>\r\n",
            b"x\r\n.\rMAIL FROM:<a@b>\r\n",
            b"x\r.\r\nMAIL FROM:<a@b>\r\n",
        ] {
            let mut r = DataReceiver::new(1 << 20, 1000);
            assert_eq!(r.feed(bad), DataProgress::More, "{bad:?} ended data");
            assert!(matches!(r.feed(b".\r\n"), DataProgress::Done { .. }));
            assert_eq!(r.finish(), Err(DataError::BareLineEnding), "{bad:?}");
        }
    }

    #[test]
    fn bare_lf_rejected() {
        assert_eq!(run(b"a\nb\r\n.\r\n").1, Err(DataError::BareLineEnding));
    }

    #[test]
    fn bare_cr_rejected() {
        assert_eq!(run(b"a\rb\r\n.\r\n").1, Err(DataError::BareLineEnding));
    }

    #[test]
    fn nul_rejected() {
        assert_eq!(run(b"a\0b\r\n.\r\n").1, Err(DataError::Nul));
    }

    #[test]
    fn text_line_limit_counts_crlf_rfc5321_4_5_3_1_6() {
        let mut ok = vec![b'a'; 998];
        ok.extend_from_slice(b"\r\n.\r\n");
        assert!(run(&ok).1.is_ok());
        let mut long = vec![b'a'; 999];
        long.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(run(&long).1, Err(DataError::LineTooLong));
    }

    #[test]
    fn size_limit_rfc1870_6() {
        let mut r = DataReceiver::new(10, 1000);
        assert!(matches!(r.feed(b"0123456789abc\r\n.\r\n"), DataProgress::Done { .. }));
        assert_eq!(r.finish(), Err(DataError::TooBig));
        let mut r = DataReceiver::new(10, 1000);
        assert!(matches!(r.feed(b"01234567\r\n.\r\n"), DataProgress::Done { .. }));
        assert_eq!(r.finish().unwrap(), b"01234567\r\n");
    }
}
