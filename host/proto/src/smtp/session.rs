//! The SMTP server session: RFC 5321 sequencing with PIPELINING (RFC 2920),
//! SIZE (RFC 1870), 8BITMIME (RFC 6152), ENHANCEDSTATUSCODES (RFC 2034,
//! codes from RFC 3463), SMTPUTF8 (RFC 6531), STARTTLS (RFC 3207) and AUTH
//! (RFC 4954).
//!
//! # Driving a session
//! The session does no I/O and reads no clock; the driver passes `now` in.
//!
//! ```text
//! let mut s = SmtpSession::new(cfg, info);
//! loop {
//!     let event = s.next_event(Instant::now());
//!     if let NeedInput | Pause(_) | StartTls = event {
//!         // the output, before waiting on the client, under its deadline
//!         write_before(s.poll_timeout(), &s.take_output()).await?;
//!     }
//!     match event {
//!         NeedInput => match read_before(s.poll_timeout()).await {
//!             Data(bytes) => s.feed(&bytes),
//!             TimedOut => s.handle_timeout(Instant::now()),
//!             Eof | Error => break,
//!         },
//!         Pause(until) => sleep_until(until).await,           // no reading meanwhile
//!         Connect | Helo { .. } | Mail { .. } | Rcpt { .. } => s.verdict(policy(..).await),
//!         Vrfy(_) | Expn(_) => s.reply(policy(..).await),
//!         Message(content) => s.reply(store(s.trace_headers(..) + content).await),
//!         Auth { .. } => s.auth_result(check(..).await),
//!         StartTls => match handshake_before(s.poll_timeout()).await {
//!             Ok => s.tls_established(),
//!             TimedOut => s.handle_timeout(Instant::now()),
//!             Err => break,
//!         },
//!         Close => { farewell(&s.take_output()).await; break }
//!     }
//! }
//! ```
//! A write that misses the deadline is a timeout too: the driver calls
//! `handle_timeout` and carries on, and the session closes. Output is
//! written only before a wait on the client, never with no deadline and
//! never held behind a policy call.
//!
//! Each decision event is answered before `next_event` is called again;
//! input that arrives meanwhile is only buffered, so pipelined commands
//! are answered strictly in order (RFC 2920 3.1).

use super::command::MailParams;
use super::data::DataReceiver;
use super::replies::{self, r};
use super::trace;
use crate::line::{Line, LineBuffer};
use crate::sasl;
use crate::timer::PhaseTimer;
use ferrymail_policy::{Envelope, Reply, SessionInfo, Verdict};
use std::time::{Duration, Instant};

