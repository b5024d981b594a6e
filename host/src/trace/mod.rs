//! The per-transaction decision trace: every plugin call of an SMTP
//! transaction (plugin, hook, answer, time spent) and the reply each
//! command got, then each delivery attempt of the message (where it went,
//! the reply, what happens next). `ferrymail trace ID` reads it back
//! ([`show`]).
//!
//! Recording: an SMTP session runs inside [`scope`], a task-local
//! [`Recorder`]; the plugin runtime reports each call to it (through the
//! metrics' observer) and the driver each command's reply. At the end of
//! DATA the steps so far become one [`Record`] ([`MessageTrace`]), written
//! under the message id by the very commit that accepts the message:
//! durable with it, at no write of its own. A delivery attempt's record is
//! written by the attempt's commit. A session that ends with a refusal and
//! no message leaves a record under its session id, kept
//! `trace.keep_refused`; it has no commit to ride on, so the store keeps
//! it in memory until its next one (within a second; lost if the server
//! crashes first, see `ferrymail_store::Traces`).
//!
//! The session id finds a session's messages through its index: one
//! entry listing their ids, written when the session ends (and every
//! [`INDEX_EVERY`] messages), the same way as a refusal's record. Not a
//! pointer per message in each accepting commit: every entry the store
//! writes costs about 10 µs of CPU whatever its size (`benches/benches/
//! trace_cost.rs`), and a second one per message made the trace cost more
//! than the 3 % of throughput it may. So the index of a session still
//! open, or open when the server crashed, lacks its latest messages; the
//! message ids (in every log line) find them.
//!
//! Stored records are bincode ([`stored`]); `--json` prints [`Record`].
//!
//! Size: at most `trace.max_steps` steps and [`MAX_ATTEMPTS`] attempts per
//! record, texts clipped to [`MAX_TEXT`]; refused records also at most
//! [`MAX_REFUSED`] in all (the oldest go first).

pub mod record;
pub mod show;
mod stored;

pub use record::{Attempt, AttemptRcpt, Record, Step, What};

use crate::config::TraceConfig;
use ferrymail_policy::observe::{HookCall, Outcome};
use ferrymail_store::schema::TraceWrite;
use ferrymail_store::{Store, format_id, parse_id};
use std::cell::RefCell;
use std::fmt::Write as _;
use std::future::Future;

/// Attempts one record keeps (the first and the latest ones).
pub const MAX_ATTEMPTS: usize = 50;
/// Characters of one text (a reply, a command) kept.
pub const MAX_TEXT: usize = 300;
/// Records of refused transactions kept at most, whatever their age.
pub const MAX_REFUSED: usize = 200_000;
/// Where session records live (`s/SESSION/N`): those of refused
/// transactions, and the session's index of its messages.
pub const SESSIONS_PREFIX: &str = "s/";
/// Messages a session's index gathers before it is written even though
/// the session goes on (a client that sends all day).
pub const INDEX_EVERY: usize = 64;

tokio::task_local! {
    static CURRENT: RefCell<Recorder>;
}

/// What one session has recorded since its last transaction ended.
pub struct Recorder {
    on: bool,
    max_steps: usize,
    session: String,
    service: &'static str,
    client: String,
    steps: Vec<Step>,
    dropped: usize,
    /// A command of this stretch was refused, or a transaction began.
    worth_keeping: bool,
    /// Transactions saved so far (the session key's counter).
    saved: u32,
    /// Messages (kept or not) since the index was last written.
    messages: Vec<u64>,
    /// The plugin whose answer ended the last chain walk, for the
    /// `decided_by` label of the next reply.
    decider: Option<String>,
}

impl Recorder {
    pub fn new(config: &TraceConfig, session: &str, service: &'static str, client: String) -> Self {
        Recorder {
            on: config.enabled,
            max_steps: config.max_steps,
            session: session.to_string(),
            service,
            client,
            steps: Vec::new(),
            dropped: 0,
            worth_keeping: false,
            saved: 0,
            messages: Vec::new(),
            decider: None,
        }
    }

    fn push(&mut self, what: What) {
        if self.steps.len() < self.max_steps {
            self.steps.push(Step { at: record::now_ms(), what });
        } else {
            self.dropped += 1;
        }
    }

