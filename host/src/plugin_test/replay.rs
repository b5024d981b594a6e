//! Plays a transcript's client side over the test connection and checks
//! each expectation against what happened, one reply per command (no
//! pipelining). The report is the transcript again, as a diff: expected
//! lines that did not hold are `-`, what came instead `+`.

use super::harness::{Harness, take_decider};
use super::transcript::{Step, StepKind, glob, is_enhanced};
use std::fmt::Write as _;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// How long one reply may take: far above a plugin's `call_timeout`, so a
/// hang is reported rather than waited out.
const REPLY_WAIT: Duration = Duration::from_secs(60);

/// One reply as read: every line, and the parts of the last.
#[derive(Debug, Clone)]
pub struct Got {
    pub lines: Vec<String>,
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: String,
}

impl Got {
    fn last(&self) -> &str {
        self.lines.last().map(String::as_str).unwrap_or("")
    }
}

/// The outcome: the report and how many expectations failed.
pub struct Outcome {
    pub report: String,
    pub checked: usize,
    pub failed: usize,
}

pub async fn replay(harness: &Harness, steps: &[Step], file: &str) -> anyhow::Result<Outcome> {
    let stream = harness.connect().await?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut out = Outcome { report: String::new(), checked: 0, failed: 0 };
    // The greeting is the reply to the connection.
    let mut last: Result<Got, String> = read_reply(&mut read).await;
    let mut last_command = "(connect)".to_string();
    let mut decider = take_decider();
    let mut checked_reply = false;
    let mut closed = false;
    for step in steps {
        let at = format!("{file}:{}", step.line);
        match &step.kind {
            StepKind::Send(line) => {
                unchecked(&mut out, &last, checked_reply);
                let _ = writeln!(out.report, "  > {line}");
                last = send(&mut write, &mut read, format!("{line}\r\n").as_bytes(), closed).await;
                closed |= last.is_err();
                last_command = line.clone();
                decider = take_decider();
                checked_reply = false;
            }
            StepKind::Message { content, source } => {
                unchecked(&mut out, &last, checked_reply);
                let _ = writeln!(out.report, "  message {source} ({} bytes)", content.len());
                last = send(&mut write, &mut read, &dot_stuffed(content), closed).await;
                closed |= last.is_err();
                last_command = format!("the message from {source}");
                decider = take_decider();
                checked_reply = false;
            }
            StepKind::Reply(want) => {
                checked_reply = true;
                let ok = matches!(&last, Ok(got) if want.matches(got.code, got.enhanced.as_deref(), &got.text));
                let got = match &last {
                    Ok(got) => format!("< {}", got.last()),
                    Err(e) => format!("< ({e})"),
                };
                check(&mut out, ok, &format!("< {want}"), &got, &at, &format!("reply to {last_command}"));
            }
            StepKind::DecidedBy(want) => {
                let got = decider.clone().unwrap_or_else(|| "host".into());
                let ok = got.eq_ignore_ascii_case(want);
                check(
                    &mut out,
                    ok,
                    &format!("decided-by {want}"),
                    &format!("decided-by {got}"),
                    &at,
                    &format!("who decided {last_command}"),
                );
            }
            StepKind::Header { name, value } => {
                let added = harness.added.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let fields: Vec<&(String, String)> =
                    added.iter().flatten().filter(|(n, _)| n.eq_ignore_ascii_case(name)).collect();
                let ok = fields.iter().any(|(_, v)| glob(value, v));
                let got = match fields.as_slice() {
                    [] if added.is_none() => "(no message reached the data hooks)".to_string(),
                    [] => format!("no {name} field added"),
                    some => some.iter().map(|(n, v)| format!("header {n}: {v}")).collect::<Vec<_>>().join(" | "),
                };
                check(&mut out, ok, &format!("header {name}: {value}"), &got, &at, "added header");
            }
            StepKind::NoHeader(name) => {
                let added = harness.added.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let found: Vec<String> = added
                    .iter()
                    .flatten()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(n, v)| format!("header {n}: {v}"))
                    .collect();
                check(
                    &mut out,
                    found.is_empty(),
                    &format!("no-header {name}"),
                    &found.join(" | "),
                    &at,
                    "added header",
                );
            }
            StepKind::Kv { key, value } => {
                let stored = harness.kv(key).await?;
                let ok = match (value, &stored) {
                    (None, None) => true,
                    (Some(want), Some(bytes)) => kv_matches(want, bytes),
                    _ => false,
                };
                let want = match value {
                    Some(v) => format!("kv {key} = {v}"),
                    None => format!("kv {key} absent"),
                };
                let got = match &stored {
                    Some(bytes) => format!("kv {key} = {}", show_kv(bytes)),
                    None => format!("kv {key} absent"),
                };
                check(&mut out, ok, &want, &got, &at, &format!("kv in {}", harness.namespace));
            }
        }
    }
    unchecked(&mut out, &last, checked_reply);
    Ok(out)
}