/// Limits, offers and timeouts of one listener.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub hostname: String,
    /// Command line limit including CRLF (RFC 5321 4.5.3.1.4: at least 512).
    pub max_command_line: usize,
    /// Text line limit including CRLF (RFC 5321 4.5.3.1.6: at least 1000).
    pub max_text_line: usize,
    /// Message size limit, advertised as SIZE (RFC 1870).
    pub max_message_size: usize,
    /// Recipients per transaction (RFC 5321 4.5.3.1.8: at least 100).
    pub max_recipients: usize,
    /// Errors tolerated before the session is closed with 421: bad
    /// commands, failed AUTH, refused MAIL and RCPT.
    pub max_errors: u32,
    /// Errors after which every further error reply waits `error_delay`
    /// (Postfix's soft error limit): a client probing for valid recipients
    /// or passwords gets slower answers.
    pub soft_error_limit: u32,
    pub error_delay: Duration,
    /// Offer STARTTLS (a certificate is configured).
    pub starttls: bool,
    /// Offer AUTH PLAIN LOGIN.
    pub auth: bool,
    /// Offer AUTH on a connection without TLS (only sensible on loopback).
    pub auth_without_tls: bool,
    /// MAIL needs a prior successful AUTH (submission, RFC 6409 4.3).
    pub require_auth: bool,
    /// The address a bare `RCPT TO:<Postmaster>` stands for (RFC 5321
    /// 4.5.1); `postmaster@hostname` when `None`.
    pub postmaster: Option<String>,
    /// `Received:` fields a message may already carry (RFC 5321 6.3); at
    /// this many it is refused as a loop with 554 5.4.6.
    pub max_hops: usize,
    /// Waiting for a command, from the moment the previous reply is queued
    /// until the whole line is in (RFC 5321 4.5.3.2.7: 5 minutes).
    pub command_timeout: Duration,
    /// The whole DATA content, from 354 to the final dot.
    pub data_timeout: Duration,
    /// The STARTTLS handshake.
    pub tls_timeout: Duration,
    /// Pregreet test: the greeting is sent as `220-` and completed after
    /// this long; a client that talks before it is complete is refused
    /// (Postfix postscreen's greet wait). Zero sends the greeting at once.
    pub greet_delay: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            hostname: "localhost".into(),
            max_command_line: 512,
            max_text_line: 1000,
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 20,
            soft_error_limit: 10,
            error_delay: Duration::from_secs(1),
            starttls: false,
            auth: false,
            auth_without_tls: false,
            require_auth: false,
            postmaster: None,
            max_hops: 50,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            tls_timeout: Duration::from_secs(30),
            greet_delay: Duration::ZERO,
        }
    }
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpEvent {
    /// Write the output, then read and `feed`, or `handle_timeout` once
    /// [`SmtpSession::poll_timeout`] passes.
    NeedInput,
    /// Write the output, then wait until the instant without reading, then
    /// call `next_event` again (an error reply held back, the tarpit).
    Pause(Instant),
    /// A client connected: answer with [`SmtpSession::verdict`]; anything
    /// but a refusal greets it (RFC 5321 3.1).
    Connect,
    /// Answer with [`SmtpSession::verdict`].
    Helo { name: String, ehlo: bool },
    /// Answer with [`SmtpSession::verdict`].
    Mail { from: String, params: MailParams },
    /// Answer with [`SmtpSession::verdict`]; a final `Continue` refuses relaying.
    Rcpt { to: String },
    /// Answer with [`SmtpSession::reply`].
    Vrfy(String),
    /// Answer with [`SmtpSession::reply`].
    Expn(String),
    /// The message content, dot-unstuffed, ending in CRLF. The envelope is
    /// [`SmtpSession::envelope`], the trace to prepend
    /// [`SmtpSession::trace_headers`]. Make it durable, then answer with
    /// [`SmtpSession::reply`] (250 only once it is safe on disk).
    Message(Vec<u8>),
    /// The 220 is queued: write it, run the TLS handshake before
    /// `poll_timeout`, then call [`SmtpSession::tls_established`] (or close).
    StartTls,
    /// Answer with [`SmtpSession::auth_result`].
    Auth { mechanism: String, username: String, password: String },
    /// Write the output and close the connection.
    Close,
}

/// The outcome of an AUTH attempt, decided by the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    Ok {
        user: String,
        tenant: Option<String>,
    },
    Fail,
    /// The policy could not decide: 454, the client may retry later.
    Tempfail,
    /// Refused without a check: too many recent failures from this client
    /// or for this account. 454 4.7.0, and it counts towards `max_errors`
    /// like a failure, so a guesser is still disconnected.
    Refused,
}

/// Why the session ended, for the driver's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Quit,
    /// The connect hook refused the client.
    Refused,
    /// A policy verdict said disconnect.
    Disconnected,
    TooManyErrors,
    /// A phase passed its deadline (RFC 5321 4.5.3.2).
    Timeout,
    /// The TLS handshake did not finish in time.
    TlsTimeout,
    /// The client talked before the greeting was complete.
    Pregreet,
}