    /// The record of the stretch since the last one, and a fresh start.
    fn take(&mut self, message: Option<u64>, outcome: String) -> Record {
        self.worth_keeping = false;
        Record {
            session: self.session.clone(),
            service: self.service.to_string(),
            client: self.client.clone(),
            message: message.map(format_id),
            outcome,
            steps: std::mem::take(&mut self.steps),
            dropped: std::mem::take(&mut self.dropped),
            attempts: Vec::new(),
        }
    }

    fn session_key(&mut self) -> String {
        let key = format!("s/{}/{:04}", self.session, self.saved);
        self.saved += 1;
        key
    }

    /// The index of the session's messages since the last one, kept as
    /// long as the longest-kept of them may be.
    fn index(&mut self, config: &TraceConfig) -> TraceWrite {
        let mut record = vec![INDEX];
        for (n, id) in std::mem::take(&mut self.messages).into_iter().enumerate() {
            if n > 0 {
                record.push(b' ');
            }
            record.extend_from_slice(message_key(id).as_bytes());
        }
        let ttl_secs = config.keep_messages.max(config.keep_refused).as_secs();
        TraceWrite { key: self.session_key(), record, ttl_secs }
    }
}

/// Runs `session` with a recorder. Not an `async fn`: that would keep
/// `session` twice in the state every connection holds (as the argument
/// and inside the scope future).
pub fn scope<F: Future>(recorder: Recorder, session: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(RefCell::new(recorder), session)
}

fn with<R>(f: impl FnOnce(&mut Recorder) -> R) -> Option<R> {
    CURRENT.try_with(|r| f(&mut r.borrow_mut())).ok()
}

/// A plugin call (from the observer the metrics install).
pub fn hook_call(call: &HookCall<'_>) {
    with(|r| {
        if call.decided {
            r.decider = Some(call.plugin.to_string());
        }
        if !r.on {
            return;
        }
        let (answer, failed) = match &call.outcome {
            Outcome::Answered(a) => (clip(&a.to_string()), false),
            Outcome::Failed(kind, detail) => (clip(&format!("failed ({}): {detail}", kind.as_str())), true),
        };
        r.push(What::Hook {
            plugin: call.plugin.to_string(),
            tenant: call.tenant.map(str::to_string),
            hook: call.hook.to_string(),
            answer,
            micros: call.elapsed.as_micros().min(u128::from(u64::MAX)) as u64,
            failed,
            decided: call.decided,
        });
    });
}

/// A command and the reply it got (`reply` empty: accepted, no reply text
/// of interest). A MAIL starts a transaction worth keeping; a refusal too.
pub fn command(command: &str, arg: &str, reply: Option<&str>) {
    with(|r| {
        if !r.on {
            return;
        }
        r.worth_keeping |= reply.is_some() || command == "mail";
        let mut line = command.to_ascii_uppercase();
        if !arg.is_empty() {
            let _ = write!(line, " {}", ferrymail_policy::logsafe(arg));
        }
        r.push(What::Command { command: clip(&line), reply: clip(reply.unwrap_or("ok")) });
    });
}

/// The plugin that decided since the last call, if any ("host" otherwise).
pub fn take_decider() -> Option<String> {
    with(|r| r.decider.take()).flatten()
}

/// The record of a transaction that ended with DATA, taken from the
/// session's recorder and encoded, for the commit that accepts its message.
pub struct MessageTrace {
    id: u64,
    /// The record, encoded ([`stored`]).
    bytes: Vec<u8>,
}

impl MessageTrace {
    /// The steps so far as message `id`'s record; `None` when tracing is
    /// off or the caller is not an SMTP session (sendmail's pickup).
    pub fn take(id: u64, outcome: &str) -> Option<MessageTrace> {
        let record = with(|r| {
            if !r.on {
                return None;
            }
            r.messages.push(id);
            Some(r.take(Some(id), clip(outcome)))
        })
        .flatten()?;
        Some(MessageTrace { id, bytes: stored::encode(record) })
    }

    /// What the accepting commit writes: the record under the message id.
    /// The session's index names it later ([`message_done`]).
    pub fn writes(&self, config: &TraceConfig) -> Vec<TraceWrite> {
        vec![TraceWrite {
            key: message_key(self.id),
            record: self.bytes.clone(),
            ttl_secs: config.keep_messages.as_secs(),
        }]
    }

    /// The message was not kept after all (refused, or its commit failed):
    /// the record says so, kept as long as refused ones, with no commit to
    /// ride on ([`ferrymail_store::Traces::trace_put`]).
    pub fn refused(self, store: &dyn Store, config: &TraceConfig, outcome: &str) {
        let Some(mut record) = stored::decode(&self.bytes) else { return };
        record.outcome = clip(outcome);
        let (key, ttl_secs) = (message_key(self.id), config.keep_refused.as_secs());
        store.trace_put(&[TraceWrite { key, record: stored::encode(record), ttl_secs }]);
    }
}

