//! A hostile tenant's plugin: it tries to reach past its tenant, and tells
//! what it was shown, so the tenant-isolation tests (host unit tests and
//! e2e) can check that the host refuses the one and limits the other.
//!
//! Config:
//! - `tag`: names its log lines and the header it adds (default "x");
//! - `auth_as` (and `auth_tenant`): every login succeeds as this user;
//! - `route_local`: every recipient is filed into this account;
//! - `route_alias`: every recipient becomes these addresses;
//! - `resolve`: the rcpt hook asks `directory.resolve` for this address
//!   and logs the answer;
//! - `verify` (`[address, password]`): the rcpt hook asks
//!   `directory.verify-password` and logs the answer;
//! - `route_resolve`: the route hook answers what `directory.resolve` says
//!   about the same recipient (a route chain that re-enters itself), or
//!   continues when resolve fails;
//! - `retry_bounce`: the retry hook bounces every failed delivery at once;
//! - `data_reject`: the data hook refuses the message with 550 5.7.1 and
//!   this text.
//!
//! The rcpt and data hooks continue (the chain decides as usual) after
//! logging `hostile TAG rcpt saw [envelope] rcpt` / `hostile TAG data saw
//! [envelope]`; the data hook also adds `X-Hostile-TAG: saw [envelope]`.

use ferrymail_plugin_sdk::*;
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Hostile {
    tag: Option<String>,
    auth_as: Option<String>,
    auth_tenant: Option<String>,
    route_local: Option<String>,
    route_alias: Option<Vec<String>>,
    resolve: Option<String>,
    route_resolve: bool,
    verify: Option<(String, String)>,
    data_reject: Option<String>,
    retry_bounce: bool,
}

impl Hostile {
    fn tag(&self) -> &str {
        self.tag.as_deref().unwrap_or("x")
    }
}

#[plugin]
impl Plugin for Hostile {
    fn new() -> Self {
        host::config().unwrap_or_default()
    }

    fn auth(&self, _req: &AuthRequest) -> AuthResult {
        match &self.auth_as {
            Some(user) => AuthResult::Ok(AuthOk { user: user.clone(), tenant: self.auth_tenant.clone() }),
            None => AuthResult::Continue,
        }
    }

    fn rcpt(&self, _s: &Session, env: &Envelope, rcpt: &str) -> Verdict {
        host::info(&format!("hostile {} rcpt saw {:?} {rcpt}", self.tag(), env.rcpt_to));
        if let Some(address) = &self.resolve {
            let answer = match directory::resolve(address) {
                Ok(d) => format!("{d:?}"),
                Err(e) => format!("error {e:?}"),
            };
            host::info(&format!("hostile {} resolved {address}: {answer}", self.tag()));
        }
        if let Some((address, password)) = &self.verify {
            let answer = directory::verify_password(address, password);
            host::info(&format!("hostile {} verified {address}: {answer:?}", self.tag()));
        }
        Verdict::Continue
    }

    fn data(&self, _s: &Session, env: &Envelope, _msg: &Message) -> DataResult {
        let saw = format!("saw {:?}", env.rcpt_to);
        host::info(&format!("hostile {} data {saw}", self.tag()));
        if let Some(text) = &self.data_reject {
            return DataResult::verdict(Verdict::reject(550, "5.7.1", text.clone()));
        }
        DataResult::verdict(Verdict::Continue).add_header(&format!("X-Hostile-{}", self.tag()), saw)
    }

    fn retry(&self, _ctx: &RetryContext) -> Option<RetryDecision> {
        self.retry_bounce.then_some(RetryDecision::Bounce)
    }

    fn route(&self, ctx: &RouteContext) -> Option<Destination> {
        if self.route_resolve {
            return match directory::resolve(&ctx.recipient) {
                Ok(d) => Some(d),
                Err(e) => {
                    host::info(&format!("hostile {} route resolve failed: {e:?}", self.tag()));
                    None
                }
            };
        }
        if let Some(account) = &self.route_local {
            return Some(Destination::Local(account.clone()));
        }
        self.route_alias.as_ref().map(|targets| Destination::Alias(targets.clone()))
    }
}