/// A reply nobody checked is shown, not judged.
fn unchecked(out: &mut Outcome, last: &Result<Got, String>, checked: bool) {
    if checked {
        return;
    }
    if let Ok(got) = last {
        let _ = writeln!(out.report, "  < {}   (not checked)", got.last());
    }
}

fn check(out: &mut Outcome, ok: bool, want: &str, got: &str, at: &str, what: &str) {
    out.checked += 1;
    if ok {
        let _ = writeln!(out.report, "  {want}");
    } else {
        out.failed += 1;
        let _ = writeln!(out.report, "- {want}\n+ {got}\n  ^ {at}: {what}: expected the `-` line, got the `+` line");
    }
}

/// A value as given matches the stored bytes: as text (a glob), or as the
/// number a counter (`kv-incr`: 8 bytes, little-endian i64) holds.
fn kv_matches(want: &str, bytes: &[u8]) -> bool {
    if let (Ok(n), Ok(le)) = (want.parse::<i64>(), <[u8; 8]>::try_from(bytes))
        && i64::from_le_bytes(le) == n
    {
        return true;
    }
    std::str::from_utf8(bytes).is_ok_and(|s| glob(want, s))
}

fn show_kv(bytes: &[u8]) -> String {
    match (<[u8; 8]>::try_from(bytes), std::str::from_utf8(bytes)) {
        (_, Ok(s)) if s.chars().all(|c| !c.is_control()) => s.to_string(),
        (Ok(le), _) => i64::from_le_bytes(le).to_string(),
        _ => format!("{bytes:02x?}"),
    }
}

async fn send(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    bytes: &[u8],
    closed: bool,
) -> Result<Got, String> {
    if closed {
        return Err("the server had closed the connection".into());
    }
    write.write_all(bytes).await.map_err(|e| format!("sending: {e}"))?;
    read_reply(read).await
}

/// One reply (RFC 5321 4.2.1: `NNN-` lines, then `NNN `).
async fn read_reply(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Result<Got, String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        match tokio::time::timeout(REPLY_WAIT, read.read_line(&mut line)).await {
            Err(_) => return Err(format!("no reply within {REPLY_WAIT:?}")),
            Ok(Err(e)) => return Err(format!("reading: {e}")),
            Ok(Ok(0)) => return Err("connection closed, no reply".into()),
            Ok(Ok(_)) => {}
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        let more = line.as_bytes().get(3) == Some(&b'-');
        lines.push(line);
        if !more {
            break;
        }
    }
    let last = lines.last().cloned().unwrap_or_default();
    let code = last.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| format!("not a reply: {last}"))?;
    let rest = last.get(4..).unwrap_or("").trim();
    let (first, after) = rest.split_once(' ').unwrap_or((rest, ""));
    let (enhanced, text) = match is_enhanced(first) {
        true => (Some(first.to_string()), after.to_string()),
        false => (None, rest.to_string()),
    };
    Ok(Got { lines, code, enhanced, text })
}

/// The DATA content on the wire: leading dots doubled (RFC 5321 4.5.2),
/// then the end-of-data line.
fn dot_stuffed(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 8);
    for line in content.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dot_stuffing_rfc_5321_4_5_2() {
        assert_eq!(super::dot_stuffed(b"a\r\n.b\r\n..\r\n"), b"a\r\n..b\r\n...\r\n.\r\n");
    }

    #[test]
    fn counters_and_texts() {
        assert!(super::kv_matches("2", &2i64.to_le_bytes()));
        assert!(super::kv_matches("seen*", b"seen at 10"));
        assert!(!super::kv_matches("3", &2i64.to_le_bytes()));
        assert_eq!(super::show_kv(&7i64.to_le_bytes()), "7");
    }
}
