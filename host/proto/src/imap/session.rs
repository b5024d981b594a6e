//! The session state machine: framing (lines and literals with their
//! limits), the RFC 3501 3 states, the error limit, timers, and the hand-offs
//! to the driver. Commands run in `commands` (any state, not authenticated,
//! authenticated) and `selected`.

use super::list_extended::{self, Selection};
use super::request::{Answer, Request};
use super::selected::Job;
use super::view::{MailboxChange, View};
use super::{ImapConfig, ImapEvent, LoginDone};
use crate::timer::PhaseTimer;
use ferrymail_policy::SessionInfo;
use imap_codec::decode::Decoder;
use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LineEnding};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::{LiteralMode, Tag};
use imap_codec::{AuthenticateDataCodec, CommandCodec};
use std::time::Instant;

/// Past this much unwritten output, a command that produces more (a long
/// FETCH) stops and lets the driver write it first.
pub(super) const OUTPUT_HIGH_WATER: usize = 256 * 1024;

/// RFC 3501 3: the connection's state.
pub(super) enum State {
    NotAuthenticated,
    Authenticated,
    Selected(Box<View>),
    Logout,
}

/// What the next complete client message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mode {
    Command,
    /// After `+ ` to AUTHENTICATE: a base64 response line or `*`.
    AuthResponse {
        tag: String,
    },
    /// In IDLE (RFC 2177): only `DONE` ends it.
    Idle {
        tag: String,
    },
}

/// An IMAP4rev1 server session for one connection; see the module docs.
pub struct ImapSession {
    pub(super) cfg: ImapConfig,
    pub(super) info: SessionInfo,
    input: Fragmentizer,
    /// Where the current line of the current client message starts.
    line_start: usize,
    /// A literal's bytes are arriving.
    in_literal: bool,
    pub(super) output: Vec<u8>,
    pub(super) state: State,
    pub(super) mode: Mode,
    /// A decision event not answered yet; nothing else runs until it is.
    waiting: Option<ImapEvent>,
    /// The command waiting for a store answer, and its next request.
    pub(super) job: Option<Job>,
    pub(super) next_request: Option<Request>,
    /// The LIST-EXTENDED selection of the command being run.
    pub(super) list_selection: Selection,
    errors: u32,
    timer: PhaseTimer,
    timed_out: bool,
}