/// After a message's transaction ended (kept or not): writes the session's
/// index once it has gathered [`INDEX_EVERY`] messages.
pub fn message_done(store: &dyn Store, config: &TraceConfig) {
    if let Some(index) = with(|r| (r.messages.len() >= INDEX_EVERY).then(|| r.index(config))).flatten() {
        store.trace_put(&[index]);
    }
}

/// A message not kept, decided before any commit (refused or discarded at
/// the end of DATA): its record, under its id, kept as long as refused ones.
pub fn message_not_kept(store: &dyn Store, config: &TraceConfig, id: u64, outcome: &str) {
    if let Some(trace) = MessageTrace::take(id, outcome) {
        trace.refused(store, config, outcome);
    }
}

/// At the session's end: what is left, if it holds a refusal or a
/// transaction that never reached a message. Never waits (see
/// [`ferrymail_store::Traces::trace_put`]).
/// Also writes the session's index of its messages, if it has any since
/// the last one.
pub fn save_session_end(store: &dyn Store, config: &TraceConfig, how: &str) {
    let writes = with(|r| {
        let mut writes = Vec::new();
        if !r.on {
            return writes;
        }
        if !r.messages.is_empty() {
            writes.push(r.index(config));
        }
        if r.worth_keeping {
            let key = r.session_key();
            let record = r.take(None, format!("no message; {how}"));
            writes.push(TraceWrite { key, record: stored::encode(record), ttl_secs: config.keep_refused.as_secs() });
        }
        writes
    })
    .unwrap_or_default();
    if !writes.is_empty() {
        store.trace_put(&writes);
    }
}

/// Message `id`'s record with one more delivery attempt (a record is made
/// if the message has none: traced off at the time, or expired), for the
/// commit that ends the attempt.
pub async fn attempt_writes(store: &dyn Store, config: &TraceConfig, id: u64, attempt: Attempt) -> Vec<TraceWrite> {
    if !config.enabled {
        return Vec::new();
    }
    let key = message_key(id);
    let mut record = load(store, &key).await.unwrap_or_else(|| Record::queued_only(id));
    record.add_attempt(attempt);
    vec![TraceWrite { key, record: stored::encode(record), ttl_secs: config.keep_messages.as_secs() }]
}

pub async fn load(store: &dyn Store, key: &str) -> Option<Record> {
    let bytes = store.trace_get(key).await.ok()??;
    stored::decode(&bytes)
}

fn message_key(id: u64) -> String {
    format!("m/{}", format_id(id))
}

/// What a session key held, in earlier versions, for a transaction that
/// became a message: a pointer to the message's record (still read).
const POINTER: u8 = b'@';
/// What a session key holds for the session's messages: their record
/// keys, space-separated (the records delivery attempts extend).
const INDEX: u8 = b'*';

/// The records `id` names: a message id (`msg=` in the logs), a session id
/// (`session=`: each of its transactions), or a queue id (its message).
/// Records of messages are read under the message key, which has the
/// delivery attempts.
pub async fn lookup(store: &dyn Store, id: &str) -> Result<Vec<Record>, String> {
    let id = id.trim().to_ascii_lowercase();
    let Some(n) = parse_id(&id) else {
        return Err(format!("{id} is not an id: give a message, session or queue id (hex, as the logs show them)"));
    };
    if let Some(r) = load(store, &message_key(n)).await {
        return Ok(vec![r]);
    }
    let found = store.trace_scan(&format!("s/{id}/"), 1000).await.map_err(|e| e.to_string())?;
    if !found.is_empty() {
        let mut out = Vec::new();
        for (_, bytes) in found {
            match bytes.split_first() {
                Some((&POINTER, key)) => out.extend(load(store, &String::from_utf8_lossy(key)).await),
                Some((&INDEX, keys)) => {
                    for key in String::from_utf8_lossy(keys).split(' ') {
                        out.extend(load(store, key).await);
                    }
                }
                _ => out.extend(stored::decode(&bytes)),
            }
        }
        // Index entries come after the refusals of their stretch: time order.
        out.sort_by_key(|r| r.steps.first().map_or(0, |s| s.at));
        return Ok(out);
    }
    if let Ok(Some(entry)) = store.queue_entry(n).await
        && let Some(r) = load(store, &message_key(entry.content)).await
    {
        return Ok(vec![r]);
    }
    Err(format!("no trace for {id} (not a message, session or queue id with a trace kept)"))
}

