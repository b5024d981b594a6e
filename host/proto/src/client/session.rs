//! The client session: greeting, EHLO (HELO fallback), STARTTLS, then mail
//! transactions, pipelined when the server offers PIPELINING (RFC 2920).
//!
//! Driver contract: the session reads no clock; the driver passes `now` to
//! `next_event` and bounds every read and write by `poll_timeout()`,
//! calling `handle_timeout(now)` when it passes. Write `take_output` before
//! reading. `NeedInput(phase)`: read, then `feed`, or call
//! `connection_lost` on EOF or error. `StartTls`: handshake before
//! `poll_timeout()`, then `tls_established` (or give up on the host).
//! `Ready`: call `begin` or `quit`. `SendContent`: write `take_content()`,
//! then `content_sent`. `Done`: one result per recipient of the
//! transaction. `HostFailed`: this host cannot take mail now; try the next.
//!
//! Every phase (the greeting, each reply, the content) has one deadline
//! from its start (RFC 5321 4.5.3.2), so a server that trickles a byte at
//! a time cannot keep a delivery in flight past it.

use super::extensions::Extensions;
use super::reply::ReplyParser;
use super::transaction::{RcptResult, Replies};
use crate::timer::PhaseTimer;
use ferrymail_policy::Reply;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// RFC 5321 4.5.3.2 client timeouts; each bounds a whole phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// 4.5.3.2.1: the 220 greeting, 5 minutes.
    pub greeting: Duration,
    /// 4.5.3.2.2/3: the reply to EHLO, MAIL, RCPT, RSET, STARTTLS (and the
    /// TLS handshake), 5 minutes.
    pub command: Duration,
    /// 4.5.3.2.4: the 354 after DATA, 2 minutes.
    pub data_init: Duration,
    /// 4.5.3.2.5: sending the content, per started MiB (3 minutes each):
    /// one deadline for the whole content that still lets a big message
    /// through a slow link, unlike a per-write timeout a reader that takes
    /// a byte at a time could stretch without end.
    pub data_block: Duration,
    /// 4.5.3.2.6: the reply after the final dot, 10 minutes.
    pub data_done: Duration,
    /// The reply to QUIT: nothing depends on it.
    pub quit: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            data_init: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_done: Duration::from_secs(600),
            quit: Duration::from_secs(5),
        }
    }
}

impl Timeouts {
    /// The deadline for sending `len` octets of content.
    pub(crate) fn content(&self, len: usize) -> Duration {
        const MIB: usize = 1 << 20;
        self.data_block.saturating_mul(len.div_ceil(MIB).max(1) as u32)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// The host cannot take mail now. `from_server`: the reply is the
    /// server's (a refusal) rather than ours about the connection (4.4.x),
    /// which a DSN reports differently.
    HostFailed {
        reply: Reply,
        from_server: bool,
    },
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
    timeouts: Timeouts,
    timer: PhaseTimer,
    /// The wire form of the transaction's content, ready for `SendContent`.
    content: Vec<u8>,
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
    pub fn new(helo_name: &str, tls_mode: TlsMode, timeouts: Timeouts) -> Self {
        ClientSession {
            helo_name: helo_name.to_string(),
            tls_mode,
            timeouts,
            timer: PhaseTimer::default(),
            content: Vec::new(),
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

    pub fn next_event(&mut self, now: Instant) -> ClientEvent {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return ev;
            }
            match &self.state {
                State::Ready => return ClientEvent::Ready,
                State::Content { .. } => {
                    let limit = self.timeouts.content(self.content.len());
                    self.timer.arm(now, limit);
                    return ClientEvent::SendContent;
                }
                State::Handshake => {
                    self.timer.arm(now, self.timeouts.command);
                    return ClientEvent::StartTls;
                }
                State::Closed => return ClientEvent::Closed,
                _ => {}
            }
            match self.parser.next_reply() {
                None => {
                    let phase = self.phase();
                    self.timer.arm(now, self.timeout(phase));
                    if self.timer.expired(now) {
                        self.handle_timeout(now);
                        continue;
                    }
                    return ClientEvent::NeedInput(phase);
                }
                Some(Ok(reply)) => {
                    // A reply ends its phase; the next starts when the
                    // session next waits.
                    self.timer.stop();
                    self.on_reply(reply)
                }
                Some(Err(e)) => {
                    self.timer.stop();
                    self.output.clear();
                    self.fail(Reply::new(451, "4.5.0", format!("protocol error from server: {e}")), false, false);
                }
            }
        }
    }

    /// When the driver must call [`Self::handle_timeout`]: the deadline of
    /// the phase in progress, for reads, writes and the handshake alike.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.deadline()
    }

