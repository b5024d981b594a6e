//! `impl Policy` for a chain snapshot: which tenant's chain each hook runs
//! (see `chain`), how each hook's answers end the walk (`walk`), and what
//! a chain that only continued means.

use crate::chain::Snapshot;
use crate::convert::*;
use crate::directory::Reentry;
use crate::isolation::violation;
use crate::message::MessageData;
use crate::milter::Stage;
use crate::plugin::Warm;
use crate::walk::{call, final_verdict, no_milter, on_failure, temp_reply};
use async_trait::async_trait;
use ferrymail_policy::*;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The policy of one snapshot, as sessions hold it. Each hook's walk lends
/// the snapshot to the plugin calls it makes (for `directory.resolve`).
pub(crate) struct SnapshotPolicy(pub Arc<Snapshot>);

impl SnapshotPolicy {
    fn reentry(&self) -> Reentry {
        Reentry::new(self.0.clone())
    }
}

/// A milter's answer at a verdict stage: a refusal ends the walk; accept
/// is only "no objection" (a milter never claims a recipient).
fn milter_verdict(v: DataVerdict) -> Option<Verdict> {
    Some(v.verdict).filter(|v| v.reply().is_some())
}

#[async_trait]
impl Policy for SnapshotPolicy {
    async fn connect(&self, session: &SessionInfo) -> Verdict {
        let (snap, reentry) = (&self.0, &self.reentry());
        let ws = &session_to(session);
        let tenant = snap.session_tenant(session);
        let walk = snap.walk(
            tenant.as_deref(),
            |i| i.connect.is_some(),
            |b| call!(b, reentry, connect, call_on_connect(ws)),
            final_verdict,
            |m| async move { milter_verdict(m.ask(session, Stage::Connect).await) },
        );
        walk.await.unwrap_or(Verdict::Continue)
    }

    async fn helo(&self, session: &SessionInfo, name: &str, ehlo: bool) -> Verdict {
        let (snap, reentry) = (&self.0, &self.reentry());
        let ws = &session_to(session);
        let tenant = snap.session_tenant(session);
        let walk = snap.walk(
            tenant.as_deref(),
            |i| i.helo.is_some(),
            |b| call!(b, reentry, helo, call_on_helo(ws, name, ehlo)),
            final_verdict,
            |m| async move { milter_verdict(m.ask(session, Stage::Helo).await) },
        );
        walk.await.unwrap_or(Verdict::Continue)
    }

    async fn auth(&self, request: &AuthRequest) -> AuthOutcome {
        use crate::bindings::wit::AuthResult;
        let (snap, reentry) = (&self.0, &self.reentry());
        let tenant = snap.directory.tenant_of_address(&request.username);
        let wr = &auth_request_to(request);
        let walk = snap.walk(
            tenant.as_deref(),
            |i| i.auth.is_some(),
            |b| call!(b, reentry, auth, call_on_auth(wr)),
            |b, answer| match answer {
                Some(AuthResult::Continue) => None,
                Some(AuthResult::Ok(ok)) => {
                    match snap.directory.login_tenant(
                        tenant.as_deref(),
                        &request.username,
                        &ok.user,
                        ok.tenant.as_deref(),
                    ) {
                        Ok(tenant) => Some(AuthOutcome::Ok { user: ok.user, tenant }),
                        Err(why) => {
                            violation(b, "auth", &why);
                            on_failure(b, AuthOutcome::Tempfail)
                        }
                    }
                }
                Some(AuthResult::Fail) => Some(AuthOutcome::Fail),
                Some(AuthResult::Tempfail) => Some(AuthOutcome::Tempfail),
                None => on_failure(b, AuthOutcome::Tempfail),
            },
            no_milter,
        );
        walk.await.unwrap_or(AuthOutcome::Fail)
    }

    async fn mail(&self, session: &SessionInfo, from: &str) -> Verdict {
        let (snap, reentry) = (&self.0, &self.reentry());
        let ws = &session_to(session);
        let tenant = snap.session_tenant(session);
        let walk = snap.walk(
            tenant.as_deref(),
            |i| i.mail.is_some(),
            |b| call!(b, reentry, mail, call_on_mail(ws, from)),
            final_verdict,
            |m| async move { milter_verdict(m.ask(session, Stage::Mail { from }).await) },
        );
        walk.await.unwrap_or(Verdict::Continue)
    }

    async fn rcpt(&self, session: &SessionInfo, envelope: &Envelope, rcpt: &str) -> Verdict {
        let (snap, reentry) = (&self.0, &self.reentry());
        let tenant = snap.rcpt_tenant(session, rcpt);
        // One tenant per transaction: after DATA there is one reply for all
        // recipients, and each tenant's data hook must be free to give its
        // own without seeing the others' recipients. 452 4.5.3 makes the
        // client send this recipient in a transaction of its own (RFC 5321
        // 4.5.3.1.10, RFC 3463 X.5.3: "the remainder of the recipients to be
        // delivered on a subsequent delivery attempt").
        if let Some(first) = envelope.rcpt_to.first()
            && snap.rcpt_tenant(session, first) != tenant
        {
            return Verdict::Tempfail(Reply::new(
                452,
                "4.5.3",
                "Too many recipients, send this one in a new transaction",
            ));
        }
        let (ws, we) = (&session_to(session), &envelope_to(envelope));
        let walk = snap.walk(
            tenant.as_deref(),
            |i| i.rcpt.is_some(),
            |b| call!(b, reentry, rcpt, call_on_rcpt(ws, we, rcpt)),
            final_verdict,
            |m| async move { milter_verdict(m.ask(session, Stage::Rcpt { envelope, rcpt }).await) },
        );
        walk.await.unwrap_or(Verdict::Continue)
    }

