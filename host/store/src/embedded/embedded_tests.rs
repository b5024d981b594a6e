//! Behaviour particular to the embedded backend (the battery covers the
//! contract).

use crate::schema::INBOX_ID;
use crate::{EmbeddedOptions, StoreError, battery};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_store_has_everything_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (id, content) = {
        let store = crate::open_embedded(dir.path(), EmbeddedOptions::default()).unwrap();
        let a = battery::account(&*store, "a@x.test").await;
        let acc = battery::deliver(&*store, b"x\r\n", &[&a], None).await;
        store.kv_set("ns", b"k", b"v", None).await.unwrap();
        store.close().await.unwrap();
        (a.id, acc.content)
    };
    let store = crate::open_embedded(dir.path(), EmbeddedOptions::default()).unwrap();
    let entries = store.all_entries(id, INBOX_ID).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].content, content);
    assert_eq!(store.kv_get("ns", b"k").await.unwrap(), Some(b"v".to_vec()), "close flushes kv writes");
    assert!(matches!(crate::open_embedded(dir.path(), EmbeddedOptions::default()), Err(StoreError::Locked { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_after_close_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_embedded(dir.path(), EmbeddedOptions::default()).unwrap();
    store.close().await.unwrap();
    assert!(matches!(store.add_account("a@x.test", "h").await, Err(StoreError::Unavailable(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_beyond_the_free_space_reserve_is_refused_as_out_of_space() {
    let dir = tempfile::tempdir().unwrap();
    let free = super::space::available(dir.path()).unwrap().free;
    // A reserve of all but 64 KiB of the free space.
    let options = EmbeddedOptions { reserve_bytes: Some(free - (64 << 10)), ..EmbeddedOptions::default() };
    let store = crate::open_embedded(dir.path(), options).unwrap();
    let a = battery::account(&*store, "a@x.test").await;
    let id = store.new_id().await.unwrap();
    let err = store
        .accept(crate::schema::Incoming {
            id,
            content: bytes::Bytes::from(vec![b'x'; 1 << 20]),
            return_path: String::new(),
            local: vec![crate::schema::Filing::inbox(a.id)],
            queue: None,
            summary: None,
            traces: Vec::new(),
        })
        .await
        .unwrap_err();
    assert!(err.is_out_of_space(), "{err}");
    assert!(store.all_entries(a.id, INBOX_ID).await.unwrap().is_empty(), "nothing kept");
    // Changes that store no content still work on a "full" disk.
    store.set_password("a@x.test", "h2").await.unwrap();
    store.create_mailbox(a.id, "Work", None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_survive_a_reopen_and_their_files_are_linked() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..600_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let (account, content) = {
        let store = crate::open_embedded(dir.path(), EmbeddedOptions::default()).unwrap();
        let a = battery::account(&*store, "a@x.test").await;
        let acc = battery::deliver(&*store, &big, &[&a], None).await;
        store.close().await.unwrap();
        (a.id, acc.content)
    };
    let blobs: Vec<_> = std::fs::read_dir(dir.path().join("blobs")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(!blobs.is_empty(), "a 600 KB value is kept outside sled's log");
    for name in &blobs {
        assert!(dir.path().join("blob-keep").join(name).exists(), "{name:?} has its link");
    }
    let store = crate::open_embedded(dir.path(), EmbeddedOptions::default()).unwrap();
    assert_eq!(&store.read_content(content).await.unwrap()[..], &big[..]);
    assert_eq!(store.all_entries(account, INBOX_ID).await.unwrap().len(), 1);
}
