//! Walking a chain: ask the plugins of one tenant's chain in order,
//! skipping plugins without the hook, until one answers. A failed plugin
//! answers its failure policy: `tempfail` (a 4xx-class answer) or `skip`
//! (as if it had continued).

use crate::chain::{Snapshot, domain_of};
use crate::config::FailurePolicy;
use crate::convert::*;
use crate::isolation::violation;
use crate::message::MessageData;
use crate::plugin::{Binding, Warm};
use ferrymail_policy::*;
use std::sync::Arc;

/// Call hook `$hook` of binding `$b` with `$method(store, args…)`. The
/// arguments are references or `Copy`, so the closure can run once per plugin.
macro_rules! call {
    ($b:expr, $hook:ident, $method:ident ( $($arg:ident),* )) => {
        $b.call(stringify!($hook), |mut w: Warm| async move {
            let Warm { store, hooks } = &mut w;
            let guest = hooks.$hook.as_ref().expect("hooks are loaded with their indices");
            let r = guest.$method(&mut *store $(, $arg)*).await;
            (w, r)
        })
    };
}
pub(crate) use call;

pub(crate) fn temp_reply() -> Reply {
    Reply::new(451, "4.3.0", "Temporary policy failure, try again later")
}

/// What a failed plugin's verdict becomes.
pub(crate) fn failed(b: &Binding) -> Verdict {
    match b.failure() {
        FailurePolicy::Tempfail => Verdict::Tempfail(temp_reply()),
        FailurePolicy::Skip => Verdict::Continue,
    }
}

impl Snapshot {
    pub(crate) fn session_tenant(&self, s: &SessionInfo) -> Option<String> {
        s.tenant.clone().or_else(|| s.auth_user.as_deref().and_then(|u| self.tenant_of_address(u)))
    }

    /// Whose rcpt and data hooks decide about `rcpt`: the authenticated
    /// user's tenant for the whole transaction (its user wrote to these
    /// recipients), else the tenant owning the recipient's domain.
    pub(crate) fn rcpt_tenant(&self, s: &SessionInfo, rcpt: &str) -> Option<String> {
        match s.auth_user {
            Some(_) => self.session_tenant(s),
            None => self.tenant_of_address(rcpt),
        }
    }

    pub(crate) async fn verdict_chain<'a, F, Fut>(
        &'a self,
        tenant: Option<&str>,
        has: fn(&Binding) -> bool,
        mut f: F,
    ) -> Verdict
    where
        F: FnMut(&'a Arc<Binding>) -> Fut,
        Fut: std::future::Future<Output = Option<crate::bindings::wit::Verdict>>,
    {
        for b in self.chain(tenant).iter().filter(|b| has(b)) {
            let v = match f(b).await {
                Some(v) => verdict_from(v),
                None => failed(b),
            };
            if v.is_final() {
                return v;
            }
        }
        Verdict::Continue
    }

    /// The route chain of `tenant` for `ctx`, with the end-of-chain default.
    pub(crate) async fn route_in(&self, tenant: Option<&str>, ctx: &RouteContext) -> Route {
        let wctx = &route_context_to(ctx, tenant);
        for b in self.chain(tenant).iter().filter(|b| b.plugin.indices.route.is_some()) {
            match call!(b, route, call_on_route(wctx)).await {
                Some(Some(d)) => {
                    let route = route_from(d);
                    match self.check_route(tenant, &route) {
                        Ok(()) => return route,
                        Err(why) => {
                            violation(b, "route", &why);
                            if b.failure() == FailurePolicy::Tempfail {
                                return Route::Reject(temp_reply());
                            }
                        }
                    }
                }
                Some(None) => {}
                None if b.failure() == FailurePolicy::Skip => {}
                None => return Route::Reject(temp_reply()),
            }
        }
        // No plugin decided: local domains to the account of that name,
        // others to their MX (what an MTA without rules does).
        if self.is_local(&ctx.recipient) {
            Route::Local { account: ctx.recipient.to_lowercase() }
        } else {
            Route::Mx { domain: domain_of(&ctx.recipient).unwrap_or_default() }
        }
    }

    /// `directory.resolve`: one routing step for `address` in `tenant`'s chain.
    pub(crate) async fn resolve(&self, tenant: Option<&str>, address: &str) -> Route {
        let ctx = RouteContext { sender: String::new(), recipient: address.to_string(), tenant: None, depth: 0 };
        let tenant = self.route_tenant(address, tenant);
        self.route_in(tenant.as_deref(), &ctx).await
    }

    /// Whose route chain decides for `recipient`: the owner of a local
    /// address (the global chain for local domains of no tenant), the
    /// sending tenant's for mail that leaves (its smarthost, say).
    pub(crate) fn route_tenant(&self, recipient: &str, sender_tenant: Option<&str>) -> Option<String> {
        match self.tenant_of_address(recipient) {
            Some(t) => Some(t),
            None if self.is_local(recipient) => None,
            None => sender_tenant.map(str::to_string),
        }
    }

    pub(crate) async fn disclose(&self, session: &SessionInfo, arg: &str, vrfy: bool) -> Option<Reply> {
        let tenant = self.tenant_of_address(arg).or_else(|| self.session_tenant(session));
        let ws = &session_to(session);
        let has = |b: &&Arc<Binding>| {
            if vrfy { b.plugin.indices.vrfy.is_some() } else { b.plugin.indices.expn.is_some() }
        };
        for b in self.chain(tenant.as_deref()).iter().filter(has) {
            let r = if vrfy {
                call!(b, vrfy, call_on_vrfy(ws, arg)).await
            } else {
                call!(b, expn, call_on_expn(ws, arg)).await
            };
            match r {
                Some(Some(reply)) => return Some(reply_from(reply)),
                Some(None) => {}
                None if b.failure() == FailurePolicy::Skip => {}
                None => return Some(temp_reply()),
            }
        }
        None
    }

    pub(crate) async fn data_in(
        &self,
        tenant: Option<&str>,
        ws: &crate::bindings::wit::Session,
        we: &crate::bindings::wit::Envelope,
        msg: &MessageData,
        out: &mut DataVerdict,
    ) {
        for b in self.chain(tenant).iter().filter(|b| b.plugin.indices.data.is_some()) {
            let r = b
                .call("data", |mut w: Warm| async move {
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
                .await;
            let v = match r {
                Some(d) => {
                    out.add_headers.extend(d.add_headers.into_iter().map(|h| (h.name, h.value)));
                    verdict_from(d.verdict)
                }
                None => failed(b),
            };
            if v.is_final() {
                out.verdict = v;
                return;
            }
        }
    }
}

/// The `[retry]` schedule, used when no plugin decides.
pub(crate) fn default_retry(cfg: &crate::config::RetryConfig, ctx: &RetryContext) -> RetryDecision {
    let age = ctx.now.duration_since(ctx.first_queued).unwrap_or_default();
    if age >= cfg.give_up_after {
        RetryDecision::Bounce
    } else if age >= cfg.warn_after && !ctx.warned {
        RetryDecision::WarnAndRetry(cfg.interval)
    } else {
        RetryDecision::RetryAfter(cfg.interval)
    }
}
