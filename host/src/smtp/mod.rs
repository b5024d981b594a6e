//! SMTP and submission listeners.

pub mod driver;

use crate::config::SmtpListener;
use crate::net::Conn;
use crate::state::ServerState;
use ferrymail_policy::{Service, SessionInfo};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub async fn serve(
    state: Arc<ServerState>,
    service: Service,
    limits: SmtpListener,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) {
    let name = service.as_str();
    crate::listener::serve(
        name,
        listener,
        limits.max_sessions,
        b"421 4.3.2 Too many connections, try again later\r\n",
        shutdown,
        move |tcp, peer| session(state.clone(), service, limits.clone(), tcp, peer),
    )
    .await
}

async fn session(state: Arc<ServerState>, service: Service, limits: SmtpListener, tcp: TcpStream, peer: SocketAddr) {
    let policy = state.policy();
    let mut info = SessionInfo::new(state.next_session_id(), service, peer.ip(), peer.port());
    if state.config.dns.reverse_lookup {
        info.client_name = state.dns.confirmed_name(peer.ip()).await;
    }
    tracing::info!(session = %info.id, service = service.as_str(), client = %peer, name = info.client_name.as_deref().unwrap_or("-"), "connect");
    let cfg = driver::session_config(&state, &limits, &info);
    driver::Driver::new(state, cfg, policy, info, Conn::Plain(tcp)).run().await;
}
