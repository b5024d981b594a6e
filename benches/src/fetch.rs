//! Read-path workloads, the same steps as the shared baseline script
//! (`imap_pop_bench.py`), timed per step:
//! - POP3: connect + USER/PASS; STAT + LIST; RETR 1..N one command at a
//!   time (no DELE); QUIT.
//! - IMAP: connect + LOGIN; SELECT; FETCH 1:* (FLAGS UID RFC822.SIZE
//!   ENVELOPE); FETCH 1:* (BODY.PEEK[]); SEARCH on a header (SUBJECT, which
//!   every benchmark message matches, so the whole mailbox is searched and
//!   the answer is as long as it can be); LOGOUT.

use crate::wire::Wire;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub addr: String,
    pub user: String,
    pub password: String,
    pub timeout: Duration,
}

fn secs(t: Instant) -> f64 {
    crate::stats::round3(t.elapsed().as_secs_f64() * 1000.0) / 1000.0
}

/// Logs in and returns the message count (STAT): the "delivered" counter.
pub async fn pop3_stat(opts: &FetchOptions) -> Result<u64> {
    let mut w = pop3_login(opts).await?;
    w.send(b"STAT\r\n").await?;
    let stat = w.pop3_ok("STAT").await?;
    let n = stat.split_whitespace().nth(1).and_then(|n| n.parse().ok()).context("STAT reply")?;
    w.send(b"QUIT\r\n").await?;
    let _ = w.pop3_ok("QUIT").await;
    Ok(n)
}

async fn pop3_login(opts: &FetchOptions) -> Result<Wire> {
    let mut w = Wire::connect(&opts.addr, opts.timeout).await?;
    w.pop3_ok("greeting").await?;
    w.send(format!("USER {}\r\n", opts.user).as_bytes()).await?;
    w.pop3_ok("USER").await?;
    w.send(format!("PASS {}\r\n", opts.password).as_bytes()).await?;
    w.pop3_ok("PASS").await?;
    Ok(w)
}

pub async fn pop3(opts: &FetchOptions) -> Result<Value> {
    let t = Instant::now();
    let mut w = pop3_login(opts).await?;
    let login_s = secs(t);

    let t = Instant::now();
    w.send(b"STAT\r\n").await?;
    let stat = w.pop3_ok("STAT").await?;
    let n: usize = stat.split_whitespace().nth(1).and_then(|n| n.parse().ok()).context("STAT reply")?;
    w.send(b"LIST\r\n").await?;
    w.pop3_ok("LIST").await?;
    let list_octets = w.pop3_multiline().await?;
    let stat_list_s = secs(t);

    let t = Instant::now();
    let mut bytes = 0u64;
    for i in 1..=n {
        w.send(format!("RETR {i}\r\n").as_bytes()).await?;
        w.pop3_ok("RETR").await?;
        bytes += w.pop3_multiline().await? as u64;
    }
    let retr_s = secs(t);

    let t = Instant::now();
    w.send(b"QUIT\r\n").await?;
    w.pop3_ok("QUIT").await?;
    let quit_s = secs(t);
    Ok(json!({
        "proto": "pop3", "messages": n, "body_bytes": bytes, "list_octets": list_octets,
        "login_s": login_s, "stat_list_s": stat_list_s, "retr_all_s": retr_s, "quit_s": quit_s,
        "retr_msgs_per_s": crate::stats::rate(n as f64, retr_s),
        "retr_MB_per_s": crate::stats::rate(bytes as f64 / 1e6, retr_s),
    }))
}

