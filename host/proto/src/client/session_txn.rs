//! The transaction half of [`ClientSession`]: MAIL, RCPT, DATA, pipelined
//! (RFC 2920) or in lock-step.

use super::{ClientEvent, ClientSession, Expect, State};
use crate::client::seven_bit;
use crate::client::transaction::{RcptResult, Replies, Transaction, classify, dot_stuff};
use ferrymail_policy::Reply;
use std::collections::VecDeque;

impl ClientSession {
    /// Starts a transaction (only on `Ready`) for `content`, the message
    /// as stored. Refusals decided before anything is sent (SIZE,
    /// SMTPUTF8, 8-bit content a 7-bit server cannot take) come back as
    /// `Done` at once.
    pub fn begin(&mut self, t: &Transaction, content: &[u8]) {
        let n = t.rcpts.len();
        if !matches!(self.state, State::Ready) {
            return self.refuse_all(n, Reply::new(451, "4.3.0", "SMTP session not ready for a transaction"));
        }
        if t.bad_address().is_some() {
            return self.refuse_all(n, Reply::new(501, "5.1.3", "Bad address syntax"));
        }
        let eight_bit = seven_bit::has_eight_bit(content);
        let converted;
        let content = if eight_bit && !self.ext.eight_bit_mime {
            // RFC 6152 3: a 7-bit server gets the message converted, or the
            // sender gets it back. A signed message goes back: converted,
            // its signature fails at the receiver (and DMARC with it), so
            // it would be refused or junked there without the sender
            // learning why. Our own signer converts before it signs.
            if seven_bit::is_dkim_signed(content) {
                let text = "The server does not accept 8-bit mail (no 8BITMIME) and the message is DKIM-signed: \
                            converting it to 7 bits would break the signature";
                return self.refuse_all(n, Reply::new(554, "5.6.3", text));
            }
            match seven_bit::convert(content) {
                Ok(c) => {
                    converted = c;
                    &converted[..]
                }
                Err(why) => {
                    let text =
                        format!("The server does not accept 8-bit mail (no 8BITMIME) and {why} cannot be converted");
                    return self.refuse_all(n, Reply::new(554, "5.6.3", text));
                }
            }
        } else {
            content
        };
        if self.ext.too_big(content.len()) {
            // RFC 1870 6.1: do not send what the server said it will refuse.
            let limit = self.ext.size.unwrap_or(0);
            let text = format!("Message size {} exceeds the server's limit of {limit}", content.len());
            return self.refuse_all(n, Reply::new(552, "5.3.4", text));
        }
        let utf8 = t.needs_smtputf8();
        if utf8 && !self.ext.smtputf8 {
            // RFC 6531 3.2: without SMTPUTF8 at the server, such mail cannot go.
            return self
                .refuse_all(n, Reply::new(553, "5.6.7", "Non-ASCII address and the server does not offer SMTPUTF8"));
        }
        if n == 0 {
            return self.events.push_back(ClientEvent::Done(Vec::new()));
        }
        let mut mail = format!("MAIL FROM:<{}>", t.from);
        if self.ext.size.is_some() {
            mail.push_str(&format!(" SIZE={}", content.len()));
        }
        if eight_bit && self.ext.eight_bit_mime {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        self.content = dot_stuff(content);
        let mut cmds: VecDeque<(Expect, Vec<u8>)> = VecDeque::with_capacity(n + 3);
        if std::mem::take(&mut self.needs_rset) {
            // RFC 5321 4.1.1.5: clear what a failed transaction left behind.
            cmds.push_back((Expect::Rset, b"RSET".to_vec()));
        }
        cmds.push_back((Expect::Mail, mail.into_bytes()));
        cmds.extend(t.rcpts.iter().map(|r| (Expect::Rcpt, format!("RCPT TO:<{r}>").into_bytes())));
        cmds.push_back((Expect::Data, b"DATA".to_vec()));
        self.replies = Replies::default();
        let mut expect = VecDeque::new();
        if self.ext.pipelining {
            // RFC 2920 3.1: MAIL, every RCPT and DATA in one group.
            for (kind, line) in cmds.drain(..) {
                self.send(&line);
                expect.push_back(kind);
            }
        } else if let Some((kind, line)) = cmds.pop_front() {
            self.send(&line);
            expect.push_back(kind);
        }
        self.state = State::Txn { n, expect, unsent: cmds };
    }

    fn refuse_all(&mut self, n: usize, reply: Reply) {
        let result = RcptResult { outcome: classify(&reply), reply, from_server: false };
        self.events.push_back(ClientEvent::Done(vec![result; n]));
    }

    pub(super) fn on_txn_reply(
        &mut self,
        reply: Reply,
        n: usize,
        mut expect: VecDeque<Expect>,
        mut unsent: VecDeque<(Expect, Vec<u8>)>,
    ) {
        let Some(kind) = expect.pop_front() else {
            let prev = State::Txn { n, expect, unsent };
            return self.fail_from(
                prev,
                Reply::new(451, "4.5.0", format!("unexpected reply from server: {reply}")),
                true,
                false,
            );
        };
        match kind {
            Expect::Rset => {}
            Expect::Mail => self.replies.mail = Some(reply),
            Expect::Rcpt => self.replies.rcpts.push(reply),
            Expect::Data => self.replies.data = Some(reply),
        }
        if !expect.is_empty() {
            self.state = State::Txn { n, expect, unsent };
            return;
        }
        if kind == Expect::Data {
            let go_on = self.replies.data.as_ref().is_some_and(|d| d.code == 354);
            if go_on && self.replies.mail_ok() && self.replies.accepted() > 0 {
                self.state = State::Content { n };
            } else if go_on {
                // RFC 2920 3.1: a 354 with no valid recipient still needs
                // the content; an empty one ends the transaction.
                self.send(b".");
                self.state = State::Discard { n };
            } else {
                self.finish(n);
            }
            return;
        }
        // Lock-step: stop early when the rest cannot succeed.
        let stop = (kind == Expect::Mail && !self.replies.mail_ok())
            || (unsent.front().is_some_and(|(k, _)| *k == Expect::Data) && self.replies.accepted() == 0);
        match unsent.pop_front() {
            Some((next, line)) if !stop => {
                self.send(&line);
                expect.push_back(next);
                self.state = State::Txn { n, expect, unsent };
            }
            _ => self.finish(n),
        }
    }
}
