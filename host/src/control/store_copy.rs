//! `ferrymail store copy --from sled:PATH --to postgres:URL`: moves an
//! installation from the embedded store to a (new, empty) PostgreSQL
//! database, through the storage traits only, so it is as correct as the
//! battery that holds both backends to one contract.
//!
//! What is copied: accounts with their password hashes, mailboxes (special
//! use, subscriptions), every message with its flags, keywords and
//! internal date, and the outbound queue with each entry's attempts and
//! schedule. Messages get new UIDs in a new UIDVALIDITY (the contract
//! hands out UIDs; RFC 3501 2.3.1.1 lets clients resynchronise), read back
//! byte for byte as before. Not copied: plugin kv (greylisting and
//! rate-limit state, rebuilt as mail arrives) and decision traces.

use super::client::postgres_options;
use crate::config::Config;
use anyhow::{Context, Result, bail};
use ferrymail_store::schema::{Append, Incoming};
use ferrymail_store::{SharedStore, Store, postgres::describe_url};
use std::path::PathBuf;

/// What `--from` and `--to` name.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A sled store directory (`data_dir/store`), or the data_dir holding one.
    Sled(PathBuf),
    Postgres(String),
}

impl std::str::FromStr for Location {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("sled", path)) if !path.is_empty() => Ok(Location::Sled(path.into())),
            Some(("postgres", url)) if !url.is_empty() => {
                ferrymail_store::postgres::check_url(url)?;
                Ok(Location::Postgres(url.to_string()))
            }
            _ => Err(format!("{s:?}: expected sled:PATH or postgres:URL")),
        }
    }
}

/// What was copied, for the one-line report.
#[derive(Debug, Default)]
pub struct Copied {
    pub accounts: usize,
    pub mailboxes: usize,
    pub messages: usize,
    pub bytes: u64,
    pub queued: usize,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "copied {} accounts, {} mailboxes, {} messages ({:.1} MB), {} queue entries; not copied: plugin kv \
             (greylisting and rate-limit state) and decision traces; IMAP clients resynchronise (new UIDVALIDITY)",
            self.accounts,
            self.mailboxes,
            self.messages,
            self.bytes as f64 / 1e6,
            self.queued
        )
    }
}

/// `ferrymail store copy`: the source must be sled and not in use, the
/// target PostgreSQL and empty (no accounts, nothing queued). The password
/// for the target is `[store]`'s (password_file, FERRYMAIL_STORE__PASSWORD)
/// when the URL has none.
pub async fn copy(config: &Config, from: &Location, to: &Location) -> Result<Copied> {
    let (Location::Sled(path), Location::Postgres(url)) = (from, to) else {
        bail!("store copy moves a sled store into PostgreSQL: --from sled:PATH --to postgres:URL");
    };
    let dir = if path.join("store").is_dir() { path.join("store") } else { path.clone() };
    if !dir.join("conf").is_file() {
        bail!("--from sled:{}: no sled store there (expected data_dir or data_dir/store)", path.display());
    }
    let source = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || ferrymail_store::open_embedded(&dir, Default::default())).await?
    }
    .with_context(|| format!("--from sled:{} (a server using it must be stopped first)", dir.display()))?;
    let mut options = postgres_options(config)?;
    options.url = url.clone();
    let target: SharedStore = std::sync::Arc::new(
        ferrymail_store::PostgresStore::open(options)
            .await
            .with_context(|| format!("--to postgres:{}", describe_url(url)))?,
    );
    let result = copy_between(&*source, &*target).await;
    let closed = (source.close().await, target.close().await);
    let copied = result?;
    closed.0.context("closing the sled store")?;
    closed.1.context("closing the PostgreSQL store")?;
    Ok(copied)
}

/// Copies everything the traits can list from `source` into the empty `target`.
pub async fn copy_between(source: &dyn Store, target: &dyn Store) -> Result<Copied> {
    let existing = target.accounts().await?.len() + target.queue_entries().await?.len();
    if existing > 0 {
        bail!("the target already holds accounts or queued mail; copy into an empty database");
    }
    let mut copied = Copied::default();
    for account in source.accounts().await? {
        let new = target.add_account(&account.address, &account.password_hash).await?;
        copied.accounts += 1;
        let subscribed = source.subscriptions(account.id).await?;
        for mailbox in source.mailboxes(account.id).await? {
            let into = match target.mailbox(new.id, &mailbox.name).await? {
                Some(m) => m,
                None => target.create_mailbox(new.id, &mailbox.name, mailbox.special_use).await?,
            };
            copied.mailboxes += 1;
            for entry in source.all_entries(account.id, mailbox.id).await? {
                // Read as a client reads it (Return-Path line included), so
                // the copy reads back byte for byte the same.
                let content = source.read_message(&entry).await?;
                copied.bytes += content.len() as u64;
                let append = Append {
                    content,
                    flags: entry.flags,
                    keywords: entry.keywords.clone(),
                    internal_date: entry.internal_date,
                    summary: None,
                };
                target.append(new.id, into.id, append).await?;
                copied.messages += 1;
            }
        }
        for name in subscribed {
            target.set_subscribed(new.id, &name, true).await?;
        }
    }
    for mut entry in source.queue_entries().await? {
        let content = source.read_content(entry.content).await?;
        // The lease was the old process's (its end stood in for the due
        // time); the schedule and attempts stay.
        if entry.lease.take().is_some() {
            entry.next_attempt = entry.due().unwrap_or(entry.next_attempt);
        }
        let id = target.new_id().await?;
        let return_path = entry.sender.clone();
        let incoming = Incoming {
            id,
            content,
            return_path,
            local: Vec::new(),
            queue: Some(entry),
            summary: None,
            traces: Vec::new(),
        };
        target.accept(incoming).await?;
        copied.queued += 1;
    }
    Ok(copied)
}