    /// The clock reached [`Self::poll_timeout`] (or a write or handshake
    /// could not finish by then): the connection is given up, and whatever
    /// was undecided is deferred (451 4.4.2).
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.timer.expired(now) || matches!(self.state, State::Closed) {
            return;
        }
        self.timer.stop();
        let what = match &self.state {
            State::Content { .. } => "sending the message content (RFC 5321 4.5.3.2.5)",
            State::Handshake => "the TLS handshake",
            _ => match self.phase() {
                Phase::Greeting => "the greeting (RFC 5321 4.5.3.2.1)",
                Phase::Command => "a command reply (RFC 5321 4.5.3.2.2)",
                Phase::DataInit => "the reply to DATA (RFC 5321 4.5.3.2.4)",
                Phase::DataDone => "the reply to the final dot (RFC 5321 4.5.3.2.6)",
                Phase::Quit => "the reply to QUIT",
            },
        };
        self.output.clear();
        self.fail(Reply::new(451, "4.4.2", format!("Timeout: the server took too long for {what}")), false, false);
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

    fn timeout(&self, phase: Phase) -> Duration {
        let t = &self.timeouts;
        match phase {
            Phase::Greeting => t.greeting,
            Phase::Command => t.command,
            Phase::DataInit => t.data_init,
            Phase::DataDone => t.data_done,
            Phase::Quit => t.quit.min(t.command),
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
    fn fail(&mut self, reply: Reply, quit: bool, from_server: bool) {
        let prev = std::mem::replace(&mut self.state, State::Closed);
        self.fail_from(prev, reply, quit, from_server);
    }

    /// [`Self::fail`] for a state already taken out of `self.state`.
    /// `from_server`: the reply is the server's, not ours about it.
    fn fail_from(&mut self, prev: State, reply: Reply, quit: bool, from_server: bool) {
        self.state = State::Closed;
        self.timer.stop();
        self.content = Vec::new();
        let lost = reply.clone();
        match prev {
            State::Txn { n, .. } | State::Content { n } | State::DataDone { n } => {
                self.events.push_back(ClientEvent::Done(self.replies.results(n, &lost)));
            }
            State::Discard { n } => self.events.push_back(ClientEvent::Done(self.replies.results(n, &lost))),
            State::Ready | State::Quit | State::Closed => {}
            State::Greeting | State::Ehlo | State::Helo | State::StartTls | State::Handshake => {
                self.events.push_back(ClientEvent::HostFailed { reply, from_server });
            }
        }
        if quit {
            self.send(b"QUIT");
        }
        self.events.push_back(ClientEvent::Closed);
    }

    fn on_reply(&mut self, reply: Reply) {
        if reply.code == 421 && !matches!(self.state, State::Quit) {
            return self.fail(reply, false, true);
        }
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Greeting if reply.code == 220 => self.send_ehlo(),
            // RFC 5321 3.1: a 554 (or any other) greeting means no service here.
            s @ State::Greeting => self.fail_from(s, reply, true, true),
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
            s @ (State::Ehlo | State::Helo) => self.fail_from(s, reply, true, true),
            State::StartTls if reply.code == 220 => self.state = State::Handshake,
            // RFC 3207 4: after a refusal the client may go on in plaintext.
            State::StartTls if self.tls_mode == TlsMode::Opportunistic => self.state = State::Ready,
            s @ State::StartTls => self.fail_from(s, reply, true, true),
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
            s @ (State::Ready | State::Content { .. } | State::Handshake | State::Closed) => self.fail_from(
                s,
                Reply::new(451, "4.5.0", format!("unexpected reply from server: {reply}")),
                true,
                false,
            ),
        }
    }

    fn after_hello(&mut self) {
        let want_tls = self.tls_mode != TlsMode::Off && !self.tls;
        if want_tls && self.ext.starttls {
            self.send(b"STARTTLS");
            self.state = State::StartTls;
        } else if self.tls_mode == TlsMode::Require && !self.tls {
            let reply = Reply::new(451, "4.7.4", "TLS required but the server does not offer STARTTLS");
            self.fail_from(State::Ehlo, reply, true, false);
        } else {
            self.state = State::Ready;
        }
    }

    /// The TLS handshake succeeded: start over with EHLO (RFC 3207 4.2: the
    /// client must discard what it knew of the server).
    pub fn tls_established(&mut self) {
        self.timer.stop();
        self.tls = true;
        self.parser.clear();
        self.ext = Extensions::default();
        self.send_ehlo();
    }

    /// The connection ended (EOF, I/O error, timeout): `why` is the reply
    /// recorded for whatever was left undecided.
    pub fn connection_lost(&mut self, why: Reply) {
        if !matches!(self.state, State::Closed) {
            self.fail(why, false, false);
        }
    }

    pub fn quit(&mut self) {
        self.timer.stop();
        self.send(b"QUIT");
        self.state = State::Quit;
    }

    /// The content to write on `SendContent`: converted to 7 bits if the
    /// server lacks 8BITMIME, line ends made CRLF, dot-stuffed, terminated.
    pub fn take_content(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.content)
    }

    pub fn content_sent(&mut self) {
        if let State::Content { n } = self.state {
            self.timer.stop();
            self.content = Vec::new();
            self.state = State::DataDone { n };
        }
    }

    fn finish(&mut self, n: usize) {
        self.content = Vec::new();
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
