//! Messages: acceptance, UIDs, flags, COPY/MOVE, EXPUNGE, APPEND, reads.

use super::kv::futures_join_all;
use super::{account, deliver};
use crate::StoreError;
use crate::contract::Store;
use crate::schema::{Append, ChangeKind, Filing, FlagChange, FlagOp, Flags, INBOX_ID, Incoming, UidSet};
use bytes::Bytes;

const MSG: &[u8] = b"Subject: hi\r\n\r\nbody\r\n";

pub async fn accept_files_one_shared_copy_per_mailbox(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    let b = account(store, "b@x.test").await;
    let acc = deliver(store, MSG, &[&a, &b], None).await;
    assert_eq!(
        acc.filed.iter().map(|f| (f.account, f.mailbox, f.uid)).collect::<Vec<_>>(),
        [(a.id, INBOX_ID, 1), (b.id, INBOX_ID, 1)]
    );
    assert_eq!(acc.queued, None);
    let entries = store.all_entries(a.id, INBOX_ID).await.unwrap();
    assert_eq!(entries.len(), 1);
    let text = store.read_message(&entries[0]).await.unwrap();
    assert_eq!(&text[..], b"Return-Path: <sender@remote.test>\r\nSubject: hi\r\n\r\nbody\r\n");
    assert_eq!(entries[0].size, text.len() as u64, "RFC822.SIZE is what a client reads");
    assert_eq!(&store.read_content(acc.content).await.unwrap()[..], MSG, "content stored as accepted");
    let inbox = store.mailbox_by_id(a.id, INBOX_ID).await.unwrap().unwrap();
    assert_eq!((inbox.messages, inbox.unseen, inbox.bytes, inbox.uid_next), (1, 1, text.len() as u64, 2));
}

pub async fn accept_to_a_missing_account_keeps_nothing(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    let id = store.new_id().await.unwrap();
    let incoming = Incoming {
        id,
        content: Bytes::from_static(MSG),
        return_path: String::new(),
        local: vec![Filing::inbox(a.id), Filing::inbox(a.id ^ 0x5555)],
        queue: None,
        summary: None,
        traces: Vec::new(),
    };
    assert!(matches!(store.accept(incoming).await, Err(StoreError::NoSuchAccount(_))));
    assert!(store.all_entries(a.id, INBOX_ID).await.unwrap().is_empty(), "all or nothing");
    assert!(matches!(store.read_content(id).await, Err(StoreError::NoSuchMessage(_))));
    let inbox = store.mailbox_by_id(a.id, INBOX_ID).await.unwrap().unwrap();
    assert_eq!((inbox.messages, inbox.uid_next), (0, 1));
}

pub async fn uids_ascend_and_are_never_reused(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    for _ in 0..3 {
        deliver(store, b"x\r\n", &[&a], None).await;
    }
    assert_eq!(store.expunge(a.id, INBOX_ID, &UidSet::from_runs([(3, 3)])).await.unwrap(), [3]);
    deliver(store, b"x\r\n", &[&a], None).await;
    let uids: Vec<u32> = store.all_entries(a.id, INBOX_ID).await.unwrap().iter().map(|e| e.uid).collect();
    assert_eq!(uids, [1, 2, 4], "RFC 3501 2.3.1.1: UIDs are never reused");
    let inbox = store.mailbox_by_id(a.id, INBOX_ID).await.unwrap().unwrap();
    assert_eq!((inbox.messages, inbox.uid_next), (3, 5));
}

