//! How a record is kept in the store: bincode (the store's own encoding)
//! of plain mirror types, behind a format byte. `--json` prints
//! [`Record`]'s own serde shape, which bincode cannot carry (flattened,
//! internally tagged), so the two are separate on purpose.
//!
//! First byte: [`BINARY`] for this encoding; `{` is a record written as
//! JSON by earlier versions (still read); `*` a session's index of its
//! messages' records (`super::INDEX`), `@` the one-message pointer earlier
//! versions wrote instead (`super::POINTER`).

use super::record::{Attempt, AttemptRcpt, Record, Step, What};
use bincode::Options;
use serde::{Deserialize, Serialize};

/// Format byte of a bincode record (version 1 of this layout).
const BINARY: u8 = 1;
/// Larger than any record the bounds allow (200 steps, 50 attempts, 300
/// characters a text): a damaged length reads as damage, not an allocation.
const MAX_BYTES: u64 = 4 << 20;

/// Variable-length integers: lengths and times take a byte or a few, not 8.
fn options() -> impl Options {
    bincode::DefaultOptions::new().with_varint_encoding().with_limit(MAX_BYTES)
}

/// Takes the record: its strings move into the encoding, not copied.
pub fn encode(record: Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.push(BINARY);
    // Writing plain structs to memory cannot fail.
    options().serialize_into(&mut out, &Stored::from(record)).expect("encoding a trace record");
    out
}

/// `None` for bytes that are no record (a pointer, damage).
pub fn decode(bytes: &[u8]) -> Option<Record> {
    match bytes.split_first()? {
        (&BINARY, rest) => options().deserialize::<Stored>(rest).ok().map(Record::from),
        (b'{', _) => serde_json::from_slice(bytes).ok(),
        _ => None,
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    session: String,
    service: String,
    client: String,
    message: Option<String>,
    outcome: String,
    steps: Vec<StoredStep>,
    dropped: u64,
    attempts: Vec<StoredAttempt>,
}

#[derive(Serialize, Deserialize)]
struct StoredStep {
    at: u64,
    what: StoredWhat,
}

#[derive(Serialize, Deserialize)]
enum StoredWhat {
    Hook {
        plugin: String,
        tenant: Option<String>,
        hook: String,
        answer: String,
        micros: u64,
        failed: bool,
        decided: bool,
    },
    Command {
        command: String,
        reply: String,
    },
}

#[derive(Serialize, Deserialize)]
struct StoredAttempt {
    at: u64,
    queue: String,
    recipients: Vec<StoredRcpt>,
    reports: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredRcpt {
    to: String,
    server: Option<String>,
    reply: String,
    result: String,
    next_attempt: Option<u64>,
}

impl From<Record> for Stored {
    fn from(r: Record) -> Self {
        Stored {
            session: r.session,
            service: r.service,
            client: r.client,
            message: r.message,
            outcome: r.outcome,
            steps: r.steps.into_iter().map(|s| StoredStep { at: s.at, what: s.what.into() }).collect(),
            dropped: r.dropped as u64,
            attempts: r.attempts.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Stored> for Record {
    fn from(s: Stored) -> Self {
        Record {
            session: s.session,
            service: s.service,
            client: s.client,
            message: s.message,
            outcome: s.outcome,
            steps: s.steps.into_iter().map(|s| Step { at: s.at, what: s.what.into() }).collect(),
            dropped: s.dropped as usize,
            attempts: s.attempts.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<What> for StoredWhat {
    fn from(w: What) -> Self {
        match w {
            What::Hook { plugin, tenant, hook, answer, micros, failed, decided } => {
                StoredWhat::Hook { plugin, tenant, hook, answer, micros, failed, decided }
            }
            What::Command { command, reply } => StoredWhat::Command { command, reply },
        }
    }
}

impl From<StoredWhat> for What {
    fn from(w: StoredWhat) -> Self {
        match w {
            StoredWhat::Hook { plugin, tenant, hook, answer, micros, failed, decided } => {
                What::Hook { plugin, tenant, hook, answer, micros, failed, decided }
            }
            StoredWhat::Command { command, reply } => What::Command { command, reply },
        }
    }
}

impl From<Attempt> for StoredAttempt {
    fn from(a: Attempt) -> Self {
        StoredAttempt {
            at: a.at,
            queue: a.queue,
            recipients: a
                .recipients
                .into_iter()
                .map(|r| StoredRcpt {
                    to: r.to,
                    server: r.server,
                    reply: r.reply,
                    result: r.result,
                    next_attempt: r.next_attempt,
                })
                .collect(),
            reports: a.reports,
        }
    }
}

impl From<StoredAttempt> for Attempt {
    fn from(a: StoredAttempt) -> Self {
        Attempt {
            at: a.at,
            queue: a.queue,
            recipients: a
                .recipients
                .into_iter()
                .map(|r| AttemptRcpt {
                    to: r.to,
                    server: r.server,
                    reply: r.reply,
                    result: r.result,
                    next_attempt: r.next_attempt,
                })
                .collect(),
            reports: a.reports,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        let mut r = Record::queued_only(0x1f);
        r.session = "00000000000000aa".into();
        r.outcome = "accepted: 250 2.0.0 queued as 000000000000001f".into();
        r.steps = vec![
            Step { at: 1, what: What::Command { command: "MAIL FROM:<a@b>".into(), reply: "ok".into() } },
            Step {
                at: 2,
                what: What::Hook {
                    plugin: "local".into(),
                    tenant: Some("t".into()),
                    hook: "rcpt".into(),
                    answer: "accept".into(),
                    micros: 17,
                    failed: false,
                    decided: true,
                },
            },
        ];
        r.add_attempt(Attempt {
            at: 3,
            queue: "q".into(),
            recipients: vec![AttemptRcpt {
                to: "x@y".into(),
                server: Some("mx [127.0.0.2]".into()),
                reply: "451 4.7.1 later".into(),
                result: "deferred".into(),
                next_attempt: Some(9),
            }],
            reports: vec!["delay".into()],
        });
        r
    }

    #[test]
    fn a_record_comes_back_as_it_went_in_and_smaller_than_json() {
        let r = sample();
        let bytes = encode(r.clone());
        let json = serde_json::to_vec(&r).unwrap();
        assert_eq!(serde_json::to_value(decode(&bytes).unwrap()).unwrap(), serde_json::to_value(&r).unwrap());
        assert!(bytes.len() * 3 < json.len() * 2, "{} binary vs {} JSON bytes", bytes.len(), json.len());
    }

    #[test]
    fn records_written_as_json_by_earlier_versions_still_read() {
        let r = sample();
        let json = serde_json::to_vec(&r).unwrap();
        assert_eq!(serde_json::to_value(decode(&json).unwrap()).unwrap(), serde_json::to_value(&r).unwrap());
        assert!(decode(b"@m/0000000000000001").is_none(), "a pointer is no record");
        assert!(decode(&[BINARY, 0xff]).is_none(), "damage reads as no record");
    }
}
