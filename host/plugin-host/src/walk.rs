//! Walking a chain: ask the plugins of one tenant's chain that export the
//! hook, in order, until one decides ([`Snapshot::walk`], the one walker
//! every hook uses). A failed plugin answers its failure policy: `tempfail`
//! (a 4xx-class answer) or `skip` (as if it had continued).

use crate::chain::{Element, Snapshot};
use crate::config::FailurePolicy;
use crate::convert::*;
use crate::directory::{Reentry, Router, domain_of};
use crate::isolation::violation;
use crate::milter::Milter;
use crate::plugin::{Binding, HookIndices, Warm};
use async_trait::async_trait;
use ferrymail_policy::*;
use std::future::Future;
use std::sync::Arc;

/// Call hook `$hook` of binding `$b` with `$method(store, args…)`, lending
/// it `$reentry`. The arguments are references or `Copy`, so the closure
/// can run once per plugin.
macro_rules! call {
    ($b:expr, $reentry:expr, $hook:ident, $method:ident ( $($arg:ident),* )) => {
        $b.call(stringify!($hook), $reentry, |mut w: Warm| async move {
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

/// What a failed plugin's answer becomes: `tempfail` decides `tempfail`,
/// `skip` leaves the decision to the next plugin.
pub(crate) fn on_failure<T>(b: &Binding, tempfail: T) -> Option<T> {
    (b.failure() == FailurePolicy::Tempfail).then_some(tempfail)
}

/// A verdict hook's answer (`None`: the plugin failed), if it ends the walk.
pub(crate) fn final_verdict(b: &Binding, answer: Option<crate::bindings::wit::Verdict>) -> Option<Verdict> {
    match answer {
        Some(v) => Some(verdict_from(v)).filter(Verdict::is_final),
        None => on_failure(b, Verdict::Tempfail(temp_reply())),
    }
}

/// The milter step of a hook milters take no part in (auth, vrfy, expn,
/// route, retry, events): the walk goes on.
pub(crate) fn no_milter<T>(_: &Arc<Milter>) -> std::future::Ready<Option<T>> {
    std::future::ready(None)
}

impl Snapshot {
    /// The chain walk. Asks each plugin of `tenant`'s chain that `has` the
    /// hook, in order; `decide` turns its answer (`None`: the plugin
    /// failed) into the decision that ends the walk, or `None` to ask the
    /// next. A `milter:NAME` element is asked through `milter` (its
    /// decision, or `None` to go on; [`no_milter`] for hooks without a
    /// milter step). `None` when nobody decided: the caller's end-of-chain
    /// default.
    pub(crate) async fn walk<'a, R, T, F, Fut, M, MFut>(
        &'a self,
        tenant: Option<&str>,
        has: fn(&HookIndices) -> bool,
        mut ask: F,
        mut decide: impl FnMut(&Binding, Option<R>) -> Option<T>,
        mut milter: M,
    ) -> Option<T>
    where
        F: FnMut(&'a Arc<Binding>) -> Fut,
        Fut: Future<Output = Option<R>>,
        M: FnMut(&'a Arc<Milter>) -> MFut,
        MFut: Future<Output = Option<T>>,
    {
        for element in self.chain(tenant) {
            let decision = match element {
                Element::Plugin(b) if has(&b.plugin.indices) => decide(b, ask(b).await),
                Element::Plugin(_) => None,
                Element::Milter(m) => milter(m).await,
            };
            if decision.is_some() {
                return decision;
            }
        }
        None
    }

    pub(crate) fn session_tenant(&self, s: &SessionInfo) -> Option<String> {
        s.tenant.clone().or_else(|| s.auth_user.as_deref().and_then(|u| self.directory.tenant_of_address(u)))
    }

    /// Whose rcpt and data hooks decide about `rcpt`: the authenticated
    /// user's tenant for the whole transaction (its user wrote to these
    /// recipients), else the tenant owning the recipient's domain.
    pub(crate) fn rcpt_tenant(&self, s: &SessionInfo, rcpt: &str) -> Option<String> {
        match s.auth_user {
            Some(_) => self.session_tenant(s),
            None => self.directory.tenant_of_address(rcpt),
        }
    }

    /// The route chain of `tenant` for `ctx`, with the end-of-chain default.
    pub(crate) async fn route_in(&self, reentry: &Reentry, tenant: Option<&str>, ctx: &RouteContext) -> Route {
        let wctx = &route_context_to(ctx, tenant);
        let decided = self
            .walk(
                tenant,
                |i| i.route.is_some(),
                |b| call!(b, reentry, route, call_on_route(wctx)),
                |b, answer| match answer {
                    Some(Some(d)) => {
                        let route = route_from(d);
                        match self.directory.check_route(tenant, &route) {
                            Ok(()) => Some(route),
                            Err(why) => {
                                violation(b, "route", &why);
                                on_failure(b, Route::Reject(temp_reply()))
                            }
                        }
                    }
                    Some(None) => None,
                    None => on_failure(b, Route::Reject(temp_reply())),
                },
                no_milter,
            )
            .await;
        // No plugin decided: local domains to the account of that name,
        // others to their MX (what an MTA without rules does).
        decided.unwrap_or_else(|| {
            if self.directory.is_local(&ctx.recipient) {
                Route::Local { account: ctx.recipient.to_lowercase() }
            } else {
                Route::Mx { domain: domain_of(&ctx.recipient).unwrap_or_default() }
            }
        })
    }

    /// Whose route chain decides for `recipient`: the owner of a local
    /// address (the global chain for local domains of no tenant), the
    /// sending tenant's for mail that leaves (its smarthost, say).
    pub(crate) fn route_tenant(&self, recipient: &str, sender_tenant: Option<&str>) -> Option<String> {
        match self.directory.tenant_of_address(recipient) {
            Some(t) => Some(t),
            None if self.directory.is_local(recipient) => None,
            None => sender_tenant.map(str::to_string),
        }
    }

    pub(crate) async fn disclose(
        &self,
        reentry: &Reentry,
        session: &SessionInfo,
        arg: &str,
        vrfy: bool,
    ) -> Option<Reply> {
        let tenant = self.directory.tenant_of_address(arg).or_else(|| self.session_tenant(session));
        let ws = &session_to(session);
        let has: fn(&HookIndices) -> bool = if vrfy { |i| i.vrfy.is_some() } else { |i| i.expn.is_some() };
        self.walk(
            tenant.as_deref(),
            has,
            |b| async move {
                if vrfy {
                    call!(b, reentry, vrfy, call_on_vrfy(ws, arg)).await
                } else {
                    call!(b, reentry, expn, call_on_expn(ws, arg)).await
                }
            },
            |b, answer| match answer {
                Some(reply) => reply.map(reply_from),
                None => on_failure(b, temp_reply()),
            },
            no_milter,
        )
        .await
    }
}

/// `directory.resolve`: one routing step in `tenant`'s chain, as the
/// server's route call would take it.
#[async_trait]
impl Router for Snapshot {
    async fn route_step(&self, reentry: &Reentry, tenant: Option<&str>, address: &str) -> Route {
        let ctx = RouteContext { sender: String::new(), recipient: address.to_string(), tenant: None, depth: 0 };
        let tenant = self.route_tenant(address, tenant);
        self.route_in(reentry, tenant.as_deref(), &ctx).await
    }
}
