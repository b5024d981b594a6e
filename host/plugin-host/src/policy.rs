//! `impl Policy` for a chain snapshot: which tenant's chain each hook runs
//! (see `chain`), and what a chain that only continued means.

use crate::chain::Snapshot;
use crate::config::FailurePolicy;
use crate::convert::*;
use crate::isolation::violation;
use crate::message::MessageData;
use crate::plugin::Warm;
use crate::walk::{call, default_retry, temp_reply};
use async_trait::async_trait;
use ferrymail_policy::*;

#[async_trait]
impl Policy for Snapshot {
    async fn connect(&self, session: &SessionInfo) -> Verdict {
        let ws = &session_to(session);
        let tenant = self.session_tenant(session);
        self.verdict_chain(
            tenant.as_deref(),
            |b| b.plugin.indices.connect.is_some(),
            |b| call!(b, connect, call_on_connect(ws)),
        )
        .await
    }

    async fn helo(&self, session: &SessionInfo, name: &str, ehlo: bool) -> Verdict {
        let ws = &session_to(session);
        let tenant = self.session_tenant(session);
        self.verdict_chain(
            tenant.as_deref(),
            |b| b.plugin.indices.helo.is_some(),
            |b| call!(b, helo, call_on_helo(ws, name, ehlo)),
        )
        .await
    }

    async fn auth(&self, request: &AuthRequest) -> AuthOutcome {
        use crate::bindings::wit::AuthResult;
        let tenant = self.tenant_of_address(&request.username);
        let wr = &auth_request_to(request);
        for b in self.chain(tenant.as_deref()).iter().filter(|b| b.plugin.indices.auth.is_some()) {
            match call!(b, auth, call_on_auth(wr)).await {
                Some(AuthResult::Continue) => {}
                Some(AuthResult::Ok(ok)) => {
                    match self.login_tenant(tenant.as_deref(), &request.username, &ok.user, ok.tenant.as_deref()) {
                        Ok(tenant) => return AuthOutcome::Ok { user: ok.user, tenant },
                        Err(why) => {
                            violation(b, "auth", &why);
                            if b.failure() == FailurePolicy::Tempfail {
                                return AuthOutcome::Tempfail;
                            }
                        }
                    }
                }
                Some(AuthResult::Fail) => return AuthOutcome::Fail,
                Some(AuthResult::Tempfail) => return AuthOutcome::Tempfail,
                None if b.failure() == FailurePolicy::Skip => {}
                None => return AuthOutcome::Tempfail,
            }
        }
        AuthOutcome::Fail
    }

    async fn mail(&self, session: &SessionInfo, from: &str) -> Verdict {
        let ws = &session_to(session);
        let tenant = self.session_tenant(session);
        self.verdict_chain(
            tenant.as_deref(),
            |b| b.plugin.indices.mail.is_some(),
            |b| call!(b, mail, call_on_mail(ws, from)),
        )
        .await
    }

    async fn rcpt(&self, session: &SessionInfo, envelope: &Envelope, rcpt: &str) -> Verdict {
        let tenant = self.rcpt_tenant(session, rcpt);
        // One tenant per transaction: after DATA there is one reply for all
        // recipients, and each tenant's data hook must be free to give its
        // own without seeing the others' recipients. 452 4.5.3 makes the
        // client send this recipient in a transaction of its own (RFC 5321
        // 4.5.3.1.10, RFC 3463 X.5.3: "the remainder of the recipients to be
        // delivered on a subsequent delivery attempt").
        if let Some(first) = envelope.rcpt_to.first()
            && self.rcpt_tenant(session, first) != tenant
        {
            return Verdict::Tempfail(Reply::new(
                452,
                "4.5.3",
                "Too many recipients, send this one in a new transaction",
            ));
        }
        let (ws, we) = (&session_to(session), &envelope_to(envelope));
        self.verdict_chain(
            tenant.as_deref(),
            |b| b.plugin.indices.rcpt.is_some(),
            |b| call!(b, rcpt, call_on_rcpt(ws, we, rcpt)),
        )
        .await
    }

    async fn data(&self, session: &SessionInfo, envelope: &Envelope, message: &[u8]) -> DataVerdict {
        let mut tenants: Vec<Option<String>> = envelope.rcpt_to.iter().map(|r| self.rcpt_tenant(session, r)).collect();
        tenants.dedup();
        let tenant = match tenants.as_slice() {
            [] => self.rcpt_tenant(session, ""),
            [one] => one.clone(),
            // rcpt keeps a transaction to one tenant; a caller that mixed
            // them anyway gets no decision that one tenant could make for
            // another.
            _ => {
                tracing::error!(session = %session.id, "data hook asked for recipients of several tenants; refused");
                return DataVerdict { verdict: Verdict::Tempfail(temp_reply()), add_headers: Vec::new() };
            }
        };
        let (ws, we) = (session_to(session), envelope_to(envelope));
        let msg = MessageData::new(message);
        let mut out = DataVerdict::default();
        self.data_in(tenant.as_deref(), &ws, &we, &msg, &mut out).await;
        out
    }

    async fn vrfy(&self, session: &SessionInfo, arg: &str) -> Reply {
        match self.disclose(session, arg, true).await {
            Some(r) => r,
            None => Reply::new(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"),
        }
    }

    async fn expn(&self, session: &SessionInfo, arg: &str) -> Reply {
        match self.disclose(session, arg, false).await {
            Some(r) => r,
            None => Reply::new(502, "5.5.1", "EXPN not available"),
        }
    }

    async fn route(&self, ctx: &RouteContext) -> Route {
        let tenant = self.route_tenant(&ctx.recipient, ctx.tenant.as_deref());
        self.route_in(tenant.as_deref(), ctx).await
    }

    async fn retry(&self, ctx: &RetryContext) -> RetryDecision {
        // Never the sender's domain: anyone may write any sender, and its
        // tenant's plugins would then decide about mail that is not theirs.
        let tenant = ctx.tenant.clone().or_else(|| self.tenant_of_address(&ctx.recipient));
        let wctx = &retry_context_to(ctx, tenant.as_deref());
        for b in self.chain(tenant.as_deref()).iter().filter(|b| b.plugin.indices.retry.is_some()) {
            match call!(b, retry, call_on_retry(wctx)).await {
                Some(Some(d)) => return retry_from(d),
                // A failed retry plugin: "tempfail" means try again later.
                None if b.failure() == FailurePolicy::Tempfail => {
                    return RetryDecision::RetryAfter(self.retry.interval);
                }
                _ => {}
            }
        }
        default_retry(&self.retry, ctx)
    }

    async fn event(&self, event: &DeliveryEvent) {
        let (delivered, ev) = event_to(event);
        let ev = &ev;
        let tenant = self.tenant_of_address(&ev.recipient);
        for b in self.chain(tenant.as_deref()).iter().filter(|b| b.plugin.indices.events.is_some()) {
            if delivered {
                call!(b, events, call_on_delivered(ev)).await;
            } else {
                call!(b, events, call_on_bounced(ev)).await;
            }
        }
    }
}
