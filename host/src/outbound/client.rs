//! Drives the sans-IO client session over TCP (and TLS): connects to each
//! address in turn until one takes the transaction, applying the RFC 5321
//! 4.5.3.2 timeouts per phase.

use super::mx::Target;
use super::stream::ClientStream;
use crate::config::{DeliveryConfig, StartTlsPolicy, TlsVerify};
use ferrymail_policy::Reply;
use ferrymail_proto::client::{
    ClientEvent, ClientSession, Phase, RcptResult, TlsMode, Transaction, classify, dot_stuff,
};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Content is written in blocks of this size, each under the data block
/// timeout (RFC 5321 4.5.3.2.5).
const WRITE_BLOCK: usize = 64 * 1024;
/// Nothing depends on the reply to QUIT.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything a delivery needs that does not change between messages.
pub struct Settings {
    pub helo: String,
    pub tls: TlsMode,
    pub verify: bool,
    pub connector: TlsConnector,
    pub timeouts: DeliveryConfig,
}

impl Settings {
    pub fn new(config: &crate::config::Config) -> anyhow::Result<Settings> {
        let d = &config.delivery;
        Ok(Settings {
            helo: if d.helo_name.is_empty() { config.hostname.clone() } else { d.helo_name.clone() },
            tls: match d.starttls {
                StartTlsPolicy::Off => TlsMode::Off,
                StartTlsPolicy::Opportunistic => TlsMode::Opportunistic,
                StartTlsPolicy::Require => TlsMode::Require,
            },
            verify: d.tls_verify == TlsVerify::Verify,
            connector: super::tls::connector(d)?,
            timeouts: d.clone(),
        })
    }

    fn timeout(&self, phase: Phase) -> Duration {
        let t = &self.timeouts;
        match phase {
            Phase::Greeting => t.greeting_timeout,
            Phase::Command => t.command_timeout,
            Phase::DataInit => t.data_init_timeout,
            Phase::DataDone => t.data_done_timeout,
            Phase::Quit => QUIT_TIMEOUT.min(t.command_timeout),
        }
    }
}

/// The outcome of handing one message to one destination.
pub struct Handed {
    pub results: Vec<RcptResult>,
    /// The host that answered (for Remote-MTA), when one did.
    pub remote: Option<String>,
}

enum HostOutcome {
    Done(Vec<RcptResult>),
    /// Nothing was decided here: try the next address. `server` tells
    /// whether the reply came from the server (vs. a network failure).
    Next {
        reply: Reply,
        server: bool,
    },
    /// The TLS handshake failed; `certificate` when it was the certificate.
    TlsFailed {
        reply: Reply,
        certificate: bool,
    },
}

/// Tries `targets` in order until one decides every recipient. When none
/// does, every recipient gets the last failure (deferred unless a server
/// refused us permanently).
pub async fn deliver(settings: &Settings, targets: &[super::mx::Target], txn: &Transaction, content: &[u8]) -> Handed {
    let mut last = (Reply::new(451, "4.4.1", "No host to deliver to"), false);
    for target in targets {
        let mut mode = settings.tls;
        loop {
            match try_host(settings, target, mode, txn, content).await {
                HostOutcome::Done(results) => return Handed { results, remote: Some(target.name.clone()) },
                HostOutcome::Next { reply, server } => {
                    tracing::info!(host = %target.name, addr = %target.addr, reply = %reply, "host failed; trying the next");
                    last = (reply, server);
                }
                // Opportunistic TLS: a failed handshake is retried in
                // plaintext (as Postfix's "may"), unless the certificate
                // was refused under tls_verify = "verify".
                HostOutcome::TlsFailed { reply, certificate }
                    if mode == TlsMode::Opportunistic && !(certificate && settings.verify) =>
                {
                    tracing::info!(host = %target.name, reply = %reply, "TLS handshake failed; retrying without TLS");
                    mode = TlsMode::Off;
                    continue;
                }
                HostOutcome::TlsFailed { reply, .. } => last = (reply, false),
            }
            break;
        }
    }
    let (reply, server) = last;
    let result = RcptResult { outcome: classify(&reply), reply, from_server: server };
    Handed { results: vec![result; txn.rcpts.len()], remote: None }
}

