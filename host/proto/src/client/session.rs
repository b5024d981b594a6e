//! The client session: greeting, EHLO (HELO fallback), STARTTLS, then mail
//! transactions, pipelined when the server offers PIPELINING (RFC 2920).
//!
//! Driver contract: call `next_event` and act on it; write `take_output`
//! before reading. `NeedInput(phase)`: read with the phase's timeout, then
//! `feed`, or call `connection_lost` on EOF, error or timeout. `StartTls`:
//! handshake, then `tls_established` (or `connection_lost`). `Ready`: call
//! `begin` or `quit`. `SendContent`: write `dot_stuff(content)`, then
//! `content_sent`. `Done`: one result per recipient of the transaction.
//! `HostFailed`: this host cannot take mail now; try the next one.

use super::extensions::Extensions;
use super::reply::ReplyParser;
use super::transaction::{RcptResult, Replies};
use ferrymail_policy::Reply;
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Off,
    /// STARTTLS when offered (RFC 3207; RFC 7435 opportunistic security).
    Opportunistic,
    /// No mail without TLS.
    Require,
}

/// Which RFC 5321 4.5.3.2 timeout applies to the read being awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// 4.5.3.2.1: initial 220, 5 minutes.
    Greeting,
    /// 4.5.3.2.2/3: MAIL, RCPT (and EHLO, STARTTLS, RSET), 5 minutes.
    Command,
    /// 4.5.3.2.4: the 354 after DATA, 2 minutes.
    DataInit,
    /// 4.5.3.2.6: the reply after the final dot, 10 minutes.
    DataDone,
    /// The reply to QUIT: nothing depends on it; wait briefly.
    Quit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    NeedInput(Phase),
    StartTls,
    Ready,
    SendContent,
    Done(Vec<RcptResult>),
    HostFailed(Reply),
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Rset,
    Mail,
    Rcpt,
    Data,
}

#[derive(Debug)]
enum State {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Handshake,
    Ready,
    /// Awaiting replies to the commands in `expect` (and `unsent` ones, sent
    /// one at a time without PIPELINING).
    Txn {
        n: usize,
        expect: VecDeque<Expect>,
        unsent: VecDeque<(Expect, Vec<u8>)>,
    },
    Content {
        n: usize,
    },
    DataDone {
        n: usize,
    },
    /// A 354 came with nothing to send (RFC 2920 3.1): a lone dot was sent
    /// and its reply is ignored.
    Discard {
        n: usize,
    },
    Quit,
    Closed,
}

pub struct ClientSession {
    helo_name: String,
    tls_mode: TlsMode,
    state: State,
    parser: ReplyParser,
    output: Vec<u8>,
    events: VecDeque<ClientEvent>,
    ext: Extensions,
    tls: bool,
    replies: Replies,
    /// The last transaction failed part-way: RSET before the next one.
    needs_rset: bool,
}

impl ClientSession {
    pub fn new(helo_name: &str, tls_mode: TlsMode) -> Self {
        ClientSession {
            helo_name: helo_name.to_string(),
            tls_mode,
            state: State::Greeting,
            parser: ReplyParser::default(),
            output: Vec::new(),
            events: VecDeque::new(),
            ext: Extensions::default(),
            tls: false,
            replies: Replies::default(),
            needs_rset: false,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.feed(bytes);
    }

    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    pub fn extensions(&self) -> &Extensions {
        &self.ext
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    pub fn next_event(&mut self) -> ClientEvent {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return ev;
            }
            match &self.state {
                State::Ready => return ClientEvent::Ready,
                State::Content { .. } => return ClientEvent::SendContent,
                State::Handshake => return ClientEvent::StartTls,
                State::Closed => return ClientEvent::Closed,
                _ => {}
            }
            match self.parser.next_reply() {
                None => return ClientEvent::NeedInput(self.phase()),
                Some(Ok(reply)) => self.on_reply(reply),
                Some(Err(e)) => {
                    self.output.clear();
                    self.fail(Reply::new(451, "4.5.0", format!("protocol error from server: {e}")), false);
                }
            }
        }
    }

    fn phase(&self) -> Phase {
        match &self.state {
            State::Greeting => Phase::Greeting,
            State::Txn { expect, .. } if expect.front() == Some(&Expect::Data) => Phase::DataInit,
            State::DataDone { .. } | State::Discard { .. } => Phase::DataDone,
            State::Quit => Phase::Quit,
            _ => Phase::Command,
        }
    }

    fn send(&mut self, line: &[u8]) {
        self.output.extend_from_slice(line);
        self.output.extend_from_slice(b"\r\n");
    }

    fn send_ehlo(&mut self) {
        self.send(format!("EHLO {}", self.helo_name).as_bytes());
        self.state = State::Ehlo;
    }