pub async fn uid_set_is_exact_and_compact(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    for _ in 0..1100 {
        deliver(store, b"x\r\n", &[&a], None).await;
    }
    let set = store.uids(a.id, INBOX_ID).await.unwrap();
    assert_eq!(set.runs(), &[(1, 1100)], "one run across chunk boundaries");
    let gone = UidSet::from_runs([(2, 2), (500, 1030), (1100, 1100)]);
    store.expunge(a.id, INBOX_ID, &gone).await.unwrap();
    let set = store.uids(a.id, INBOX_ID).await.unwrap();
    assert_eq!(set.runs(), &[(1, 1), (3, 499), (1031, 1099)]);
    let listed: UidSet = store.all_entries(a.id, INBOX_ID).await.unwrap().iter().map(|e| e.uid).collect();
    assert_eq!(listed, set, "the UID set matches the entries");
    assert_eq!(store.mailbox_by_id(a.id, INBOX_ID).await.unwrap().unwrap().messages as usize, set.len());
}

pub async fn entries_by_sparse_uid_set(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    for _ in 0..10 {
        deliver(store, b"x\r\n", &[&a], None).await;
    }
    let want = UidSet::from_runs([(2, 3), (7, 7), (9, 50)]);
    let got: Vec<u32> = store.entries(a.id, INBOX_ID, &want).await.unwrap().iter().map(|e| e.uid).collect();
    assert_eq!(got, [2, 3, 7, 9, 10]);
    assert!(store.entries(a.id, INBOX_ID, &UidSet::from_runs([(11, 99)])).await.unwrap().is_empty());
}

