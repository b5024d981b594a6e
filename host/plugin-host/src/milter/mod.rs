//! The milter bridge: a chain element `milter:NAME` that asks a milter
//! (rspamd, OpenDKIM, clamav-milter …) over the milter protocol v6
//! ([`codec`]), configured by `[milters.NAME]`.
//!
//! One connection per SMTP session and milter, opened the first time the
//! chain reaches the milter and closed when the session ends
//! (`Policy::end`), so the milter is asked at the stage it belongs to:
//! connect, helo, mail, each rcpt, then data (headers, body, end of
//! message), and can refuse at MAIL or RCPT. A milter first reached at a
//! later stage (one in a tenant's chain is first asked at RCPT) is told
//! the earlier steps first, and a refusal of one of those refuses the step
//! in progress. Between transactions an unfinished one is aborted
//! (SMFIC_ABORT), as Postfix does.
//!
//! The answers keep libmilter's meaning: accept means "no objection"
//! (never that a recipient is ours: only the chain's plugins claim
//! recipients, so a milter cannot make an open relay); reject, tempfail
//! and a reply code (SMFIR_REPLYCODE) refuse the step; discard drops the
//! message after the 250; accept at connect or helo asks nothing more this
//! session, elsewhere nothing more this message (at RCPT it only accepts
//! that recipient, as in Postfix). Header edits come at the end of the
//! message. Every answer is checked like a plugin's ([`answer`]).
//!
//! Each step (with any catch-up, the connection and option negotiation)
//! runs under one deadline, `timeout`, covering every read and write; a
//! milter that cannot be reached, breaks the protocol or misses the
//! deadline gets `failure` (`tempfail`: 451 4.3.0; `skip`: as if it had
//! said continue) for the rest of the session, and its connection is
//! dropped. Each session talks to its own connection from its own task:
//! a slow milter holds only the sessions waiting for it.

mod answer;
pub mod codec;
mod conversation;

