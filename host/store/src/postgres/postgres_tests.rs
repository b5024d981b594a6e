//! What the battery cannot show with one store: several nodes (stores) on
//! one database, and the migrations.

use super::battery_tests::fresh_store;
use super::cluster::Cluster;
use super::{PostgresOptions, PostgresStore, SCHEMA_VERSION};
use crate::battery::{account, deliver, futures_join_all};
use crate::contract::{Kv, Mailboxes, Queue};
use crate::schema::{ChangeKind, INBOX_ID, QueueEntry, QueueRecipient, QueuedRoute, now_secs};
use crate::{Store, StoreError};

/// Two or more stores on one fresh database: the nodes of a cluster.
async fn nodes(n: usize) -> Vec<PostgresStore> {
    let db = tokio::task::spawn_blocking(|| Cluster::shared().create_database()).await.unwrap();
    let url = Cluster::shared().url(&db);
    let mut out = Vec::new();
    for _ in 0..n {
        let mut options = PostgresOptions::new(&url);
        options.pool_size = 8;
        out.push(PostgresStore::open(options).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_and_a_newer_schema_is_refused() {
    let stores = nodes(3).await;
    let c = stores[0].pool.get().await.unwrap();
    let versions: Vec<i32> = c
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>(), "each version applied once for three opens");
    c.execute(
        "INSERT INTO schema_migrations (version, description) VALUES ($1, 'from the future')",
        &[&(SCHEMA_VERSION + 1)],
    )
    .await
    .unwrap();
    let url = Cluster::shared().url(c.query_one("SELECT current_database()", &[]).await.unwrap().get(0));
    match PostgresStore::open(PostgresOptions::new(&url)).await {
        Err(StoreError::SchemaVersion { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION as u32 + 1, SCHEMA_VERSION as u32))
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_delivering_into_one_mailbox_never_share_a_uid() {
    let stores = nodes(3).await;
    let a = account(&stores[0], "a@x.test").await;
    let to = [&a];
    let mut tasks = Vec::new();
    for n in 0..60 {
        let store: &dyn Store = &stores[n % 3];
        tasks.push(deliver(store, b"Subject: x\r\n\r\nx\r\n", &to, None));
    }
    let accepted = futures_join_all(tasks).await;
    let mut uids: Vec<u32> = accepted.iter().map(|acc| acc.filed[0].uid).collect();
    uids.sort_unstable();
    assert_eq!(uids, (1..=60).collect::<Vec<_>>());
    let inbox = stores[2].mailbox_by_id(a.id, INBOX_ID).await.unwrap().unwrap();
    assert_eq!((inbox.messages, inbox.uid_next, inbox.highest_modseq), (60, 61, 61));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_is_heard_on_another() {
    let stores = nodes(2).await;
    let a = account(&stores[0], "a@x.test").await;
    let mut feed = stores[1].watch(a.id);
    let acc = deliver(&stores[0], b"x\r\n", &[&a], None).await;
    // The other node may still be hearing the account's creation (another
    // node's changes arrive when they arrive): the first append is what counts.
    let appended = loop {
        let change = tokio::time::timeout(std::time::Duration::from_secs(10), feed.next()).await.unwrap().unwrap();
        if change.kind != ChangeKind::Mailboxes {
            break change.kind;
        }
    };
    assert_eq!(appended, ChangeKind::Appended { uid: acc.filed[0].uid, modseq: 2 });
    let expunged: Vec<u32> = (1..=1200).collect();
    // A large expunge crosses in several notifications, all heard.
    for _ in 0..1199 {
        deliver(&stores[0], b"x\r\n", &[&a], None).await;
    }
    while feed.try_next().is_some() {}
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    while feed.try_next().is_some() {}
    stores[0].expunge(a.id, INBOX_ID, &crate::schema::UidSet::from_runs([(1, 1200)])).await.unwrap();
    let mut heard = Vec::new();
    while heard.len() < expunged.len() {
        let c = tokio::time::timeout(std::time::Duration::from_secs(10), feed.next()).await.unwrap().unwrap();
        let ChangeKind::Expunged { uids, .. } = c.kind else { continue };
        heard.extend(uids);
    }
    assert_eq!(heard, expunged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_claiming_at_once_take_disjoint_entries() {
    let stores = nodes(2).await;
    let rcpt = QueueRecipient::new("r@far.test", QueuedRoute::Mx { domain: "far.test".into() });
    for _ in 0..40 {
        let entry = QueueEntry::new("s@x.test", None, vec![rcpt.clone()]);
        deliver(&stores[0], b"x\r\n", &[], Some(entry)).await;
    }
    let now = now_secs();
    let (a, b) = tokio::join!(
        stores[0].queue_claim("node-a", now + 5, 25, now + 600),
        stores[1].queue_claim("node-b", now + 5, 25, now + 600)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 40, "SKIP LOCKED: together they took every entry once");
    let mut ids: Vec<u64> = a.iter().chain(&b).map(|e| e.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "no entry claimed twice");
    // node-a dies: its leases run out and node-b takes its entries.
    let later = now + 601;
    let taken = stores[1].queue_claim("node-b", later, 100, later + 600).await.unwrap();
    assert_eq!(taken.len(), 40, "every lease expired");
    assert!(matches!(stores[0].queue_renew("node-a", a[0].id, later + 900).await, Err(StoreError::LeaseLost(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_counters_are_shared_between_nodes() {
    let stores = nodes(2).await;
    let mut tasks = Vec::new();
    for n in 0..40 {
        tasks.push(stores[n % 2].kv_incr("tenant/ratelimit", b"1.2.3.4", 1, Some(60)));
    }
    futures_join_all(tasks).await.into_iter().for_each(|r| assert!(r.is_ok()));
    assert_eq!(stores[1].kv_get("tenant/ratelimit", b"1.2.3.4").await.unwrap(), Some(40i64.to_le_bytes().to_vec()));
    assert_eq!(stores[0].kv_incr("n", b"neg", i64::MIN + 5, None).await.unwrap(), i64::MIN + 5, "the sign survives");
    assert_eq!(stores[1].kv_incr("n", b"neg", -5, None).await.unwrap(), i64::MIN);
    let store = fresh_store().await;
    assert_eq!(store.backend(), "postgres");
    assert!(store.size_on_disk().await.unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_queue_entry_wakes_every_node_and_a_claim_does_not() {
    let stores = nodes(2).await;
    let mut woken = stores[1].queue_changes().expect("a shared queue announces its changes");
    let rcpt = QueueRecipient::new("r@far.test", QueuedRoute::Mx { domain: "far.test".into() });
    deliver(&stores[0], b"x\r\n", &[], Some(QueueEntry::new("s@x.test", None, vec![rcpt]))).await;
    let wait = std::time::Duration::from_secs(10);
    tokio::time::timeout(wait, woken.changed()).await.expect("node b woken by node a's new entry").unwrap();
    let now = now_secs();
    let claimed = stores[0].queue_claim("node-a", now, 10, now + 600).await.unwrap();
    assert_eq!(claimed.len(), 1);
    stores[0].queue_renew("node-a", claimed[0].id, now + 900).await.unwrap();
    // Claims and renewals change nobody's schedule but the claimer's.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!woken.has_changed().unwrap(), "a claim or renewal wakes nobody");
    // node a restarts: its lease is dropped and the entry is due for anyone.
    stores[0].queue_recover("node-a").await.unwrap();
    tokio::time::timeout(wait, woken.changed()).await.expect("node b woken by node a's recovery").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_listener_reconnects_subscribers_hear_they_may_have_missed_changes() {
    let stores = nodes(2).await;
    let a = account(&stores[0], "a@x.test").await;
    let mut feed = stores[1].watch(a.id);
    let mut woken = stores[1].queue_changes().unwrap();
    woken.borrow_and_update();
    // Cut every node's listening connection, as a database restart would.
    let c = stores[0].pool.get().await.unwrap();
    let cut = c
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN %'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(cut, 2, "one listener per node");
    let wait = std::time::Duration::from_secs(10);
    loop {
        match tokio::time::timeout(wait, feed.next()).await.expect("told within the reconnect") {
            Err(crate::contract::Lagged(_)) => break,
            // The account's creation, heard before the cut.
            Ok(change) => assert_eq!(change.kind, ChangeKind::Mailboxes),
        }
    }
    tokio::time::timeout(wait, woken.changed()).await.expect("the scheduler looks again").unwrap();
    // And changes flow again.
    let acc = deliver(&stores[0], b"x\r\n", &[&a], None).await;
    let change = tokio::time::timeout(wait, feed.next()).await.unwrap().unwrap();
    assert_eq!(change.kind, ChangeKind::Appended { uid: acc.filed[0].uid, modseq: 2 });
}

/// UIDs are 32-bit (RFC 3501 2.3.1.1): a mailbox that has handed out the
/// last one refuses more mail, names why, and keeps nothing of it; a
/// mailbox that does not exist is named as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_out_of_uids_refuses_mail_and_keeps_nothing_rfc3501_2_3_1_1() {
    let stores = nodes(1).await;
    let store: &dyn Store = &stores[0];
    let a = account(store, "full@x.test").await;
    let c = stores[0].pool.get().await.unwrap();
    c.execute("UPDATE mailboxes SET uid_next = 4294967296 WHERE account = $1", &[&(a.id as i64)]).await.unwrap();
    let incoming = |id| crate::schema::Incoming {
        id,
        content: bytes::Bytes::from_static(b"Subject: x\r\n\r\nx\r\n"),
        return_path: "sender@remote.test".into(),
        local: vec![crate::schema::Filing::inbox(a.id)],
        queue: None,
        summary: None,
        traces: Vec::new(),
    };
    match store.accept(incoming(store.new_id().await.unwrap())).await {
        Err(StoreError::MailboxRefused(why)) => assert!(why.contains("every UID"), "{why}"),
        other => panic!("expected MailboxRefused, got {other:?}"),
    }
    let inbox = "SELECT messages, uid_next FROM mailboxes WHERE account = $1 AND id = $2";
    let row = c.query_one(inbox, &[&(a.id as i64), &i64::from(INBOX_ID)]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (0, 4294967296));
    let contents: i64 = c.query_one("SELECT count(*) FROM contents", &[]).await.unwrap().get(0);
    assert_eq!(contents, 0, "the refused message's content is not kept");

    let mut gone = incoming(store.new_id().await.unwrap());
    gone.local = vec![crate::schema::Filing { account: a.id, mailbox: 77 }];
    assert!(matches!(store.accept(gone).await, Err(StoreError::NoSuchMailbox(_))));
}
