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
async fn large_messages_survive_a_reopen_in_a_segment_file_not_in_sled() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..600_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let (account, content) = {
        let store = crate::open_embedded(dir.path(), EmbeddedOptions::default()).unwrap();
        let a = battery::account(&*store, "a@x.test").await;
        let acc = battery::deliver(&*store, &big, &[&a], None).await;
        store.close().await.unwrap();
        (a.id, acc.content)
    };
    let segments = segment_bytes(dir.path());
    assert!(segments > big.len() as u64, "the body is in a segment file ({segments} bytes)");
    let sled_blobs = std::fs::read_dir(dir.path().join("blobs")).map_or(0, |d| d.count());
    assert_eq!(sled_blobs, 0, "sled does not hold the body");
    let store = crate::open_embedded(dir.path(), EmbeddedOptions::default()).unwrap();
    assert_eq!(&store.read_content(content).await.unwrap()[..], &big[..]);
    assert_eq!(&store.read_content_range(content, 599_990, 100).await.unwrap()[..], &big[599_990..]);
    assert_eq!(store.all_entries(account, INBOX_ID).await.unwrap().len(), 1);
}

fn segment_bytes(store: &std::path::Path) -> u64 {
    std::fs::read_dir(store.join(super::segments::SEGMENT_DIR))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn space_of_deleted_messages_comes_back_by_compaction() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments, so that 60 messages of 4 KiB fill several.
    let options = EmbeddedOptions { segment_bytes: 32 << 10, ..EmbeddedOptions::default() };
    let body = |i: u32| format!("Subject: {i}\r\n\r\n{}", "x".repeat(4000)).into_bytes();
    let store = crate::open_embedded(dir.path(), options.clone()).unwrap();
    let a = battery::account(&*store, "a@x.test").await;
    for i in 0..60 {
        let content = battery::deliver(&*store, &body(i), &[&a], None).await.content;
        store.set_summary(content, bytes::Bytes::from(format!("summary {i}"))).await.unwrap();
    }
    let full = segment_bytes(dir.path());
    assert!(full >= 60 * 4000, "{full}");
    // Keep every sixth message.
    let gone: crate::schema::UidSet = (1..=60u32).filter(|u| u % 6 != 0).collect();
    store.expunge(a.id, INBOX_ID, &gone).await.unwrap();
    // The writer compacts while idle, one segment per idle second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while segment_bytes(dir.path()) > full / 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let left = segment_bytes(dir.path());
    assert!(left <= full / 3, "{left} of {full} bytes left for a sixth of the messages");
    let check = |store: crate::SharedStore| async move {
        let entries = store.all_entries(a.id, INBOX_ID).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.uid).collect::<Vec<_>>(), (6..=60).step_by(6).collect::<Vec<u32>>());
        for e in entries {
            assert_eq!(&store.read_content(e.content).await.unwrap()[..], &body(e.uid - 1)[..]);
            let summary = store.summary(e.content).await.unwrap().unwrap();
            assert_eq!(summary, format!("summary {}", e.uid - 1).as_bytes());
        }
    };
    check(store.clone()).await;
    store.close().await.unwrap();
    drop(store);
    check(crate::open_embedded(dir.path(), options).unwrap()).await;
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        match entry.file_type().unwrap().is_dir() {
            true => copy_dir(&entry.path(), &target),
            false => drop(std::fs::copy(entry.path(), target).unwrap()),
        }
    }
}

/// A crash in which sled kept nothing since its last checkpoint (the
/// state it had then) while the segment files kept every synced group:
/// what was acknowledged comes back from the journal records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_acknowledged_after_the_last_checkpoint_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let crashed = dir.path().join("crashed");
    let account = {
        let store = crate::open_embedded(&live, EmbeddedOptions::default()).unwrap();
        let a = battery::account(&*store, "a@x.test").await;
        battery::deliver(&*store, b"before\r\n", &[&a], None).await;
        store.close().await.unwrap();
        a
    };
    let store = crate::open_embedded(&live, EmbeddedOptions::default()).unwrap();
    // sled as a power cut right now would leave it: checkpointed at open.
    copy_dir(&live, &crashed);
    let mut contents = Vec::new();
    for body in [&b"one\r\n"[..], b"two\r\n", b"three\r\n"] {
        contents.push(battery::deliver(&*store, body, &[&account], None).await.content);
    }
    store.expunge(account.id, INBOX_ID, &crate::schema::UidSet::from_runs([(1, 1)])).await.unwrap();
    // The segment files as the groups' syncs left them.
    std::fs::remove_dir_all(crashed.join("segments")).unwrap();
    copy_dir(&live.join("segments"), &crashed.join("segments"));
    store.close().await.unwrap();
    drop(store);

    let store = crate::open_embedded(&crashed, EmbeddedOptions::default()).unwrap();
    let entries = store.all_entries(account.id, INBOX_ID).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.content).collect::<Vec<_>>(), contents, "the expunge came back too");
    assert_eq!(&store.read_content(contents[2]).await.unwrap()[..], b"three\r\n");
    // The replayed groups are checkpointed: a second opening finds the same.
    store.close().await.unwrap();
    drop(store);
    let store = crate::open_embedded(&crashed, EmbeddedOptions::default()).unwrap();
    assert_eq!(store.all_entries(account.id, INBOX_ID).await.unwrap().len(), 3);
}
