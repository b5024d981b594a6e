//! Idle connections: open many, read the greeting (and say EHLO, so the
//! server holds a full session), keep them open, and measure how much the
//! server's resident memory grew per connection.

use crate::rss;
use crate::wire::Wire;
use anyhow::Result;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct IdleOptions {
    pub addr: String,
    pub connections: usize,
    /// Send EHLO after the greeting (SMTP servers only).
    pub ehlo: bool,
    pub hold: Duration,
    /// Connection attempts in flight at once.
    pub parallel: usize,
    pub pid: Option<u32>,
    pub timeout: Duration,
}

async fn open_one(opts: &IdleOptions) -> Result<Wire> {
    let mut w = Wire::connect(&opts.addr, opts.timeout).await?;
    let greeting = w.read_line().await?;
    if greeting.starts_with(b"4") || greeting.starts_with(b"5") || greeting.starts_with(b"-ERR") {
        anyhow::bail!("refused: {}", String::from_utf8_lossy(&greeting).trim_end());
    }
    if opts.ehlo {
        w.send(b"EHLO idle.test\r\n").await?;
        let r = w.smtp_reply().await?;
        anyhow::ensure!(r.code == 250, "EHLO: {}", r.code);
    }
    Ok(w)
}

pub async fn run(opts: IdleOptions) -> Result<Value> {
    let before = opts.pid.map(rss::tree_rss_kb);
    let gate = Arc::new(Semaphore::new(opts.parallel.max(1)));
    let opts = Arc::new(opts);
    let mut tasks = Vec::with_capacity(opts.connections);
    for _ in 0..opts.connections {
        let (gate, opts) = (gate.clone(), opts.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("semaphore open");
            open_one(&opts).await
        }));
    }
    let mut held = Vec::with_capacity(opts.connections);
    let mut failures = 0u64;
    let mut first_error = None;
    for t in tasks {
        match t.await? {
            Ok(w) => held.push(w),
            Err(e) => {
                failures += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    // Let the server settle (allocator, lazily grown buffers) before reading.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = opts.pid.map(rss::tree_rss_kb);
    tokio::time::sleep(opts.hold).await;
    let open = held.len();
    drop(held);
    let per_conn = match (before, during) {
        (Some(b), Some(d)) if open > 0 => Some(((d.saturating_sub(b)) * 1024) as f64 / open as f64),
        _ => None,
    };
    Ok(json!({
        "mode": "idle", "addr": opts.addr, "requested": opts.connections, "open": open, "failed": failures,
        "first_error": first_error, "rss_before_kb": before, "rss_held_kb": during,
        "rss_delta_kb": match (before, during) { (Some(b), Some(d)) => Some(d.saturating_sub(b)), _ => None },
        "bytes_per_conn": per_conn.map(|b| b.round()),
    }))
}
