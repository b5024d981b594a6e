//! One connection to a milter: option negotiation, then one command at a
//! time and its answer, honouring the steps the milter asked to skip
//! (SMFIP_NO*) or not to answer (SMFIP_NR_*).

use super::Socket;
use super::answer::{crlf, final_answer};
use super::codec::{self, Command, Decoder, Response, action, proto};
use ferrymail_policy::DataVerdict;
use ferrymail_policy::edits::HeaderEdit;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub(crate) struct Conversation {
    io: Box<dyn Stream>,
    decoder: Decoder,
    protocol: u32,
    actions: u32,
}

/// How a step ended.
pub(crate) enum Step {
    Continue,
    /// SMFIR_ACCEPT: no more questions at this level (session or message).
    Done,
    /// A refusal or a discard.
    Final(DataVerdict),
}

impl Conversation {
    pub(crate) async fn open(socket: &Socket) -> Result<Conversation, String> {
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

    pub(crate) async fn send(&mut self, cmd: &Command<'_>) -> Result<(), String> {
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

    pub(crate) fn has(&self, flag: u32) -> bool {
        self.protocol & flag != 0
    }

    /// Sends one step (unless the milter asked to skip it) and reads its
    /// answer (unless the milter said it gives none).
    pub(crate) async fn step(
        &mut self,
        name: &str,
        cmd: Command<'_>,
        skip: u32,
        no_reply: u32,
    ) -> Result<Step, String> {
        if self.has(skip) {
            return Ok(Step::Continue);
        }
        self.send(&cmd).await?;
        if self.has(no_reply) {
            return Ok(Step::Continue);
        }
        self.answer(name).await
    }

    pub(crate) async fn answer(&mut self, name: &str) -> Result<Step, String> {
        loop {
            return Ok(match self.read().await? {
                Response::Progress => continue,
                Response::Continue | Response::Skip => Step::Continue,
                Response::Accept => Step::Done,
                r => Step::Final(final_answer(name, r)?),
            });
        }
    }

    /// After end of message: the modifications, then the final answer
    /// (libmilter's order). Only negotiated actions are accepted.
    pub(crate) async fn end_of_message(&mut self, name: &str) -> Result<DataVerdict, String> {
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
                    let value = format!("milter {name}: {reason}");
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
                    let mut v = final_answer(name, r)?;
                    // A discarded message keeps no edits; a refused one needs none.
                    if v.discard {
                        v.edits.clear();
                    }
                    return Ok(v);
                }
            }
        }
    }

    pub(crate) async fn quit(mut self) {
        let _ = self.send(&Command::Quit).await;
        let _ = self.io.shutdown().await;
    }
}
