use super::*;
use crate::testutil::store;

fn rcpt(addr: &str) -> QueueRecipient {
    QueueRecipient::new(addr, QueuedRoute::Mx { domain: "far.test".into() })
}

fn queued(s: &Store, entry: QueueEntry) -> u64 {
    let acc = s.accept(&Incoming {
        id: s.new_id().unwrap(),
        content: b"Subject: x\r\n\r\nx\r\n",
        return_path: "s@x.test",
        local: &[],
        queue: Some(entry),
    });
    acc.unwrap().queued.unwrap()
}

#[test]
fn queue_lifecycle() {
    let (_d, s) = store();
    let entry = QueueEntry::new("s@x.test", None, vec![rcpt("a@far.test"), rcpt("b@far.test")]);
    let due = entry.next_attempt;
    let id = queued(&s, entry);
    assert_eq!(s.queue_due(due, 10).unwrap(), vec![id]);
    assert_eq!(s.queue_next_due().unwrap(), Some(due));
    let mut e = s.queue_entry(id).unwrap().unwrap();
    e.recipients[0].state = RecipientState::Delivered;
    e.recipients[1].state = RecipientState::Deferred;
    e.recipients[1].next_attempt = due + 900;
    s.queue_update(&e).unwrap();
    assert!(s.queue_due(due, 10).unwrap().is_empty());
    assert_eq!(s.queue_due(due + 900, 10).unwrap(), vec![id]);
    e.recipients[1].state = RecipientState::Failed;
    e.recipients[1].notified = true;
    s.queue_update(&e).unwrap();
    assert!(s.queue_entry(id).unwrap().is_none());
    assert_eq!(s.trees().unwrap().blobs.len(), 0, "content freed with the last reference");
    assert!(s.queue_next_due().unwrap().is_none());
}

#[test]
fn a_failure_awaiting_its_bounce_keeps_the_entry_due() {
    let e = QueueEntry::new("s@x.test", None, vec![QueueRecipient::failed("a@x.test", "550 5.1.1 no".into())]);
    assert_eq!(e.due(), Some(e.created));
    let mut e = e;
    e.recipients[0].notified = true;
    assert!(e.is_done());
}

#[test]
fn claim_leases_so_an_entry_is_not_claimed_twice() {
    let (_d, s) = store();
    let entry = QueueEntry::new("s@x.test", None, vec![rcpt("a@far.test")]);
    let now = entry.created;
    let id = queued(&s, entry);
    let claimed = s.queue_claim(now, 10, now + 3600).unwrap();
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
    assert!(s.queue_claim(now, 10, now + 3600).unwrap().is_empty());
    assert_eq!(s.queue_next_due().unwrap(), Some(now + 3600));
    // A crash forgets the lease: recovery puts the entry back at its due time.
    assert_eq!(s.queue_recover().unwrap(), 1);
    assert_eq!(s.queue_next_due().unwrap(), Some(now));
}

#[test]
fn commit_files_locally_and_accepts_a_dsn_atomically() {
    let (_d, s) = store();
    let local = s.add_account("me@x.test", "h").unwrap();
    let mut r = QueueRecipient::new("me@x.test", QueuedRoute::Local { account: "me@x.test".into() });
    r.state = RecipientState::Pending;
    let entry = QueueEntry::new("s@x.test", None, vec![r, rcpt("gone@far.test")]);
    let id = queued(&s, entry);
    let mut e = s.queue_entry(id).unwrap().unwrap();
    e.recipients[0].state = RecipientState::Delivered;
    e.recipients[1].state = RecipientState::Failed;
    e.recipients[1].notified = true;
    let dsn =
        Incoming { id: s.new_id().unwrap(), content: b"dsn\r\n", return_path: "", local: &[local.id], queue: None };
    let done = s.queue_commit(&e, &[local.id], &[dsn]).unwrap();
    assert_eq!(done.filed, vec![1]);
    assert_eq!(done.accepted[0].delivered, vec![(local.id, 2)]);
    assert!(s.queue_entry(id).unwrap().is_none());
    let inbox = s.mailbox_entries(local.id, 0).unwrap();
    assert_eq!(inbox.len(), 2);
    assert_eq!(s.read_mail(&inbox[0]).unwrap(), b"Return-Path: <s@x.test>\r\nSubject: x\r\n\r\nx\r\n");
    assert_eq!(s.trees().unwrap().blobs.len(), 2, "the original stays for the mailbox copy");
}

#[test]
fn commit_of_a_deleted_entry_is_refused() {
    let (_d, s) = store();
    let id = queued(&s, QueueEntry::new("s@x.test", None, vec![rcpt("a@far.test")]));
    let e = s.queue_entry(id).unwrap().unwrap();
    s.queue_remove(id).unwrap();
    assert!(matches!(s.queue_update(&e), Err(StoreError::NoSuchQueueEntry(_))));
    assert_eq!(s.trees().unwrap().blobs.len(), 0);
}