/// `ferrymail trace`'s output lines.
pub async fn report(store: &dyn Store, id: &str, json: bool) -> Result<Vec<String>, String> {
    let records = lookup(store, id).await?;
    if json {
        return Ok(vec![serde_json::to_string(&records).map_err(|e| e.to_string())?]);
    }
    Ok(records.iter().flat_map(|r| show::timeline(r).lines().map(str::to_string).collect::<Vec<_>>()).collect())
}

/// At most [`MAX_TEXT`] characters.
pub fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SESSION: &str = "6b11331f0000f";

    fn config() -> TraceConfig {
        TraceConfig {
            enabled: true,
            keep_messages: Duration::from_secs(3600),
            keep_refused: Duration::from_secs(600),
            max_steps: 200,
        }
    }

    fn recorder() -> Recorder {
        Recorder::new(&config(), SESSION, "smtp", "192.0.2.7".into())
    }

    /// One transaction ending in a kept message, as the driver and the
    /// accepting commit (here: a put) record it.
    fn transaction(store: &dyn Store, id: u64) {
        command("mail", "a@example.org", None);
        command("rcpt", "b@example.net", None);
        let trace = MessageTrace::take(id, "accepted: 250").expect("tracing is on");
        store.trace_put(&trace.writes(&config()));
        message_done(store, &config());
    }

    async fn session_entries(store: &ferrymail_store::SharedStore) -> Vec<(String, Vec<u8>)> {
        store.trace_scan(&format!("s/{SESSION}/"), 1000).await.unwrap()
    }

    #[tokio::test]
    async fn a_session_id_finds_its_messages_through_one_index_written_at_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = ferrymail_store::open_embedded(dir.path(), Default::default()).unwrap();
        let s = store.clone();
        scope(recorder(), async move {
            transaction(&*s, 7);
            transaction(&*s, 9);
            // A refused RCPT after them: the stretch's own record.
            command("mail", "c@example.org", None);
            command("rcpt", "nobody@example.net", Some("550 5.1.1 no such user"));
            assert!(
                session_entries(&s).await.is_empty(),
                "no per-message pointer: the index waits for the session's end"
            );
            save_session_end(&*s, &config(), "client closed");
        })
        .await;
        let entries = session_entries(&store).await;
        assert_eq!(entries.len(), 2, "the index and the refusal: {entries:?}");
        assert!(entries.iter().any(|(_, v)| v == b"*m/0000000000000007 m/0000000000000009"), "{entries:?}");
        let records = lookup(&*store, SESSION).await.unwrap();
        let messages: Vec<_> = records.iter().map(|r| r.message.clone()).collect();
        assert_eq!(messages, [Some(format_id(7)), Some(format_id(9)), None], "in time order");
        assert!(records[2].outcome.starts_with("no message"), "{:?}", records[2]);
        // The message id finds its own record at once, index or not.
        assert_eq!(lookup(&*store, &format_id(9)).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_long_session_writes_its_index_every_so_many_messages() {
        let dir = tempfile::tempdir().unwrap();
        let store = ferrymail_store::open_embedded(dir.path(), Default::default()).unwrap();
        let s = store.clone();
        scope(recorder(), async move {
            for id in 1..=INDEX_EVERY as u64 + 1 {
                transaction(&*s, id);
            }
            assert_eq!(
                session_entries(&s).await.len(),
                1,
                "the first {INDEX_EVERY} are findable while the session goes on"
            );
            save_session_end(&*s, &config(), "QUIT");
        })
        .await;
        assert_eq!(session_entries(&store).await.len(), 2);
        assert_eq!(lookup(&*store, SESSION).await.unwrap().len(), INDEX_EVERY + 1);
    }

    #[tokio::test]
    async fn a_pointer_written_by_an_earlier_version_still_finds_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let store = ferrymail_store::open_embedded(dir.path(), Default::default()).unwrap();
        let s = store.clone();
        scope(recorder(), async move { transaction(&*s, 3) }).await;
        store.trace_put(&[TraceWrite {
            key: format!("s/{SESSION}/0000"),
            record: b"@m/0000000000000003".to_vec(),
            ttl_secs: 60,
        }]);
        let records = lookup(&*store, SESSION).await.unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].message, Some(format_id(3)));
    }
}
