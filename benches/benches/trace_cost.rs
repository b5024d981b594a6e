//! What the decision trace costs the store, in CPU time per accepted
//! message rather than in messages per second.
//!
//! The inbound benchmark cannot show a few per cent on this 2-vCPU VM:
//! the same configuration swings up to 2x from one run to the next. CPU
//! time per message swings far less, and the store is where the trace's
//! work is (recording the steps and encoding them takes under 1 % of the
//! server's samples in `perf`; the two records riding on the accepting
//! commit are what remains).
//!
//! Each round accepts `TRACE_COST_MESSAGES` messages of 2.5 KB (one local
//! filing each) from 20 concurrent writers, as 20 SMTP sessions would,
//! into a fresh store, in three modes that take turns so drift in the
//! machine hits all alike:
//! - `off`: no trace;
//! - `on`: what the server writes now: the record under the message id in
//!   the accepting commit, and the session's index of its messages every
//!   64 messages (and at its end) through `trace_put`;
//! - `pointer`: what it wrote before: the record and a pointer under the
//!   session key, both in the accepting commit.
//!
//! It prints the process's CPU time per message (every thread: sled's
//! flusher and the commit writer included) and the store's bytes on disk
//! per message.
//!
//! `cargo bench -p ferrymail-benches --bench trace_cost`
//! (`TRACE_COST_ROUNDS`, `TRACE_COST_MESSAGES` override the defaults).

use bytes::Bytes;
use ferrymail_store::schema::{Filing, TraceWrite};
use ferrymail_store::{Incoming, SharedStore};
use std::path::Path;
use std::time::Instant;

/// A record of the size the server writes for a one-recipient message
/// through the default chain: 6 steps, 323 bytes of bincode (the fields
/// of a record `ferrymail trace --json` printed after a bench run).
const RECORD_BYTES: usize = 323;
const WRITERS: usize = 20;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU time of the whole process so far, in microseconds (utime + stime
/// from /proc, clock ticks of 10 ms: a round takes seconds of CPU).
fn cpu_micros() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks * 10_000
}

fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() { disk_bytes(&entry.path()) } else { meta.len() };
    }
    total
}

fn content() -> Bytes {
    let mut m = b"Received: from client.test\r\nSubject: bench\r\n\r\n".to_vec();
    m.resize(2_500 - 2, b'x');
    m.extend_from_slice(b"\r\n");
    Bytes::from(m)
}

/// Messages a session's index gathers before it is written
/// (`ferrymail::trace::INDEX_EVERY`).
const INDEX_EVERY: usize = 64;
const TTL_SECS: u64 = 30 * 86_400;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Off,
    On,
    Pointer,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::On => "on",
            Mode::Pointer => "pointer",
        }
    }
}

fn message_key(id: u64) -> String {
    format!("m/{id:016x}")
}

fn session_key(session: usize, n: usize) -> String {
    format!("s/6b11331f{session:05x}/{n:04}")
}

/// What the accepting commit carries (trace/mod.rs, `MessageTrace::writes`):
/// same key shapes, same sizes.
fn commit_traces(mode: Mode, id: u64, session: usize, n: usize) -> Vec<TraceWrite> {
    let record = TraceWrite { key: message_key(id), record: vec![0x5a; RECORD_BYTES], ttl_secs: TTL_SECS };
    match mode {
        Mode::Off => Vec::new(),
        Mode::On => vec![record],
        Mode::Pointer => {
            let mut pointer = vec![b'@'];
            pointer.extend_from_slice(record.key.as_bytes());
            vec![TraceWrite { key: session_key(session, n), record: pointer, ttl_secs: TTL_SECS }, record]
        }
    }
}

/// The session's index of `ids`, as `trace::save_session_end` writes it.
fn index(session: usize, n: usize, ids: &[u64]) -> TraceWrite {
    let keys: Vec<String> = ids.iter().map(|&id| message_key(id)).collect();
    let record = [b"*".as_slice(), keys.join(" ").as_bytes()].concat();
    TraceWrite { key: session_key(session, n), record, ttl_secs: TTL_SECS }
}

async fn writer(store: SharedStore, account: u64, msg: Bytes, session: usize, count: usize, mode: Mode) {
    let mut unindexed = Vec::new();
    for n in 0..count {
        let id = store.new_id().await.unwrap();
        let incoming = Incoming {
            id,
            content: msg.clone(),
            return_path: "a@client.test".into(),
            local: vec![Filing::inbox(account)],
            queue: None,
            summary: None,
            traces: commit_traces(mode, id, session, n),
        };
        store.accept(incoming).await.unwrap();
        if mode == Mode::On {
            unindexed.push(id);
            if unindexed.len() == INDEX_EVERY || n + 1 == count {
                store.trace_put(&[index(session, n, &unindexed)]);
                unindexed.clear();
            }
        }
    }
}

struct Round {
    cpu_us_per_msg: f64,
    msgs_per_s: f64,
    disk_bytes_per_msg: f64,
}

fn round(messages: usize, mode: Mode) -> Round {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = ferrymail_store::open_embedded(dir.path(), Default::default()).unwrap();
    let account = rt.block_on(store.add_account("bench1@bench.test", "hash")).unwrap().id;
    let msg = content();
    let per_writer = messages / WRITERS;
    let (cpu, wall) = (cpu_micros(), Instant::now());
    rt.block_on(async {
        let tasks: Vec<_> = (0..WRITERS)
            .map(|s| tokio::spawn(writer(store.clone(), account, msg.clone(), s, per_writer, mode)))
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let (cpu, wall) = (cpu_micros() - cpu, wall.elapsed());
    let done = (per_writer * WRITERS) as f64;
    drop(store);
    drop(rt);
    Round {
        cpu_us_per_msg: cpu as f64 / done,
        msgs_per_s: done / wall.as_secs_f64(),
        disk_bytes_per_msg: disk_bytes(dir.path()) as f64 / done,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // and should stay quick.
    let benching = std::env::args().any(|a| a == "--bench");
    let rounds = env("TRACE_COST_ROUNDS", if benching { 7 } else { 1 });
    let messages = env("TRACE_COST_MESSAGES", if benching { 10_000 } else { 200 });
    let modes = [Mode::Off, Mode::On, Mode::Pointer];
    let mut results: Vec<Vec<Round>> = modes.iter().map(|_| Vec::new()).collect();
    for r in 0..rounds {
        for (m, &mode) in modes.iter().enumerate() {
            let result = round(messages, mode);
            println!(
                "round {r} trace {:<7}: {:.1} µs CPU/msg, {:.0} msg/s, {:.0} bytes on disk/msg",
                mode.name(),
                result.cpu_us_per_msg,
                result.msgs_per_s,
                result.disk_bytes_per_msg
            );
            results[m].push(result);
        }
    }
    let cpu = |v: &[Round]| median(v.iter().map(|r| r.cpu_us_per_msg).collect());
    let off = cpu(&results[0]);
    for (m, mode) in modes.iter().enumerate() {
        let v = &results[m];
        println!(
            "medians of {rounds}, trace {:<7}: {:.1} µs CPU/msg ({:+.1} µs against off), {:.0} msg/s, {:.0} bytes on disk/msg",
            mode.name(),
            cpu(v),
            cpu(v) - off,
            median(v.iter().map(|r| r.msgs_per_s).collect()),
            median(v.iter().map(|r| r.disk_bytes_per_msg).collect())
        );
    }
}
