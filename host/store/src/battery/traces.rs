use super::account;
use super::queue::{queued, rcpt};
use crate::contract::Store;
use crate::schema::{Filing, Incoming, RecipientState, TraceWrite};
use bytes::Bytes;

fn write(key: &str, record: &[u8]) -> TraceWrite {
    TraceWrite { key: key.into(), record: record.to_vec(), ttl_secs: 3600 }
}

/// A message's trace is written by the commit that accepts it, an
/// attempt's by the commit that ends it; a change refused writes neither.
pub async fn traces_ride_on_their_change(store: &dyn Store) {
    let me = account(store, "me@x.test").await;
    let id = store.new_id().await.unwrap();
    let incoming = |id, to: u64| Incoming {
        id,
        content: Bytes::from_static(b"Subject: t\r\n\r\nx\r\n"),
        return_path: "s@x.test".into(),
        local: vec![Filing::inbox(to)],
        queue: None,
        summary: None,
        traces: vec![write(&format!("m/{id}"), b"record"), write(&format!("s/a/{id}"), b"@pointer")],
    };
    store.accept(incoming(id, me.id)).await.unwrap();
    assert_eq!(store.trace_get(&format!("m/{id}")).await.unwrap().as_deref(), Some(&b"record"[..]));
    assert_eq!(store.trace_get(&format!("s/a/{id}")).await.unwrap().as_deref(), Some(&b"@pointer"[..]));
    let refused = store.new_id().await.unwrap();
    assert!(store.accept(incoming(refused, me.id ^ 0x99)).await.is_err());
    assert_eq!(store.trace_get(&format!("m/{refused}")).await.unwrap(), None, "nothing of a refused change");

    let q = queued(store, vec![rcpt("far@far.test")]).await;
    let mut e = store.queue_entry(q).await.unwrap().unwrap();
    e.recipients[0].state = RecipientState::Failed;
    e.recipients[0].notified = true;
    store.queue_commit(&e, &[], Vec::new(), vec![write("m/attempted", b"attempt 1")]).await.unwrap();
    assert_eq!(store.trace_get("m/attempted").await.unwrap().as_deref(), Some(&b"attempt 1"[..]));
    assert!(store.queue_commit(&e, &[], Vec::new(), vec![write("m/late", b"x")]).await.is_err());
    assert_eq!(store.trace_get("m/late").await.unwrap(), None);
}

/// A record with no change to ride on is readable as soon as it is put,
/// in scans too, and newer than what the store held under its key.
pub async fn traces_without_a_change_read_at_once(store: &dyn Store) {
    store.trace_put(&[write("s/b/0000", b"first"), write("s/b/0001", b"second")]);
    assert_eq!(store.trace_get("s/b/0000").await.unwrap().as_deref(), Some(&b"first"[..]));
    store.trace_put(&[write("s/b/0000", b"replaced")]);
    let found = store.trace_scan("s/b/", 10).await.unwrap();
    assert_eq!(found, [("s/b/0000".to_string(), b"replaced".to_vec()), ("s/b/0001".to_string(), b"second".to_vec())]);
    assert!(store.trace_scan("s/c/", 10).await.unwrap().is_empty());
}

pub async fn traces_expire(store: &dyn Store) {
    store.trace_put(&[TraceWrite { key: "short".into(), record: b"x".to_vec(), ttl_secs: 1 }, write("long", b"y")]);
    assert!(store.trace_get("short").await.unwrap().is_some());
    // Whole seconds of the wall clock: past the deadline a record is gone
    // from reads at once and from the store at the next sweep.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(store.trace_get("short").await.unwrap(), None);
    assert!(store.trace_scan("", 10).await.unwrap().iter().all(|(k, _)| k != "short"));
    assert_eq!(store.trace_sweep("none/", 10).await.unwrap(), 1);
    assert_eq!(store.trace_get("long").await.unwrap().as_deref(), Some(&b"y"[..]));
}
