//! The session state machine: line framing, the error limit and the
//! hand-offs to the driver. Commands are run by `authorization` and
//! `transaction`.

use super::body::write_multiline;
use super::command::{self, Command};
use super::transaction::Maildrop;
use super::{AuthDone, Pop3Config, Pop3Event};
use crate::line::{Line, LineBuffer};
use crate::timer::PhaseTimer;
use ferrymail_policy::SessionInfo;
use std::time::Instant;

/// A PLAIN response too long for the 255-octet AUTH line is sent on its own
/// line instead (RFC 5034 4), so that line must be allowed to be longer.
const SASL_LINE_MAX: usize = 4096;

/// Past this much unwritten output, stop and let the driver write it, so a
/// pipelined flood of cheap commands cannot make the session buffer an
/// unbounded answer.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;

pub(super) fn ok(out: &mut Vec<u8>, text: &str) {
    reply(out, "+OK", text);
}

pub(super) fn err(out: &mut Vec<u8>, text: &str) {
    reply(out, "-ERR", text);
}

fn reply(out: &mut Vec<u8>, status: &str, text: &str) {
    out.extend_from_slice(status.as_bytes());
    if !text.is_empty() {
        out.push(b' ');
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

pub(super) enum Phase {
    /// `user` holds the name from a USER command just before; RFC 1939 7
    /// accepts PASS only immediately after it.
    Authorization {
        user: Option<String>,
    },
    /// After `AUTH PLAIN` without initial response and `+ `: the next line
    /// is the client's response, not a command.
    SaslResponse,
    Transaction(Maildrop),
    Closed,
}

/// A POP3 server session for one connection; see the module docs for the
/// driver loop.
pub struct Pop3Session {
    pub(super) cfg: Pop3Config,
    /// The single source of the session's facts (TLS, the logged-in user
    /// and tenant) that policy hooks are told.
    pub(super) info: SessionInfo,
    input: LineBuffer,
    pub(super) output: Vec<u8>,
    pub(super) phase: Phase,
    /// The decision event the driver has not answered yet; nothing else is
    /// processed until it is.
    waiting: Option<Pop3Event>,
    errors: u32,
    timer: PhaseTimer,
    timed_out: bool,
}

impl Pop3Session {
    /// A session in the AUTHORIZATION state with the greeting queued. On
    /// an implicit-TLS port (RFC 8314, 995) `info.tls` is already true.
    pub fn new(cfg: Pop3Config, info: SessionInfo) -> Self {
        let mut output = Vec::new();
        ok(&mut output, &format!("{} POP3 server ready", cfg.greeting_host));
        Self {
            cfg,
            info,
            input: LineBuffer::new(),
            output,
            phase: Phase::Authorization { user: None },
            waiting: None,
            errors: 0,
            timer: PhaseTimer::default(),
            timed_out: false,
        }
    }

    /// What hooks are told about this session.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The autologout timer expired (or a write could not finish in time).
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// When the driver must call [`Self::handle_timeout`]: the deadline of
    /// the phase in progress, for reads and writes alike.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.deadline()
    }

    /// The clock reached [`Self::poll_timeout`]. RFC 1939 3: the autologout
    /// timer ends the session without UPDATE; nothing is deleted. A notice
    /// is queued (Dovecot sends one too); the driver writes it if it can.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.timer.expired(now) || matches!(self.phase, Phase::Closed) {
            return;
        }
        self.timer.stop();
        self.timed_out = true;
        if self.waiting == Some(Pop3Event::StartTls) {
            // Mid-handshake: nothing can be said in plaintext any more.
            self.output.clear();
        } else {
            err(&mut self.output, "autologout: idle too long");
        }
        self.waiting = None;
        self.phase = Phase::Closed;
    }

    /// Plaintext logins are refused on this connection: no TLS, and the
    /// configuration allows them only over TLS (RFC 2595 2.1).
    pub(super) fn login_needs_tls(&self) -> bool {
        !self.info.tls && !self.cfg.plaintext_auth
    }

    /// Buffers bytes read from the client; nothing is processed until
    /// [`Self::next_event`].
    pub fn feed(&mut self, bytes: &[u8]) {
        if !matches!(self.phase, Phase::Closed) {
            self.input.extend(bytes);
        }
    }

    /// Bytes to write to the client, in order.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Processes buffered commands until one needs the driver. `now`
    /// starts the deadline of the phase that begins when the session waits
    /// for input or output (the idle timeout, RFC 1939 3).
    pub fn next_event(&mut self, now: Instant) -> Pop3Event {
        if let Some(event) = &self.waiting {
            return event.clone();
        }
        loop {
            if matches!(self.phase, Phase::Closed) {
                self.timer.stop();
                return Pop3Event::Close;
            }
            if self.output.len() >= OUTPUT_HIGH_WATER && !self.input.is_empty() {
                // The write of a big answer is bounded like any phase.
                self.timer.arm(now, self.cfg.idle_timeout);
                return Pop3Event::Flush;
            }
            let max = match self.phase {
                Phase::SaslResponse => SASL_LINE_MAX,
                _ => self.cfg.max_line,
            };
            let Some(line) = self.input.next_line(max) else {
                self.timer.arm(now, self.cfg.idle_timeout);
                if self.timer.expired(now) {
                    self.handle_timeout(now);
                    continue;
                }
                return Pop3Event::NeedInput;
            };
            self.timer.stop();
            if let Some(event) = self.handle(line) {
                if event == Pop3Event::StartTls {
                    self.timer.restart(now, self.cfg.tls_timeout);
                }
                self.waiting = Some(event.clone());
                return event;
            }
        }
    }

    /// Answers [`Pop3Event::AuthRequested`]; ignored at any other time.
    pub fn auth_done(&mut self, outcome: AuthDone) {
        if !matches!(self.waiting, Some(Pop3Event::AuthRequested { .. })) {
            return;
        }
        self.waiting = None;
        let out = &mut self.output;
        match outcome {
            AuthDone::Ok { maildrop, user, tenant } => {
                let maildrop = Maildrop::new(maildrop);
                let (n, size) = maildrop.summary();
                ok(out, &format!("maildrop has {n} messages ({size} octets)"));
                self.phase = Phase::Transaction(maildrop);
                self.info.auth_user = Some(user);
                self.info.tenant = tenant;
            }
            AuthDone::Fail => {
                self.bad("[AUTH] invalid user name or password");
            }
            AuthDone::InUse => err(out, "[IN-USE] maildrop already locked by another session"),
            AuthDone::Tempfail => err(out, "[SYS/TEMP] temporary failure, try again later"),
            AuthDone::Refused => {
                self.bad("[SYS/TEMP] too many failed logins, try again later");
            }
        }
    }

    /// Answers [`Pop3Event::MessageNeeded`] with the stored message; ignored
    /// at any other time.
    pub fn message_ready(&mut self, content: &[u8]) {
        let Some(Pop3Event::MessageNeeded { index, top_lines }) = self.waiting else {
            return;
        };
        self.waiting = None;
        let Phase::Transaction(maildrop) = &self.phase else {
            return;
        };
        match (top_lines, maildrop.entry(index)) {
            (None, Some(entry)) => ok(&mut self.output, &format!("{} octets", entry.size)),
            _ => ok(&mut self.output, "top of message follows"),
        }
        write_multiline(&mut self.output, content, top_lines);
    }

    /// Answers [`Pop3Event::MessageNeeded`] when the message cannot be read;
    /// ignored at any other time.
    pub fn message_unavailable(&mut self) {
        let Some(Pop3Event::MessageNeeded { index, .. }) = self.waiting else {
            return;
        };
        self.waiting = None;
        let text = format!("[SYS/TEMP] message {} unavailable", index + 1);
        err(&mut self.output, &text);
    }

    /// Answers [`Pop3Event::UpdateRequested`], after which the session closes;
    /// ignored at any other time.
    pub fn update_done(&mut self, removed: bool) {
        if !matches!(self.waiting, Some(Pop3Event::UpdateRequested { .. })) {
            return;
        }
        self.waiting = None;
        if removed {
            let text = format!("{} POP3 server signing off", self.cfg.greeting_host);
            ok(&mut self.output, &text);
        } else {
            // RFC 1939 6 words it; SYS/TEMP tells the client to retry later.
            err(&mut self.output, "[SYS/TEMP] some deleted messages not removed");
        }
        self.phase = Phase::Closed;
    }

    /// Answers [`Pop3Event::StartTls`] once the handshake succeeded; ignored
    /// at any other time.
    pub fn tls_established(&mut self) {
        if self.waiting != Some(Pop3Event::StartTls) {
            return;
        }
        self.waiting = None;
        self.timer.stop();
        // Anything that arrived before the handshake was sent in plaintext
        // and may be an injected command (RFC 2595 4, CVE-2011-0411).
        self.input.clear();
        self.info.tls = true;
        self.phase = Phase::Authorization { user: None };
    }

    /// Answers a bad command, or closes once the error limit is reached.
    /// Returns `None` so callers can end a handler with it.
    pub(super) fn bad(&mut self, text: &str) -> Option<Pop3Event> {
        self.errors = self.errors.saturating_add(1);
        if self.cfg.max_errors != 0 && self.errors >= self.cfg.max_errors {
            err(&mut self.output, "too many errors");
            self.phase = Phase::Closed;
        } else {
            err(&mut self.output, text);
        }
        None
    }

    fn handle(&mut self, line: Line) -> Option<Pop3Event> {
        let line = match line {
            Line::Complete(line) => line,
            Line::TooLong => {
                if matches!(self.phase, Phase::SaslResponse) {
                    self.phase = Phase::Authorization { user: None };
                }
                return self.bad("line too long");
            }
        };
        if matches!(self.phase, Phase::SaslResponse) {
            self.phase = Phase::Authorization { user: None };
            return match std::str::from_utf8(&line) {
                Ok(response) => self.sasl_response(response, true),
                Err(_) => self.bad("invalid base64"),
            };
        }
        let cmd = match command::parse(&line) {
            Ok(cmd) => cmd,
            Err(e) => {
                self.forget_user();
                return self.bad(e.reply());
            }
        };
        if cmd == Command::Capa {
            self.forget_user();
            self.capa();
            return None;
        }
        match &mut self.phase {
            Phase::Transaction(maildrop) => match maildrop.handle(cmd, &mut self.output) {
                Ok(event) => event,
                Err(text) => self.bad(text),
            },
            Phase::Authorization { user } => {
                let user = user.take();
                self.authorization(cmd, user)
            }
            Phase::SaslResponse | Phase::Closed => None,
        }
    }
}
