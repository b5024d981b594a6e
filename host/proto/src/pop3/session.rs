//! The session state machine: line framing, the error limit and the
//! hand-offs to the driver. Commands are run by `authorization` and
//! `transaction`.

use super::body::write_multiline;
use super::command::{self, Command};
use super::transaction::Maildrop;
use super::{AuthDone, Pop3Config, Pop3Event};
use crate::line::{Line, LineBuffer};

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
    input: LineBuffer,
    pub(super) output: Vec<u8>,
    pub(super) phase: Phase,
    /// The decision event the driver has not answered yet; nothing else is
    /// processed until it is.
    waiting: Option<Pop3Event>,
    pub(super) tls: bool,
    errors: u32,
}

impl Pop3Session {
    /// A session in the AUTHORIZATION state with the greeting queued.
    pub fn new(cfg: Pop3Config) -> Self {
        let mut output = Vec::new();
        ok(&mut output, &format!("{} POP3 server ready", cfg.greeting_host));
        Self {
            cfg,
            input: LineBuffer::new(),
            output,
            phase: Phase::Authorization { user: None },
            waiting: None,
            tls: false,
            errors: 0,
        }
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

    /// Processes buffered commands until one needs the driver.
    pub fn next_event(&mut self) -> Pop3Event {
        if let Some(event) = &self.waiting {
            return event.clone();
        }
        loop {
            if matches!(self.phase, Phase::Closed) {
                return Pop3Event::Close;
            }
            if self.output.len() >= OUTPUT_HIGH_WATER && !self.input.is_empty() {
                return Pop3Event::Flush;
            }
            let max = match self.phase {
                Phase::SaslResponse => SASL_LINE_MAX,
                _ => self.cfg.max_line,
            };
            let Some(line) = self.input.next_line(max) else {
                return Pop3Event::NeedInput;
            };
            if let Some(event) = self.handle(line) {
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
            AuthDone::Ok { maildrop } => {
                let maildrop = Maildrop::new(maildrop);
                let (n, size) = maildrop.summary();
                ok(out, &format!("maildrop has {n} messages ({size} octets)"));
                self.phase = Phase::Transaction(maildrop);
            }
            AuthDone::Fail => {
                self.bad("[AUTH] invalid user name or password");
            }
            AuthDone::InUse => err(out, "[IN-USE] maildrop already locked by another session"),
            AuthDone::Tempfail => err(out, "[SYS/TEMP] temporary failure, try again later"),
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
        // Anything that arrived before the handshake was sent in plaintext
        // and may be an injected command (RFC 2595 4, CVE-2011-0411).
        self.input.clear();
        self.tls = true;
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