#[derive(Debug)]
pub(super) enum Phase {
    /// Before the connect verdict.
    Connecting,
    /// `220-` sent; the rest of the greeting waits for `greet_delay`.
    Greeting,
    Command,
    Data(Box<DataReceiver>),
    /// AUTH PLAIN waiting for its response, LOGIN for the user name or
    /// the password.
    SaslPlain,
    SaslLoginUser,
    SaslLoginPass {
        user: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pending {
    Connect,
    Helo { name: String, ehlo: bool },
    Mail { from: String, params: MailParams },
    Rcpt { to: String },
    Reply,
    Message,
    StartTls,
    Auth,
}

#[derive(Debug, Default, Clone)]
pub(super) struct Transaction {
    pub(super) from: String,
    pub(super) params: MailParams,
    pub(super) rcpts: Vec<String>,
}

/// An error reply held back by the tarpit.
#[derive(Debug)]
enum Held {
    /// Not yet timed: the pause starts at the next `next_event(now)`.
    For(Duration, Vec<u8>),
    Until(Instant, Vec<u8>),
}

pub struct SmtpSession {
    pub(super) cfg: SmtpConfig,
    /// The single source of the session's facts (helo, TLS, AUTH user and
    /// tenant) that policy hooks are told.
    pub(super) info: SessionInfo,
    input: LineBuffer,
    out: Vec<u8>,
    pub(super) phase: Phase,
    pub(super) pending: Option<Pending>,
    pub(super) esmtp: bool,
    pub(super) txn: Option<Transaction>,
    errors: u32,
    held: Option<Held>,
    timer: PhaseTimer,
    ending: Option<Ending>,
}

impl SmtpSession {
    /// A new connection; nothing is sent before the connect verdict. On an
    /// implicit-TLS port (RFC 8314) `info.tls` is already true.
    pub fn new(cfg: SmtpConfig, info: SessionInfo) -> Self {
        SmtpSession {
            cfg,
            info,
            input: LineBuffer::crlf_only(),
            out: Vec::new(),
            phase: Phase::Connecting,
            pending: None,
            esmtp: false,
            txn: None,
            errors: 0,
            held: None,
            timer: PhaseTimer::default(),
            ending: None,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.ending.is_none() {
            self.input.extend(bytes);
        }
    }

    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// What hooks are told about this session.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    pub fn helo(&self) -> Option<&str> {
        self.info.helo.as_deref()
    }

    pub fn is_esmtp(&self) -> bool {
        self.esmtp
    }

    pub fn is_tls(&self) -> bool {
        self.info.tls
    }

    pub fn auth_user(&self) -> Option<&str> {
        self.info.auth_user.as_deref()
    }

    pub fn is_closed(&self) -> bool {
        self.ending.is_some()
    }

    /// Why the session ended, once it has.
    pub fn ending(&self) -> Option<Ending> {
        self.ending
    }

    /// The transaction's envelope (empty outside a transaction).
    pub fn envelope(&self) -> Envelope {
        match &self.txn {
            Some(t) => Envelope { mail_from: t.from.clone(), rcpt_to: t.rcpts.clone() },
            None => Envelope::default(),
        }
    }

    /// The MAIL parameters of the transaction in progress.
    pub fn mail_params(&self) -> Option<&MailParams> {
        self.txn.as_ref().map(|t| &t.params)
    }

    /// When the driver must call [`Self::handle_timeout`] if nothing else
    /// happened: the deadline of the phase in progress. Reads and writes
    /// alike are bounded by it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.deadline()
    }

    /// The clock reached [`Self::poll_timeout`] (or a write could not finish
    /// by then). Ends the greeting delay, or closes the session: 421 4.4.2
    /// for a command or DATA phase (RFC 5321 4.5.3.2, 3.8), silently in a
    /// TLS handshake.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.timer.expired(now) || self.ending.is_some() {
            return;
        }
        self.timer.stop();
        match (&self.phase, &self.pending) {
            (_, Some(Pending::StartTls)) => {
                // Mid-handshake: nothing can be said in plaintext any more.
                self.out.clear();
                self.close(Ending::TlsTimeout);
            }
            (Phase::Greeting, _) => self.greet(),
            (Phase::Data(_), _) => self.shutdown_with("Timeout waiting for message content", Ending::Timeout),
            _ => self.shutdown_with("Timeout waiting for client input", Ending::Timeout),
        }
    }

    fn shutdown_with(&mut self, text: &str, ending: Ending) {
        self.send(&r(421, "4.4.2", &format!("{} {}", self.cfg.hostname, text)));
        self.close(ending);
    }

    pub(super) fn close(&mut self, ending: Ending) {
        if self.ending.is_none() {
            self.ending = Some(ending);
        }
        self.timer.stop();
        self.held = None;
    }

    pub fn next_event(&mut self, now: Instant) -> SmtpEvent {
        loop {
            if self.ending.is_some() {
                return SmtpEvent::Close;
            }
            if let Some(until) = self.paused(now) {
                // What was queued before the pause is written under the
                // next command phase's deadline.
                self.timer.arm(now, self.cfg.command_timeout);
                return SmtpEvent::Pause(until);
            }
            if self.pending.is_some() {
                // The driver owes a decision; nothing proceeds until it comes.
                return SmtpEvent::NeedInput;
            }
            let event = match &self.phase {
                Phase::Connecting => self.ask(Pending::Connect, SmtpEvent::Connect),
                Phase::Greeting => {
                    if !self.input.is_empty() {
                        self.pregreet();
                        continue;
                    }
                    return self.wait(now, self.cfg.greet_delay);
                }
                Phase::Data(_) => match self.step_data() {
                    Some(event) => Some(event),
                    None if matches!(self.phase, Phase::Data(_)) => return self.wait(now, self.cfg.data_timeout),
                    None => None,
                },
                Phase::Command => match self.input.next_line(self.cfg.max_command_line) {
                    None => return self.wait(now, self.cfg.command_timeout),
                    Some(line) => {
                        self.timer.stop();
                        match line {
                            Line::TooLong => {
                                self.error(r(500, "5.5.2", "Line too long"));
                                None
                            }
                            Line::Complete(line) => self.command(&line),
                        }
                    }
                },
                Phase::SaslPlain | Phase::SaslLoginUser | Phase::SaslLoginPass { .. } => {
                    match self.input.next_line(sasl::MAX_AUTH_LINE) {
                        None => return self.wait(now, self.cfg.command_timeout),
                        Some(line) => {
                            self.timer.stop();
                            match line {
                                Line::TooLong => {
                                    self.phase = Phase::Command;
                                    self.error(r(500, "5.5.6", "Authentication exchange line too long"));
                                    None
                                }
                                Line::Complete(line) => self.sasl_line(&line),
                            }
                        }
                    }
                }
            };
            if let Some(e) = event {
                if e == SmtpEvent::StartTls {
                    // The handshake is a phase of its own.
                    self.timer.restart(now, self.cfg.tls_timeout);
                }
                return e;
            }
        }
    }

    /// `NeedInput`, with the phase's deadline started (it keeps the one it
    /// has) — or the timeout, if that deadline has passed already.
    fn wait(&mut self, now: Instant, limit: Duration) -> SmtpEvent {
        self.timer.arm(now, limit);
        if self.timer.expired(now) {
            self.handle_timeout(now);
            return self.next_event(now);
        }
        SmtpEvent::NeedInput
    }

    /// While an error reply is held back: the instant it is released.
    fn paused(&mut self, now: Instant) -> Option<Instant> {
        let until = match self.held.take()? {
            Held::For(delay, reply) => match now.checked_add(delay) {
                Some(until) => {
                    self.held = Some(Held::Until(until, reply));
                    return Some(until);
                }
                None => {
                    self.out.extend_from_slice(&reply);
                    return None;
                }
            },
            Held::Until(until, reply) if now < until => {
                self.held = Some(Held::Until(until, reply));
                until
            }
            Held::Until(_, reply) => {
                self.out.extend_from_slice(&reply);
                return None;
            }
        };
        Some(until)
    }

    /// Answers Connect, Helo, Mail and Rcpt events.
    pub fn verdict(&mut self, verdict: Verdict) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let ok = matches!(verdict, Verdict::Accept | Verdict::Continue);
        match pending {
            Pending::Connect if ok => self.start_greeting(),
            Pending::Connect => {
                // RFC 5321 3.1: refuse at the greeting, then close.
                if let Some(reply) = verdict.reply() {
                    self.send(reply);
                }
                self.close(Ending::Refused);
            }
            Pending::Helo { name, ehlo } if ok => self.helo_ok(name, ehlo),
            Pending::Mail { from, .. } if verdict == Verdict::Continue && !self.owns_sender(&from) => {
                let user = self.info.auth_user.as_deref().unwrap_or_default();
                self.error(r(553, "5.7.1", &format!("<{from}>: Sender address rejected: not owned by user {user}")));
            }
            Pending::Mail { from, params } if ok => {
                self.txn = Some(Transaction { from, params, rcpts: Vec::new() });
                self.send(&r(250, "2.1.0", "Sender ok"));
            }
            Pending::Rcpt { to } if verdict == Verdict::Accept => {
                if let Some(t) = &mut self.txn {
                    t.rcpts.push(to);
                }
                self.send(&r(250, "2.1.5", "Recipient ok"));
            }
            Pending::Rcpt { .. } if verdict == Verdict::Continue => {
                self.error(r(554, "5.7.1", "Relay access denied"));
            }
            _ => self.refuse(verdict),
        }
    }

    /// Whether an authenticated client may use `from` without a plugin's
    /// `accept`: its own address (case-insensitive, as accounts are), or
    /// the null reverse-path, which RFC 5321 4.5.5 reserves for
    /// notifications a user's agent legitimately submits (RFC 8098 2.1
    /// MDNs, RFC 5230 4.5 vacation replies). Any other sender is someone
    /// else's (issue 16: `MAIL FROM:<ceo@b.test>` after AUTH as alice):
    /// a plugin must accept it (the default `auth` plugin accepts the
    /// account's aliases), else 553 5.7.1 as Postfix's
    /// reject_sender_login_mismatch answers. Unauthenticated sessions are
    /// not affected: port 25 receives every sender of the world.
    fn owns_sender(&self, from: &str) -> bool {
        match &self.info.auth_user {
            None => true,
            Some(user) => from.is_empty() || from.eq_ignore_ascii_case(user),
        }
    }

    /// Answers Vrfy, Expn and Message events.
    pub fn reply(&mut self, reply: Reply) {
        match self.pending.take() {
            Some(Pending::Message) => {
                // Whatever the outcome, the transaction is over (RFC 5321 4.1.1.4).
                self.txn = None;
                self.send(&reply);
            }
            Some(_) => self.send(&reply),
            None => {}
        }
    }

    /// The STARTTLS handshake completed: forget everything (RFC 3207 4.2) —
    /// including input that arrived before the handshake, the command
    /// injection of CVE-2011-0411.
    pub fn tls_established(&mut self) {
        if self.pending.take() != Some(Pending::StartTls) {
            return;
        }
        self.timer.stop();
        self.info.tls = true;
        self.info.helo = None;
        self.info.auth_user = None;
        self.info.tenant = None;
        self.esmtp = false;
        self.txn = None;
        self.input.clear();
    }

    /// The header block to prepend to the message of the pending Message
    /// event: plugin headers (made safe), then our `Received:` (RFC 5321
    /// 4.4). `date` is RFC 5322 date-time text.
    pub fn trace_headers(&self, id: &str, date: &str, add: &[(String, String)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in add {
            if let Some(line) = trace::plugin_header(name, value) {
                out.extend_from_slice(line.as_bytes());
            }
        }
        let rcpts = self.txn.as_ref().map(|t| t.rcpts.as_slice()).unwrap_or(&[]);
        let received = trace::received(&self.info, &self.cfg.hostname, self.esmtp, id, rcpts, date);
        out.extend_from_slice(received.as_bytes());
        out
    }

    fn start_greeting(&mut self) {
        if self.cfg.greet_delay.is_zero() {
            return self.greet();
        }
        // Postfix postscreen's pregreet test: a client must wait for the
        // last line of a multi-line reply (RFC 5321 4.2.1) before talking.
        self.out.extend_from_slice(format!("220-{} ESMTP ferrymail\r\n", self.cfg.hostname).as_bytes());
        self.phase = Phase::Greeting;
    }

    fn greet(&mut self) {
        self.send(&Reply::plain(220, format!("{} ESMTP ferrymail ready", self.cfg.hostname)));
        self.phase = Phase::Command;
    }

    fn pregreet(&mut self) {
        self.input.clear();
        self.send(&r(521, "5.5.1", &format!("{} Protocol error: talking before the greeting", self.cfg.hostname)));
        self.close(Ending::Pregreet);
    }

    fn step_data(&mut self) -> Option<SmtpEvent> {
        let chunk = self.input.take_pending();
        let Phase::Data(receiver) = &mut self.phase else { unreachable!() };
        match receiver.feed(&chunk) {
            super::data::DataProgress::More => None,
            super::data::DataProgress::Done { consumed } => {
                self.timer.stop();
                self.input.extend(&chunk[consumed..]);
                let Phase::Data(receiver) = std::mem::replace(&mut self.phase, Phase::Command) else { unreachable!() };
                match receiver.finish() {
                    Ok(content) => self.message(content),
                    Err(e) => {
                        self.txn = None;
                        self.send(&replies::data_error(e, self.cfg.max_text_line));
                        None
                    }
                }
            }
        }
    }

    fn message(&mut self, content: Vec<u8>) -> Option<SmtpEvent> {
        let hops = trace::hops(&content);
        if hops >= self.cfg.max_hops {
            // RFC 5321 6.3: a message that has passed this many relays is
            // in a loop; refuse it rather than pass it on once more.
            self.txn = None;
            self.send(&r(554, "5.4.6", &format!("Too many hops ({hops} Received: headers); mail loop suspected")));
            return None;
        }
        self.ask(Pending::Message, SmtpEvent::Message(content))
    }

    pub(super) fn ask(&mut self, pending: Pending, event: SmtpEvent) -> Option<SmtpEvent> {
        self.pending = Some(pending);
        Some(event)
    }

    pub(super) fn refuse(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Reject(reply) if reply.code >= 500 => self.error(reply),
            Verdict::Reject(reply) | Verdict::Tempfail(reply) => self.send(&reply),
            Verdict::Disconnect(reply) => {
                self.send(&reply);
                self.close(Ending::Disconnected);
            }
            Verdict::Continue | Verdict::Accept => {}
        }
    }

    /// A bad command or a refusal that counts against the client: after
    /// `soft_error_limit` the reply is held back `error_delay`; at
    /// `max_errors` the session closes with 421.
    pub(super) fn error(&mut self, reply: Reply) {
        self.errors = self.errors.saturating_add(1);
        if self.errors >= self.cfg.max_errors {
            self.send(&reply);
            let text = format!("{} Too many errors, closing connection", self.cfg.hostname);
            self.send(&r(421, "4.7.0", &text));
            self.close(Ending::TooManyErrors);
        } else if self.errors > self.cfg.soft_error_limit && !self.cfg.error_delay.is_zero() {
            let mut wire = Vec::new();
            replies::encode(&reply, &mut wire);
            self.held = Some(Held::For(self.cfg.error_delay, wire));
        } else {
            self.send(&reply);
        }
    }

    pub(super) fn send(&mut self, reply: &Reply) {
        replies::encode(reply, &mut self.out);
    }
}
