//! Fills one account's INBOX with N messages straight through the store API
//! (the same `accept` SMTP delivery ends in, with the IMAP summary computed
//! as delivery computes it), for mailbox-size benchmarks where SMTP would
//! take hours: a 1,000,000-message mailbox in minutes.
//!
//! ```text
//! ferrymail user add big@bench.test --config c.toml     # the account first
//! ferrymail-fill --store DATA_DIR/store --account big@bench.test --messages 1000000
//! ```
//!
//! The server must not be running (the store is opened exclusively).

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use ferrymail_proto::imap::Summary;
use ferrymail_store::contract::Store;
use ferrymail_store::schema::{Filing, INBOX_ID, Incoming, UidSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "ferrymail-fill", about = "Fill a mailbox through the store API (benchmarks only)")]
struct Cli {
    /// The store directory (`data_dir/store`).
    #[arg(long)]
    store: PathBuf,
    /// The account, created beforehand with `ferrymail user add`.
    #[arg(long)]
    account: String,
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Body octets per message (headers come on top).
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// Deliveries in flight: the store's writer commits them in groups.
    #[arg(long, default_value_t = 256)]
    parallel: u64,
    /// Create the account if it does not exist (with a password hash that
    /// matches nothing): store-only measurements without the server.
    #[arg(long)]
    create_account: bool,
    /// After filling, expunge this percentage of the mailbox (spread
    /// evenly) and wait for the store to reclaim the space: prints the
    /// store's size before and after.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    delete_percent: Option<u8>,
}

/// Bytes of the files under `dir` (what `du -sb` counts, less directories).
fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir).into_iter().flatten().flatten().fold(0, |sum, e| match e.metadata() {
        Ok(m) if m.is_dir() => sum + bytes_under(&e.path()),
        Ok(m) => sum + m.len(),
        Err(_) => sum,
    })
}

fn message(n: u64, body: &[u8]) -> Bytes {
    let mut out = format!(
        "From: <fill@bench.test>\r\nTo: <big@bench.test>\r\n\
         Subject: fill message {n}\r\nMessage-ID: <fill-{n}@bench.test>\r\n\
         Date: Thu, 26 Nov 2026 12:00:00 +0000\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(body);
    Bytes::from(out)
}

async fn fill(store: Arc<dyn Store>, account: u64, from: u64, to: u64, step: u64, body: Arc<Vec<u8>>) -> Result<()> {
    let mut n = from;
    while n < to {
        let content = message(n, &body);
        let summary = Bytes::from(Summary::compute(&content).into_encoded());
        let incoming = Incoming {
            id: store.new_id().await?,
            content,
            return_path: "fill@bench.test".into(),
            local: vec![Filing::inbox(account)],
            queue: None,
            summary: Some(summary),
            traces: Vec::new(),
        };
        store.accept(incoming).await.with_context(|| format!("message {n}"))?;
        n += step;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let store: Arc<dyn Store> = ferrymail_store::open_embedded(&cli.store, Default::default())
        .with_context(|| format!("opening {} (is the server stopped?)", cli.store.display()))?;
    let account = match store.account(&cli.account).await? {
        Some(account) => account,
        None if cli.create_account => store.add_account(&cli.account, "!fill").await?,
        None => bail!("no account {} (create it with `ferrymail user add`)", cli.account),
    };
    let body = Arc::new(ferrymail_benches::message::body(cli.size));
    let started = Instant::now();
    let workers: Vec<_> = (0..cli.parallel)
        .map(|i| tokio::spawn(fill(store.clone(), account.id, i, cli.messages, cli.parallel, body.clone())))
        .collect();
    for w in workers {
        w.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{} messages in {secs:.1} s ({:.0} msg/s)", cli.messages, cli.messages as f64 / secs);
    let mailbox = |store: Arc<dyn Store>| async move {
        let entries = store.all_entries(account.id, INBOX_ID).await?;
        anyhow::Ok((entries.len() as u64, entries.iter().map(|e| e.size).sum::<u64>(), entries))
    };
    let (count, bytes, entries) = mailbox(store.clone()).await?;
    let on_disk = bytes_under(&cli.store);
    println!(
        "store: {on_disk} bytes on disk for {count} messages of {bytes} bytes in the mailbox ({:.2}x)",
        on_disk as f64 / bytes.max(1) as f64
    );
    if let Some(percent) = cli.delete_percent {
        // Every message whose position falls in the percentage, spread evenly.
        let gone: UidSet = entries
            .iter()
            .enumerate()
            .filter(|(i, _)| (i * usize::from(percent)) % 100 < usize::from(percent))
            .map(|(_, e)| e.uid)
            .collect();
        let started = Instant::now();
        store.expunge(account.id, INBOX_ID, &gone).await?;
        // The writer reclaims space while idle: wait until the size holds still.
        let mut last = bytes_under(&cli.store);
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            let now = bytes_under(&cli.store);
            if now == last {
                break;
            }
            last = now;
        }
        let (count, bytes, _) = mailbox(store.clone()).await?;
        println!(
            "after expunging {percent}%: {last} bytes on disk for {count} messages of {bytes} bytes ({:.2}x), settled in {:.0} s",
            last as f64 / bytes.max(1) as f64,
            started.elapsed().as_secs_f64()
        );
    }
    store.close().await?;
    Ok(())
}
