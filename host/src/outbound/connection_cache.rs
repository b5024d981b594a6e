//! Idle outbound connections kept for the next message to the same host.
//!
//! RFC 5321 3.3 lets a client send several transactions on one connection;
//! Postfix's connection cache does so for the messages of a busy
//! destination. A connection whose transaction ended cleanly (the session
//! back in its ready state) waits here for at most `connection_cache_time`;
//! the next message bound for the same address, host name and TLS policy
//! takes it instead of connecting, greeting, EHLO-ing and handshaking
//! again. After that time, or once the connection is older than
//! `connection_reuse_time`, it is closed with QUIT.
//!
//! Idle connections hold no connection permit: they are bounded here
//! instead (`max_connections_per_domain` per host, `max_connections` in
//! all), and they live seconds.

use crate::net::Conn;
use ferrymail_proto::client::{ClientSession, TlsMode};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which connections are interchangeable: same address, same name (SNI and
/// certificate check), same TLS policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub addr: SocketAddr,
    pub name: String,
    pub tls: TlsMode,
}

/// A connection ready for its next transaction.
pub struct Ready {
    pub session: ClientSession,
    pub conn: Conn,
    /// When it was opened, for `connection_reuse_time`.
    pub opened: Instant,
}

struct Idle {
    id: u64,
    ready: Ready,
}

pub struct ConnectionCache {
    idle: Mutex<HashMap<Key, Vec<Idle>>>,
    /// How long a connection may wait for a next message (zero: no cache).
    idle_time: Duration,
    /// How long after opening a connection may still take a transaction.
    reuse_time: Duration,
    per_host: usize,
    total: usize,
    next_id: AtomicU64,
}

impl ConnectionCache {
    pub fn new(idle_time: Duration, reuse_time: Duration, per_host: usize, total: usize) -> Arc<Self> {
        Arc::new(ConnectionCache {
            idle: Mutex::new(HashMap::new()),
            idle_time,
            reuse_time,
            per_host,
            total,
            next_id: AtomicU64::new(0),
        })
    }

    /// The most recently parked connection to `key`, if one is waiting.
    pub fn take(&self, key: &Key) -> Option<Ready> {
        let mut idle = self.lock();
        let list = idle.get_mut(key)?;
        let found = list.pop().map(|i| i.ready);
        if list.is_empty() {
            idle.remove(key);
        }
        found
    }

    /// Parks a connection whose session is ready for another transaction,
    /// or closes it when caching is off, it is too old, or the cache is full.
    pub fn park(self: &Arc<Self>, key: Key, ready: Ready) {
        if self.idle_time.is_zero() || ready.opened.elapsed() >= self.reuse_time {
            tokio::spawn(super::client::quit(ready.session, ready.conn));
            return;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let refused = {
            let mut idle = self.lock();
            let total: usize = idle.values().map(Vec::len).sum();
            let list = idle.entry(key.clone()).or_default();
            if list.len() >= self.per_host || total >= self.total {
                Some(ready)
            } else {
                list.push(Idle { id, ready });
                None
            }
        };
        if let Some(ready) = refused {
            tokio::spawn(super::client::quit(ready.session, ready.conn));
            return;
        }
        // Close it when nobody took it in time.
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(cache.idle_time).await;
            if let Some(ready) = cache.remove(&key, id) {
                super::client::quit(ready.session, ready.conn).await;
            }
        });
    }

    fn remove(&self, key: &Key, id: u64) -> Option<Ready> {
        let mut idle = self.lock();
        let list = idle.get_mut(key)?;
        let at = list.iter().position(|i| i.id == id)?;
        let found = list.remove(at).ready;
        if list.is_empty() {
            idle.remove(key);
        }
        Some(found)
    }

    /// Connections waiting now.
    pub fn waiting(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrymail_proto::client::Timeouts;
    use tokio::net::{TcpListener, TcpStream};

    async fn ready(listener: &TcpListener) -> Ready {
        let conn = Conn::Plain(TcpStream::connect(listener.local_addr().unwrap()).await.unwrap());
        let t = Duration::from_secs(5);
        let timeouts = Timeouts { greeting: t, command: t, data_init: t, data_block: t, data_done: t, quit: t };
        Ready { session: ClientSession::new("client.test", TlsMode::Off, timeouts), conn, opened: Instant::now() }
    }

    fn key(listener: &TcpListener, name: &str) -> Key {
        Key { addr: listener.local_addr().unwrap(), name: name.to_string(), tls: TlsMode::Off }
    }

    #[tokio::test]
    async fn a_parked_connection_is_taken_once_and_only_for_its_own_key() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cache = ConnectionCache::new(Duration::from_secs(60), Duration::from_secs(300), 2, 10);
        cache.park(key(&l, "mx.a.test"), ready(&l).await);
        assert!(cache.take(&key(&l, "mx.b.test")).is_none(), "another MX name (SNI, certificate) is another key");
        let tls = Key { tls: TlsMode::Require, ..key(&l, "mx.a.test") };
        assert!(cache.take(&tls).is_none(), "another TLS policy is another key");
        assert!(cache.take(&key(&l, "mx.a.test")).is_some());
        assert!(cache.take(&key(&l, "mx.a.test")).is_none());
    }

    #[tokio::test]
    async fn at_most_per_host_and_total_connections_wait() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cache = ConnectionCache::new(Duration::from_secs(60), Duration::from_secs(300), 2, 3);
        for _ in 0..3 {
            cache.park(key(&l, "mx.a.test"), ready(&l).await);
        }
        assert_eq!(cache.waiting(), 2, "per host");
        for _ in 0..3 {
            cache.park(key(&l, "mx.b.test"), ready(&l).await);
        }
        assert_eq!(cache.waiting(), 3, "in all");
    }

    #[tokio::test]
    async fn nothing_waits_when_off_or_too_old_and_idle_ones_leave_after_the_cache_time() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let off = ConnectionCache::new(Duration::ZERO, Duration::from_secs(300), 2, 10);
        off.park(key(&l, "mx.a.test"), ready(&l).await);
        assert_eq!(off.waiting(), 0);
        let old = ConnectionCache::new(Duration::from_secs(60), Duration::from_millis(1), 2, 10);
        let stale = ready(&l).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        old.park(key(&l, "mx.a.test"), stale);
        assert_eq!(old.waiting(), 0, "older than connection_reuse_time");
        let brief = ConnectionCache::new(Duration::from_millis(50), Duration::from_secs(300), 2, 10);
        brief.park(key(&l, "mx.a.test"), ready(&l).await);
        assert_eq!(brief.waiting(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(brief.waiting(), 0);
    }
}
