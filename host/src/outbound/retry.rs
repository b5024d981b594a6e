//! Turns one attempt's per-recipient results into queue state. The
//! schedule is never decided here: every temporary failure goes to the
//! policy's `retry` hook, which answers retry-after, warn-and-retry or
//! bounce.

use ferrymail_policy::{Policy, RetryContext, RetryDecision};
use ferrymail_proto::client::{Outcome, RcptResult};
use ferrymail_store::format_id;
use ferrymail_store::schema::{QueueEntry, RecipientState};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One recipient's result, and the host that gave it (if a server did).
#[derive(Debug, Clone)]
pub struct Attempted {
    pub index: usize,
    pub result: RcptResult,
    pub remote: Option<String>,
}

/// Who ended where, by recipient index.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub delivered: Vec<usize>,
    pub deferred: Vec<usize>,
    pub failed: Vec<usize>,
    /// Deferred recipients the sender must now be warned about (once each).
    pub warned: Vec<usize>,
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Whole seconds, at least one: the schedule counts seconds, and a zero
/// delay from a plugin must not make the queue spin.
fn delay_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0)).max(1)
}

pub async fn apply(policy: &dyn Policy, entry: &mut QueueEntry, results: Vec<Attempted>, now: u64) -> Applied {
    let mut applied = Applied::default();
    let queue_id = format_id(entry.id);
    // A pass that only owes a bounce tried nobody: not an attempt.
    let tried = !results.is_empty();
    for Attempted { index, result, remote } in results {
        let Some(r) = entry.recipients.get_mut(index) else { continue };
        r.attempts = r.attempts.saturating_add(1);
        r.last_reply = Some(super::stored_reply(&result.reply));
        r.remote_mta = if result.from_server { remote } else { None };
        match result.outcome {
            Outcome::Delivered => {
                r.state = RecipientState::Delivered;
                applied.delivered.push(index);
            }
            Outcome::Failed => {
                r.state = RecipientState::Failed;
                r.notified = false;
                applied.failed.push(index);
            }
            Outcome::Deferred => {
                let ctx = RetryContext {
                    queue_id: queue_id.clone(),
                    sender: entry.sender.clone(),
                    recipient: r.address.clone(),
                    tenant: entry.tenant.clone(),
                    attempts: r.attempts,
                    first_queued: at(entry.created),
                    now: at(now),
                    last_reply: result.reply,
                    warned: r.warned,
                };
                match policy.retry(&ctx).await {
                    RetryDecision::RetryAfter(d) => {
                        r.state = RecipientState::Deferred;
                        r.next_attempt = now.saturating_add(delay_secs(d));
                        applied.deferred.push(index);
                    }
                    RetryDecision::WarnAndRetry(d) => {
                        r.state = RecipientState::Deferred;
                        r.next_attempt = now.saturating_add(delay_secs(d));
                        if !r.warned {
                            r.warned = true;
                            applied.warned.push(index);
                        }
                        applied.deferred.push(index);
                    }
                    RetryDecision::Bounce => {
                        r.state = RecipientState::Failed;
                        r.notified = false;
                        applied.failed.push(index);
                    }
                }
            }
        }
    }
    if tried {
        entry.attempts = entry.attempts.saturating_add(1);
        entry.last_attempt = now;
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use ferrymail_policy::{AuthOutcome, AuthRequest, Envelope, Reply, Route, RouteContext, SessionInfo, Verdict};
    use ferrymail_store::schema::{QueueRecipient, QueuedRoute};

    /// The default schedule in miniature: retry every 10 s, warn after 100 s, give up after 1000 s.
    struct Schedule;

    #[async_trait]
    impl Policy for Schedule {
        async fn auth(&self, _: &AuthRequest) -> AuthOutcome {
            AuthOutcome::Fail
        }
        async fn rcpt(&self, _: &SessionInfo, _: &Envelope, _: &str) -> Verdict {
            Verdict::Continue
        }
        async fn route(&self, _: &RouteContext) -> Route {
            Route::Discard
        }
        async fn retry(&self, ctx: &RetryContext) -> RetryDecision {
            let age = ctx.now.duration_since(ctx.first_queued).unwrap_or_default().as_secs();
            match age {
                a if a >= 1000 => RetryDecision::Bounce,
                a if a >= 100 && !ctx.warned => RetryDecision::WarnAndRetry(Duration::from_millis(10_500)),
                _ => RetryDecision::RetryAfter(Duration::ZERO),
            }
        }
    }

    fn result(code: u16, outcome: Outcome) -> RcptResult {
        RcptResult { outcome, reply: Reply::plain(code, "x"), from_server: true }
    }

    fn entry() -> QueueEntry {
        let rcpts = ["a@x.test", "b@x.test", "c@x.test"]
            .map(|a| QueueRecipient::new(a, QueuedRoute::Mx { domain: "x.test".into() }));
        let mut e = QueueEntry::new("s@y.test", None, rcpts.to_vec());
        e.created = 1_000;
        e
    }

    fn attempted(index: usize, code: u16, outcome: Outcome) -> Attempted {
        Attempted { index, result: result(code, outcome), remote: Some("mx.x.test".into()) }
    }

    #[tokio::test]
    async fn outcomes_become_states_and_the_hook_sets_the_schedule() {
        let mut e = entry();
        let results = vec![
            attempted(0, 250, Outcome::Delivered),
            attempted(1, 550, Outcome::Failed),
            attempted(2, 451, Outcome::Deferred),
        ];
        let applied = apply(&Schedule, &mut e, results, 1_010).await;
        assert_eq!((applied.delivered, applied.failed, applied.deferred), (vec![0], vec![1], vec![2]));
        assert_eq!(
            e.recipients.iter().map(|r| r.state).collect::<Vec<_>>(),
            [RecipientState::Delivered, RecipientState::Failed, RecipientState::Deferred]
        );
        assert_eq!(e.recipients[2].next_attempt, 1_011, "a zero delay becomes one second, never a spin");
        assert_eq!(e.recipients[2].remote_mta.as_deref(), Some("mx.x.test"));
        assert_eq!((e.attempts, e.recipients[2].attempts), (1, 1));
        assert_eq!(e.due(), Some(1_000), "the failure awaits its bounce");
    }

    #[tokio::test]
    async fn the_warning_is_given_once_then_the_bounce() {
        let mut e = entry();
        let applied = apply(&Schedule, &mut e, vec![attempted(0, 451, Outcome::Deferred)], 1_100).await;
        assert_eq!(applied.warned, [0]);
        assert_eq!(e.recipients[0].next_attempt, 1_111, "10.5 s rounds up");
        let applied = apply(&Schedule, &mut e, vec![attempted(0, 451, Outcome::Deferred)], 1_200).await;
        assert!(applied.warned.is_empty(), "warned already");
        let applied = apply(&Schedule, &mut e, vec![attempted(0, 451, Outcome::Deferred)], 2_000).await;
        assert_eq!(applied.failed, [0]);
        assert!(e.recipients[0].awaits_bounce());
    }

    #[tokio::test]
    async fn our_own_replies_name_no_remote_mta() {
        let mut e = entry();
        let mut a = attempted(0, 451, Outcome::Deferred);
        a.result.from_server = false;
        apply(&Schedule, &mut e, vec![a], 1_001).await;
        assert_eq!(e.recipients[0].remote_mta, None);
    }
}