    async fn data(&self, session: &SessionInfo, envelope: &Envelope, message: &[u8]) -> DataVerdict {
        let (snap, reentry) = (&self.0, &self.reentry());
        let mut tenants: Vec<Option<String>> = envelope.rcpt_to.iter().map(|r| snap.rcpt_tenant(session, r)).collect();
        tenants.dedup();
        let tenant = match tenants.as_slice() {
            [] => snap.rcpt_tenant(session, ""),
            [one] => one.clone(),
            // rcpt keeps a transaction to one tenant; a caller that mixed
            // them anyway gets no decision that one tenant could make for
            // another.
            _ => {
                tracing::error!(session = %session.id, "data hook asked for recipients of several tenants; refused");
                return DataVerdict { verdict: Verdict::Tempfail(temp_reply()), ..Default::default() };
            }
        };
        let (ws, we) = (&session_to(session), &envelope_to(envelope));
        let msg = &MessageData::new(message);
        let mut add_headers = Vec::new();
        // What milters asked for (header edits, dropping the message).
        let (edits, discard) = (&Mutex::new(Vec::new()), &AtomicBool::new(false));
        let walk = snap.walk(
            tenant.as_deref(),
            |i| i.data.is_some(),
            |b| {
                b.call("data", reentry, |mut w: Warm| async move {
                    let Warm { store, hooks } = &mut w;
                    let guest = hooks.data.as_ref().expect("hooks are loaded with their indices");
                    let r = async {
                        let res = store.data_mut().table.push(msg.clone())?;
                        let borrowed = wasmtime::component::Resource::new_borrow(res.rep());
                        let r = guest.call_on_data(&mut *store, ws, we, borrowed).await;
                        store.data_mut().table.delete(res)?;
                        r
                    }
                    .await;
                    (w, r)
                })
            },
            |b, answer| {
                let verdict = answer.map(|d| {
                    add_headers.extend(d.add_headers.into_iter().map(|h| (h.name, h.value)));
                    d.verdict
                });
                final_verdict(b, verdict)
            },
            |m| async move {
                let v = m.ask(session, Stage::Data { envelope, message }).await;
                edits.lock().unwrap_or_else(|e| e.into_inner()).extend(v.edits);
                // A discard ends the walk: the message is accepted and dropped.
                discard.store(v.discard, Ordering::Relaxed);
                if v.discard {
                    Some(Verdict::Accept)
                } else {
                    milter_verdict(DataVerdict { verdict: v.verdict, ..Default::default() })
                }
            },
        );
        let verdict = walk.await.unwrap_or(Verdict::Continue);
        let edits = std::mem::take(&mut *edits.lock().unwrap_or_else(|e| e.into_inner()));
        DataVerdict { verdict, add_headers, edits, discard: discard.load(Ordering::Relaxed) }
    }

    async fn vrfy(&self, session: &SessionInfo, arg: &str) -> Reply {
        match self.0.disclose(&self.reentry(), session, arg, true).await {
            Some(r) => r,
            None => Reply::new(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"),
        }
    }

    async fn expn(&self, session: &SessionInfo, arg: &str) -> Reply {
        match self.0.disclose(&self.reentry(), session, arg, false).await {
            Some(r) => r,
            None => Reply::new(502, "5.5.1", "EXPN not available"),
        }
    }

    async fn route(&self, ctx: &RouteContext) -> Route {
        let tenant = self.0.route_tenant(&ctx.recipient, ctx.tenant.as_deref());
        self.0.route_in(&self.reentry(), tenant.as_deref(), ctx).await
    }

    async fn retry(&self, ctx: &RetryContext) -> RetryDecision {
        let (snap, reentry) = (&self.0, &self.reentry());
        // Never the sender's domain: anyone may write any sender, and its
        // tenant's plugins would then decide about mail that is not theirs.
        let tenant = ctx.tenant.clone().or_else(|| snap.directory.tenant_of_address(&ctx.recipient));
        let wctx = &retry_context_to(ctx, tenant.as_deref());
        let walk = snap.walk(
            tenant.as_deref(),
            |i| i.retry.is_some(),
            |b| call!(b, reentry, retry, call_on_retry(wctx)),
            |b, answer| match answer {
                Some(decision) => decision.map(retry_from),
                // A failed retry plugin: "tempfail" means try again later.
                None => on_failure(b, RetryDecision::RetryAfter(snap.retry.interval)),
            },
            no_milter,
        );
        if let Some(decision) = walk.await {
            return decision;
        }
        // Nobody decided: the embedded retry plugin on the `[retry]`
        // schedule, the one copy of the algorithm.
        let fallback = match &snap.retry_fallback {
            Some(b) => call!(b, reentry, retry, call_on_retry(wctx)).await.flatten().map(retry_from),
            None => None,
        };
        fallback.unwrap_or(RetryDecision::RetryAfter(snap.retry.interval))
    }

    async fn event(&self, event: &DeliveryEvent) {
        let (snap, reentry) = (&self.0, &self.reentry());
        let (delivered, ev) = event_to(event);
        let ev = &ev;
        let tenant = snap.directory.tenant_of_address(&ev.recipient);
        // Every plugin hears the event; nobody decides anything.
        let walk = snap.walk(
            tenant.as_deref(),
            |i| i.events.is_some(),
            |b| async move {
                if delivered {
                    call!(b, reentry, events, call_on_delivered(ev)).await
                } else {
                    call!(b, reentry, events, call_on_bounced(ev)).await
                }
            },
            |_, _| None::<()>,
            no_milter,
        );
        walk.await;
    }

    async fn end(&self, session: &SessionInfo) {
        for m in self.0.milters.values() {
            m.end(&session.id);
        }
    }
}