use crate::config::FailurePolicy;
use codec::{Command, Family, proto};
use conversation::{Conversation, Step};
use ferrymail_policy::observe::{self, Failure, HookCall, Outcome};
use ferrymail_policy::{DataVerdict, Envelope, Service, SessionInfo, Verdict, logsafe};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `[milters.NAME]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MilterDecl {
    /// `inet:HOST:PORT` or `unix:PATH` (Postfix's notation).
    pub socket: String,
    /// What an unreachable, broken or late milter's answer becomes, as for
    /// a plugin: `tempfail` (451 4.3.0) or `skip` (as if it had said continue).
    #[serde(default)]
    pub failure: FailurePolicy,
    /// The longest one step may take (connect, option negotiation and
    /// catch-up included; at data: the whole message and the answer).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// The chain element's prefix: `milter:NAME`.
pub const PREFIX: &str = "milter:";

/// Where a milter listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socket {
    Inet(String),
    Unix(PathBuf),
}

impl Socket {
    pub fn parse(s: &str) -> Result<Socket, String> {
        if let Some(path) = s.strip_prefix("unix:").or_else(|| s.strip_prefix("local:")) {
            if path.is_empty() {
                return Err("unix: needs a path".into());
            }
            return Ok(Socket::Unix(PathBuf::from(path)));
        }
        let Some(rest) = s.strip_prefix("inet:") else {
            return Err(format!("{s:?}: expected inet:HOST:PORT or unix:PATH"));
        };
        // Sendmail also writes inet:PORT@HOST.
        let hostport = match rest.split_once('@') {
            Some((port, host)) => format!("{host}:{port}"),
            None => rest.to_string(),
        };
        match hostport.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => {
                Ok(Socket::Inet(hostport))
            }
            _ => Err(format!("{s:?}: expected inet:HOST:PORT")),
        }
    }
}

/// The problems of one `[milters.NAME]`, each naming its key.
pub(crate) fn check_decl(name: &str, decl: &MilterDecl) -> Vec<String> {
    let mut errors = Vec::new();
    if !crate::plan::valid_name(name) {
        errors.push(format!("milters.{name}: milter names are lower-case letters, digits, '-' and '_'"));
    }
    if let Err(e) = Socket::parse(&decl.socket) {
        errors.push(format!("milters.{name}.socket: {e}"));
    }
    if decl.timeout.is_zero() {
        errors.push(format!("milters.{name}.timeout: must be more than 0"));
    }
    errors
}

/// A step of the SMTP session, as the chain asks it.
pub(crate) enum Stage<'a> {
    Connect,
    Helo,
    Mail { from: &'a str },
    Rcpt { envelope: &'a Envelope, rcpt: &'a str },
    Data { envelope: &'a Envelope, message: &'a [u8] },
}

impl Stage<'_> {
    fn name(&self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Helo => "helo",
            Stage::Mail { .. } => "mail",
            Stage::Rcpt { .. } => "rcpt",
            Stage::Data { .. } => "data",
        }
    }
}

/// One configured milter, shared by every chain naming it; it holds each
/// SMTP session's conversation.
pub(crate) struct Milter {
    /// `milter:NAME`, as logs and the trace show it.
    label: String,
    socket: Socket,
    failure: FailurePolicy,
    timeout: Duration,
    /// Our host name, for the `j` macro.
    hostname: String,
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Session>>>>,
}

/// What one SMTP session has told the milter, and what it answered.
#[derive(Default)]
struct Session {
    conv: Option<Conversation>,
    /// The milter failed; its failure policy answers from now on.
    failed: bool,
    told_connect: bool,
    told_helo: Option<String>,
    /// Accepted at connect or helo: nothing more this session.
    done: bool,
    /// Refused at connect or helo: every later step gets this.
    refused: Option<Verdict>,
    /// Discard at connect or helo: every message of the session.
    discard_all: bool,
    /// The transaction must be aborted before the next MAIL.
    abort: bool,
    tx: Transaction,
}

/// What the milter knows of the current transaction.
#[derive(Default)]
struct Transaction {
    /// MAIL was told (an SMFIC_ABORT is due unless the message ends).
    open: bool,
    rcpts: Vec<String>,
    /// Accepted: nothing more this message.
    done: bool,
    discard: bool,
}

impl Milter {
    pub(crate) fn new(name: &str, decl: &MilterDecl, hostname: &str) -> Milter {
        Milter {
            label: format!("{PREFIX}{name}"),
            socket: Socket::parse(&decl.socket).expect("checked by plan()"),
            failure: decl.failure,
            timeout: decl.timeout,
            hostname: if hostname.is_empty() { "localhost".into() } else { hostname.into() },
            sessions: Mutex::default(),
        }
    }

    /// The milter's answer at `stage` of `session`. Milters are asked on the
    /// SMTP services only (POP3 and IMAP connects pass).
    pub(crate) async fn ask(&self, session: &SessionInfo, stage: Stage<'_>) -> DataVerdict {
        if !matches!(session.service, Service::Smtp | Service::Submission) {
            return DataVerdict::default();
        }
        let started = Instant::now();
        let state =
            self.sessions.lock().unwrap_or_else(|e| e.into_inner()).entry(session.id.clone()).or_default().clone();
        let mut st = state.lock().await;
        if st.failed {
            return self.failure_answer();
        }
        let out = tokio::time::timeout(self.timeout, st.exchange(self, session, &stage)).await;
        let v = match out {
            Ok(Ok(v)) => match answer::check(&v) {
                Ok(()) => v,
                Err(e) => {
                    return self.failed(
                        &mut st,
                        session,
                        &stage,
                        started,
                        Failure::Invalid,
                        &format!("invalid answer: {e}"),
                    );
                }
            },
            Ok(Err(e)) => return self.failed(&mut st, session, &stage, started, Failure::Other, &e),
            Err(_) => {
                let why = format!("no answer within {}", humantime::format_duration(self.timeout));
                return self.failed(&mut st, session, &stage, started, Failure::Deadline, &why);
            }
        };
        if observe::observing() {
            let shown = Shown(&v);
            observe::report(&HookCall {
                plugin: &self.label,
                tenant: None,
                hook: stage.name(),
                elapsed: started.elapsed(),
                outcome: Outcome::Answered(&shown),
                decided: v.verdict.is_final() || v.discard,
            });
        }
        v
    }

    /// The session ended: say goodbye (SMFIC_QUIT) in the background.
    pub(crate) fn end(&self, session: &str) {
        let Some(state) = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(session) else {
            return;
        };
        let Ok(state) = Arc::try_unwrap(state) else { return };
        if let Some(conv) = state.into_inner().conv {
            let deadline = self.timeout;
            tokio::spawn(async move {
                let _ = tokio::time::timeout(deadline, conv.quit()).await;
            });
        }
    }

    fn failure_answer(&self) -> DataVerdict {
        match self.failure {
            FailurePolicy::Tempfail => {
                DataVerdict { verdict: Verdict::Tempfail(crate::walk::temp_reply()), ..Default::default() }
            }
            FailurePolicy::Skip => DataVerdict::default(),
        }
    }

    fn failed(
        &self,
        st: &mut Session,
        session: &SessionInfo,
        stage: &Stage<'_>,
        started: Instant,
        failure: Failure,
        why: &str,
    ) -> DataVerdict {
        st.failed = true;
        st.conv = None; // closes the socket: a late answer cannot be mistaken for the next one
        let why = logsafe(why).to_string();
        tracing::warn!(session = %session.id, milter = %self.label, stage = stage.name(), error = %why, failure_policy = ?self.failure, "milter failed");
        observe::report(&HookCall {
            plugin: &self.label,
            tenant: None,
            hook: stage.name(),
            elapsed: started.elapsed(),
            outcome: Outcome::Failed(failure, &why),
            decided: self.failure == FailurePolicy::Tempfail,
        });
        self.failure_answer()
    }
}

/// A milter answer as one trace line.
struct Shown<'a>(&'a DataVerdict);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.0.verdict, self.0.discard) {
            (_, true) => write!(f, "discard")?,
            (Verdict::Continue | Verdict::Accept, _) => write!(f, "continue")?,
            (v, _) => write!(f, "{v:?}")?,
        }
        if !self.0.edits.is_empty() {
            write!(f, " ({} header edits)", self.0.edits.len())?;
        }
        Ok(())
    }
}

impl Session {
    /// Everything the milter has not been told up to `stage`, then
    /// `stage`; the first answer that settles it.
    async fn exchange(&mut self, m: &Milter, s: &SessionInfo, stage: &Stage<'_>) -> Result<DataVerdict, String> {
        if let Stage::Mail { .. } = stage {
            // A new transaction; the previous one did not reach the end of its message.
            self.abort |= self.tx.open;
            self.tx = Transaction::default();
        }
        if let Some(v) = &self.refused {
            return Ok(DataVerdict { verdict: v.clone(), ..Default::default() });
        }
        if self.done || self.tx.done || self.tx.discard {
            return Ok(self.ending(stage, DataVerdict::default()));
        }
        if self.conv.is_none() {
            self.conv = Some(Conversation::open(&m.socket).await?);
        }
        let conv = self.conv.as_mut().expect("opened above");
        let name = m.label.as_str();
        if !self.told_connect {
            self.told_connect = true;
            let ip = s.client_ip.to_string();
            let client = s.client_name.clone().unwrap_or_else(|| format!("[{ip}]"));
            let family = if s.client_ip.is_ipv4() { Family::Inet4 } else { Family::Inet6 };
            let macros = [("j", m.hostname.as_str()), ("{daemon_name}", "ferrymail"), ("_", client.as_str())];
            conv.send(&Command::Macro { stage: b'C', pairs: &macros }).await?;
            let cmd = Command::Connect { hostname: &client, family, port: s.client_port, address: &ip };
            let step = conv.step(name, cmd, proto::NOCONNECT, proto::NR_CONN).await?;
            if let Some(v) = self.session_level(step) {
                return Ok(self.ending(stage, v));
            }
        }
        if let Some(helo) = &s.helo
            && self.told_helo.as_ref() != Some(helo)
        {
            self.told_helo = Some(helo.clone());
            let conv = self.conv.as_mut().expect("opened above");
            let step = conv.step(name, Command::Helo(helo), proto::NOHELO, proto::NR_HELO).await?;
            if let Some(v) = self.session_level(step) {
                return Ok(self.ending(stage, v));
            }
        }
        let envelope = match stage {
            Stage::Connect | Stage::Helo => return Ok(DataVerdict::default()),
            Stage::Mail { .. } => None,
            Stage::Rcpt { envelope, .. } | Stage::Data { envelope, .. } => Some(*envelope),
        };
        let conv = self.conv.as_mut().expect("opened above");
        if std::mem::take(&mut self.abort) {
            conv.send(&Command::Abort).await?;
        }
        if !self.tx.open {
            self.tx.open = true;
            let from = match stage {
                Stage::Mail { from } => from,
                _ => envelope.map_or("", |e| e.mail_from.as_str()),
            };
            let auth = s.auth_user.as_deref().unwrap_or("");
            let macros = [("{mail_addr}", from), ("{auth_authen}", auth), ("{auth_type}", "PLAIN")];
            let pairs = if auth.is_empty() { &macros[..1] } else { &macros[..] };
            conv.send(&Command::Macro { stage: b'M', pairs }).await?;
            let arg = format!("<{from}>");
            let step = conv.step(name, Command::Mail(&[arg.as_str()]), proto::NOMAIL, proto::NR_MAIL).await?;
            if let Some(v) = self.message_level(step) {
                return Ok(self.ending(stage, v));
            }
        }
        // Recipients accepted before the milter was asked, then this one.
        let current = match stage {
            Stage::Rcpt { rcpt, .. } => Some(*rcpt),
            _ => None,
        };
        let pending: Vec<&str> = envelope
            .iter()
            .flat_map(|e| e.rcpt_to.iter().map(String::as_str))
            .chain(current)
            .filter(|r| !self.tx.rcpts.iter().any(|t| t == r))
            .collect();
        for rcpt in pending {
            self.tx.rcpts.push(rcpt.to_string());
            let conv = self.conv.as_mut().expect("opened above");
            conv.send(&Command::Macro { stage: b'R', pairs: &[("{rcpt_addr}", rcpt)] }).await?;
            let arg = format!("<{rcpt}>");
            match conv.step(name, Command::Rcpt(&[arg.as_str()]), proto::NORCPT, proto::NR_RCPT).await? {
                // At RCPT, accept accepts the recipient only (Postfix's reading).
                Step::Continue | Step::Done => {}
                step => {
                    if let Some(v) = self.message_level(step) {
                        return Ok(self.ending(stage, v));
                    }
                }
            }
        }
        let Stage::Data { message, .. } = stage else {
            return Ok(DataVerdict::default());
        };
        let v = self.message(m, s, message).await?;
        Ok(self.ending(stage, v))
    }

    /// DATA, the header fields, the body and the end of the message.
    async fn message(&mut self, m: &Milter, s: &SessionInfo, message: &[u8]) -> Result<DataVerdict, String> {
        let name = m.label.as_str();
        let conv = self.conv.as_mut().expect("opened by exchange");
        let step = conv.step(name, Command::Data, proto::NODATA, proto::NR_DATA).await?;
        if let Some(v) = self.message_level(step) {
            return Ok(v);
        }
        let (headers, body) = split_message(message);
        for (field, value) in &headers {
            let conv = self.conv.as_mut().expect("opened by exchange");
            let step = conv.step(name, Command::Header { name: field, value }, proto::NOHDRS, proto::NR_HDR).await?;
            if let Some(v) = self.message_level(step) {
                return Ok(v);
            }
        }
        let conv = self.conv.as_mut().expect("opened by exchange");
        conv.send(&Command::Macro { stage: b'N', pairs: &[("i", &s.id)] }).await?;
        let step = conv.step(name, Command::EndOfHeaders, proto::NOEOH, proto::NR_EOH).await?;
        if let Some(v) = self.message_level(step) {
            return Ok(v);
        }
        let conv = self.conv.as_mut().expect("opened by exchange");
        if !conv.has(proto::NOBODY) {
            for chunk in body.chunks(codec::BODY_CHUNK) {
                let conv = self.conv.as_mut().expect("opened by exchange");
                conv.send(&Command::Body(chunk)).await?;
                if conv.has(proto::NR_BODY) {
                    continue;
                }
                let step = conv.answer(name).await?;
                if let Some(v) = self.message_level(step) {
                    return Ok(v);
                }
            }
        }
        let conv = self.conv.as_mut().expect("opened by exchange");
        conv.send(&Command::Macro { stage: b'E', pairs: &[("i", &s.id)] }).await?;
        conv.send(&Command::EndOfBody).await?;
        let v = conv.end_of_message(name).await?;
        // The message is over: the next MAIL needs no abort.
        self.tx.open = false;
        Ok(v)
    }

    /// An answer at connect or helo: `Some` when it settles the step.
    fn session_level(&mut self, step: Step) -> Option<DataVerdict> {
        match step {
            Step::Continue => None,
            Step::Done => {
                self.done = true;
                Some(DataVerdict::default())
            }
            Step::Final(v) if v.discard => {
                self.discard_all = true;
                self.done = true;
                Some(v)
            }
            Step::Final(v) => {
                self.refused = Some(v.verdict.clone());
                Some(v)
            }
        }
    }

    /// An answer within a transaction: `Some` when it settles the step.
    fn message_level(&mut self, step: Step) -> Option<DataVerdict> {
        match step {
            Step::Continue => None,
            Step::Done => {
                self.tx.done = true;
                Some(DataVerdict::default())
            }
            Step::Final(v) if v.discard => {
                self.tx.discard = true;
                Some(v)
            }
            Step::Final(v) => Some(v),
        }
    }

    /// What the chain hears at `stage`: a discard counts at data only
    /// (before, the message goes on and is dropped once it is in).
    fn ending(&self, stage: &Stage<'_>, mut v: DataVerdict) -> DataVerdict {
        let discard = self.discard_all || self.tx.discard || v.discard;
        v.discard = matches!(stage, Stage::Data { .. }) && discard && !v.verdict.is_final();
        if v.discard {
            v.edits.clear();
        }
        v
    }
}

/// The header fields (name, value without the separating space, folding
/// kept) and the body of a CRLF message.
pub fn split_message(message: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        let end = message[pos..].iter().position(|&b| b == b'\n').map_or(message.len(), |i| pos + i + 1);
        let line = &message[pos..end];
        if line == b"\r\n" || line == b"\n" {
            return (headers, &message[end..]);
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str("\r\n");
                value.push_str(text);
            }
        } else if let Some((name, value)) = text.split_once(':') {
            headers.push((name.trim_end().to_string(), value.strip_prefix(' ').unwrap_or(value).to_string()));
        }
        pos = end;
    }
    (headers, &[])
}

#[cfg(test)]
mod tests;