/// One IMAP command: sends `tag command`, reads untagged responses (with
/// their `{n}` literals) until the tagged one. Returns (untagged FETCH
/// responses, literal octets, the EXISTS count if reported).
async fn imap_command(w: &mut Wire, tag: &str, command: &str) -> Result<(u64, u64, Option<u64>)> {
    w.send(format!("{tag} {command}\r\n").as_bytes()).await?;
    let (mut fetches, mut literal_octets, mut exists) = (0, 0, None);
    loop {
        let first = w.read_line().await?;
        // A line ending in {n} is followed by n octets and then the rest of
        // the response (RFC 3501 4.3); keep reading until a line has none.
        let mut line = first.clone();
        while let Some(n) = literal_len(&line) {
            let lit = w.read_exact(n).await?;
            literal_octets += lit.len() as u64;
            line = w.read_line().await?;
        }
        let text = String::from_utf8_lossy(&first);
        if let Some(rest) = text.strip_prefix(&format!("{tag} ")) {
            if !rest.starts_with("OK") {
                bail!("IMAP {command}: {}", text.trim_end());
            }
            return Ok((fetches, literal_octets, exists));
        }
        let mut words = text.split_ascii_whitespace();
        if words.next() == Some("*") {
            let (num, kind) = (words.next(), words.next());
            match kind.map(str::to_ascii_uppercase).as_deref() {
                Some("FETCH") => fetches += 1,
                Some("EXISTS") => exists = num.and_then(|n| n.parse().ok()),
                _ => {}
            }
        }
    }
}

/// A SEARCH command; returns how many messages it found (the numbers
/// of its untagged `* SEARCH` responses).
async fn imap_search(w: &mut Wire, tag: &str, command: &str) -> Result<u64> {
    w.send(format!("{tag} {command}\r\n").as_bytes()).await?;
    let mut found = 0;
    loop {
        let line = w.read_line().await?;
        let text = String::from_utf8_lossy(&line);
        if let Some(rest) = text.strip_prefix(&format!("{tag} ")) {
            if !rest.starts_with("OK") {
                bail!("IMAP {command}: {}", text.trim_end());
            }
            return Ok(found);
        }
        if let Some(numbers) = text.strip_prefix("* SEARCH") {
            found += numbers.split_ascii_whitespace().count() as u64;
        }
    }
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n"))?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&inner[open + 1..]).ok()?.trim_end_matches('+').parse().ok()
}

pub async fn imap(opts: &FetchOptions, mailbox: &str) -> Result<Value> {
    let t = Instant::now();
    let mut w = Wire::connect(&opts.addr, opts.timeout).await?;
    let greeting = w.read_line().await?;
    if !greeting.starts_with(b"* OK") {
        bail!("IMAP greeting: {}", String::from_utf8_lossy(&greeting).trim_end());
    }
    imap_command(&mut w, "a1", &format!("LOGIN {} {}", quote(&opts.user), quote(&opts.password))).await?;
    let login_s = secs(t);

    let t = Instant::now();
    let (_, _, exists) = imap_command(&mut w, "a2", &format!("SELECT {}", quote(mailbox))).await?;
    let select_s = secs(t);
    let n = exists.unwrap_or(0);

    let (mut meta_s, mut body_s, mut bodies, mut bytes) = (0.0, 0.0, 0, 0);
    if n > 0 {
        let t = Instant::now();
        imap_command(&mut w, "a3", "FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)").await?;
        meta_s = secs(t);
        let t = Instant::now();
        (bodies, bytes, _) = imap_command(&mut w, "a4", "FETCH 1:* (BODY.PEEK[])").await?;
        body_s = secs(t);
    }
    let t = Instant::now();
    let found = imap_search(&mut w, "a6", "SEARCH SUBJECT \"benchmark\"").await?;
    let search_s = secs(t);
    let t = Instant::now();
    imap_command(&mut w, "a5", "LOGOUT").await?;
    let logout_s = secs(t);
    Ok(json!({
        "proto": "imap", "messages": n, "bodies": bodies, "body_bytes": bytes,
        "login_s": login_s, "select_s": select_s, "fetch_meta_s": meta_s, "fetch_body_s": body_s, "logout_s": logout_s,
        "search_s": search_s, "search_found": found,
        "fetch_body_msgs_per_s": crate::stats::rate(bodies as f64, body_s),
        "fetch_body_MB_per_s": crate::stats::rate(bytes as f64 / 1e6, body_s),
    }))
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::literal_len;

    #[test]
    fn literal_at_line_end() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {2462}\r\n"), Some(2462));
        assert_eq!(literal_len(b"* 1 FETCH (FLAGS ())\r\n"), None);
        assert_eq!(literal_len(b"a1 LOGIN {3+}\r\n"), Some(3));
    }
}
