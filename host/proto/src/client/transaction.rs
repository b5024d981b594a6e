//! One mail transaction from the client side: what is sent, and how the
//! server's replies become a per-recipient outcome (RFC 5321 4.2.1, 4.3.2).

use ferrymail_policy::Reply;

/// The envelope of one transaction; the content is handed to `begin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Reverse-path; "" for `<>`.
    pub from: String,
    pub rcpts: Vec<String>,
}

impl Transaction {
    /// Non-ASCII addresses need SMTPUTF8 (RFC 6531 3.4).
    pub fn needs_smtputf8(&self) -> bool {
        !self.from.is_ascii() || self.rcpts.iter().any(|r| !r.is_ascii())
    }

    /// An address we must not put on the wire (it would break the command).
    pub fn bad_address(&self) -> Option<&str> {
        let breaks = |a: &str| a.chars().any(|c| c.is_control() || c == '<' || c == '>');
        if breaks(&self.from) {
            return Some(&self.from);
        }
        self.rcpts.iter().map(String::as_str).find(|a| a.is_empty() || breaks(a))
    }
}

/// What became of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again later.
    Deferred,
    /// Give up: bounce.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptResult {
    pub outcome: Outcome,
    pub reply: Reply,
    /// The reply came from the server (for a DSN's Remote-MTA and
    /// Diagnostic-Code); otherwise ferrymail made it up.
    pub from_server: bool,
}

/// Reply classes (RFC 5321 4.2.1): 2yz done, 4yz transient, 5yz permanent.
/// Anything else where a final answer was due is a protocol violation,
/// treated as transient so the message is not lost.
pub fn classify(reply: &Reply) -> Outcome {
    match reply.code / 100 {
        2 => Outcome::Delivered,
        5 => Outcome::Failed,
        _ => Outcome::Deferred,
    }
}

/// A RCPT reply: as [`classify`], except that 552 is transient. RFC 5321
/// 4.5.3.1.10: servers once used 552 for "too many recipients", and clients
/// SHOULD treat it as temporary.
pub fn classify_rcpt(reply: &Reply) -> Outcome {
    if reply.code == 552 { Outcome::Deferred } else { classify(reply) }
}

/// Collected replies of a transaction in progress.
#[derive(Debug, Default)]
pub struct Replies {
    pub mail: Option<Reply>,
    pub rcpts: Vec<Reply>,
    /// The reply to the DATA command (354 to go on).
    pub data: Option<Reply>,
    /// The reply after the content (end of data).
    pub done: Option<Reply>,
}

impl Replies {
    pub fn mail_ok(&self) -> bool {
        self.mail.as_ref().is_some_and(|r| r.code / 100 == 2)
    }

    pub fn accepted(&self) -> usize {
        self.rcpts.iter().filter(|r| r.code / 100 == 2).count()
    }

    /// Per-recipient results for `n` recipients; whatever was not answered
    /// gets `missing` (connection lost, timeout).
    pub fn results(&self, n: usize, missing: &Reply) -> Vec<RcptResult> {
        let server = |reply: &Reply, outcome| RcptResult { outcome, reply: reply.clone(), from_server: true };
        let ours = || RcptResult { outcome: classify(missing), reply: missing.clone(), from_server: false };
        (0..n)
            .map(|i| match (&self.mail, self.rcpts.get(i)) {
                (None, _) => ours(),
                (Some(m), _) if m.code / 100 != 2 => server(m, classify(m)),
                (Some(_), None) => ours(),
                (Some(_), Some(r)) if r.code / 100 != 2 => server(r, classify_rcpt(r)),
                // Accepted: the outcome is the content's.
                (Some(_), Some(_)) => match (&self.data, &self.done) {
                    (Some(d), _) if d.code != 354 => server(d, classify(d)),
                    (Some(_), Some(done)) => server(done, classify(done)),
                    _ => ours(),
                },
            })
            .collect()
    }
}

