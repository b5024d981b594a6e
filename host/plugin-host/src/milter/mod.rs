//! The milter bridge (not yet wired into the chain walk: see the report
//! of issue 10): a chain element `milter:NAME` that asks a milter
//! (rspamd, OpenDKIM, ClamAV's clamav-milter …) about a message, over the
//! milter protocol v6 ([`codec`]).
//!
//! One connection per message, opened when the message has arrived (the
//! data stage of the chain): the whole transaction is replayed in protocol
//! order — connect, helo, mail, each rcpt, data, headers, body, end of
//! message — and every step's answer is honoured, so a milter that refuses
//! at RCPT refuses the message. The whole conversation runs under one
//! deadline (`timeout`); a milter that cannot be reached, breaks the
//! protocol or misses the deadline gets the element's `failure` policy,
//! as a plugin would. Each conversation is its own task on its own socket:
//! a slow milter holds only the sessions waiting for it.

pub mod codec;

use crate::config::FailurePolicy;
use codec::{Command, Decoder, Family, Response, action, proto};
use ferrymail_policy::edits::HeaderEdit;
use ferrymail_policy::{DataVerdict, Envelope, Reply, SessionInfo, Verdict};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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
    /// The whole conversation about one message, connect to quit.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

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

/// A milter in a chain.
#[derive(Debug)]
pub struct Milter {
    pub name: String,
    pub socket: Socket,
    pub failure: FailurePolicy,
    pub timeout: Duration,
    /// Our host name, for the `j` macro.
    pub hostname: String,
}

/// What the data stage is told.
pub struct Transaction<'a> {
    pub session: &'a SessionInfo,
    pub envelope: &'a Envelope,
    pub message: &'a [u8],
    pub queue_id: &'a str,
}