pub(super) fn tagged(out: &mut Vec<u8>, tag: &str, status: &str, text: &str) {
    out.extend_from_slice(tag.as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.as_bytes());
    out.push(b' ');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub(super) fn untagged(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"* ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl ImapSession {
    /// A session in the not-authenticated state with the greeting queued.
    /// On an implicit-TLS port (RFC 8314, 993) `info.tls` is already true.
    pub fn new(cfg: ImapConfig, info: SessionInfo) -> Self {
        // A command is its lines plus its literals: bounded, so a client
        // can make the session hold at most one APPEND's worth.
        let max_message = cfg.max_literal.saturating_add(cfg.max_line as u32 * 4);
        let mut s = Self {
            input: Fragmentizer::new(max_message),
            line_start: 0,
            in_literal: false,
            output: Vec::new(),
            state: State::NotAuthenticated,
            mode: Mode::Command,
            waiting: None,
            job: None,
            next_request: None,
            list_selection: Selection::default(),
            errors: 0,
            timer: PhaseTimer::default(),
            timed_out: false,
            cfg,
            info,
        };
        let caps = s.capabilities();
        let greeting = format!("OK [CAPABILITY {caps}] {} IMAP4rev1 server ready", s.cfg.greeting_host);
        untagged(&mut s.output, &greeting);
        s
    }

    /// What hooks are told about this session.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The autologout timer expired (or a write could not finish in time).
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The selected mailbox's id: the driver listens for its changes.
    pub fn selected(&self) -> Option<u32> {
        match &self.state {
            State::Selected(view) => Some(view.id),
            _ => None,
        }
    }

    /// A mailbox is selected with SELECT (not EXAMINE): new mail it hears
    /// of first is its `\Recent` (RFC 3501 2.3.2).
    pub fn selected_read_write(&self) -> bool {
        matches!(&self.state, State::Selected(view) if !view.read_only)
    }

    /// When the driver must call [`Self::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.deadline()
    }

    /// The clock reached [`Self::poll_timeout`]: autologout (RFC 3501 5.4)
    /// with `* BYE`, or a write that could not finish.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.timer.expired(now) || matches!(self.state, State::Logout) {
            return;
        }
        self.timer.stop();
        self.timed_out = true;
        if self.waiting == Some(ImapEvent::StartTls) {
            // Mid-handshake: nothing can be said in plaintext any more.
            self.output.clear();
        } else {
            untagged(&mut self.output, "BYE Autologout; idle for too long");
        }
        self.waiting = None;
        self.state = State::Logout;
    }

    /// Logins are refused on this connection until STARTTLS (RFC 3501 6.2.3).
    pub(super) fn login_disabled(&self) -> bool {
        !self.info.tls && !self.cfg.plaintext_auth
    }

    /// Buffers bytes read from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !matches!(self.state, State::Logout) {
            self.input.enqueue_bytes(bytes);
        }
    }

    /// Bytes to write to the client, in order.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// A change to the selected mailbox made elsewhere; announced at the
    /// end of the next command, or at once in IDLE. Ignored when no mailbox
    /// is selected.
    pub fn mailbox_changed(&mut self, change: MailboxChange) {
        let idling = matches!(self.mode, Mode::Idle { .. });
        if let State::Selected(view) = &mut self.state {
            view.note(change);
            if idling {
                view.announce(&mut self.output, true, false);
            }
        }
    }

    /// Processes buffered input until something needs the driver.
    pub fn next_event(&mut self, now: Instant) -> ImapEvent {
        if let Some(event) = &self.waiting {
            return event.clone();
        }
        loop {
            if matches!(self.state, State::Logout) {
                self.timer.stop();
                return ImapEvent::Close;
            }
            if let Some(request) = self.next_request.take() {
                if self.output.len() >= OUTPUT_HIGH_WATER {
                    // Writing a big answer is bounded like any phase.
                    self.next_request = Some(request);
                    self.timer.arm(now, self.cfg.idle_timeout);
                    return ImapEvent::Flush;
                }
                self.timer.stop();
                let event = ImapEvent::Request(request);
                self.waiting = Some(event.clone());
                return event;
            }
            match self.next_message() {
                Framed::NeedInput => {
                    self.timer.arm(now, self.cfg.idle_timeout);
                    if self.timer.expired(now) {
                        self.handle_timeout(now);
                        continue;
                    }
                    return ImapEvent::NeedInput;
                }
                Framed::Handled => {}
                Framed::Message(bytes) => {
                    self.timer.stop();
                    if let Some(event) = self.handle(&bytes) {
                        if event == ImapEvent::StartTls {
                            self.timer.restart(now, self.cfg.tls_timeout);
                        }
                        self.waiting = Some(event.clone());
                        return event;
                    }
                }
            }
        }
    }

    /// Splits the input into client messages (a command with its literals,
    /// an AUTHENTICATE response, IDLE's DONE), enforcing the line and
    /// literal limits as the announcements arrive.
    fn next_message(&mut self) -> Framed {
        loop {
            let Some(fragment) = self.input.progress() else {
                let current = self.input.message_bytes().len().saturating_sub(self.line_start);
                if !self.in_literal && current > self.cfg.max_line {
                    // The rest of the line cannot be told from a new command.
                    untagged(&mut self.output, "BYE [TOOBIG] command line too long");
                    self.state = State::Logout;
                    return Framed::Handled;
                }
                return Framed::NeedInput;
            };
            match fragment {
                FragmentInfo::Literal { end, .. } => {
                    self.line_start = end;
                    self.in_literal = false;
                }
                FragmentInfo::Line { start, end, announcement, ending } => {
                    self.line_start = end;
                    let tag = self.input.decode_tag().map(|t| t.inner().to_string());
                    if end - start > self.cfg.max_line {
                        untagged(&mut self.output, "BYE [TOOBIG] command line too long");
                        self.state = State::Logout;
                        return Framed::Handled;
                    }
                    if let Some(announced) = announcement {
                        if ending == LineEnding::Lf {
                            self.input.poison_message();
                        }
                        if announced.length > self.cfg.max_literal {
                            self.refuse_literal(announced.mode, tag);
                            return Framed::Handled;
                        }
                        if announced.mode == LiteralMode::Sync {
                            self.output.extend_from_slice(b"+ Ready for literal data\r\n");
                        }
                        // Its bytes are bounded by max_literal, not max_line.
                        self.in_literal = announced.length > 0;
                        continue;
                    }
                    self.line_start = 0;
                    let bytes = self.input.message_bytes().to_vec();
                    let whole = !self.input.is_max_message_size_exceeded() && !self.input.is_message_poisoned();
                    if !whole || ending == LineEnding::Lf {
                        let tag = tag.unwrap_or_else(|| "*".into());
                        self.bad(&tag, "line must end with CRLF, and the command must fit the limits");
                        return Framed::Handled;
                    }
                    return Framed::Message(bytes);
                }
            }
        }
    }

    /// RFC 7888 4: a synchronising literal over the limit is refused before
    /// the client sends it; a non-synchronising one is already on its way
    /// and cannot be told apart from commands, so the session ends.
    fn refuse_literal(&mut self, mode: LiteralMode, tag: Option<String>) {
        match (mode, tag) {
            (LiteralMode::Sync, Some(tag)) => {
                self.input.skip_message();
                self.line_start = 0;
                self.in_literal = false;
                tagged(&mut self.output, &tag, "NO", "[TOOBIG] literal too large");
            }
            _ => {
                untagged(&mut self.output, "BYE [TOOBIG] literal too large");
                self.state = State::Logout;
            }
        }
    }

    fn handle(&mut self, bytes: &[u8]) -> Option<ImapEvent> {
        match self.mode.clone() {
            Mode::Command => {
                let rewritten = list_extended::rewrite(bytes);
                self.list_selection = rewritten.as_ref().map(|r| r.1).unwrap_or_default();
                let bytes = rewritten.as_ref().map_or(bytes, |r| r.0.as_slice());
                self.command_bytes(bytes)
            }
            Mode::AuthResponse { tag } => {
                self.mode = Mode::Command;
                match AuthenticateDataCodec::default().decode(bytes) {
                    Ok((_, data)) => self.auth_response(tag, data),
                    Err(_) => self.bad(&tag, "invalid base64 in AUTHENTICATE response"),
                }
            }
            Mode::Idle { tag } => {
                self.mode = Mode::Command;
                if bytes.eq_ignore_ascii_case(b"DONE\r\n") {
                    self.finish(&tag, "IDLE terminated");
                    None
                } else {
                    self.bad(&tag, "expected DONE")
                }
            }
        }
    }

    fn command_bytes(&mut self, bytes: &[u8]) -> Option<ImapEvent> {
        match CommandCodec::default().decode(bytes) {
            Ok((b"", command)) => {
                let tag = command.tag.inner().to_string();
                self.command(tag, command.body.into_static())
            }
            _ => {
                let tag = tag_of(bytes).unwrap_or_else(|| "*".into());
                self.bad(&tag, "syntax error in command")
            }
        }
    }

    /// Ends a command with its tagged OK, announcing pending changes first.
    pub(super) fn finish(&mut self, tag: &str, text: &str) {
        self.announce(true, false);
        tagged(&mut self.output, tag, "OK", text);
    }

    /// Writes pending changes of the selected mailbox.
    pub(super) fn announce(&mut self, expunge_allowed: bool, with_uid: bool) {
        if let State::Selected(view) = &mut self.state {
            view.announce(&mut self.output, expunge_allowed, with_uid);
        }
    }

    /// Answers a bad command with BAD, or ends the session at the error
    /// limit. Returns `None` so handlers can end with it.
    pub(super) fn bad(&mut self, tag: &str, text: &str) -> Option<ImapEvent> {
        self.errors = self.errors.saturating_add(1);
        if self.cfg.max_errors != 0 && self.errors >= self.cfg.max_errors {
            untagged(&mut self.output, "BYE Too many invalid commands");
            self.state = State::Logout;
        } else {
            tagged(&mut self.output, tag, "BAD", text);
        }
        None
    }

    /// Counts a failed login towards the error limit.
    pub(super) fn count_error(&mut self) {
        self.errors = self.errors.saturating_add(1);
        if self.cfg.max_errors != 0 && self.errors >= self.cfg.max_errors {
            untagged(&mut self.output, "BYE Too many errors");
            self.state = State::Logout;
        }
    }

    /// Answers [`ImapEvent::Login`]; ignored at any other time.
    pub fn login_done(&mut self, outcome: LoginDone) {
        let Some(ImapEvent::Login { .. }) = &self.waiting else { return };
        self.waiting = None;
        let Some(Job::Login { tag }) = self.job.take() else { return };
        match outcome {
            LoginDone::Ok { user, tenant } => {
                self.info.auth_user = Some(user);
                self.info.tenant = tenant;
                self.state = State::Authenticated;
                let caps = self.capabilities();
                tagged(&mut self.output, &tag, "OK", &format!("[CAPABILITY {caps}] Logged in"));
            }
            LoginDone::Fail => {
                tagged(&mut self.output, &tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
                self.count_error();
            }
            LoginDone::Tempfail => {
                tagged(&mut self.output, &tag, "NO", "[UNAVAILABLE] Temporary failure, try again later")
            }
            LoginDone::Limit => tagged(&mut self.output, &tag, "NO", "[LIMIT] Too many sessions for this user"),
        }
    }

    /// Answers [`ImapEvent::Request`]; ignored at any other time.
    pub fn answer(&mut self, answer: Answer) {
        let Some(ImapEvent::Request(_)) = &self.waiting else { return };
        self.waiting = None;
        if let Some(job) = self.job.take() {
            let _ = self.step(job, answer);
        }
    }

    /// Answers [`ImapEvent::StartTls`] once the handshake succeeded.
    pub fn tls_established(&mut self) {
        if self.waiting != Some(ImapEvent::StartTls) {
            return;
        }
        self.waiting = None;
        self.timer.stop();
        // Anything sent before the handshake was plaintext and may be an
        // injected command (RFC 3501 6.2.1, CVE-2011-0411).
        self.input = Fragmentizer::new(self.cfg.max_literal.saturating_add(self.cfg.max_line as u32 * 4));
        self.line_start = 0;
        self.in_literal = false;
        self.info.tls = true;
    }

    /// Asks the driver for a store operation on behalf of `job`.
    pub(super) fn request(&mut self, job: Job, request: Request) -> Option<ImapEvent> {
        self.job = Some(job);
        self.next_request = Some(request);
        None
    }
}

enum Framed {
    NeedInput,
    /// Answered already (a refused literal, a framing error).
    Handled,
    Message(Vec<u8>),
}

/// The tag of a command that failed to parse, if it has one worth echoing.
fn tag_of(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
    let tag = std::str::from_utf8(&bytes[..end]).ok()?;
    Tag::try_from(tag).ok().map(|t| t.inner().to_string())
}
