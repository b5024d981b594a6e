//! Conversions between the `Policy` types and the WIT types, in one place
//! so a new WIT version only touches this file. Guest answers reach these
//! functions only after `validate` passed them (in `Binding::call`), so
//! the conversions from WIT types are plain mappings.

use crate::bindings::wit;
use ferrymail_policy as p;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) fn reply_from(r: wit::Reply) -> p::Reply {
    p::Reply { code: r.code, enhanced: r.enhanced.filter(|e| !e.is_empty()), text: r.text }
}

pub(crate) fn reply_to(r: &p::Reply) -> wit::Reply {
    wit::Reply { code: r.code, enhanced: r.enhanced.clone(), text: r.text.clone() }
}

pub(crate) fn verdict_from(v: wit::Verdict) -> p::Verdict {
    match v {
        wit::Verdict::Continue => p::Verdict::Continue,
        wit::Verdict::Accept => p::Verdict::Accept,
        wit::Verdict::Reject(r) => p::Verdict::Reject(reply_from(r)),
        wit::Verdict::Tempfail(r) => p::Verdict::Tempfail(reply_from(r)),
        wit::Verdict::Disconnect(r) => p::Verdict::Disconnect(reply_from(r)),
    }
}

pub(crate) fn service_to(s: p::Service) -> wit::Service {
    match s {
        p::Service::Smtp => wit::Service::Smtp,
        p::Service::Submission => wit::Service::Submission,
        p::Service::Pop3 => wit::Service::Pop3,
        p::Service::Imap => wit::Service::Imap,
    }
}

pub(crate) fn session_to(s: &p::SessionInfo) -> wit::Session {
    wit::Session {
        id: s.id.clone(),
        service: service_to(s.service),
        client_ip: s.client_ip.to_string(),
        client_port: s.client_port,
        client_name: s.client_name.clone(),
        tls: s.tls,
        helo: s.helo.clone(),
        auth_user: s.auth_user.clone(),
        tenant: s.tenant.clone(),
    }
}

pub(crate) fn envelope_to(e: &p::Envelope) -> wit::Envelope {
    wit::Envelope { mail_from: e.mail_from.clone(), rcpt_to: e.rcpt_to.clone() }
}

pub(crate) fn auth_request_to(r: &p::AuthRequest) -> wit::AuthRequest {
    wit::AuthRequest {
        session: session_to(&r.session),
        mechanism: r.mechanism.clone(),
        username: r.username.clone(),
        password: r.password.clone(),
    }
}

pub(crate) fn route_from(d: wit::Destination) -> p::Route {
    match d {
        wit::Destination::Local(account) => p::Route::Local { account },
        wit::Destination::Relay(h) => p::Route::Relay { host: h.host, port: h.port },
        wit::Destination::Mx(domain) => p::Route::Mx { domain },
        wit::Destination::Alias(targets) => p::Route::Alias { targets },
        wit::Destination::Discard => p::Route::Discard,
        wit::Destination::Reject(r) => p::Route::Reject(reply_from(r)),
    }
}

pub(crate) fn route_to(r: &p::Route) -> wit::Destination {
    match r {
        p::Route::Local { account } => wit::Destination::Local(account.clone()),
        p::Route::Relay { host, port } => wit::Destination::Relay(wit::RelayHost { host: host.clone(), port: *port }),
        p::Route::Mx { domain } => wit::Destination::Mx(domain.clone()),
        p::Route::Alias { targets } => wit::Destination::Alias(targets.clone()),
        p::Route::Discard => wit::Destination::Discard,
        p::Route::Reject(r) => wit::Destination::Reject(reply_to(r)),
    }
}

pub(crate) fn route_context_to(c: &p::RouteContext, tenant: Option<&str>) -> wit::RouteContext {
    wit::RouteContext {
        sender: c.sender.clone(),
        recipient: c.recipient.clone(),
        tenant: tenant.map(str::to_string),
        depth: c.depth,
    }
}

pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) fn retry_context_to(c: &p::RetryContext, tenant: Option<&str>) -> wit::RetryContext {
    wit::RetryContext {
        queue_id: c.queue_id.clone(),
        sender: c.sender.clone(),
        recipient: c.recipient.clone(),
        tenant: tenant.map(str::to_string),
        attempts: c.attempts,
        first_queued: unix_secs(c.first_queued),
        now: unix_secs(c.now),
        last_reply: reply_to(&c.last_reply),
        warned: c.warned,
    }
}

pub(crate) fn retry_from(d: wit::RetryDecision) -> p::RetryDecision {
    match d {
        wit::RetryDecision::RetryAfter(s) => p::RetryDecision::RetryAfter(Duration::from_secs(s)),
        wit::RetryDecision::WarnAndRetry(s) => p::RetryDecision::WarnAndRetry(Duration::from_secs(s)),
        wit::RetryDecision::Bounce => p::RetryDecision::Bounce,
    }
}

pub(crate) fn event_to(e: &p::DeliveryEvent) -> (bool, wit::DeliveryEvent) {
    let (delivered, queue_id, recipient, reply) = match e {
        p::DeliveryEvent::Delivered { queue_id, recipient, reply } => (true, queue_id, recipient, reply),
        p::DeliveryEvent::Bounced { queue_id, recipient, reply } => (false, queue_id, recipient, reply),
    };
    let ev = wit::DeliveryEvent { queue_id: queue_id.clone(), recipient: recipient.clone(), reply: reply_to(reply) };
    (delivered, ev)
}