async fn try_host(
    settings: &Settings,
    target: &Target,
    mode: TlsMode,
    txn: &Transaction,
    content: &[u8],
) -> HostOutcome {
    let tcp = match tokio::time::timeout(settings.timeouts.connect_timeout, TcpStream::connect(target.addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return HostOutcome::Next {
                reply: Reply::new(451, "4.4.1", format!("Connection to {} failed: {e}", target.addr)),
                server: false,
            };
        }
        Err(_) => {
            return HostOutcome::Next {
                reply: Reply::new(451, "4.4.1", format!("Connection to {} timed out", target.addr)),
                server: false,
            };
        }
    };
    let _ = tcp.set_nodelay(true);
    let mut stream = ClientStream::Plain(tcp);
    let mut session = ClientSession::new(&settings.helo, mode);
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = false;
    let mut results = None;
    let mut host_failure = None;
    loop {
        let event = session.next_event();
        // Recorded before any write, which may fail and end the session.
        match &event {
            ClientEvent::Done(r) => results = Some(r.clone()),
            ClientEvent::HostFailed(reply) => host_failure = Some(reply.clone()),
            _ => {}
        }
        let out = session.take_output();
        if !out.is_empty()
            && let Err(why) = write(&mut stream, &out, settings.timeouts.command_timeout).await
        {
            session.connection_lost(lost(target, &why));
            continue;
        }
        match event {
            ClientEvent::NeedInput(phase) => {
                match tokio::time::timeout(settings.timeout(phase), stream.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => session.feed(&buf[..n]),
                    Ok(Ok(_)) => session.connection_lost(lost(target, "connection closed by the server")),
                    Ok(Err(e)) => session.connection_lost(lost(target, &e.to_string())),
                    Err(_) => session.connection_lost(Reply::new(
                        451,
                        "4.4.2",
                        format!("Timeout waiting for {} ({phase:?})", target.name),
                    )),
                }
            }
            ClientEvent::StartTls => {
                let name = super::tls::server_name(&target.name, target.addr.ip());
                let handshake =
                    tokio::time::timeout(settings.timeouts.command_timeout, stream.upgrade(&settings.connector, name))
                        .await;
                match handshake {
                    Ok(Ok(())) => session.tls_established(),
                    Ok(Err(e)) => {
                        let certificate = super::tls::is_certificate_error(&e);
                        return HostOutcome::TlsFailed {
                            reply: Reply::new(451, "4.7.5", format!("TLS handshake with {} failed: {e}", target.name)),
                            certificate,
                        };
                    }
                    Err(_) => {
                        return HostOutcome::TlsFailed {
                            reply: Reply::new(451, "4.4.2", format!("TLS handshake with {} timed out", target.name)),
                            certificate: false,
                        };
                    }
                }
            }
            ClientEvent::Ready if !sent => {
                sent = true;
                session.begin(txn);
            }
            ClientEvent::Ready => {
                // The outcome is known: say goodbye in the background, so
                // the queue records it without waiting for the QUIT reply
                // (that wait would widen the at-least-once window).
                tokio::spawn(quit(session, stream));
                return match results {
                    Some(r) => HostOutcome::Done(r),
                    None => HostOutcome::Next { reply: lost(target, "no transaction"), server: false },
                };
            }
            ClientEvent::SendContent => {
                let data = dot_stuff(content);
                match write_blocks(&mut stream, &data, settings.timeouts.data_block_timeout).await {
                    Ok(()) => session.content_sent(),
                    Err(why) => session.connection_lost(lost(target, &why)),
                }
            }
            ClientEvent::Done(_) | ClientEvent::HostFailed(_) => {}
            ClientEvent::Closed => break,
        }
    }
    let _ = stream.shutdown().await;
    match (results, host_failure) {
        (Some(r), _) => HostOutcome::Done(r),
        (None, Some(reply)) => {
            // Our own 4.4.x replies describe the network; the rest came from the server.
            let server = !reply.enhanced.as_deref().is_some_and(|e| e.starts_with("4.4."));
            HostOutcome::Next { reply, server }
        }
        (None, None) => HostOutcome::Next { reply: lost(target, "session ended early"), server: false },
    }
}

async fn quit(mut session: ClientSession, mut stream: ClientStream) {
    session.quit();
    let out = session.take_output();
    if write(&mut stream, &out, QUIT_TIMEOUT).await.is_ok() {
        let mut buf = [0u8; 512];
        let _ = tokio::time::timeout(QUIT_TIMEOUT, stream.read(&mut buf)).await;
    }
    let _ = stream.shutdown().await;
}

fn lost(target: &Target, why: &str) -> Reply {
    Reply::new(451, "4.4.2", format!("Lost connection with {} [{}]: {why}", target.name, target.addr.ip()))
}

async fn write(stream: &mut ClientStream, bytes: &[u8], timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("write timed out".into()),
    }
}

async fn write_blocks(stream: &mut ClientStream, data: &[u8], timeout: Duration) -> Result<(), String> {
    for block in data.chunks(WRITE_BLOCK) {
        write(stream, block, timeout).await?;
    }
    Ok(())
}