/// The content as sent after 354 (what the session hands out on
/// `SendContent`): line ends made CRLF (RFC 5321 2.3.8: no
/// bare CR or LF on the wire), leading dots doubled (4.5.2), and the
/// terminating `.` line.
pub fn dot_stuff(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 64 + 5);
    let mut line_start = true;
    let mut i = 0;
    while i < content.len() {
        let b = content[i];
        if line_start && b == b'.' {
            out.push(b'.');
        }
        match b {
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                // CRLF is one line end, as are a lone CR or LF.
                if b == b'\r' && content.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                line_start = true;
            }
            _ => {
                out.push(b);
                line_start = false;
            }
        }
        i += 1;
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(code: u16) -> Reply {
        Reply::plain(code, "x")
    }

    #[test]
    fn reply_classes_rfc5321_4_2_1() {
        assert_eq!(classify(&r(250)), Outcome::Delivered);
        assert_eq!(classify(&r(451)), Outcome::Deferred);
        assert_eq!(classify(&r(550)), Outcome::Failed);
        assert_eq!(classify(&r(354)), Outcome::Deferred, "not a final answer: never a loss");
    }

    #[test]
    fn rcpt_552_is_transient_rfc5321_4_5_3_1_10() {
        assert_eq!(classify_rcpt(&r(552)), Outcome::Deferred);
        assert_eq!(classify_rcpt(&r(553)), Outcome::Failed);
    }

    #[test]
    fn per_recipient_results() {
        let lost = Reply::new(451, "4.4.2", "lost");
        let replies =
            Replies { mail: Some(r(250)), rcpts: vec![r(250), r(550), r(450)], data: Some(r(354)), done: Some(r(250)) };
        let out: Vec<Outcome> = replies.results(3, &lost).iter().map(|x| x.outcome).collect();
        assert_eq!(out, [Outcome::Delivered, Outcome::Failed, Outcome::Deferred]);
        // MAIL refused: every recipient gets its reply.
        let replies = Replies { mail: Some(r(550)), ..Default::default() };
        assert!(replies.results(2, &lost).iter().all(|x| x.outcome == Outcome::Failed && x.from_server));
        // End-of-data 4xx defers every accepted recipient; DATA refused likewise.
        let replies = Replies { mail: Some(r(250)), rcpts: vec![r(250)], data: Some(r(354)), done: Some(r(452)) };
        assert_eq!(replies.results(1, &lost)[0].outcome, Outcome::Deferred);
        let replies = Replies { mail: Some(r(250)), rcpts: vec![r(250)], data: Some(r(554)), done: None };
        assert_eq!(replies.results(1, &lost)[0].outcome, Outcome::Failed);
        // Lost after the content was sent but before the reply: deferred,
        // at the risk of a duplicate (RFC 1047), never a loss.
        let replies = Replies { mail: Some(r(250)), rcpts: vec![r(250)], data: Some(r(354)), done: None };
        let res = &replies.results(1, &lost)[0];
        assert_eq!((res.outcome, res.from_server), (Outcome::Deferred, false));
    }

    #[test]
    fn dot_stuffing_rfc5321_4_5_2_and_line_ends_2_3_8() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(dot_stuff(b"a\nb\rc"), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
        assert_eq!(dot_stuff(b"x\r\n\r\n.\n"), b"x\r\n\r\n..\r\n.\r\n");
    }

    #[test]
    fn addresses_that_would_break_a_command_are_caught() {
        let t = |from: &str, to: &str| Transaction { from: from.into(), rcpts: vec![to.into()] };
        assert!(t("", "a@b").bad_address().is_none(), "the null sender is fine");
        assert!(t("a@b", "c@d>\r\nRSET").bad_address().is_some());
        assert!(t("a@b", "").bad_address().is_some());
        assert!(t("ü@b", "c@d").needs_smtputf8());
    }
}
