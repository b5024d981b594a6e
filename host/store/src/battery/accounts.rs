//! Accounts.

use super::{account, deliver};
use crate::StoreError;
use crate::contract::Store;
use crate::schema::{INBOX, INBOX_ID, SpecialUse};

pub async fn accounts_lifecycle(store: &dyn Store) {
    let a = account(store, "Alice@Example.Test").await;
    assert_eq!(a.address, "alice@example.test", "addresses are normalised");
    assert!(matches!(store.add_account("alice@example.test", "h").await, Err(StoreError::AccountExists(_))));
    assert_eq!(store.account("ALICE@example.test").await.unwrap().unwrap().id, a.id);
    assert_eq!(store.account_by_id(a.id).await.unwrap().unwrap().address, a.address);
    store.set_password("alice@example.test", "h2").await.unwrap();
    assert_eq!(store.account("alice@example.test").await.unwrap().unwrap().password_hash, "h2");
    assert!(matches!(store.set_password("nobody@example.test", "h").await, Err(StoreError::NoSuchAccount(_))));
    account(store, "bob@example.test").await;
    let all: Vec<String> = store.accounts().await.unwrap().into_iter().map(|a| a.address).collect();
    assert_eq!(all, ["alice@example.test", "bob@example.test"]);
    store.delete_account("alice@example.test").await.unwrap();
    assert!(store.account("alice@example.test").await.unwrap().is_none());
    assert!(store.account_by_id(a.id).await.unwrap().is_none());
    assert!(matches!(store.delete_account("alice@example.test").await, Err(StoreError::NoSuchAccount(_))));
    let again = account(store, "alice@example.test").await;
    assert_ne!(again.id, a.id, "a re-created account is a new incarnation");
}

pub async fn accounts_get_default_folders(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    let boxes = store.mailboxes(a.id).await.unwrap();
    let names: Vec<(&str, Option<SpecialUse>, bool)> =
        boxes.iter().map(|m| (m.name.as_str(), m.special_use, m.subscribed)).collect();
    assert_eq!(
        names,
        [
            (INBOX, None, true),
            ("Sent", Some(SpecialUse::Sent), true),
            ("Drafts", Some(SpecialUse::Drafts), true),
            ("Trash", Some(SpecialUse::Trash), true),
            ("Junk", Some(SpecialUse::Junk), true),
        ]
    );
    assert_eq!(boxes[0].id, INBOX_ID);
    let validities: std::collections::HashSet<u32> = boxes.iter().map(|m| m.uid_validity).collect();
    assert_eq!(validities.len(), boxes.len(), "each mailbox has its own UIDVALIDITY");
    assert!(boxes.iter().all(|m| m.uid_next == 1 && m.messages == 0));
    assert_eq!(store.mailbox(a.id, "inbox").await.unwrap().unwrap().id, INBOX_ID, "INBOX is case-insensitive");
}

pub async fn delete_account_removes_its_mail(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    let b = account(store, "b@x.test").await;
    let shared = deliver(store, b"Subject: both\r\n\r\nx\r\n", &[&a, &b], None).await;
    let own = deliver(store, b"Subject: a only\r\n\r\nx\r\n", &[&a], None).await;
    store.delete_account("a@x.test").await.unwrap();
    assert!(store.mailboxes(a.id).await.unwrap().is_empty());
    assert!(store.read_content(shared.content).await.is_ok(), "b still has the shared message");
    assert!(matches!(store.read_content(own.content).await, Err(StoreError::NoSuchMessage(_))));
    assert_eq!(store.all_entries(b.id, INBOX_ID).await.unwrap().len(), 1);
}
