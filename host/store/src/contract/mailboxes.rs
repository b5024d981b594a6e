//! Mailboxes: what POP3 and IMAP read and change.

use super::ChangeFeed;
use crate::Result;
use crate::schema::{
    Append, Appended, CopyResult, FlagChange, FlagIndex, FlagUpdate, MailEntry, MailboxInfo, MailboxState, SearchRows,
    SpecialUse, UidSet,
};

/// What [`Mailboxes::set_flags`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagsOutcome {
    /// Every message of the set that exists, with its flags after the call
    /// (a message whose flags did not change keeps its modseq).
    pub updated: Vec<FlagUpdate>,
    /// Messages left unchanged because their modseq was above
    /// `unchanged_since` (RFC 7162 3.1.3 MODIFIED).
    pub modified: Vec<u32>,
}

/// Folders per account and the messages in them.
///
/// Mailboxes are addressed by (account id, mailbox id); names are UTF-8
/// (the IMAP layer converts modified UTF-7) with
/// [`crate::schema::HIERARCHY_SEPARATOR`] between levels, and `INBOX` in any
/// case means INBOX. The store refuses names that are empty, contain control
/// characters, start or end with the separator, have an empty level or a
/// `.`/`..` level ([`crate::StoreError::MailboxRefused`]).
///
/// Every change below is **durable on return** and atomic, takes a new
/// modseq of the mailbox (higher than any before), keeps the mailbox's
/// counters (messages, unseen, bytes) exact, and is announced on the
/// account's [`ChangeFeed`] once durable. UIDs strictly ascend and are never
/// reused within a `uid_validity` (RFC 3501 2.3.1.1).
#[async_trait::async_trait]
pub trait Mailboxes: Send + Sync {
    /// The account's mailboxes in id order, with counters and `subscribed`.
    async fn mailboxes(&self, account: u64) -> Result<Vec<MailboxInfo>>;

    async fn mailbox(&self, account: u64, name: &str) -> Result<Option<MailboxInfo>>;

    async fn mailbox_by_id(&self, account: u64, id: u32) -> Result<Option<MailboxInfo>>;

    /// A new mailbox with a fresh `uid_validity`. Parents need not exist
    /// (the IMAP layer shows them as \NoSelect or creates them). Fails with
    /// [`crate::StoreError::MailboxExists`].
    async fn create_mailbox(&self, account: u64, name: &str, special_use: Option<SpecialUse>) -> Result<MailboxInfo>;

    /// Removes the mailbox and expunges its messages. INBOX cannot be
    /// deleted. Children are left alone (the IMAP layer decides whether a
    /// mailbox with children may go, RFC 3501 6.3.4).
    async fn delete_mailbox(&self, account: u64, name: &str) -> Result<()>;

    /// Renames a mailbox and every mailbox below it (RFC 3501 6.3.5),
    /// keeping ids, UIDs and `uid_validity`. Renaming INBOX moves its
    /// messages to a new mailbox of that name and leaves INBOX empty. Fails
    /// if the target (or a renamed child's target) exists.
    async fn rename_mailbox(&self, account: u64, from: &str, to: &str) -> Result<()>;

    /// Subscribed names, existing or not (RFC 3501 6.3.6, LSUB).
    async fn subscriptions(&self, account: u64) -> Result<Vec<String>>;

    async fn set_subscribed(&self, account: u64, name: &str, subscribed: bool) -> Result<()>;

    /// The mailbox's UIDs, ascending, from a compact record kept per
    /// mailbox: a constant number of reads whatever its size (SELECT of a
    /// million-message mailbox), never a scan of its messages.
    async fn uids(&self, account: u64, mailbox: u32) -> Result<UidSet>;

