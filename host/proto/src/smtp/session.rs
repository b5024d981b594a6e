//! The SMTP server session: RFC 5321 sequencing with PIPELINING (RFC 2920),
//! SIZE (RFC 1870), 8BITMIME (RFC 6152), ENHANCEDSTATUSCODES (RFC 2034,
//! codes from RFC 3463), SMTPUTF8 (RFC 6531), STARTTLS (RFC 3207) and AUTH
//! (RFC 4954).
//!
//! Driver contract: `feed` what the socket gave, call `next_event` until it
//! says `NeedInput` or `Close`, answering every decision event with the
//! matching method before calling `next_event` again; write `take_output`
//! to the socket before waiting for more input.

use super::command::{self, Command, MailParams, ParseError};
use super::data::{DataError, DataProgress, DataReceiver};
use crate::line::{Line, LineBuffer};
use crate::sasl::{self, SaslError};
use ferrymail_policy::{Envelope, Reply, Verdict};

/// Limits and offers of one listener.
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
    /// Bad commands tolerated before the session is closed with 421.
    pub max_errors: u32,
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
            starttls: false,
            auth: false,
            auth_without_tls: false,
            require_auth: false,
            postmaster: None,
        }
    }
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpEvent {
    /// Write the output, then feed more input.
    NeedInput,
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
    /// [`SmtpSession::envelope`]. Make it durable, then answer with
    /// [`SmtpSession::reply`] (250 only once it is safe on disk).
    Message(Vec<u8>),
    /// The 220 is queued: write it, run the TLS handshake, then call
    /// [`SmtpSession::tls_established`] (or close on failure).
    StartTls,
    /// Answer with [`SmtpSession::auth_result`].
    Auth { mechanism: String, username: String, password: String },
    /// Write the output and close the connection.
    Close,
}

/// The outcome of an AUTH attempt, decided by the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    Ok { user: String },
    Fail,
    Tempfail,
}

/// Which RFC 5321 4.5.3.2 server timeout applies while waiting for input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Next command: 5 minutes (4.5.3.2.7).
    Command,
    /// More message content: the data block timeout (4.5.3.2.5, 3 minutes
    /// client side; servers use at least that).
    Data,
}

#[derive(Debug)]
enum Phase {
    Command,
    Data(Box<DataReceiver>),
    /// AUTH LOGIN waiting for the username, or PLAIN for its response.
    SaslPlain,
    SaslLoginUser,
    SaslLoginPass {
        user: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Helo { name: String, ehlo: bool },
    Mail { from: String, params: MailParams },
    Rcpt { to: String },
    Reply,
    Message,
    StartTls,
    Auth,
}

#[derive(Debug, Default, Clone)]
struct Transaction {
    from: String,
    params: MailParams,
    rcpts: Vec<String>,
}

pub struct SmtpSession {
    cfg: SmtpConfig,
    input: LineBuffer,
    out: Vec<u8>,
    phase: Phase,
    pending: Option<Pending>,
    helo: Option<String>,
    esmtp: bool,
    tls: bool,
    auth_user: Option<String>,
    txn: Option<Transaction>,
    errors: u32,
    closed: bool,
}

fn r(code: u16, enhanced: &str, text: &str) -> Reply {
    Reply::new(code, enhanced, text)
}

impl SmtpSession {
    /// A session whose 220 greeting is already queued (the connect hook
    /// accepted the client).
    pub fn new(cfg: SmtpConfig) -> Self {
        let greeting = Reply::plain(220, format!("{} ESMTP ferrymail ready", cfg.hostname));
        let mut s = SmtpSession {
            cfg,
            input: LineBuffer::new(),
            out: Vec::new(),
            phase: Phase::Command,
            pending: None,
            helo: None,
            esmtp: false,
            tls: false,
            auth_user: None,
            txn: None,
            errors: 0,
            closed: false,
        };
        s.send(&greeting);
        s
    }