pub async fn flags_keywords_modseq_and_unseen(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    deliver(store, b"x\r\n", &[&a], None).await;
    deliver(store, b"x\r\n", &[&a], None).await;
    let before = store.mailbox_by_id(a.id, INBOX_ID).await.unwrap().unwrap();
    let one = UidSet::from_runs([(1, 1)]);
    let kw = vec!["$Forwarded".to_string(), "project".to_string()];
    let out = store
        .set_flags(
            a.id,
            INBOX_ID,
            &one,
            &FlagChange {
                op: FlagOp::Add,
                flags: Flags::SEEN | Flags::FLAGGED,
                keywords: kw.clone(),
                unchanged_since: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(out.updated.len(), 1);
    let u = &out.updated[0];
    assert_eq!((u.uid, u.flags, u.keywords.clone()), (1, Flags::SEEN | Flags::FLAGGED, kw.clone()));
    assert!(u.modseq > before.highest_modseq, "a change takes a higher modseq");
    let mb = store.mailbox_by_id(a.id, INBOX_ID).await.unwrap().unwrap();
    assert_eq!((mb.unseen, mb.highest_modseq), (1, u.modseq));
    let all = UidSet::from_runs([(1, 2)]);
    let second = store.entries(a.id, INBOX_ID, &UidSet::from_runs([(2, 2)])).await.unwrap()[0].modseq;
    let out = store
        .set_flags(
            a.id,
            INBOX_ID,
            &all,
            &FlagChange {
                op: FlagOp::Remove,
                flags: Flags::FLAGGED,
                keywords: kw[..1].to_vec(),
                unchanged_since: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(out.updated[0].flags, Flags::SEEN);
    assert_eq!(out.updated[0].keywords, ["project"]);
    assert_eq!(out.updated[1].modseq, second, "a message whose flags did not change keeps its modseq");
    let out = store.set_flags(a.id, INBOX_ID, &all, &FlagChange::new(FlagOp::Replace, Flags::DELETED)).await.unwrap();
    assert!(out.updated.iter().all(|u| u.flags == Flags::DELETED && u.keywords.is_empty()));
    let mb = store.mailbox_by_id(a.id, INBOX_ID).await.unwrap().unwrap();
    assert_eq!(mb.unseen, 2, "\\Seen removed by FLAGS counts as unseen again");
    let entries = store.all_entries(a.id, INBOX_ID).await.unwrap();
    assert!(entries.iter().all(|e| e.flags == Flags::DELETED), "flags are stored");
}

/// The flag index agrees with the entries after every kind of change.
async fn assert_flag_index_exact(store: &dyn Store, account: u64, mailbox: u32, keywords: &[&str]) {
    let index = store.flag_index(account, mailbox).await.unwrap();
    let want = crate::schema::FlagIndex::from_entries(&store.all_entries(account, mailbox).await.unwrap());
    assert_eq!((&index.system, &index.with_keywords), (&want.system, &want.with_keywords), "mailbox {mailbox}");
    for k in keywords {
        assert!(index.keywords.iter().any(|have| have.eq_ignore_ascii_case(k)), "keyword {k} in {:?}", index.keywords);
    }
}

pub async fn flag_index_follows_every_change(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    for _ in 0..5 {
        deliver(store, b"x\r\n", &[&a], None).await;
    }
    assert_flag_index_exact(store, a.id, INBOX_ID, &[]).await;
    assert!(store.flag_index(a.id, INBOX_ID).await.unwrap().system.iter().all(|s| s.is_empty()), "delivered: no flags");
    let change = |op, flags, keywords: &[&str]| FlagChange {
        op,
        flags,
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        unchanged_since: None,
    };
    let set = |a, b| UidSet::from_runs([(a, b)]);
    store.set_flags(a.id, INBOX_ID, &set(1, 3), &change(FlagOp::Add, Flags::SEEN, &["$Label1"])).await.unwrap();
    store
        .set_flags(a.id, INBOX_ID, &set(2, 5), &change(FlagOp::Add, Flags::DELETED | Flags::FLAGGED, &[]))
        .await
        .unwrap();
    store.set_flags(a.id, INBOX_ID, &set(3, 3), &change(FlagOp::Remove, Flags::SEEN, &["$label1"])).await.unwrap();
    store.set_flags(a.id, INBOX_ID, &set(4, 4), &change(FlagOp::Replace, Flags::ANSWERED, &["Work"])).await.unwrap();
    assert_flag_index_exact(store, a.id, INBOX_ID, &["$Label1", "Work"]).await;
    let index = store.flag_index(a.id, INBOX_ID).await.unwrap();
    assert_eq!(index.system[0].runs(), &[(1, 2)], "\\Seen");
    assert_eq!(index.with_keywords.runs(), &[(1, 2), (4, 4)]);
    let append = crate::schema::Append {
        content: bytes::Bytes::from_static(b"x\r\n"),
        flags: Flags::SEEN | Flags::DRAFT,
        keywords: vec!["$Draft2".into()],
        internal_date: 1,
        summary: None,
    };
    store.append(a.id, INBOX_ID, append).await.unwrap();
    let work = store.create_mailbox(a.id, "Work", None).await.unwrap();
    store.copy(a.id, INBOX_ID, &set(1, 6), work.id).await.unwrap();
    store.move_messages(a.id, INBOX_ID, &set(2, 4), work.id).await.unwrap();
    store.expunge(a.id, INBOX_ID, &set(6, 6)).await.unwrap();
    assert_flag_index_exact(store, a.id, INBOX_ID, &["$Label1"]).await;
    assert_flag_index_exact(store, a.id, work.id, &["$Label1", "Work", "$Draft2"]).await;
    store.delete_mailbox(a.id, "Work").await.unwrap();
    let again = store.create_mailbox(a.id, "Work", None).await.unwrap();
    assert_eq!(store.flag_index(a.id, again.id).await.unwrap(), Default::default(), "a new mailbox starts empty");
}

pub async fn store_unchanged_since_reports_modified(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    deliver(store, b"x\r\n", &[&a], None).await;
    deliver(store, b"x\r\n", &[&a], None).await;
    let one = UidSet::from_runs([(1, 1)]);
    let first = store.set_flags(a.id, INBOX_ID, &one, &FlagChange::new(FlagOp::Add, Flags::SEEN)).await.unwrap();
    let since = first.updated[0].modseq - 1;
    let all = UidSet::from_runs([(1, 2)]);
    let out = store
        .set_flags(
            a.id,
            INBOX_ID,
            &all,
            &FlagChange { unchanged_since: Some(since), ..FlagChange::new(FlagOp::Add, Flags::FLAGGED) },
        )
        .await
        .unwrap();
    assert_eq!(out.modified, [1], "RFC 7162 3.1.3: changed since UNCHANGEDSINCE");
    assert_eq!(out.updated.iter().map(|u| u.uid).collect::<Vec<_>>(), [2]);
}

pub async fn copy_and_move_share_contents(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    for _ in 0..3 {
        deliver(store, MSG, &[&a], None).await;
    }
    let archive = store.create_mailbox(a.id, "Archive", None).await.unwrap();
    store
        .set_flags(a.id, INBOX_ID, &UidSet::from_runs([(2, 2)]), &FlagChange::new(FlagOp::Add, Flags::SEEN))
        .await
        .unwrap();
    let copied = store.copy(a.id, INBOX_ID, &UidSet::from_runs([(2, 3), (9, 9)]), archive.id).await.unwrap();
    assert_eq!(copied.uid_validity, archive.uid_validity);
    assert_eq!(copied.mapping, [(2, 1), (3, 2)], "RFC 4315 COPYUID: source to new UID");
    let copies = store.all_entries(a.id, archive.id).await.unwrap();
    assert_eq!(copies[0].flags, Flags::SEEN, "flags travel with the copy");
    let originals = store.entries(a.id, INBOX_ID, &UidSet::from_runs([(2, 2)])).await.unwrap();
    assert_eq!(copies[0].content, originals[0].content, "the content is shared, not copied");
    let moved = store.move_messages(a.id, INBOX_ID, &UidSet::from_runs([(1, 2)]), archive.id).await.unwrap();
    assert_eq!(moved.mapping, [(1, 3), (2, 4)]);
    let left: Vec<u32> = store.all_entries(a.id, INBOX_ID).await.unwrap().iter().map(|e| e.uid).collect();
    assert_eq!(left, [3], "MOVE expunges the source");
    let arch = store.mailbox_by_id(a.id, archive.id).await.unwrap().unwrap();
    assert_eq!((arch.messages, arch.unseen, arch.uid_next), (4, 2, 5));
    assert!(store.copy(a.id, INBOX_ID, &UidSet::from_runs([(3, 3)]), 999).await.is_err(), "no such target");
}

pub async fn expunge_frees_content_with_its_last_reference(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    let b = account(store, "b@x.test").await;
    let acc = deliver(store, MSG, &[&a, &b], None).await;
    let one = UidSet::from_runs([(1, 1)]);
    assert_eq!(store.expunge(a.id, INBOX_ID, &one).await.unwrap(), [1]);
    assert!(store.expunge(a.id, INBOX_ID, &one).await.unwrap().is_empty(), "expunging twice removes nothing");
    assert!(store.read_content(acc.content).await.is_ok(), "b still refers to it");
    store.expunge(b.id, INBOX_ID, &one).await.unwrap();
    assert!(matches!(store.read_content(acc.content).await, Err(StoreError::NoSuchMessage(_))));
    let inbox = store.mailbox_by_id(b.id, INBOX_ID).await.unwrap().unwrap();
    assert_eq!((inbox.messages, inbox.unseen, inbox.bytes), (0, 0, 0));
}

pub async fn append_stores_as_given(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    let drafts = store.mailbox(a.id, "Drafts").await.unwrap().unwrap();
    let appended = store
        .append(
            a.id,
            drafts.id,
            Append {
                content: Bytes::from_static(MSG),
                flags: Flags::DRAFT | Flags::SEEN,
                keywords: vec!["a".into(), "A".into()],
                internal_date: 1_000_000_000,
                summary: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((appended.uid_validity, appended.uid), (drafts.uid_validity, 1));
    let e = &store.all_entries(a.id, drafts.id).await.unwrap()[0];
    assert_eq!((e.flags, e.internal_date, e.return_path.clone()), (Flags::DRAFT | Flags::SEEN, 1_000_000_000, None));
    assert_eq!(e.keywords, ["a"], "keywords are case-insensitive (RFC 3501 2.3.2)");
    assert_eq!(&store.read_message(e).await.unwrap()[..], MSG, "no Return-Path on an appended message");
    assert_eq!(e.size, MSG.len() as u64);
    let mb = store.mailbox_by_id(a.id, drafts.id).await.unwrap().unwrap();
    assert_eq!((mb.messages, mb.unseen, mb.highest_modseq), (1, 0, appended.modseq));
    assert!(
        store
            .append(
                a.id,
                77,
                Append {
                    content: Bytes::new(),
                    flags: Flags::empty(),
                    keywords: vec![],
                    internal_date: 0,
                    summary: None
                }
            )
            .await
            .is_err()
    );
}

pub async fn message_ranges_include_the_return_path(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    deliver(store, MSG, &[&a], None).await;
    let e = &store.all_entries(a.id, INBOX_ID).await.unwrap()[0];
    let whole = store.read_message(e).await.unwrap();
    for (offset, len) in [(0, 5), (30, 20), (36, 100), (0, 10_000), (whole.len() as u64, 5), (5, 0)] {
        let part = store.read_message_range(e, offset, len).await.unwrap();
        let start = (offset as usize).min(whole.len());
        let end = (offset + len).min(whole.len() as u64) as usize;
        assert_eq!(&part[..], &whole[start..end], "range {offset}+{len}");
    }
    let c = store.read_content_range(e.content, 9, 2).await.unwrap();
    assert_eq!(&c[..], b"hi");
    let many = store.read_contents(&[e.content, 0xdead_beef, e.content]).await.unwrap();
    assert_eq!(many, [Some(Bytes::from_static(MSG)), None, Some(Bytes::from_static(MSG))]);
}

pub async fn summaries_are_kept_beside_contents(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    let id = store.new_id().await.unwrap();
    let summary = Bytes::from_static(b"(ENVELOPE ...)");
    store
        .accept(Incoming {
            id,
            content: Bytes::from_static(MSG),
            return_path: String::new(),
            local: vec![Filing::inbox(a.id)],
            queue: None,
            summary: Some(summary.clone()),
            traces: Vec::new(),
        })
        .await
        .unwrap();
    let other = deliver(store, MSG, &[&a], None).await;
    assert_eq!(store.summary(id).await.unwrap(), Some(summary.clone()));
    assert_eq!(store.summaries(&[other.content, id]).await.unwrap(), [None, Some(summary)]);
    store.set_summary(other.content, Bytes::from_static(b"later")).await.unwrap();
    assert_eq!(store.summary(other.content).await.unwrap().as_deref(), Some(&b"later"[..]));
    assert!(store.set_summary(12345, Bytes::new()).await.is_err(), "no summary for content that is not stored");
}

pub async fn change_feed_announces_each_account_only(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    let b = account(store, "b@x.test").await;
    let mut feed = store.watch(a.id);
    let mut other = store.watch(b.id);
    deliver(store, MSG, &[&a], None).await;
    let c = feed.next().await.unwrap();
    let inbox = store.mailbox_by_id(a.id, INBOX_ID).await.unwrap().unwrap();
    assert_eq!((c.mailbox, c.kind), (INBOX_ID, ChangeKind::Appended { uid: 1, modseq: inbox.highest_modseq }));
    let one = UidSet::from_runs([(1, 1)]);
    store.set_flags(a.id, INBOX_ID, &one, &FlagChange::new(FlagOp::Add, Flags::SEEN)).await.unwrap();
    assert!(matches!(feed.next().await.unwrap().kind, ChangeKind::Flags(u) if u.uid == 1 && u.flags == Flags::SEEN));
    store.expunge(a.id, INBOX_ID, &one).await.unwrap();
    assert!(matches!(feed.next().await.unwrap().kind, ChangeKind::Expunged { uids, .. } if uids == [1]));
    let heard = other.try_next();
    assert!(heard.is_none(), "b hears nothing of a's mailboxes: {heard:?}");
}

pub async fn concurrent_deliveries_get_distinct_uids(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    let to = [&a];
    let tasks: Vec<_> = (0..64).map(|_| deliver(store, MSG, &to, None)).collect();
    let accepted = futures_join_all(tasks).await;
    let mut uids: Vec<u32> = accepted.iter().map(|acc| acc.filed[0].uid).collect();
    uids.sort_unstable();
    assert_eq!(uids, (1..=64).collect::<Vec<_>>());
    let inbox = store.mailbox_by_id(a.id, INBOX_ID).await.unwrap().unwrap();
    assert_eq!((inbox.messages, inbox.uid_next), (64, 65));
}

pub async fn search_rows_are_kept_until_expunge(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    for _ in 0..4 {
        deliver(store, MSG, &[&a], None).await;
    }
    let all = UidSet::from_runs([(1, u32::MAX)]);
    assert!(store.search_rows(a.id, INBOX_ID, &all).await.unwrap().ends.is_empty(), "none until kept");
    store.expunge(a.id, INBOX_ID, &UidSet::from_runs([(4, 4)])).await.unwrap();
    let rows =
        vec![(1, Bytes::from_static(b"one")), (3, Bytes::from_static(b"three")), (4, Bytes::from_static(b"gone"))];
    store.keep_search_rows(a.id, INBOX_ID, rows).await.unwrap();
    let kept = store.search_rows(a.id, INBOX_ID, &all).await.unwrap();
    let got: Vec<(u32, &[u8])> = kept.iter().collect();
    assert_eq!(got, [(1, &b"one"[..]), (3, &b"three"[..])], "no row for an expunged message");
    let some = store.search_rows(a.id, INBOX_ID, &UidSet::from_runs([(2, 3)])).await.unwrap();
    assert_eq!(some.iter().collect::<Vec<_>>(), [(3, &b"three"[..])]);
    store.expunge(a.id, INBOX_ID, &UidSet::from_runs([(1, 1)])).await.unwrap();
    let kept = store.search_rows(a.id, INBOX_ID, &all).await.unwrap();
    assert_eq!(kept.iter().map(|(u, _)| u).collect::<Vec<_>>(), [3], "an expunge takes the row along");
    // A copy has its own UID and no row until one is kept for it.
    let inbox2 = store.create_mailbox(a.id, "Other", None).await.unwrap();
    store.move_messages(a.id, INBOX_ID, &UidSet::from_runs([(3, 3)]), inbox2.id).await.unwrap();
    assert!(store.search_rows(a.id, INBOX_ID, &all).await.unwrap().ends.is_empty(), "MOVE expunges the source row");
    assert!(store.search_rows(a.id, inbox2.id, &all).await.unwrap().ends.is_empty());
}

pub async fn mailbox_state_is_the_record_uids_and_flag_index(store: &dyn Store) {
    let a = account(store, "a@x.test").await;
    for _ in 0..3 {
        deliver(store, MSG, &[&a], None).await;
    }
    let change =
        FlagChange { op: FlagOp::Add, flags: Flags::SEEN, keywords: vec!["Work".into()], unchanged_since: None };
    store.set_flags(a.id, INBOX_ID, &UidSet::from_runs([(2, 2)]), &change).await.unwrap();
    store.expunge(a.id, INBOX_ID, &UidSet::from_runs([(1, 1)])).await.unwrap();
    let state = store.mailbox_state(a.id, "inbox").await.unwrap().expect("INBOX, named in any case");
    assert_eq!(Some(&state.info), store.mailbox_by_id(a.id, INBOX_ID).await.unwrap().as_ref());
    assert_eq!(state.uids, store.uids(a.id, INBOX_ID).await.unwrap());
    assert_eq!(state.uids.runs(), &[(2, 3)]);
    assert_eq!(state.flags, store.flag_index(a.id, INBOX_ID).await.unwrap());
    assert_eq!(state.flags.keywords, ["Work"]);
    assert_eq!(store.mailbox_state(a.id, "Nope").await.unwrap(), None);
}
