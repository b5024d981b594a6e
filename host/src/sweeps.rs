//! Store housekeeping that runs for the server's lifetime: expired plugin
//! kv keys (which read as absent at once, but stay on disk until swept)
//! and old decision traces (expired ones, and refused transactions' beyond
//! [`crate::trace::MAX_REFUSED`]). Both run whether tracing is on or not:
//! what earlier runs stored still has to go.
//!
//! Each kv sweep looks at a bounded number of keys ([`KV_KEYS`]) and the
//! next one goes on where it stopped, so no sweep holds the blocking pool
//! long however many keys plugins keep; sweeps run beside commits (the kv
//! tree is not written by commit groups), never in front of them.

use ferrymail_store::SharedStore;
use std::time::Duration;

/// How often a kv sweep runs.
pub const KV_EVERY: Duration = Duration::from_secs(5);
/// Keys one kv sweep looks at: 400 a second, so a million keys (a busy
/// greylist) are all looked at within about 45 minutes.
pub const KV_KEYS: usize = 2_000;
/// How often the traces are swept: records live for days
/// (`trace.keep_refused`, `trace.keep_messages`), an hour late is nothing.
pub const TRACES_EVERY: Duration = Duration::from_secs(3600);

/// Starts both sweeps for the server's lifetime.
pub fn spawn(store: &SharedStore) {
    tokio::spawn(kv_forever(store.clone(), KV_EVERY, KV_KEYS));
    tokio::spawn(traces_forever(store.clone(), TRACES_EVERY));
}

/// Sweeps the plugins' kv data every `every`, `keys` keys at a time.
pub async fn kv_forever(store: SharedStore, every: Duration, keys: usize) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.kv_sweep(keys).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "kv: expired keys removed"),
            Err(e) => tracing::warn!(error = %e, "kv: sweep failed"),
        }
    }
}

/// Removes expired trace records and the oldest refused-transaction ones
/// beyond [`crate::trace::MAX_REFUSED`], every `every`.
pub async fn traces_forever(store: SharedStore, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.trace_sweep(crate::trace::SESSIONS_PREFIX, crate::trace::MAX_REFUSED).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "trace: old records removed"),
            Err(e) => tracing::warn!(error = %e, "trace: sweep failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrymail_store::schema::{Filing, Incoming, TraceWrite};

    fn store() -> (tempfile::TempDir, SharedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ferrymail_store::open_embedded(dir.path(), Default::default()).unwrap();
        (dir, store)
    }

    /// Runs `sweep` for a while, as the server does, then stops it.
    async fn run_for(sweep: impl std::future::Future<Output = ()> + Send + 'static, how_long: Duration) {
        let task = tokio::spawn(sweep);
        tokio::time::sleep(how_long).await;
        task.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_server_sweep_removes_expired_kv_keys_from_the_store() {
        let (_dir, store) = store();
        for n in 0..50u32 {
            store.kv_set("greylist", &n.to_be_bytes(), b"seen", Some(1)).await.unwrap();
        }
        store.kv_set("greylist", b"kept", b"seen", None).await.unwrap();
        // Expiry is in whole seconds: after two, every key with a 1 s TTL is past it.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        // Hidden, but still stored: a sweep of everything would find them.
        assert_eq!(store.kv_get("greylist", &0u32.to_be_bytes()).await.unwrap(), None);
        run_for(kv_forever(store.clone(), Duration::from_millis(20), 8), Duration::from_millis(500)).await;
        // The periodic sweep, 8 keys at a time, left nothing expired: a
        // sweep of every key now finds nothing to remove.
        assert_eq!(store.kv_sweep(usize::MAX).await.unwrap(), 0);
        assert_eq!(store.kv_get("greylist", b"kept").await.unwrap(), Some(b"seen".to_vec()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_server_sweep_removes_expired_traces_of_refused_and_accepted_transactions() {
        let (_dir, store) = store();
        let write = |key: String, ttl_secs| TraceWrite { key, record: b"r".to_vec(), ttl_secs };
        // Refused transactions (no commit to ride on), short-lived but one.
        let refused: Vec<_> = (0..20).map(|n| write(format!("s/{:016x}/0000", n), 1)).collect();
        store.trace_put(&refused);
        store.trace_put(&[write("s/00000000000000ff/0000".into(), 3600)]);
        // An accepted message's record, written by its commit.
        let account = store.add_account("a@x.test", "$argon2id$test").await.unwrap();
        let id = store.new_id().await.unwrap();
        store
            .accept(Incoming {
                id,
                content: bytes::Bytes::from_static(b"Subject: t\r\n\r\nx\r\n"),
                return_path: "s@x.test".into(),
                local: vec![Filing::inbox(account.id)],
                queue: None,
                summary: None,
                traces: vec![write("m/short".into(), 1)],
            })
            .await
            .unwrap();
        // Past the 1 s expiry, and past the writer's idle second that
        // takes the refused records to disk.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        run_for(traces_forever(store.clone(), Duration::from_millis(20)), Duration::from_millis(300)).await;
        // Nothing expired is left for a sweep to remove; the live one stays.
        assert_eq!(store.trace_sweep(crate::trace::SESSIONS_PREFIX, usize::MAX).await.unwrap(), 0);
        let left = store.trace_scan(crate::trace::SESSIONS_PREFIX, 100).await.unwrap();
        assert_eq!(left, [("s/00000000000000ff/0000".to_string(), b"r".to_vec())]);
    }
}
