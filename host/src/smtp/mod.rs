//! SMTP and submission listeners, on plain ports (STARTTLS offered) and on
//! the implicit-TLS submissions port (RFC 8314 3.3).

pub mod driver;

use crate::config::SmtpListener;
use crate::listener::Spec;
use crate::net::Conn;
use crate::state::ServerState;
use ferrymail_policy::{Service, SessionInfo, logsafe};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves `service` on `listener`; with `implicit_tls`, TLS from the first
/// byte (port 465: the submission service, RFC 8314).
pub async fn serve(
    state: Arc<ServerState>,
    service: Service,
    limits: SmtpListener,
    listener: TcpListener,
    implicit_tls: bool,
    shutdown: watch::Receiver<bool>,
) {
    let spec = Spec {
        name: match (service, implicit_tls) {
            (Service::Submission, true) => "submissions",
            _ => service.as_str(),
        },
        max_sessions: limits.max_sessions,
        implicit_tls,
        busy: b"421 4.3.2 Too many connections, try again later\r\n",
        client_busy: b"421 4.7.0 Too many connections from your address, try again later\r\n",
    };
    let session_state = state.clone();
    crate::listener::serve(state, spec, listener, shutdown, move |conn, peer| {
        session(session_state.clone(), service, limits.clone(), conn, peer)
    })
    .await
}

async fn session(state: Arc<ServerState>, service: Service, limits: SmtpListener, conn: Conn, peer: SocketAddr) {
    let policy = state.policy();
    let mut info = SessionInfo::new(state.next_session_id(), service, peer.ip(), peer.port());
    info.tls = conn.is_tls();
    if state.config.dns.reverse_lookup {
        // Boxed: the resolver's future is large and the session's lasts.
        info.client_name = Box::pin(state.dns.confirmed_name(peer.ip())).await;
    }
    tracing::info!(session = %info.id, service = service.as_str(), client = %peer, tls = info.tls, name = %logsafe(info.client_name.as_deref().unwrap_or("-")), "connect");
    let cfg = driver::session_config(&state, &limits, &info);
    let recorder = crate::trace::Recorder::new(&state.config.trace, &info.id, service.as_str(), peer.ip().to_string());
    crate::trace::scope(recorder, driver::Driver::new(state, cfg, policy, info, conn).run()).await;
}

#[cfg(test)]
mod tests {
    /// The bytes one future type takes, from the function that makes it.
    fn future_size<F, A, B, C, D, E, Fut>(_: F) -> usize
    where
        F: FnOnce(A, B, C, D, E) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every connection holds its session future for its whole life, idle
    /// or not (issue 13: 10,000 idle sessions in ≤ 100 MB). It was 16 KiB
    /// when a message's acceptance was inlined into it.
    #[test]
    fn a_session_future_is_small() {
        let size = future_size(super::session);
        assert!(size <= 4096, "the SMTP session future takes {size} bytes");
    }
}
