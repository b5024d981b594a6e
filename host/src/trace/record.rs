//! What a trace record holds, as stored (JSON) and as `--json` prints it.

use serde::{Deserialize, Serialize};

/// One SMTP transaction (or the stretch of a session that ended without
/// one) and the delivery attempts of its message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub session: String,
    pub service: String,
    pub client: String,
    /// The message id, once DATA ended.
    pub message: Option<String>,
    /// "accepted: 250 …", "refused: 550 …", "no message; disconnect …".
    pub outcome: String,
    pub steps: Vec<Step>,
    /// Steps not kept (over `trace.max_steps`).
    #[serde(default)]
    pub dropped: usize,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// Unix milliseconds.
    pub at: u64,
    #[serde(flatten)]
    pub what: What,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// One plugin's answer to one hook.
    Hook {
        plugin: String,
        tenant: Option<String>,
        hook: String,
        answer: String,
        micros: u64,
        failed: bool,
        /// The answer ended the chain's walk.
        decided: bool,
    },
    /// A command and the reply that decided it ("ok" when accepted).
    Command { command: String, reply: String },
}

/// One delivery attempt of the message's queued recipients.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// Unix milliseconds.
    pub at: u64,
    pub queue: String,
    pub recipients: Vec<AttemptRcpt>,
    /// Delivery status notifications the attempt produced ("failure", "delay").
    #[serde(default)]
    pub reports: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRcpt {
    pub to: String,
    /// The server that answered (an MX host and address), if one did.
    pub server: Option<String>,
    pub reply: String,
    /// "delivered", "deferred", "bounced".
    pub result: String,
    /// For a deferred recipient: when it is tried next (unix seconds).
    pub next_attempt: Option<u64>,
}

impl Record {
    /// A record for a message that had none (tracing was off when it came).
    pub fn queued_only(id: u64) -> Self {
        Record {
            session: String::new(),
            service: String::new(),
            client: String::new(),
            message: Some(ferrymail_store::format_id(id)),
            outcome: "accepted (not traced)".into(),
            steps: Vec::new(),
            dropped: 0,
            attempts: Vec::new(),
        }
    }

    /// Keeps the first attempts and the latest: the middle of a long
    /// retry series says least.
    pub fn add_attempt(&mut self, attempt: Attempt) {
        const FIRST: usize = 5;
        if self.attempts.len() >= super::MAX_ATTEMPTS {
            self.attempts.remove(FIRST);
        }
        self.attempts.push(attempt);
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_retry_series_keeps_its_first_and_latest_attempts() {
        let mut r = Record::queued_only(7);
        for n in 0..(super::super::MAX_ATTEMPTS as u64 + 10) {
            r.add_attempt(Attempt { at: n, queue: String::new(), recipients: Vec::new(), reports: Vec::new() });
        }
        assert_eq!(r.attempts.len(), super::super::MAX_ATTEMPTS);
        assert_eq!(r.attempts[0].at, 0);
        assert_eq!(r.attempts[4].at, 4);
        assert_eq!(r.attempts.last().unwrap().at, super::super::MAX_ATTEMPTS as u64 + 9);
    }
}
