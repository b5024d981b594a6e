//! Folders: create, rename, delete, subscriptions, names.

use super::{account, deliver};
use crate::StoreError;
use crate::contract::Store;
use crate::schema::{INBOX, INBOX_ID, SpecialUse, UidSet};

const MSG: &[u8] = b"Subject: hi\r\n\r\nbody\r\n";

pub async fn mailboxes_create_rename_delete(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    let work = store.create_mailbox(a.id, "Work", None).await.unwrap();
    let child = store.create_mailbox(a.id, "Work/2024", Some(SpecialUse::Archive)).await.unwrap();
    assert!(matches!(store.create_mailbox(a.id, "Work", None).await, Err(StoreError::MailboxExists(_))));
    assert_ne!(work.id, child.id);
    assert_eq!(child.special_use, Some(SpecialUse::Archive));
    store.copy(a.id, INBOX_ID, &UidSet::new(), work.id).await.unwrap();
    deliver(store, MSG, &[&a], None).await;
    store.copy(a.id, INBOX_ID, &UidSet::from_runs([(1, 1)]), child.id).await.unwrap();
    // RFC 3501 6.3.5: children move with their parent; ids and UIDs stay.
    store.rename_mailbox(a.id, "Work", "Jobs").await.unwrap();
    assert!(store.mailbox(a.id, "Work").await.unwrap().is_none());
    let moved = store.mailbox(a.id, "Jobs/2024").await.unwrap().expect("child renamed");
    assert_eq!((moved.id, moved.uid_validity, moved.messages), (child.id, child.uid_validity, 1));
    assert!(matches!(store.rename_mailbox(a.id, "Jobs", "Jobs/sub").await, Err(StoreError::MailboxRefused(_))));
    assert!(matches!(store.rename_mailbox(a.id, "Jobs", "Sent").await, Err(StoreError::MailboxExists(_))));
    assert!(matches!(store.rename_mailbox(a.id, "Nope", "X").await, Err(StoreError::NoSuchMailbox(_))));
    // Deleting a mailbox expunges its messages and leaves its children.
    store.delete_mailbox(a.id, "Jobs/2024").await.unwrap();
    assert!(store.mailbox(a.id, "Jobs/2024").await.unwrap().is_none());
    assert!(store.mailbox(a.id, "Jobs").await.unwrap().is_some());
    assert_eq!(store.all_entries(a.id, child.id).await.unwrap().len(), 0);
    assert!(matches!(store.delete_mailbox(a.id, "inbox").await, Err(StoreError::MailboxRefused(_))));
    assert!(matches!(store.delete_mailbox(a.id, "Jobs/2024").await, Err(StoreError::NoSuchMailbox(_))));
    // A re-created name is a new incarnation (RFC 3501 2.3.1.1).
    let again = store.create_mailbox(a.id, "Jobs/2024", None).await.unwrap();
    assert_ne!(again.uid_validity, child.uid_validity);
    assert_ne!(again.id, child.id, "mailbox ids are never reused");
    assert_eq!(store.all_entries(a.id, INBOX_ID).await.unwrap().len(), 1, "INBOX untouched");
}

pub async fn rename_inbox_moves_its_messages(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    for _ in 0..2 {
        deliver(store, MSG, &[&a], None).await;
    }
    store.rename_mailbox(a.id, "INBOX", "Old").await.unwrap();
    let old = store.mailbox(a.id, "Old").await.unwrap().unwrap();
    assert_eq!(old.messages, 2);
    let inbox = store.mailbox(a.id, INBOX).await.unwrap().expect("INBOX stays");
    assert_eq!((inbox.messages, inbox.id), (0, INBOX_ID));
    assert!(store.uids(a.id, INBOX_ID).await.unwrap().is_empty());
    deliver(store, MSG, &[&a], None).await;
    assert_eq!(store.uids(a.id, INBOX_ID).await.unwrap().runs(), &[(3, 3)], "UIDs keep ascending");
}

pub async fn mailbox_names_are_checked(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    for bad in ["", "/lead", "trail/", "a//b", "a/../b", "..", "tab\there", "nul\0"] {
        assert!(
            matches!(store.create_mailbox(a.id, bad, None).await, Err(StoreError::MailboxRefused(_))),
            "{bad:?} must be refused"
        );
    }
    let utf8 = store.create_mailbox(a.id, "Entwürfe/Ärger", None).await.unwrap();
    assert_eq!(store.mailbox(a.id, "Entwürfe/Ärger").await.unwrap().unwrap().id, utf8.id);
    assert!(store.mailbox(a.id, "a/../b").await.unwrap().is_none(), "an invalid name names nothing");
    assert!(matches!(store.create_mailbox(a.id, "Inbox", None).await, Err(StoreError::MailboxExists(_))));
    assert!(store.create_mailbox(a.id ^ 0x77, "X", None).await.is_err(), "no such account");
}

pub async fn subscriptions_are_names(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    store.set_subscribed(a.id, "Does/Not/Exist", true).await.unwrap();
    store.set_subscribed(a.id, "Junk", false).await.unwrap();
    let subs = store.subscriptions(a.id).await.unwrap();
    assert!(subs.contains(&"Does/Not/Exist".to_string()) && !subs.contains(&"Junk".to_string()));
    let junk = store.mailbox(a.id, "Junk").await.unwrap().unwrap();
    assert!(!junk.subscribed);
    assert!(store.mailbox(a.id, "Sent").await.unwrap().unwrap().subscribed);
}
