//! `impl Policy` for a chain snapshot: which tenant's chain each hook runs
//! (see `chain`), and what a chain that only continued means.

use crate::chain::Snapshot;
use crate::config::FailurePolicy;
use crate::convert::*;
use crate::message::MessageData;
use crate::plugin::Warm;
use crate::walk::{call, default_retry};
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
                    let tenant = ok.tenant.or_else(|| self.tenant_of_address(&ok.user));
                    return AuthOutcome::Ok { user: ok.user, tenant };
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
        let tenant = match session.auth_user {
            Some(_) => self.session_tenant(session),
            None => self.tenant_of_address(rcpt),
        };
        let (ws, we) = (&session_to(session), &envelope_to(envelope));
        self.verdict_chain(
            tenant.as_deref(),
            |b| b.plugin.indices.rcpt.is_some(),
            |b| call!(b, rcpt, call_on_rcpt(ws, we, rcpt)),
        )
        .await
    }

    async fn data(&self, session: &SessionInfo, envelope: &Envelope, message: &[u8]) -> DataVerdict {
        let mut tenants: Vec<Option<String>> = Vec::new();
        if session.auth_user.is_some() {
            tenants.push(self.session_tenant(session));
        } else {
            for r in &envelope.rcpt_to {
                let t = self.tenant_of_address(r);
                if !tenants.contains(&t) {
                    tenants.push(t);
                }
            }
        }
        if tenants.is_empty() {
            tenants.push(None);
        }
        let (ws, we) = (session_to(session), envelope_to(envelope));
        let msg = MessageData::new(message);
        let mut out = DataVerdict::default();
        for t in &tenants {
            let mut part = DataVerdict::default();
            self.data_in(t.as_deref(), &ws, &we, &msg, &mut part).await;
            out.add_headers.extend(part.add_headers);
            if part.verdict.reply().is_some() {
                out.verdict = part.verdict;
                return out;
            }
            if part.verdict == Verdict::Accept {
                out.verdict = Verdict::Accept;
            }
        }
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
        let tenant = self.tenant_of_address(&ctx.recipient).or_else(|| ctx.tenant.clone());
        self.route_in(tenant.as_deref(), ctx).await
    }

    async fn retry(&self, ctx: &RetryContext) -> RetryDecision {
        let tenant = ctx
            .tenant
            .clone()
            .or_else(|| self.tenant_of_address(&ctx.sender))
            .or_else(|| self.tenant_of_address(&ctx.recipient));
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
