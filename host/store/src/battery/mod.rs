//! The behavioural test battery: one suite every backend runs, so a second
//! backend is proven by the same tests as the first (hickory-dns runs its
//! resolver tests against every backend the same way).
//!
//! Each case is a public `async fn(&dyn Store)` that panics on a failure.
//! A backend runs them all with [`store_battery!`](crate::store_battery),
//! given a factory that returns a fresh, empty store and a guard that keeps
//! it alive (a temporary directory, a throw-away database):
//!
//! ```ignore
//! ferrymail_store::store_battery!(|| async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = ferrymail_store::open_embedded(dir.path(), Default::default()).unwrap();
//!     (dir, store)
//! });
//! ```
//!
//! Cases use only the traits, never a backend's internals.

mod accounts;
mod kv;
mod mailboxes;
mod messages;
mod queue;
mod traces;

pub use accounts::*;
pub use kv::*;
pub use mailboxes::*;
pub use messages::*;
pub use queue::*;
pub use traces::*;

use crate::contract::Store;
use crate::schema::{Accepted, Account, Filing, Incoming, QueueEntry};
use bytes::Bytes;

/// Runs every case of the battery as its own `#[tokio::test]`.
#[macro_export]
macro_rules! store_battery {
    ($factory:expr) => {
        $crate::store_battery!(@cases $factory;
            accounts_lifecycle,
            accounts_get_default_folders,
            accept_files_one_shared_copy_per_mailbox,
            accept_to_a_missing_account_keeps_nothing,
            uids_ascend_and_are_never_reused,
            uid_set_is_exact_and_compact,
            entries_by_sparse_uid_set,
            flags_keywords_modseq_and_unseen,
            flag_index_follows_every_change,
            search_rows_are_kept_until_expunge,
            mailbox_state_is_the_record_uids_and_flag_index,
            store_unchanged_since_reports_modified,
            copy_and_move_share_contents,
            expunge_frees_content_with_its_last_reference,
            mailboxes_create_rename_delete,
            rename_inbox_moves_its_messages,
            mailbox_names_are_checked,
            subscriptions_are_names,
            append_stores_as_given,
            message_ranges_include_the_return_path,
            summaries_are_kept_beside_contents,
            change_feed_announces_each_account_only,
            concurrent_deliveries_get_distinct_uids,
            delete_account_removes_its_mail,
            queue_lifecycle,
            queue_leases_exclude_other_owners,
            queue_recover_drops_leases,
            queue_commit_files_and_accepts_dsns_atomically,
            queue_commit_of_a_removed_entry_is_refused,
            kv_namespaces_are_isolated,
            kv_counters,
            kv_sweeps_remove_expired_keys_a_bounded_number_at_a_time,
            traces_ride_on_their_change,
            traces_without_a_change_read_at_once,
            traces_expire,
            kv_values_expire
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (_guard, store) = ($factory)().await;
                $crate::battery::$case(&*store).await;
            }
        )*
    };
}

/// A message for `to`'s INBOXes (and the queue, if given).
pub async fn deliver(store: &dyn Store, content: &[u8], to: &[&Account], queue: Option<QueueEntry>) -> Accepted {
    let id = store.new_id().await.expect("new id");
    store
        .accept(Incoming {
            id,
            content: Bytes::copy_from_slice(content),
            return_path: "sender@remote.test".into(),
            local: to.iter().map(|a| Filing::inbox(a.id)).collect(),
            queue,
            summary: None,
            traces: Vec::new(),
        })
        .await
        .expect("accept")
}

pub async fn account(store: &dyn Store, address: &str) -> Account {
    store.add_account(address, "$argon2id$test").await.expect("add account")
}
