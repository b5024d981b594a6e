//! A version 1 store, written the way the first release wrote it (its
//! record types and key layouts, reproduced here), opened by this version.

use super::*;
use crate::schema::{Flags, QueuedRoute, RecipientState};
use serde::Serialize;

#[derive(Serialize)]
struct V1Account {
    id: u64,
    address: String,
    password_hash: String,
    created: u64,
}

#[derive(Serialize)]
struct V1MailboxW {
    id: u32,
    uid_validity: u32,
    uid_next: u32,
}

#[derive(Serialize)]
struct V1EntryW {
    blob: u64,
    size: u64,
    flags: u32,
    keywords: Vec<String>,
    internal_date: u64,
    return_path: String,
}

#[derive(Serialize)]
struct V1RecipientW {
    address: String,
    route: QueuedRoute,
    state: RecipientState,
    attempts: u32,
    last_reply: Option<String>,
    remote_mta: Option<String>,
    warned: bool,
    next_attempt: u64,
    notified: bool,
}

#[derive(Serialize)]
struct V1QueuedW {
    id: u64,
    blob: u64,
    sender: String,
    tenant: Option<String>,
    created: u64,
    next_attempt: u64,
    attempts: u32,
    last_attempt: u64,
    recipients: Vec<V1RecipientW>,
}

fn v1_store(dir: &std::path::Path) {
    let db = sled::open(dir).unwrap();
    let tree = |n: &str| db.open_tree(n).unwrap();
    let enc = |v: &dyn erased::Ser| v.bytes();
    tree("meta").insert("schema_version", &1u32.to_be_bytes()).unwrap();
    let account = V1Account { id: 7, address: "old@x.test".into(), password_hash: "$h".into(), created: 1 };
    tree("accounts").insert("old@x.test", enc(&account)).unwrap();
    let mut inbox_key = 7u64.to_be_bytes().to_vec();
    inbox_key.extend_from_slice(b"INBOX");
    tree("mailboxes").insert(inbox_key, enc(&V1MailboxW { id: 0, uid_validity: 4242, uid_next: 4 })).unwrap();
    for (uid, blob, flags) in [(1u32, 100u64, 1u32), (3, 101, 0)] {
        let mut key = 7u64.to_be_bytes().to_vec();
        key.extend_from_slice(&0u32.to_be_bytes());
        key.extend_from_slice(&uid.to_be_bytes());
        let body = format!("Subject: {uid}\r\n\r\nold\r\n");
        let size = (body.len() + "Return-Path: <s@y.test>\r\n".len()) as u64;
        let entry = V1EntryW {
            blob,
            size,
            flags,
            keywords: vec!["kw".into()],
            internal_date: 99,
            return_path: "s@y.test".into(),
        };
        tree("mail").insert(key, enc(&entry)).unwrap();
        tree("blobs").insert(blob.to_be_bytes(), body.as_bytes()).unwrap();
        tree("blob_refs").insert(blob.to_be_bytes(), &1u32.to_be_bytes()).unwrap();
    }
    let queued = V1QueuedW {
        id: 500,
        blob: 102,
        sender: "s@y.test".into(),
        tenant: None,
        created: 5,
        next_attempt: 5,
        attempts: 1,
        last_attempt: 4,
        recipients: vec![V1RecipientW {
            address: "far@z.test".into(),
            route: QueuedRoute::Mx { domain: "z.test".into() },
            state: RecipientState::Deferred,
            attempts: 1,
            last_reply: Some("451 4.7.1 greylisted, try later".into()),
            remote_mta: Some("mx.z.test".into()),
            warned: false,
            next_attempt: 5,
            notified: false,
        }],
    };
    tree("queue").insert(500u64.to_be_bytes(), enc(&queued)).unwrap();
    tree("blobs").insert(102u64.to_be_bytes(), &b"queued\r\n"[..]).unwrap();
    tree("blob_refs").insert(102u64.to_be_bytes(), &1u32.to_be_bytes()).unwrap();
    let mut kv_key = b"tenant/greylist".to_vec();
    kv_key.push(0);
    kv_key.extend_from_slice(b"triplet");
    let mut kv_val = 0u64.to_be_bytes().to_vec();
    kv_val.extend_from_slice(b"seen");
    tree("kv").insert(kv_key, kv_val).unwrap();
    db.flush().unwrap();
}