    /// Which messages carry which flags, and the mailbox's keywords (IMAP
    /// SELECT's FLAGS and UNSEEN, a session's view of the flags). A backend
    /// that keeps an index answers in a constant number of reads whatever
    /// the mailbox's size; this default reads every entry.
    async fn flag_index(&self, account: u64, mailbox: u32) -> Result<FlagIndex> {
        Ok(FlagIndex::from_entries(&self.all_entries(account, mailbox).await?))
    }

    /// The mailbox named `name` with its UIDs and flag index (`None`: no
    /// such mailbox): everything IMAP SELECT reads. A backend answers in one
    /// round trip where it can (a session waits for each); this default
    /// makes three.
    async fn mailbox_state(&self, account: u64, name: &str) -> Result<Option<MailboxState>> {
        let Some(info) = self.mailbox(account, name).await? else { return Ok(None) };
        let uids = self.uids(account, info.id).await?;
        let flags = self.flag_index(account, info.id).await?;
        Ok(Some(MailboxState { info, uids, flags }))
    }

    /// The entries of the messages in `uids` that exist, in UID order,
    /// without their contents. Cost is proportional to the entries returned.
    async fn entries(&self, account: u64, mailbox: u32, uids: &UidSet) -> Result<Vec<MailEntry>>;

    /// Every entry of the mailbox (POP3's maildrop, IMAP `FETCH 1:*`).
    async fn all_entries(&self, account: u64, mailbox: u32) -> Result<Vec<MailEntry>> {
        self.entries(account, mailbox, &UidSet::from_runs([(1, u32::MAX)])).await
    }

    /// The search rows kept (by [`Mailboxes::keep_search_rows`]) for the
    /// messages of `uids`, in UID order; a message without one is left out.
    /// A backend that keeps none answers none (the caller then works from
    /// the messages' summaries).
    async fn search_rows(&self, account: u64, mailbox: u32, uids: &UidSet) -> Result<SearchRows> {
        let _ = (account, mailbox, uids);
        Ok(SearchRows::default())
    }

    /// Keeps a derived row per message for [`Mailboxes::search_rows`]; rows
    /// of messages that no longer exist are dropped, and a message's row
    /// goes when it is expunged. Durable at the backend's next commit.
    async fn keep_search_rows(&self, account: u64, mailbox: u32, rows: Vec<(u32, bytes::Bytes)>) -> Result<()> {
        let _ = (account, mailbox, rows);
        Ok(())
    }

    /// IMAP APPEND: stores a message as given (no `Return-Path:` added).
    async fn append(&self, account: u64, mailbox: u32, message: Append) -> Result<Appended>;

    /// IMAP STORE: changes the flags and keywords of the messages of `uids`
    /// that exist (keywords compare case-insensitively, RFC 3501 2.3.2).
    /// With `unchanged_since`, a message whose modseq is higher is left as
    /// it is and listed in [`FlagsOutcome::modified`].
    async fn set_flags(&self, account: u64, mailbox: u32, uids: &UidSet, change: &FlagChange) -> Result<FlagsOutcome>;

    /// IMAP COPY: new entries in `to` sharing the contents (nothing is
    /// copied on disk), with flags, keywords and internal dates kept.
    async fn copy(&self, account: u64, from: u32, uids: &UidSet, to: u32) -> Result<CopyResult>;

    /// IMAP MOVE (RFC 6851): COPY and EXPUNGE of the source in one atomic step.
    async fn move_messages(&self, account: u64, from: u32, uids: &UidSet, to: u32) -> Result<CopyResult>;

    /// Removes the messages of `uids` that exist (IMAP EXPUNGE, POP3 DELE +
    /// QUIT), freeing contents nobody references any more. Returns the
    /// UIDs removed, ascending.
    async fn expunge(&self, account: u64, mailbox: u32, uids: &UidSet) -> Result<Vec<u32>>;

    /// Changes to the account's mailboxes from now on, in the order they
    /// became durable. Cheap: no I/O. An in-process broadcast on the
    /// embedded backend; LISTEN/NOTIFY across nodes on a shared one.
    fn watch(&self, account: u64) -> ChangeFeed;
}
