//! Drives the sans-IO client session over TCP (and TLS): connects to each
//! address in turn until one takes the transaction. The session owns the
//! RFC 5321 4.5.3.2 timeouts, one deadline per phase; every read, write
//! and handshake here runs under it. A connection whose transaction ended
//! cleanly is parked in the [`ConnectionCache`] for the next message to the
//! same host.

use super::connection_cache::{ConnectionCache, Key, Ready};
use super::mx::Target;
use crate::config::{DeliveryConfig, StartTlsPolicy, TlsVerify};
use crate::net::{Conn, Read, WriteError};
use ferrymail_policy::Reply;
use ferrymail_policy::logsafe;
use ferrymail_proto::client::{ClientEvent, ClientSession, RcptResult, Timeouts, TlsMode, Transaction, classify};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Nothing depends on the reply to QUIT.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything a delivery needs that does not change between messages.
pub struct Settings {
    pub helo: String,
    pub tls: TlsMode,
    pub verify: bool,
    pub connector: TlsConnector,
    pub timeouts: DeliveryConfig,
    pub cache: Arc<ConnectionCache>,
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
            cache: ConnectionCache::new(
                d.connection_cache_time,
                d.connection_reuse_time,
                d.max_connections_per_domain,
                d.max_connections,
            ),
        })
    }

    fn session_timeouts(&self) -> Timeouts {
        let t = &self.timeouts;
        Timeouts {
            greeting: t.greeting_timeout,
            command: t.command_timeout,
            data_init: t.data_init_timeout,
            data_block: t.data_block_timeout,
            data_done: t.data_done_timeout,
            quit: QUIT_TIMEOUT,
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
                    tracing::info!(host = %logsafe(&target.name), addr = %target.addr, reply = %logsafe(&reply.to_string()), "host failed; trying the next");
                    last = (reply, server);
                }
                // Opportunistic TLS: a failed handshake is retried in
                // plaintext (as Postfix's "may"), unless the certificate
                // was refused under tls_verify = "verify".
                HostOutcome::TlsFailed { reply, certificate }
                    if mode == TlsMode::Opportunistic && !(certificate && settings.verify) =>
                {
                    tracing::info!(host = %logsafe(&target.name), reply = %logsafe(&reply.to_string()), "TLS handshake failed; retrying without TLS");
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
    let key = Key { addr: target.addr, name: target.name.clone(), tls: mode };
    if let Some(ready) = settings.cache.take(&key) {
        match run(settings, target, key.clone(), ready, true, txn, content).await {
            Some(outcome) => return outcome,
            None => {
                tracing::debug!(host = %logsafe(&target.name), addr = %target.addr, "cached connection was closed; connecting again")
            }
        }
    }
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
    let session = ClientSession::new(&settings.helo, mode, settings.session_timeouts());
    let ready = Ready { session, conn: Conn::Plain(tcp), opened: Instant::now() };
    let outcome = run(settings, target, key, ready, false, txn, content).await;
    outcome.unwrap_or_else(|| HostOutcome::Next { reply: lost(target, "session ended early"), server: false })
}

/// One transaction on `ready`'s connection (new, or `reused` from the
/// cache). `None`: a reused connection closed before the content went out
/// (the server's idle timeout, a 421), so nothing reached the server and
/// the caller connects afresh.
async fn run(
    settings: &Settings,
    target: &Target,
    key: Key,
    ready: Ready,
    reused: bool,
    txn: &Transaction,
    content: &[u8],
) -> Option<HostOutcome> {
    let Ready { mut session, mut conn, opened } = ready;
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = false;
    let mut content_out = false;
    let mut results = None;
    let mut host_failure = None;
    loop {
        let event = session.next_event(Instant::now());
        match &event {
            ClientEvent::Done(r) => results = Some(r.clone()),
            ClientEvent::HostFailed { reply, from_server } => host_failure = Some((reply.clone(), *from_server)),
            _ => {}
        }
        // Commands go out before the session waits on the server, under
        // the deadline of the phase they start.
        if matches!(event, ClientEvent::NeedInput(_) | ClientEvent::StartTls) {
            let out = session.take_output();
            if let Err(why) = conn.write_before(&out, session.poll_timeout()).await {
                lose(&mut session, target, why);
                continue;
            }
        }
        match event {
            ClientEvent::NeedInput(_) => match conn.read_before(&mut buf, session.poll_timeout()).await {
                Read::Data(n) => session.feed(&buf[..n]),
                Read::Closed => session.connection_lost(lost(target, "connection closed by the server")),
                Read::TimedOut => session.handle_timeout(crate::net::timed_out_at(session.poll_timeout())),
                Read::Failed(e) => session.connection_lost(lost(target, &e.to_string())),
            },
            ClientEvent::StartTls => {
                let name = super::tls::server_name(&target.name, target.addr.ip());
                match crate::net::before(session.poll_timeout(), conn.connect_tls(&settings.connector, name)).await {
                    Some(Ok(())) => session.tls_established(),
                    Some(Err(e)) => {
                        let certificate = super::tls::is_certificate_error(&e);
                        return Some(HostOutcome::TlsFailed {
                            reply: Reply::new(451, "4.7.5", format!("TLS handshake with {} failed: {e}", target.name)),
                            certificate,
                        });
                    }
                    None => {
                        return Some(HostOutcome::TlsFailed {
                            reply: Reply::new(451, "4.4.2", format!("TLS handshake with {} timed out", target.name)),
                            certificate: false,
                        });
                    }
                }
            }
            ClientEvent::Ready if !sent => {
                sent = true;
                session.begin(txn, content);
            }
            ClientEvent::Ready => {
                // The outcome is known and the session can take another
                // transaction: park it for the next message to this host
                // (or say goodbye in the background). Either way the queue
                // records the outcome without waiting for a QUIT reply
                // (that wait would widen the at-least-once window).
                settings.cache.park(key, Ready { session, conn, opened });
                return Some(match results {
                    Some(r) => HostOutcome::Done(r),
                    None => HostOutcome::Next { reply: lost(target, "no transaction"), server: false },
                });
            }
            ClientEvent::SendContent => {
                content_out = true;
                let data = session.take_content();
                match conn.write_before(&data, session.poll_timeout()).await {
                    Ok(()) => session.content_sent(),
                    Err(why) => lose(&mut session, target, why),
                }
            }
            ClientEvent::Done(_) | ClientEvent::HostFailed { .. } => {}
            ClientEvent::Closed => break,
        }
    }
    // QUIT (after a refusal) is the last thing the session may have queued.
    conn.farewell(&session.take_output()).await;
    if reused && !content_out {
        return None;
    }
    Some(match (results, host_failure) {
        (Some(r), _) => HostOutcome::Done(r),
        (None, Some((reply, server))) => HostOutcome::Next { reply, server },
        (None, None) => HostOutcome::Next { reply: lost(target, "session ended early"), server: false },
    })
}

/// A failed write: a timeout is the session's to report; anything else is
/// a lost connection.
fn lose(session: &mut ClientSession, target: &Target, why: WriteError) {
    match why {
        WriteError::TimedOut => session.handle_timeout(crate::net::timed_out_at(session.poll_timeout())),
        WriteError::Failed(e) => session.connection_lost(lost(target, &e.to_string())),
    }
}

pub(super) async fn quit(mut session: ClientSession, mut conn: Conn) {
    session.quit();
    let out = session.take_output();
    let deadline = Some(Instant::now() + QUIT_TIMEOUT);
    if conn.write_before(&out, deadline).await.is_ok() {
        let mut buf = [0u8; 512];
        let _ = conn.read_before(&mut buf, deadline).await;
    }
    conn.farewell(&[]).await;
}

fn lost(target: &Target, why: &str) -> Reply {
    Reply::new(451, "4.4.2", format!("Lost connection with {} [{}]: {why}", target.name, target.addr.ip()))
}