    /// A session on an implicit-TLS port (RFC 8314): TLS from the first byte.
    pub fn new_tls(cfg: SmtpConfig) -> Self {
        let mut s = Self::new(cfg);
        s.tls = true;
        s
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.extend(bytes);
    }

    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    pub fn helo(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    pub fn is_esmtp(&self) -> bool {
        self.esmtp
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    pub fn auth_user(&self) -> Option<&str> {
        self.auth_user.as_deref()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
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

    pub fn waiting(&self) -> Waiting {
        match self.phase {
            Phase::Data(_) => Waiting::Data,
            _ => Waiting::Command,
        }
    }

    /// Closes the session with a 421 (RFC 5321 3.8), e.g. on timeout or shutdown.
    pub fn shutdown(&mut self, text: &str) {
        self.send(&r(421, "4.4.2", &format!("{} {}", self.cfg.hostname, text)));
        self.closed = true;
    }

    pub fn next_event(&mut self) -> SmtpEvent {
        loop {
            if self.closed {
                return SmtpEvent::Close;
            }
            if self.pending.is_some() {
                // The driver owes a decision; nothing proceeds until it comes.
                return SmtpEvent::NeedInput;
            }
            let event = match self.phase {
                Phase::Data(_) => self.step_data(),
                Phase::Command => match self.input.next_line(self.cfg.max_command_line) {
                    None => return SmtpEvent::NeedInput,
                    Some(Line::TooLong) => {
                        self.error(r(500, "5.5.2", "Line too long"));
                        None
                    }
                    Some(Line::Complete(line)) => self.command(&line),
                },
                Phase::SaslPlain | Phase::SaslLoginUser | Phase::SaslLoginPass { .. } => {
                    match self.input.next_line(sasl::MAX_AUTH_LINE) {
                        None => return SmtpEvent::NeedInput,
                        Some(Line::TooLong) => {
                            self.phase = Phase::Command;
                            self.error(r(500, "5.5.6", "Authentication exchange line too long"));
                            None
                        }
                        Some(Line::Complete(line)) => self.sasl_line(&line),
                    }
                }
            };
            match event {
                Some(SmtpEvent::NeedInput) => return SmtpEvent::NeedInput,
                Some(e) => return e,
                None => continue,
            }
        }
    }

    /// Answers Helo, Mail and Rcpt events.
    pub fn verdict(&mut self, verdict: Verdict) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let ok = matches!(verdict, Verdict::Accept | Verdict::Continue);
        match pending {
            Pending::Helo { name, ehlo } if ok => self.helo_ok(name, ehlo),
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
                self.send(&r(554, "5.7.1", "Relay access denied"));
            }
            _ => self.refuse(verdict),
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

    pub fn auth_result(&mut self, result: AuthResult) {
        if self.pending.take() != Some(Pending::Auth) {
            return;
        }
        match result {
            AuthResult::Ok { user } => {
                self.auth_user = Some(user);
                self.send(&r(235, "2.7.0", "Authentication successful"));
            }
            AuthResult::Fail => {
                self.errors += 1;
                self.send(&r(535, "5.7.8", "Authentication credentials invalid"));
            }
            AuthResult::Tempfail => {
                self.send(&r(454, "4.7.0", "Temporary authentication failure"));
            }
        }
    }

    /// The TLS handshake completed: forget everything (RFC 3207 4.2) —
    /// including input that arrived before the handshake, the command
    /// injection of CVE-2011-0411.
    pub fn tls_established(&mut self) {
        if self.pending.take() != Some(Pending::StartTls) {
            return;
        }
        self.tls = true;
        self.helo = None;
        self.esmtp = false;
        self.txn = None;
        self.auth_user = None;
        self.input.clear();
    }

    fn step_data(&mut self) -> Option<SmtpEvent> {
        let chunk = self.input.take_pending();
        let Phase::Data(receiver) = &mut self.phase else { unreachable!() };
        match receiver.feed(&chunk) {
            DataProgress::More => Some(SmtpEvent::NeedInput),
            DataProgress::Done { consumed } => {
                self.input.extend(&chunk[consumed..]);
                let Phase::Data(receiver) = std::mem::replace(&mut self.phase, Phase::Command) else { unreachable!() };
                match receiver.finish() {
                    Ok(content) => {
                        self.pending = Some(Pending::Message);
                        Some(SmtpEvent::Message(content))
                    }
                    Err(e) => {
                        self.txn = None;
                        self.send(&data_error_reply(e, self.cfg.max_text_line));
                        None
                    }
                }
            }
        }
    }

    fn command(&mut self, line: &[u8]) -> Option<SmtpEvent> {
        match command::parse(line) {
            Ok(cmd) => self.dispatch(cmd),
            Err(e) => {
                self.error(parse_error_reply(e));
                None
            }
        }
    }

    fn dispatch(&mut self, cmd: Command) -> Option<SmtpEvent> {
        match cmd {
            Command::Helo(name) => {
                self.ask(Pending::Helo { name: name.clone(), ehlo: false }, SmtpEvent::Helo { name, ehlo: false })
            }
            Command::Ehlo(name) => {
                self.ask(Pending::Helo { name: name.clone(), ehlo: true }, SmtpEvent::Helo { name, ehlo: true })
            }
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to } => self.rcpt(to),
            Command::Data => self.data(),
            Command::Rset => {
                self.txn = None;
                self.send(&r(250, "2.0.0", "Reset state"));
                None
            }
            Command::Noop => {
                self.send(&r(250, "2.0.0", "OK"));
                None
            }
            Command::Quit => {
                self.send(&r(221, "2.0.0", &format!("{} closing connection", self.cfg.hostname)));
                self.closed = true;
                None
            }
            Command::Help(_) => {
                self.send(&Reply::new(
                    214,
                    "2.0.0",
                    "Commands supported:\nHELO EHLO MAIL RCPT DATA RSET NOOP QUIT\nHELP VRFY EXPN VERB STARTTLS AUTH\nEnd of HELP info",
                ));
                None
            }
            Command::Vrfy(arg) | Command::Expn(arg) if arg.trim().is_empty() => {
                self.error(r(501, "5.5.4", "Syntax: VRFY/EXPN string"));
                None
            }
            Command::Vrfy(arg) => self.ask(Pending::Reply, SmtpEvent::Vrfy(arg)),
            Command::Expn(arg) => self.ask(Pending::Reply, SmtpEvent::Expn(arg)),
            Command::Verb => {
                // VERB (Sendmail's verbose mode) is answered, not refused:
                // old clients send it and expect a 2xx.
                self.send(&r(250, "2.0.0", "Verbose mode not supported; continuing"));
                None
            }
            Command::StartTls => self.starttls(),
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial),
            Command::NotImplemented(name) => {
                self.error(r(502, "5.5.1", &format!("{name} not implemented")));
                None
            }
        }
    }

    fn ask(&mut self, pending: Pending, event: SmtpEvent) -> Option<SmtpEvent> {
        self.pending = Some(pending);
        Some(event)
    }

    fn mail(&mut self, from: String, params: MailParams) -> Option<SmtpEvent> {
        // RFC 5321 4.1.4: a transaction needs a prior HELO/EHLO.
        let refusal = if self.helo.is_none() {
            Some(r(503, "5.5.1", "Send HELO/EHLO first"))
        } else if self.txn.is_some() {
            Some(r(503, "5.5.1", "Nested MAIL command"))
        } else if self.cfg.require_auth && self.auth_user.is_none() {
            Some(r(530, "5.7.0", "Authentication required"))
        } else if params.size.is_some_and(|s| s > self.cfg.max_message_size) {
            Some(r(552, "5.3.4", "Message size exceeds fixed maximum message size"))
        } else if !from.is_ascii() && !params.smtputf8 {
            Some(r(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"))
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.send(&reply);
            return None;
        }
        self.ask(Pending::Mail { from: from.clone(), params: params.clone() }, SmtpEvent::Mail { from, params })
    }

    fn rcpt(&mut self, to: String) -> Option<SmtpEvent> {
        // RFC 5321 4.5.1: the parser lets a bare Postmaster through (any
        // case); the policy and the envelope get it qualified.
        let to = if to.eq_ignore_ascii_case("postmaster") {
            match &self.cfg.postmaster {
                Some(address) => address.clone(),
                None => format!("postmaster@{}", self.cfg.hostname),
            }
        } else {
            to
        };
        let refusal = match &self.txn {
            None => Some(r(503, "5.5.1", "Need MAIL command")),
            Some(t) if t.rcpts.len() >= self.cfg.max_recipients => {
                // RFC 5321 4.5.3.1.10: 452 so the client retries the rest later.
                Some(r(452, "4.5.3", "Too many recipients"))
            }
            Some(_) if to.is_empty() => Some(r(501, "5.1.3", "Bad recipient address syntax")),
            Some(t) if !to.is_ascii() && !t.params.smtputf8 => {
                Some(r(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"))
            }
            Some(_) => None,
        };
        if let Some(reply) = refusal {
            self.send(&reply);
            return None;
        }
        self.ask(Pending::Rcpt { to: to.clone() }, SmtpEvent::Rcpt { to })
    }

    fn data(&mut self) -> Option<SmtpEvent> {
        // RFC 5321 3.3: 503 without MAIL; 554 when no recipient was accepted.
        match &self.txn {
            None => self.send(&r(503, "5.5.1", "Need MAIL command")),
            Some(t) if t.rcpts.is_empty() => self.send(&r(554, "5.5.1", "No valid recipients")),
            Some(_) => {
                self.send(&Reply::plain(354, "End data with <CR><LF>.<CR><LF>"));
                self.phase =
                    Phase::Data(Box::new(DataReceiver::new(self.cfg.max_message_size, self.cfg.max_text_line)));
            }
        }
        None
    }

    fn starttls(&mut self) -> Option<SmtpEvent> {
        if !self.cfg.starttls {
            self.error(r(502, "5.5.1", "STARTTLS not available"));
            None
        } else if self.tls {
            self.send(&r(503, "5.5.1", "TLS already active"));
            None
        } else {
            self.send(&r(220, "2.0.0", "Ready to start TLS"));
            self.ask(Pending::StartTls, SmtpEvent::StartTls)
        }
    }

    fn auth_offered(&self) -> bool {
        self.cfg.auth && (self.tls || self.cfg.auth_without_tls)
    }

    fn auth(&mut self, mechanism: String, initial: Option<String>) -> Option<SmtpEvent> {
        let refusal = if !self.cfg.auth {
            Some(r(502, "5.5.1", "AUTH not available"))
        } else if !self.auth_offered() {
            Some(r(538, "5.7.11", "Encryption required for requested authentication mechanism"))
        } else if !self.esmtp {
            Some(r(503, "5.5.1", "Send EHLO first"))
        } else if self.auth_user.is_some() {
            Some(r(503, "5.5.1", "Already authenticated"))
        } else if self.txn.is_some() {
            Some(r(503, "5.5.1", "AUTH not allowed during a mail transaction"))
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.send(&reply);
            return None;
        }
        match (mechanism.as_str(), initial) {
            ("PLAIN", Some(resp)) => self.sasl_response(Phase::SaslPlain, &resp),
            ("PLAIN", None) => {
                self.send(&Reply::plain(334, ""));
                self.phase = Phase::SaslPlain;
                None
            }
            ("LOGIN", Some(resp)) => self.sasl_response(Phase::SaslLoginUser, &resp),
            ("LOGIN", None) => {
                self.send(&Reply::plain(334, sasl::LOGIN_USER_CHALLENGE));
                self.phase = Phase::SaslLoginUser;
                None
            }
            _ => {
                self.error(r(504, "5.5.4", "Unrecognized authentication mechanism"));
                None
            }
        }
    }

    fn sasl_line(&mut self, line: &[u8]) -> Option<SmtpEvent> {
        let phase = std::mem::replace(&mut self.phase, Phase::Command);
        let text = String::from_utf8_lossy(line).into_owned();
        if text.trim() == "*" {
            self.send(&r(501, "5.0.0", "Authentication cancelled"));
            return None;
        }
        self.sasl_response(phase, &text)
    }

    fn sasl_response(&mut self, phase: Phase, response: &str) -> Option<SmtpEvent> {
        let decoded = sasl::decode(response);
        let step = decoded.and_then(|bytes| match phase {
            Phase::SaslPlain => sasl::parse_plain(&bytes).map(|(u, p)| Some(("PLAIN", u, p))),
            Phase::SaslLoginUser => sasl::utf8(bytes).map(|user| {
                self.phase = Phase::SaslLoginPass { user };
                None
            }),
            Phase::SaslLoginPass { user } => sasl::utf8(bytes).map(|pass| Some(("LOGIN", user, pass))),
            _ => Err(SaslError::Credentials),
        });
        match step {
            Ok(Some((mechanism, username, password))) => {
                self.ask(Pending::Auth, SmtpEvent::Auth { mechanism: mechanism.into(), username, password })
            }
            Ok(None) => {
                self.send(&Reply::plain(334, sasl::LOGIN_PASS_CHALLENGE));
                None
            }
            Err(SaslError::Encoding) => {
                self.phase = Phase::Command;
                self.error(r(501, "5.5.2", "Cannot decode response"));
                None
            }
            Err(SaslError::Credentials) => {
                self.phase = Phase::Command;
                self.errors += 1;
                self.send(&r(535, "5.7.8", "Authentication credentials invalid"));
                None
            }
        }
    }

    fn helo_ok(&mut self, name: String, ehlo: bool) {
        // RFC 5321 4.1.4: EHLO/HELO also resets any transaction.
        self.txn = None;
        self.esmtp = ehlo;
        let greeting = format!("{} Hello {}", self.cfg.hostname, name);
        self.helo = Some(name);
        if !ehlo {
            self.send(&Reply::plain(250, greeting));
            return;
        }
        let mut lines = vec![
            greeting,
            "PIPELINING".into(),
            format!("SIZE {}", self.cfg.max_message_size),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ];
        if self.cfg.starttls && !self.tls {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() && self.auth_user.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        self.send(&Reply::plain(250, lines.join("\n")));
    }

    fn refuse(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Reject(reply) | Verdict::Tempfail(reply) => self.send(&reply),
            Verdict::Disconnect(reply) => {
                self.send(&reply);
                self.closed = true;
            }
            Verdict::Continue | Verdict::Accept => {}
        }
    }

    fn error(&mut self, reply: Reply) {
        self.errors += 1;
        self.send(&reply);
        if self.errors >= self.cfg.max_errors {
            self.send(&r(421, "4.7.0", &format!("{} Too many errors, closing connection", self.cfg.hostname)));
            self.closed = true;
        }
    }

    fn send(&mut self, reply: &Reply) {
        self.out.extend_from_slice(&reply.to_wire());
    }
}

fn parse_error_reply(e: ParseError) -> Reply {
    match e {
        ParseError::Unknown => r(500, "5.5.2", "Command not recognized"),
        ParseError::Syntax(syntax) => r(501, "5.5.4", &format!("Syntax: {syntax}")),
        ParseError::BadAddress { sender: true } => r(501, "5.1.7", "Bad sender address syntax"),
        ParseError::BadAddress { sender: false } => r(501, "5.1.3", "Bad recipient address syntax"),
        ParseError::Parameter(p) => r(555, "5.5.4", &format!("Unsupported parameter {p}")),
    }
}

fn data_error_reply(e: DataError, max_line: usize) -> Reply {
    match e {
        DataError::TooBig => r(552, "5.3.4", "Message size exceeds fixed maximum message size"),
        DataError::LineTooLong => {
            r(554, "5.6.0", &format!("Message refused: a line is longer than {max_line} octets (RFC 5321 4.5.3.1.6)"))
        }
        DataError::BareLineEnding => {
            r(554, "5.6.0", "Message refused: bare CR or LF in content; lines must end in CRLF (RFC 5321 2.3.8)")
        }
        DataError::Nul => r(554, "5.6.0", "Message refused: NUL octets in content"),
    }
}
