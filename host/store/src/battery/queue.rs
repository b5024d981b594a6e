//! The queue: claims with leases, commits, recovery.

use super::{account, deliver};
use crate::StoreError;
use crate::contract::Store;
use crate::schema::{
    Filing, INBOX_ID, Incoming, QueueEntry, QueueRecipient, QueuedRoute, RecipientState, StoredReply, now_secs,
};
use bytes::Bytes;

pub(crate) fn rcpt(addr: &str) -> QueueRecipient {
    QueueRecipient::new(addr, QueuedRoute::Mx { domain: "far.test".into() })
}

pub(crate) async fn queued(store: &dyn Store, recipients: Vec<QueueRecipient>) -> u64 {
    let entry = QueueEntry::new("s@x.test", Some("tenant".into()), recipients);
    deliver(store, b"Subject: x\r\n\r\nx\r\n", &[], Some(entry)).await.queued.expect("queued")
}

pub async fn queue_lifecycle(store: &dyn Store) {
    let now = now_secs();
    let id = queued(store, vec![rcpt("a@far.test"), rcpt("b@far.test")]).await;
    let mut e = store.queue_entry(id).await.unwrap().unwrap();
    assert_eq!((e.tenant.as_deref(), e.lease.clone()), (Some("tenant"), None));
    assert!(store.queue_next_due().await.unwrap().unwrap() <= now + 1);
    let content = e.content;
    assert!(store.read_content(content).await.is_ok());
    e.recipients[0].state = RecipientState::Delivered;
    e.recipients[1].state = RecipientState::Deferred;
    e.recipients[1].next_attempt = now + 900;
    e.recipients[1].last_reply =
        Some(StoredReply { code: 451, enhanced: Some("4.7.1".into()), text: "greylisted".into() });
    store.queue_update(&e).await.unwrap();
    assert_eq!(store.queue_next_due().await.unwrap(), Some(now + 900));
    assert!(store.queue_claim("node", now + 1, 10, now + 60).await.unwrap().is_empty(), "not due yet");
    let stored = store.queue_entry(id).await.unwrap().unwrap();
    assert_eq!(stored.recipients[1].last_reply, e.recipients[1].last_reply, "replies are kept typed");
    e.recipients[1].state = RecipientState::Failed;
    e.recipients[1].notified = true;
    store.queue_update(&e).await.unwrap();
    assert!(store.queue_entry(id).await.unwrap().is_none(), "nothing left to do: removed");
    assert!(store.queue_next_due().await.unwrap().is_none());
    assert!(matches!(store.read_content(content).await, Err(StoreError::NoSuchMessage(_))), "content freed");
    assert!(store.queue_entries().await.unwrap().is_empty());
}

pub async fn queue_leases_exclude_other_owners(store: &dyn Store) {
    let now = now_secs();
    let id = queued(store, vec![rcpt("a@far.test")]).await;
    let claimed = store.queue_claim("node-a", now + 5, 10, now + 3600).await.unwrap();
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), [id]);
    assert_eq!(claimed[0].lease.as_ref().map(|l| l.owner.as_str()), Some("node-a"));
    assert!(store.queue_claim("node-b", now + 5, 10, now + 3600).await.unwrap().is_empty(), "leased");
    assert_eq!(store.queue_next_due().await.unwrap(), Some(now + 3600), "due again when the lease ends");
    assert!(matches!(store.queue_renew("node-b", id, now + 7200).await, Err(StoreError::LeaseLost(_))));
    store.queue_renew("node-a", id, now + 7200).await.unwrap();
    // An expired lease makes the entry due for anyone.
    let reclaimed = store.queue_claim("node-b", now + 7200, 10, now + 9000).await.unwrap();
    assert_eq!(reclaimed.len(), 1);
    let mut stale = claimed[0].clone();
    stale.recipients[0].state = RecipientState::Delivered;
    assert!(matches!(store.queue_update(&stale).await, Err(StoreError::LeaseLost(_))), "node-a lost it");
    let mut current = reclaimed[0].clone();
    current.recipients[0].state = RecipientState::Delivered;
    store.queue_update(&current).await.unwrap();
    assert!(store.queue_entry(id).await.unwrap().is_none());
}

pub async fn queue_recover_drops_leases(store: &dyn Store) {
    let now = now_secs();
    let id = queued(store, vec![rcpt("a@far.test")]).await;
    store.queue_claim("node", now + 5, 10, now + 3600).await.unwrap();
    assert_eq!(store.queue_recover("node").await.unwrap(), 1);
    let e = store.queue_entry(id).await.unwrap().unwrap();
    assert_eq!(e.lease, None);
    assert!(store.queue_next_due().await.unwrap().unwrap() <= now + 1, "back at its true due time");
}

pub async fn queue_commit_files_and_accepts_dsns_atomically(store: &dyn Store) {
    let me = account(store, "me@x.test").await;
    let local = QueueRecipient::new("me@x.test", QueuedRoute::Local { account: "me@x.test".into() });
    let id = queued(store, vec![local, rcpt("gone@far.test")]).await;
    let mut e = store.queue_claim("node", now_secs() + 5, 10, now_secs() + 60).await.unwrap().remove(0);
    assert_eq!(e.id, id);
    e.recipients[0].state = RecipientState::Delivered;
    e.recipients[1].state = RecipientState::Failed;
    e.recipients[1].notified = true;
    let dsn_id = store.new_id().await.unwrap();
    let dsn = Incoming {
        id: dsn_id,
        content: Bytes::from_static(b"Subject: bounce\r\n\r\ndsn\r\n"),
        return_path: String::new(),
        local: vec![Filing::inbox(me.id)],
        queue: None,
        summary: None,
        traces: Vec::new(),
    };
    let done = store.queue_commit(&e, &[me.id], vec![dsn], Vec::new()).await.unwrap();
    assert_eq!(done.filed, [1]);
    assert_eq!(done.accepted[0].filed[0].uid, 2);
    assert!(store.queue_entry(id).await.unwrap().is_none());
    let inbox = store.all_entries(me.id, INBOX_ID).await.unwrap();
    assert_eq!(inbox.len(), 2);
    assert_eq!(
        &store.read_message(&inbox[0]).await.unwrap()[..],
        b"Return-Path: <s@x.test>\r\nSubject: x\r\n\r\nx\r\n"
    );
    assert_eq!(&store.read_message(&inbox[1]).await.unwrap()[..], b"Return-Path: <>\r\nSubject: bounce\r\n\r\ndsn\r\n");
    // A commit that cannot file (the account is gone) writes nothing.
    let id = queued(store, vec![rcpt("x@far.test")]).await;
    let e = store.queue_entry(id).await.unwrap().unwrap();
    assert!(store.queue_commit(&e, &[me.id ^ 0x99], vec![], Vec::new()).await.is_err());
    assert_eq!(store.queue_entry(id).await.unwrap(), Some(e), "unchanged");
}

pub async fn queue_commit_of_a_removed_entry_is_refused(store: &dyn Store) {
    let id = queued(store, vec![rcpt("a@far.test")]).await;
    let e = store.queue_entry(id).await.unwrap().unwrap();
    let mut done = e.clone();
    done.recipients[0].state = RecipientState::Failed;
    done.recipients[0].notified = true;
    store.queue_update(&done).await.unwrap();
    assert!(matches!(store.queue_update(&e).await, Err(StoreError::NoSuchQueueEntry(_))));
}