impl Milter {
    /// The milter's answer as the chain's data answer; a failure becomes
    /// the failure policy (and is logged).
    pub async fn data(&self, tx: &Transaction<'_>) -> DataVerdict {
        let run = async {
            let mut conv = Conversation::open(&self.socket).await?;
            let out = conv.run(self, tx).await;
            conv.quit().await;
            out
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(v)) => match check(&v) {
                Ok(()) => v,
                Err(e) => self.failed(tx, &format!("invalid answer: {e}")),
            },
            Ok(Err(e)) => self.failed(tx, &e),
            Err(_) => self.failed(tx, &format!("no answer within {}", humantime::format_duration(self.timeout))),
        }
    }

    fn failed(&self, tx: &Transaction<'_>, why: &str) -> DataVerdict {
        tracing::warn!(session = %tx.session.id, milter = %self.name, error = %ferrymail_policy::logsafe(why), failure = ?self.failure, "milter failed");
        match self.failure {
            FailurePolicy::Tempfail => {
                DataVerdict { verdict: Verdict::Tempfail(crate::walk::temp_reply()), ..Default::default() }
            }
            FailurePolicy::Skip => DataVerdict::default(),
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

struct Conversation {
    io: Box<dyn Stream>,
    decoder: Decoder,
    protocol: u32,
    actions: u32,
}

/// How a step ended.
enum Step {
    Continue,
    /// The milter accepted: no more questions, no objection.
    Done,
    /// A final answer for the message.
    Final(DataVerdict),
}

impl Conversation {
    async fn open(socket: &Socket) -> Result<Conversation, String> {
        let io: Box<dyn Stream> = match socket {
            Socket::Inet(addr) => Box::new(
                tokio::net::TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|e| format!("connecting to {addr}: {e}"))?,
            ),
            Socket::Unix(path) => Box::new(
                tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| format!("connecting to {}: {e}", path.display()))?,
            ),
        };
        let mut c = Conversation { io, decoder: Decoder::default(), protocol: 0, actions: 0 };
        c.send(&Command::OptNeg {
            version: codec::VERSION,
            actions: action::ADDHDRS | action::CHGHDRS | action::QUARANTINE,
            protocol: proto::OFFERED,
        })
        .await?;
        match c.read().await? {
            Response::OptNeg { version, actions, protocol } if version >= 2 => {
                c.actions = actions & (action::ADDHDRS | action::CHGHDRS | action::QUARANTINE);
                c.protocol = protocol & proto::OFFERED;
                Ok(c)
            }
            other => Err(format!("option negotiation answered {other:?}")),
        }
    }

    async fn send(&mut self, cmd: &Command<'_>) -> Result<(), String> {
        self.io.write_all(&codec::encode(cmd)).await.map_err(|e| format!("writing: {e}"))
    }

    async fn read(&mut self) -> Result<Response, String> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(r) = self.decoder.decode().map_err(|e| e.to_string())? {
                return Ok(r);
            }
            let n = self.io.read(&mut buf).await.map_err(|e| format!("reading: {e}"))?;
            if n == 0 {
                return Err("the milter closed the connection".into());
            }
            self.decoder.feed(&buf[..n]);
        }
    }

    fn has(&self, flag: u32) -> bool {
        self.protocol & flag != 0
    }

    /// Sends one step (unless the milter asked to skip it) and reads its
    /// answer (unless the milter said it gives none).
    async fn step(&mut self, name: &str, cmd: Command<'_>, skip: u32, no_reply: u32) -> Result<Step, String> {
        if self.has(skip) {
            return Ok(Step::Continue);
        }
        self.send(&cmd).await?;
        if self.has(no_reply) {
            return Ok(Step::Continue);
        }
        self.answer(name).await
    }

    async fn answer(&mut self, name: &str) -> Result<Step, String> {
        loop {
            return Ok(match self.read().await? {
                Response::Progress => continue,
                Response::Continue | Response::Skip => Step::Continue,
                Response::Accept => Step::Done,
                r => Step::Final(final_answer(name, r)?),
            });
        }
    }

    async fn run(&mut self, m: &Milter, tx: &Transaction<'_>) -> Result<DataVerdict, String> {
        let s = tx.session;
        let ip = s.client_ip.to_string();
        let client = s.client_name.clone().unwrap_or_else(|| format!("[{ip}]"));
        let family = if s.client_ip.is_ipv4() { Family::Inet4 } else { Family::Inet6 };
        let macros = [("j", m.hostname.as_str()), ("{daemon_name}", "ferrymail"), ("_", client.as_str())];
        self.send(&Command::Macro { stage: b'C', pairs: &macros }).await?;
        let connect = Command::Connect { hostname: &client, family, port: s.client_port, address: &ip };
        if let Some(v) = self.decided(m, "connect", connect, proto::NOCONNECT, proto::NR_CONN).await? {
            return Ok(v);
        }
        let helo = s.helo.as_deref().unwrap_or("");
        if let Some(v) = self.decided(m, "helo", Command::Helo(helo), proto::NOHELO, proto::NR_HELO).await? {
            return Ok(v);
        }
        let auth = s.auth_user.as_deref().unwrap_or("");
        let from = format!("<{}>", tx.envelope.mail_from);
        let mail_macros = [("{mail_addr}", tx.envelope.mail_from.as_str()), ("{auth_authen}", auth)];
        self.send(&Command::Macro {
            stage: b'M',
            pairs: if auth.is_empty() { &mail_macros[..1] } else { &mail_macros },
        })
        .await?;
        if let Some(v) = self.decided(m, "mail", Command::Mail(&[from.as_str()]), proto::NOMAIL, proto::NR_MAIL).await?
        {
            return Ok(v);
        }
        for rcpt in &tx.envelope.rcpt_to {
            let to = format!("<{rcpt}>");
            self.send(&Command::Macro { stage: b'R', pairs: &[("{rcpt_addr}", rcpt.as_str())] }).await?;
            if let Some(v) =
                self.decided(m, "rcpt", Command::Rcpt(&[to.as_str()]), proto::NORCPT, proto::NR_RCPT).await?
            {
                return Ok(v);
            }
        }
        if let Some(v) = self.decided(m, "data", Command::Data, proto::NODATA, proto::NR_DATA).await? {
            return Ok(v);
        }
        let (headers, body) = split_message(tx.message);
        for (name, value) in &headers {
            let cmd = Command::Header { name, value };
            if let Some(v) = self.decided(m, "header", cmd, proto::NOHDRS, proto::NR_HDR).await? {
                return Ok(v);
            }
        }
        self.send(&Command::Macro { stage: b'N', pairs: &[("i", tx.queue_id)] }).await?;
        if let Some(v) = self.decided(m, "eoh", Command::EndOfHeaders, proto::NOEOH, proto::NR_EOH).await? {
            return Ok(v);
        }
        if !self.has(proto::NOBODY) {
            for chunk in body.chunks(codec::BODY_CHUNK) {
                self.send(&Command::Body(chunk)).await?;
                if self.has(proto::NR_BODY) {
                    continue;
                }
                match self.answer("body").await? {
                    Step::Continue => {}
                    Step::Done => return Ok(DataVerdict::default()),
                    Step::Final(v) => return Ok(v),
                }
            }
        }
        self.send(&Command::Macro { stage: b'E', pairs: &[("i", tx.queue_id)] }).await?;
        self.send(&Command::EndOfBody).await?;
        self.end_of_message(m).await
    }

    /// A step's answer, when it settles the message.
    async fn decided(
        &mut self,
        m: &Milter,
        name: &str,
        cmd: Command<'_>,
        skip: u32,
        no_reply: u32,
    ) -> Result<Option<DataVerdict>, String> {
        Ok(match self.step(&m.name, cmd, skip, no_reply).await? {
            Step::Continue => None,
            Step::Done => Some(DataVerdict::default()),
            Step::Final(v) => {
                tracing::debug!(milter = %m.name, stage = name, "milter decided before the end of the message");
                Some(v)
            }
        })
    }

    /// Modifications, then the final answer (libmilter's order).
    async fn end_of_message(&mut self, m: &Milter) -> Result<DataVerdict, String> {
        let mut edits = Vec::new();
        loop {
            let r = self.read().await?;
            let allowed = |flag: u32| self.actions & flag != 0;
            match r {
                Response::Progress => {}
                Response::AddHeader { name, value } if allowed(action::ADDHDRS) => {
                    edits.push(HeaderEdit::Append { name, value: crlf(value) });
                }
                Response::InsertHeader { index, name, value } if allowed(action::ADDHDRS) => {
                    edits.push(HeaderEdit::Insert { index, name, value: crlf(value) });
                }
                Response::ChangeHeader { index, name, value } if allowed(action::CHGHDRS) => {
                    edits.push(HeaderEdit::Change { name, index, value: crlf(value) });
                }
                Response::Quarantine(reason) if allowed(action::QUARANTINE) => {
                    let value = format!("milter {}: {reason}", m.name);
                    edits.push(HeaderEdit::Append { name: "X-Ferrymail-Quarantine".into(), value });
                }
                Response::Continue | Response::Accept | Response::Skip => {
                    return Ok(DataVerdict { edits, ..Default::default() });
                }
                r @ (Response::AddHeader { .. }
                | Response::InsertHeader { .. }
                | Response::ChangeHeader { .. }
                | Response::Quarantine(_)
                | Response::Other(_)
                | Response::OptNeg { .. }) => return Err(format!("{r:?} was not negotiated")),
                r => {
                    let mut v = final_answer(&m.name, r)?;
                    // A discarded message keeps no edits; a refused one needs none.
                    if v.discard {
                        v.edits.clear();
                    }
                    return Ok(v);
                }
            }
        }
    }

    async fn quit(&mut self) {
        let _ = self.send(&Command::Quit).await;
        let _ = self.io.shutdown().await;
    }
}