    /// The session is over: report, and say QUIT unless the server already
    /// said it is closing (421, RFC 5321 3.8).
    fn fail(&mut self, reply: Reply, quit: bool) {
        let prev = std::mem::replace(&mut self.state, State::Closed);
        self.fail_from(prev, reply, quit);
    }

    /// [`Self::fail`] for a state already taken out of `self.state`.
    fn fail_from(&mut self, prev: State, reply: Reply, quit: bool) {
        self.state = State::Closed;
        let lost = reply.clone();
        match prev {
            State::Txn { n, .. } | State::Content { n } | State::DataDone { n } => {
                self.events.push_back(ClientEvent::Done(self.replies.results(n, &lost)));
            }
            State::Discard { n } => self.events.push_back(ClientEvent::Done(self.replies.results(n, &lost))),
            State::Ready | State::Quit | State::Closed => {}
            State::Greeting | State::Ehlo | State::Helo | State::StartTls | State::Handshake => {
                self.events.push_back(ClientEvent::HostFailed(reply));
            }
        }
        if quit {
            self.send(b"QUIT");
        }
        self.events.push_back(ClientEvent::Closed);
    }

    fn on_reply(&mut self, reply: Reply) {
        if reply.code == 421 && !matches!(self.state, State::Quit) {
            return self.fail(reply, false);
        }
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Greeting if reply.code == 220 => self.send_ehlo(),
            // RFC 5321 3.1: a 554 (or any other) greeting means no service here.
            s @ State::Greeting => self.fail_from(s, reply, true),
            State::Ehlo if reply.code / 100 == 2 => {
                self.ext = Extensions::parse(&reply);
                self.after_hello();
            }
            // RFC 5321 3.2: a server that does not know EHLO gets HELO; a
            // 4yz is a refusal, not ignorance. HELO cannot do STARTTLS.
            State::Ehlo if reply.code / 100 == 5 && self.tls_mode != TlsMode::Require => {
                self.send(format!("HELO {}", self.helo_name).as_bytes());
                self.state = State::Helo;
            }
            State::Helo if reply.code / 100 == 2 => self.after_hello(),
            s @ (State::Ehlo | State::Helo) => self.fail_from(s, reply, true),
            State::StartTls if reply.code == 220 => self.state = State::Handshake,
            // RFC 3207 4: after a refusal the client may go on in plaintext.
            State::StartTls if self.tls_mode == TlsMode::Opportunistic => self.state = State::Ready,
            s @ State::StartTls => self.fail_from(s, reply, true),
            State::Txn { n, expect, unsent } => self.on_txn_reply(reply, n, expect, unsent),
            State::DataDone { n } => {
                self.replies.done = Some(reply);
                self.finish(n);
            }
            State::Discard { n } => {
                self.needs_rset = true;
                self.finish(n);
            }
            State::Quit => self.events.push_back(ClientEvent::Closed),
            // A reply nobody asked for (the server spoke out of turn): the
            // dialogue is out of step and cannot be trusted.
            s @ (State::Ready | State::Content { .. } | State::Handshake | State::Closed) => {
                self.fail_from(s, Reply::new(451, "4.5.0", format!("unexpected reply from server: {reply}")), true)
            }
        }
    }

    fn after_hello(&mut self) {
        let want_tls = self.tls_mode != TlsMode::Off && !self.tls;
        if want_tls && self.ext.starttls {
            self.send(b"STARTTLS");
            self.state = State::StartTls;
        } else if self.tls_mode == TlsMode::Require && !self.tls {
            let reply = Reply::new(451, "4.7.4", "TLS required but the server does not offer STARTTLS");
            self.fail_from(State::Ehlo, reply, true);
        } else {
            self.state = State::Ready;
        }
    }

    /// The TLS handshake succeeded: start over with EHLO (RFC 3207 4.2: the
    /// client must discard what it knew of the server).
    pub fn tls_established(&mut self) {
        self.tls = true;
        self.parser.clear();
        self.ext = Extensions::default();
        self.send_ehlo();
    }

    /// The connection ended (EOF, I/O error, timeout): `why` is the reply
    /// recorded for whatever was left undecided.
    pub fn connection_lost(&mut self, why: Reply) {
        if !matches!(self.state, State::Closed) {
            self.fail(why, false);
        }
    }

    pub fn quit(&mut self) {
        self.send(b"QUIT");
        self.state = State::Quit;
    }

    pub fn content_sent(&mut self) {
        if let State::Content { n } = self.state {
            self.state = State::DataDone { n };
        }
    }

    fn finish(&mut self, n: usize) {
        let lost = Reply::new(451, "4.5.0", "no reply");
        let results = self.replies.results(n, &lost);
        if results.iter().any(|r| r.outcome != super::Outcome::Delivered) {
            self.needs_rset = true;
        }
        self.events.push_back(ClientEvent::Done(results));
        self.state = State::Ready;
    }
}

#[path = "session_txn.rs"]
mod txn;
