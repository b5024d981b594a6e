//! The accept loop every protocol shares: the per-client connection limits
//! and the session cap with a polite refusal, and for implicit-TLS ports
//! (RFC 8314: submissions 465, pop3s 995, imaps 993) the handshake before
//! the protocol starts.

use crate::net::Conn;
use crate::state::ServerState;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};

/// A socket bound to a configured address that may not be listening yet.
/// Binding at start-up reports a port conflict at once; listening waits
/// until every plugin is compiled and loaded (seconds for an 18 MB Python
/// component, a minute under load). Until then the kernel refuses
/// connections, which a sending MTA treats as temporary and answers by
/// trying the next MX or later (RFC 5321 4.5.4.1) — where a listening
/// socket would accept them into a backlog nobody reads, and the client
/// would wait, greeted by nothing, for its 5-minute greeting timeout
/// (RFC 5321 4.5.3.2.1).
pub enum Bound {
    Socket {
        key: String,
        addr: SocketAddr,
        socket: TcpSocket,
    },
    /// Already listening: bound by a test on port 0.
    Listening(TcpListener),
}

/// The listen(2) backlog, as `TcpListener::bind` has it.
const BACKLOG: u32 = 1024;

impl Bound {
    /// Starts accepting connections (into the backlog, until the accept
    /// loop takes them).
    pub fn listen(self) -> anyhow::Result<TcpListener> {
        match self {
            Bound::Listening(l) => Ok(l),
            // Two sockets that reuse an address may both bind it until one
            // listens: a conflict with a server starting at the same time
            // shows here.
            Bound::Socket { key, addr, socket } => {
                socket.listen(BACKLOG).map_err(|e| anyhow::anyhow!("config key {key}: cannot listen on {addr}: {e}"))
            }
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Bound::Socket { socket, .. } => socket.local_addr(),
            Bound::Listening(l) => l.local_addr(),
        }
    }
}

impl From<TcpListener> for Bound {
    fn from(l: TcpListener) -> Self {
        Bound::Listening(l)
    }
}

/// Fails naming the config key if two configured addresses take the same
/// port. The kernel would let both bind (each reuses its address, and
/// neither listens yet); only the second listen, after the plugins have
/// loaded, would fail.
pub fn no_overlap(keys: &[(&str, &[SocketAddr])]) -> anyhow::Result<()> {
    let all: Vec<(&str, SocketAddr)> =
        keys.iter().flat_map(|(key, addrs)| addrs.iter().map(move |a| (*key, *a))).collect();
    for (i, (key, addr)) in all.iter().enumerate() {
        let taken = all[..i].iter().any(|(_, a)| {
            a.port() == addr.port() && (a.ip() == addr.ip() || a.ip().is_unspecified() || addr.ip().is_unspecified())
        });
        if taken && addr.port() != 0 {
            anyhow::bail!(
                "config key {key}: cannot listen on {addr}: Address already in use (named twice in the config)"
            );
        }
    }
    Ok(())
}

/// Binds every address (without listening) or fails naming the config key.
pub fn bind(key: &str, addrs: &[SocketAddr]) -> anyhow::Result<Vec<Bound>> {
    let mut out = Vec::new();
    for &addr in addrs {
        let bind = || {
            let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            // As TcpListener::bind: a restart must not wait out TIME_WAIT.
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            Ok::<_, std::io::Error>(socket)
        };
        let socket = bind().map_err(|e| anyhow::anyhow!("config key {key}: cannot listen on {addr}: {e}"))?;
        out.push(Bound::Socket { key: key.to_string(), addr, socket });
    }
    Ok(out)
}

/// One listener's settings.
pub struct Spec {
    /// "smtp", "submissions", "pop3s", … in log lines.
    pub name: &'static str,
    pub max_sessions: usize,
    /// TLS from the first byte (RFC 8314 3.3): the handshake, bounded by
    /// `tls.handshake_timeout`, comes before the session.
    pub implicit_tls: bool,
    /// What a refused connection is told in the protocol's words: the
    /// server is full, or this client already has its share. Not sent on
    /// implicit-TLS ports, where nothing can be said before a handshake.
    pub busy: &'static [u8],
    pub client_busy: &'static [u8],
}

/// How long a refusal may take to write before the socket is dropped.
const REFUSAL_WRITE: Duration = Duration::from_secs(2);

/// Accepts until `shutdown` flips. Each session runs in its own task while
/// holding one of `max_sessions` permits and its client's connection slot
/// (`[clients]` limits, shared by every listener); over either, the client
/// gets the refusal and is closed. `handler` gets the connection ready for
/// the protocol: plain, or TLS already established on implicit-TLS ports.
pub async fn serve<F, Fut>(
    state: Arc<ServerState>,
    spec: Spec,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(Conn, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(spec.max_sessions));
    let handler = Arc::new(handler);
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let name = spec.name;
    tracing::info!(service = name, listen = %local, tls = spec.implicit_tls, "listening");
    let _up = state.listeners.up();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(service = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let slot = match state.connections.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(exceeded) => {
                // One stable line per refusal, for fail2ban.
                tracing::warn!(client = %peer.ip(), service = %name, limit = %exceeded.as_str(), "too many connections from this client; refused");
                refuse(tcp, (!spec.implicit_tls).then_some(spec.client_busy));
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(service = name, client = %peer, "session limit reached; refusing connection");
            refuse(tcp, (!spec.implicit_tls).then_some(spec.busy));
            continue;
        };
        let (state, handler, implicit_tls) = (state.clone(), handler.clone(), spec.implicit_tls);
        tokio::spawn(async move {
            let _counted = crate::metrics::session(name);
            // Boxed: a handshake's state is large and over once the
            // session starts, and what the task holds it holds for life.
            let conn =
                if implicit_tls { Box::pin(handshake(&state, name, tcp, peer)).await } else { Some(Conn::Plain(tcp)) };
            if let Some(conn) = conn {
                handler(conn, peer).await;
            }
            drop((permit, slot));
        });
    }
}

/// Writes `words` (if any) and closes, in the background and bounded.
fn refuse(mut tcp: TcpStream, words: Option<&'static [u8]>) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_WRITE, async {
            if let Some(words) = words {
                let _ = tcp.write_all(words).await;
            }
            let _ = tcp.shutdown().await;
        })
        .await;
    });
}

/// The server side of an implicit-TLS handshake with the certificate in
/// force now, within `tls.handshake_timeout`; `None` (logged) if it failed.
async fn handshake(state: &ServerState, service: &'static str, tcp: TcpStream, peer: SocketAddr) -> Option<Conn> {
    let Some(acceptor) = state.tls() else {
        tracing::warn!(service, client = %peer, "no TLS certificate; implicit-TLS connection closed");
        return None;
    };
    let mut conn = Conn::Plain(tcp);
    let deadline = Some(Instant::now() + state.config.tls.handshake_timeout);
    match crate::net::before(deadline, conn.accept_tls(&acceptor)).await {
        Some(Ok(())) => Some(conn),
        Some(Err(e)) => {
            tracing::info!(service, client = %peer, error = %e, "TLS handshake failed");
            None
        }
        None => {
            tracing::info!(service, client = %peer, "TLS handshake timed out");
            None
        }
    }
}