/// A milter's answer is untrusted like a plugin's: the same rules for
/// replies (RFC 5321 4.2, RFC 3463) and header fields (RFC 5322), one
/// place (`validate`).
fn check(v: &DataVerdict) -> Result<(), String> {
    use crate::validate;
    if let Some(r) = v.verdict.reply() {
        let enhanced = r.enhanced.as_deref().unwrap_or("");
        if !enhanced.is_empty() {
            validate::enhanced_code(enhanced, r.code).map_err(|e| e.0)?;
        }
        validate::reply_text(&r.text, 4 + enhanced.len() + usize::from(!enhanced.is_empty())).map_err(|e| e.0)?;
    }
    if v.edits.len() > validate::MAX_HEADERS {
        return Err(format!("{} header edits, at most {}", v.edits.len(), validate::MAX_HEADERS));
    }
    for e in &v.edits {
        match e {
            HeaderEdit::Append { name, value } | HeaderEdit::Insert { name, value, .. } => {
                validate::header(name, value).map_err(|e| e.0)?
            }
            HeaderEdit::Change { name, value, .. } => {
                validate::header(name, if value.is_empty() { "x" } else { value }).map_err(|e| e.0)?
            }
        }
    }
    Ok(())
}

/// libmilter filters fold header values with bare LF (Postfix converts
/// them); the message is CRLF throughout.
fn crlf(value: String) -> String {
    if value.contains('\n') { value.replace("\r\n", "\n").replace('\n', "\r\n") } else { value }
}

