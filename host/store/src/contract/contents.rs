//! Message contents, and accepting a new message.

use crate::Result;
use crate::schema::{Accepted, Incoming, MailEntry};
use bytes::{Bytes, BytesMut};

/// Message contents are stored once, however many mailbox entries and queue
/// entries refer to them, and are freed (their space reclaimed) when the
/// last reference goes.
#[async_trait::async_trait]
pub trait Contents: Send + Sync {
    /// A new id for a message's content, unique for the life of the store
    /// (across restarts and, for a shared backend, across nodes). Taken
    /// before acceptance so the Received header and logs can carry it. An id
    /// taken and never used costs nothing.
    async fn new_id(&self) -> Result<u64>;

    /// Stores `incoming.content` under `incoming.id`, files one copy into
    /// each of `incoming.local` and queues `incoming.queue`, in one atomic
    /// step, **durable on return** (the SMTP 250). Each filing takes the
    /// mailbox's next UID and is announced to the account's [`ChangeFeed`]
    /// subscribers after it is durable.
    ///
    /// Errors: [`crate::StoreError::NoSuchAccount`] /
    /// [`crate::StoreError::NoSuchMailbox`] if a filing's target is gone;
    /// [`crate::StoreError::Io`] when the disk is full or failing — then
    /// nothing is kept and the client retries. A backend keeps a free-space
    /// reserve and refuses new messages (out of space) before the disk is
    /// truly full, so deletions, flag changes and its own housekeeping still
    /// work on a nearly full disk.
    ///
    /// [`ChangeFeed`]: crate::contract::ChangeFeed
    async fn accept(&self, incoming: Incoming) -> Result<Accepted>;

    /// The stored content, as accepted (without a `Return-Path:` line).
    /// [`crate::StoreError::NoSuchMessage`] if it is not (or no longer) stored.
    async fn read_content(&self, content: u64) -> Result<Bytes>;

    /// Many contents in one call (IMAP `FETCH 1:* BODY[]`), in the order
    /// asked; `None` for one that is not stored. Callers ask in batches of a
    /// few megabytes: the whole result is in memory at once.
    async fn read_contents(&self, contents: &[u64]) -> Result<Vec<Option<Bytes>>> {
        let mut out = Vec::with_capacity(contents.len());
        for &id in contents {
            out.push(match self.read_content(id).await {
                Ok(c) => Some(c),
                Err(crate::StoreError::NoSuchMessage(_)) => None,
                Err(e) => return Err(e),
            });
        }
        Ok(out)
    }

    /// `len` bytes of the content from `offset` (fewer at its end, empty
    /// past it), without reading the rest: IMAP partial fetches.
    async fn read_content_range(&self, content: u64, offset: u64, len: u64) -> Result<Bytes>;

    /// The summary given at acceptance or by [`Contents::set_summary`].
    async fn summary(&self, content: u64) -> Result<Option<Bytes>>;

    /// Summaries of many contents in one call (FETCH ENVELOPE of a whole
    /// mailbox), in the order asked; `None` where there is none.
    async fn summaries(&self, contents: &[u64]) -> Result<Vec<Option<Bytes>>>;

    /// Records a summary computed later (a message stored before summaries
    /// existed). Derived data: visible at once, durable at the backend's
    /// next commit; lost in a power cut at worst, never half-written.
    async fn set_summary(&self, content: u64, summary: Bytes) -> Result<()>;

    /// A mailbox message as a mail client sees it: its `Return-Path:` line
    /// (if any), then the content. `entry.size` is the length of the result.
    async fn read_message(&self, entry: &MailEntry) -> Result<Bytes> {
        let line = entry.return_path_line();
        let content = self.read_content(entry.content).await?;
        if line.is_empty() {
            return Ok(content);
        }
        let mut out = BytesMut::with_capacity(line.len() + content.len());
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(&content);
        Ok(out.freeze())
    }

    /// `len` bytes of [`Contents::read_message`] from `offset`.
    async fn read_message_range(&self, entry: &MailEntry, offset: u64, len: u64) -> Result<Bytes> {
        let line = entry.return_path_line();
        let line = line.as_bytes();
        let end = offset.saturating_add(len);
        let head_len = line.len() as u64;
        let mut out = BytesMut::new();
        if offset < head_len {
            out.extend_from_slice(&line[offset as usize..end.min(head_len) as usize]);
        }
        if end > head_len {
            let from = offset.saturating_sub(head_len);
            let rest = self.read_content_range(entry.content, from, end - head_len - from).await?;
            out.extend_from_slice(&rest);
        }
        Ok(out.freeze())
    }
}
