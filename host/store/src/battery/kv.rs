//! The plugins' key-value data.

use crate::StoreError;
use crate::contract::Store;

pub async fn kv_namespaces_are_isolated(store: &dyn Store) {
    store.kv_set("tenantA/greylist", b"k", b"1", None).await.unwrap();
    assert_eq!(store.kv_get("tenantA/greylist", b"k").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.kv_get("tenantB/greylist", b"k").await.unwrap(), None);
    // No separator trick reaches another namespace's keys.
    assert_eq!(store.kv_get("tenantA", b"/greylist\0k").await.unwrap(), None);
    assert_eq!(store.kv_get("tenantA/greylist\0", b"k").await.unwrap(), None);
    store.kv_set("a\0b", b"k", b"x", None).await.unwrap();
    assert_eq!(store.kv_get("a", b"b\0k").await.unwrap(), None);
    assert_eq!(store.kv_get("a", b"\0bk").await.unwrap(), None);
    store.kv_delete("tenantA/greylist", b"k").await.unwrap();
    assert_eq!(store.kv_get("tenantA/greylist", b"k").await.unwrap(), None);
    // Binary keys and values round-trip.
    store.kv_set("n", &[0, 255, 10], &[1, 0, 2], Some(3600)).await.unwrap();
    assert_eq!(store.kv_get("n", &[0, 255, 10]).await.unwrap(), Some(vec![1, 0, 2]));
}

/// Expired keys are removed by sweeps that each look at a bounded number
/// of keys and go on where the last one stopped.
pub async fn kv_sweeps_remove_expired_keys_a_bounded_number_at_a_time(store: &dyn Store) {
    for n in 0..9u8 {
        // Six expire after a second, three never.
        let ttl = (n % 3 != 0).then_some(1);
        store.kv_set("sweep", &[n], b"v", ttl).await.unwrap();
    }
    // Expiry is in whole seconds: after two, the 1 s keys are past it.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let mut removed = Vec::new();
    for _ in 0..3 {
        removed.push(store.kv_sweep(4).await.unwrap());
    }
    assert!(removed.iter().all(|&n| n <= 4), "{removed:?}");
    assert_eq!(removed.iter().sum::<usize>(), 6, "three sweeps of 4 keys cover all 9: {removed:?}");
    assert_eq!(store.kv_sweep(usize::MAX).await.unwrap(), 0, "nothing expired is left");
    for n in [0u8, 3, 6] {
        assert_eq!(store.kv_get("sweep", &[n]).await.unwrap(), Some(b"v".to_vec()));
    }
}

pub async fn kv_counters(store: &dyn Store) {
    assert_eq!(store.kv_incr("n", b"c", 1, Some(60)).await.unwrap(), 1);
    assert_eq!(store.kv_incr("n", b"c", 2, Some(60)).await.unwrap(), 3);
    assert_eq!(store.kv_get("n", b"c").await.unwrap(), Some(3i64.to_le_bytes().to_vec()));
    assert_eq!(store.kv_incr("n", b"c", -5, None).await.unwrap(), -2);
    store.kv_set("n", b"text", b"hello", None).await.unwrap();
    assert!(matches!(store.kv_incr("n", b"text", 1, None).await, Err(StoreError::NotACounter)));
    assert_eq!(store.kv_get("n", b"text").await.unwrap(), Some(b"hello".to_vec()), "unchanged");
    // Concurrent increments never lose one.
    let mut tasks = Vec::new();
    for _ in 0..50 {
        tasks.push(store.kv_incr("n", b"par", 1, None));
    }
    futures_join_all(tasks).await;
    assert_eq!(store.kv_incr("n", b"par", 0, None).await.unwrap(), 50);
    assert_eq!(store.kv_sweep(usize::MAX).await.unwrap(), 0, "nothing has expired");
}

/// Polls futures to completion concurrently (no extra dependency).
pub(crate) async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future completed")).collect()
}

pub async fn kv_values_expire(store: &dyn Store) {
    store.kv_set("n", b"gone", b"x", Some(1)).await.unwrap();
    store.kv_set("n", b"kept", b"y", None).await.unwrap();
    assert_eq!(store.kv_incr("n", b"window", 5, Some(1)).await.unwrap(), 5);
    assert_eq!(store.kv_get("n", b"gone").await.unwrap(), Some(b"x".to_vec()));
    // Whole seconds of the wall clock: past the deadline a value reads as
    // absent and a counter starts again from zero with a fresh TTL.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(store.kv_get("n", b"gone").await.unwrap(), None);
    store.kv_set("n", b"text", b"not a counter", Some(1)).await.unwrap();
    assert_eq!(store.kv_incr("n", b"window", 2, Some(60)).await.unwrap(), 2, "an expired counter restarts");
    assert_eq!(store.kv_sweep(usize::MAX).await.unwrap(), 1, "only the expired value goes");
    assert_eq!(store.kv_get("n", b"kept").await.unwrap(), Some(b"y".to_vec()));
    assert_eq!(store.kv_get("n", b"window").await.unwrap(), Some(2i64.to_le_bytes().to_vec()));
}
