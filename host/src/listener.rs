//! The accept loop every protocol shares: a session cap, and a polite
//! refusal when it is reached.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// Binds every address or fails naming the config key.
pub async fn bind(key: &str, addrs: &[SocketAddr]) -> anyhow::Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for addr in addrs {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("config key {key}: cannot listen on {addr}: {e}"))?;
        out.push(l);
    }
    Ok(out)
}

/// Accepts until `shutdown` flips; each session runs in its own task while
/// holding one of `max_sessions` permits. Over the cap, the client gets
/// `busy` (a protocol-appropriate refusal) and is closed.
pub async fn serve<F, Fut>(
    name: &'static str,
    listener: TcpListener,
    max_sessions: usize,
    busy: &'static [u8],
    mut shutdown: watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(max_sessions));
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(service = name, listen = %local, "listening");
    loop {
        let (mut tcp, peer) = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(service = name, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let session = handler(tcp, peer);
                tokio::spawn(async move {
                    session.await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::warn!(service = name, client = %peer, "session limit reached; refusing connection");
                tokio::spawn(async move {
                    let _ = tcp.write_all(busy).await;
                    let _ = tcp.shutdown().await;
                });
            }
        }
    }
}