/// The chain answer for reject, tempfail, discard or a reply code.
fn final_answer(name: &str, r: Response) -> Result<DataVerdict, String> {
    let verdict = match r {
        // Postfix's texts for a milter's plain reject and tempfail.
        Response::Reject => Verdict::Reject(Reply::new(550, "5.7.1", "Command rejected")),
        Response::Tempfail => Verdict::Tempfail(Reply::new(451, "4.7.1", "Service unavailable - try again later")),
        Response::Discard => return Ok(DataVerdict { discard: true, ..Default::default() }),
        Response::ReplyCode(text) => reply_code(&text).ok_or_else(|| format!("bad reply code {text:?}"))?,
        other => return Err(format!("unexpected {other:?} from milter {name}")),
    };
    Ok(DataVerdict { verdict, ..Default::default() })
}

/// SMFIR_REPLYCODE text: "550 5.7.1 text", possibly several lines
/// ("550-5.7.1 a\r\n550 5.7.1 b"). 4xx is a tempfail, 5xx a reject; the
/// chain's answer check (codes, enhanced codes, text) applies after.
fn reply_code(text: &str) -> Option<Verdict> {
    let code: u16 = text.get(..3)?.parse().ok()?;
    let mut enhanced = None;
    let mut lines = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        let rest = line.get(4..).unwrap_or("");
        let (e, t) = match rest.split_once(' ') {
            Some((e, t)) if e.split('.').count() == 3 && e.starts_with(char::from(b'0' + (code / 100) as u8)) => {
                (Some(e), t)
            }
            _ => (None, rest),
        };
        enhanced = enhanced.or(e);
        lines.push(t.to_string());
    }
    let reply = Reply { code, enhanced: enhanced.map(str::to_string), text: lines.join("\n") };
    match code / 100 {
        4 => Some(Verdict::Tempfail(reply)),
        5 => Some(Verdict::Reject(reply)),
        _ => None,
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
mod tests {
    use super::*;

    #[test]
    fn sockets_in_postfix_and_sendmail_notation() {
        assert_eq!(Socket::parse("inet:127.0.0.1:11332").unwrap(), Socket::Inet("127.0.0.1:11332".into()));
        assert_eq!(Socket::parse("inet:8891@localhost").unwrap(), Socket::Inet("localhost:8891".into()));
        assert_eq!(Socket::parse("unix:/run/x.sock").unwrap(), Socket::Unix("/run/x.sock".into()));
        for bad in ["127.0.0.1:1", "inet:host", "inet::25", "inet:h:0", "unix:"] {
            assert!(Socket::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reply_codes_become_verdicts() {
        assert_eq!(
            reply_code("554 5.7.1 Gtube pattern"),
            Some(Verdict::Reject(Reply::new(554, "5.7.1", "Gtube pattern")))
        );
        assert_eq!(reply_code("451 4.7.1 Try later"), Some(Verdict::Tempfail(Reply::new(451, "4.7.1", "Try later"))));
        assert_eq!(
            reply_code("550 No enhanced"),
            Some(Verdict::Reject(Reply { code: 550, enhanced: None, text: "No enhanced".into() }))
        );
        assert_eq!(
            reply_code("550-5.7.1 first\r\n550 5.7.1 second"),
            Some(Verdict::Reject(Reply::new(550, "5.7.1", "first\nsecond")))
        );
        assert_eq!(reply_code("250 ok"), None, "a milter cannot make a refusal a success");
        assert_eq!(reply_code("x"), None);
    }

    #[test]
    fn messages_split_into_fields_and_body() {
        let (h, body) = split_message(b"Subject: a\r\n b\r\nTo:x@y\r\n\r\nbody\r\n");
        assert_eq!(h, [("Subject".to_string(), "a\r\n b".to_string()), ("To".to_string(), "x@y".to_string())]);
        assert_eq!(body, b"body\r\n");
    }
}