mod erased {
    pub trait Ser {
        fn bytes(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn bytes(&self) -> Vec<u8> {
            bincode::serialize(self).unwrap()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_store_is_migrated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    v1_store(dir.path());
    let store = crate::open_embedded(dir.path(), Default::default()).unwrap();
    let a = store.account("old@x.test").await.unwrap().expect("account kept");
    assert_eq!((a.id, a.password_hash.as_str()), (7, "$h"));
    assert_eq!(store.account_by_id(7).await.unwrap().unwrap().address, "old@x.test");
    let inbox = store.mailbox_by_id(7, INBOX_ID).await.unwrap().unwrap();
    assert_eq!((inbox.uid_validity, inbox.uid_next, inbox.messages, inbox.unseen), (4242, 4, 2, 1));
    assert_eq!(store.uids(7, INBOX_ID).await.unwrap().runs(), &[(1, 1), (3, 3)]);
    let names: Vec<String> = store.mailboxes(7).await.unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["INBOX", "Sent", "Drafts", "Trash", "Junk"], "default folders added");
    let entries = store.all_entries(7, INBOX_ID).await.unwrap();
    assert_eq!(entries[0].flags, Flags::SEEN);
    assert_eq!(entries[1].keywords, ["kw"]);
    let text = store.read_message(&entries[1]).await.unwrap();
    assert_eq!(&text[..], b"Return-Path: <s@y.test>\r\nSubject: 3\r\n\r\nold\r\n");
    assert_eq!(entries[1].size, text.len() as u64);
    let index = store.flag_index(7, INBOX_ID).await.unwrap();
    assert_eq!((index.system[0].runs(), index.with_keywords.runs()), (&[(1, 1)][..], &[(1, 1), (3, 3)][..]));
    assert_eq!(index.keywords, ["kw"], "the flag index is built (version 3)");
    let q = store.queue_entry(500).await.unwrap().expect("queue entry kept");
    let reply = q.recipients[0].last_reply.clone().unwrap();
    assert_eq!(
        (reply.code, reply.enhanced.as_deref(), reply.text.as_str()),
        (451, Some("4.7.1"), "greylisted, try later")
    );
    assert_eq!(&store.read_content(q.content).await.unwrap()[..], b"queued\r\n");
    assert_eq!(store.kv_get("tenant/greylist", b"triplet").await.unwrap(), Some(b"seen".to_vec()));
    // The migrated store takes new mail after the old UIDs, and expunges
    // free the old contents.
    let acc = crate::battery::deliver(&*store, b"new\r\n", &[&a], None).await;
    assert_eq!(acc.filed[0].uid, 4);
    store.expunge(7, INBOX_ID, &crate::schema::UidSet::from_runs([(1, 1)])).await.unwrap();
    assert!(store.read_content(100).await.is_err());
    store.close().await.unwrap();
    drop(store);
    // Reopening a migrated store migrates nothing and drops no data.
    let store = crate::open_embedded(dir.path(), Default::default()).unwrap();
    assert_eq!(store.all_entries(7, INBOX_ID).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_2_store_gets_its_flag_index_on_open() {
    use crate::schema::{FlagChange, FlagOp, UidSet};
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_embedded(dir.path(), Default::default()).unwrap();
    let a = crate::battery::account(&*store, "a@x.test").await;
    for _ in 0..3 {
        crate::battery::deliver(&*store, b"x\r\n", &[&a], None).await;
    }
    let mut change = FlagChange::new(FlagOp::Add, Flags::SEEN | Flags::DELETED);
    change.keywords = vec!["Later".into()];
    store.set_flags(a.id, INBOX_ID, &UidSet::from_runs([(2, 3)]), &change).await.unwrap();
    let want = store.flag_index(a.id, INBOX_ID).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    {
        // What version 2 had: no index trees.
        let db = released(dir.path());
        db.drop_tree("flag_chunks").unwrap();
        db.drop_tree("keywords").unwrap();
        db.open_tree("meta").unwrap().insert("schema_version", &2u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let store = crate::open_embedded(dir.path(), Default::default()).unwrap();
    let got = store.flag_index(a.id, INBOX_ID).await.unwrap();
    assert_eq!(got, want);
    assert_eq!(got.system[0].runs(), &[(2, 3)]);
}

#[test]
fn version_1_replies_become_typed() {
    let r = parse_v1_reply("550 5.1.1 <x@y>: no such user");
    assert_eq!((r.code, r.enhanced.as_deref(), r.text.as_str()), (550, Some("5.1.1"), "<x@y>: no such user"));
    let r = parse_v1_reply("421 closing");
    assert_eq!((r.code, r.enhanced, r.text.as_str()), (421, None, "closing"));
    let r = parse_v1_reply("451 5.1.1 mismatched class");
    assert_eq!(r.enhanced, None, "an enhanced code of another class is text");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = released(dir.path());
        db.open_tree("meta").unwrap().insert("schema_version", &99u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        crate::open_embedded(dir.path(), Default::default()),
        Err(StoreError::SchemaVersion { found: 99, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_3_store_keeps_reading_its_bodies_from_sled() {
    use crate::schema::UidSet;
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_embedded(dir.path(), Default::default()).unwrap();
    let a = crate::battery::account(&*store, "a@x.test").await;
    let mut contents = Vec::new();
    for body in [&b"first\r\n"[..], b"second\r\n"] {
        let content = crate::battery::deliver(&*store, body, &[&a], None).await.content;
        store.set_summary(content, bytes::Bytes::copy_from_slice(body)).await.unwrap();
        contents.push((content, body));
    }
    store.close().await.unwrap();
    drop(store);
    {
        // What version 3 had: bodies in sled's "blobs" tree, no segments.
        let db = released(dir.path());
        let (blobs, summaries) = (db.open_tree("blobs").unwrap(), db.open_tree("summaries").unwrap());
        for (id, body) in &contents {
            blobs.insert(id.to_be_bytes(), *body).unwrap();
            summaries.insert(id.to_be_bytes(), *body).unwrap();
        }
        db.drop_tree("body_locs").unwrap();
        db.drop_tree("summary_locs").unwrap();
        db.drop_tree("body_segments").unwrap();
        db.open_tree("meta").unwrap().insert("schema_version", &3u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
        std::fs::remove_dir_all(dir.path().join("segments")).unwrap();
    }
    let store = crate::open_embedded(dir.path(), Default::default()).unwrap();
    for (id, body) in &contents {
        assert_eq!(&store.read_content(*id).await.unwrap()[..], *body);
    }
    assert_eq!(&store.read_content_range(contents[1].0, 1, 3).await.unwrap()[..], b"eco");
    assert_eq!(&store.summary(contents[1].0).await.unwrap().unwrap()[..], contents[1].1);
    store.set_summary(contents[1].0, bytes::Bytes::from_static(b"recomputed")).await.unwrap();
    assert_eq!(&store.summary(contents[1].0).await.unwrap().unwrap()[..], b"recomputed");
    let third = crate::battery::deliver(&*store, b"third\r\n", &[&a], None).await.content;
    store.expunge(a.id, INBOX_ID, &UidSet::from_runs([(1, 1)])).await.unwrap();
    assert!(matches!(store.read_content(contents[0].0).await, Err(StoreError::NoSuchMessage(_))));
    assert_eq!(&store.read_content(third).await.unwrap()[..], b"third\r\n");
    store.close().await.unwrap();
    drop(store);
    let db = released(dir.path());
    let blobs = db.open_tree("blobs").unwrap();
    assert_eq!(blobs.len(), 1, "the expunged message's body left sled; the third never went there");
    assert_eq!(db.open_tree("summaries").unwrap().len(), 0, "one expunged, one replaced in a segment");
    assert_eq!(
        db.open_tree("meta").unwrap().get("schema_version").unwrap().unwrap().as_ref(),
        crate::schema::SCHEMA_VERSION.to_be_bytes()
    );
}

/// sled opened on a store just closed: sled's own threads may hold the
/// file lock for a moment after the last handle is dropped.
fn released(dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => panic!("sled did not release {}: {e}", dir.display()),
        }
    }
}
