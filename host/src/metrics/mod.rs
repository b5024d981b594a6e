//! Prometheus metrics, served on `[metrics] listen` in the text exposition
//! format (see [`http`]). Off unless that is set: then [`get`] is `None`
//! and every instrumented spot costs one atomic load.
//!
//! Label values are bounded: services, hooks, results and reply classes
//! are fixed sets; plugins come from the config; destination domains are
//! the first [`domains::TOP`] seen, the rest `other` ([`domains`]). No
//! address, user or client IP is ever a label.

pub mod domains;
pub mod http;
mod queue;
pub mod smtp;

use ferrymail_policy::observe::{self, HookCall, Observer, Outcome};
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use std::sync::OnceLock;
use std::time::Duration;

/// Latency buckets (seconds) for plugin calls and DNS: 50 µs to 5 s.
const FAST: &[f64] = &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];
/// Store commits: an fsync is 0.1–20 ms on most disks.
const COMMIT: &[f64] = &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0];
/// Changes per commit group.
const GROUP: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

pub struct Metrics {
    pub registry: Registry,
    pub connections: IntCounterVec,
    pub sessions: IntGaugeVec,
    pub smtp_replies: IntCounterVec,
    pub messages: IntCounterVec,
    pub received_bytes: IntCounterVec,
    pub store_commit: Histogram,
    pub store_group: Histogram,
    pub queue_messages: IntGaugeVec,
    pub queue_oldest: IntGauge,
    pub delivery_attempts: IntCounterVec,
    pub dsns: IntCounterVec,
    pub plugin_calls: HistogramVec,
    pub plugin_failures: IntCounterVec,
    pub dns_queries: HistogramVec,
    pub dns_failures: IntCounterVec,
    pub tls_handshakes: IntCounterVec,
    pub logins: IntCounterVec,
    pub domains: domains::Domains,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The metrics, if `[metrics] listen` is set.
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// Creates the registry when `[metrics] listen` is set, and starts hearing
/// of plugin calls when metrics or the trace want them. Called once,
/// before the listeners start.
pub fn start(config: &crate::config::Config) -> Option<&'static Metrics> {
    let metrics = (!config.metrics.listen.is_empty()).then(|| METRICS.get_or_init(Metrics::new));
    if metrics.is_some() || config.trace.enabled {
        observe::set_observer(Box::new(PluginMetrics));
    }
    if metrics.is_some() {
        ferrymail_store::stats::set_commit_observer(|latency, changes| {
            if let Some(m) = get() {
                m.store_commit.observe(latency.as_secs_f64());
                m.store_group.observe(changes as f64);
            }
        });
    }
    metrics
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("registered once");
    g
}

fn plain_histogram(r: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec())).expect("valid metric");
    r.register(Box::new(h.clone())).expect("registered once");
    h
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels).expect("valid metric");
    r.register(Box::new(h.clone())).expect("registered once");
    h
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new_custom(Some("ferrymail".into()), None).expect("valid prefix");
        let queue_oldest =
            IntGauge::new("queue_oldest_age_seconds", "Age of the oldest queued message").expect("valid");
        r.register(Box::new(queue_oldest.clone())).expect("registered once");
        Metrics {
            connections: counter(&r, "connections_total", "Connections accepted, per service", &["service"]),
            sessions: gauge(&r, "sessions_active", "Sessions in progress, per service", &["service"]),
            smtp_replies: counter(
                &r,
                "smtp_replies_total",
                "SMTP replies sent, by code class and by the plugin that decided (\"host\" when none did)",
                &["service", "class", "decided_by"],
            ),
            messages: counter(
                &r,
                "smtp_messages_total",
                "Messages at the end of DATA: accepted, refused (5xx) or temp_failed (4xx)",
                &["service", "result"],
            ),
            received_bytes: counter(&r, "smtp_received_bytes_total", "Message bytes received", &["service"]),
            store_commit: plain_histogram(
                &r,
                "store_commit_seconds",
                "Durable store commits (write and fsync)",
                COMMIT,
            ),
            store_group: plain_histogram(&r, "store_commit_group_size", "Changes per durable store commit", GROUP),
            queue_messages: gauge(
                &r,
                "queue_messages",
                "Queued messages by state: due, deferred, in_flight",
                &["state"],
            ),
            queue_oldest,
            delivery_attempts: counter(
                &r,
                "delivery_attempts_total",
                "Outbound delivery attempts per recipient domain, by result: delivered, deferred, bounced",
                &["result", "domain"],
            ),
            dsns: counter(&r, "dsn_sent_total", "Delivery status notifications generated", &["kind"]),
            plugin_calls: histogram(
                &r,
                "plugin_call_seconds",
                "Plugin hook calls, from the call to its answer",
                &["plugin", "hook"],
                FAST,
            ),
            plugin_failures: counter(
                &r,
                "plugin_failures_total",
                "Plugin calls without a usable answer, by kind: trap, deadline, memory, fuel, invalid, other",
                &["plugin", "hook", "kind"],
            ),
            dns_queries: histogram(&r, "dns_query_seconds", "DNS lookups by record type", &["type"], FAST),
            dns_failures: counter(
                &r,
                "dns_failures_total",
                "DNS lookups that failed, by record type and kind: nxdomain, error",
                &["type", "kind"],
            ),
            tls_handshakes: counter(
                &r,
                "tls_handshakes_total",
                "TLS handshakes by direction (inbound, outbound) and result (ok, failed)",
                &["direction", "result"],
            ),
            logins: counter(&r, "logins_total", "Logins by service and result (ok, failed)", &["service", "result"]),
            domains: domains::Domains::default(),
            registry: r,
        }
    }
}

/// The plugin runtime's calls, as latency and failures per plugin and hook.
/// The decision trace hears of them too ([`crate::trace`]).
struct PluginMetrics;

impl Observer for PluginMetrics {
    fn hook_call(&self, call: &HookCall<'_>) {
        crate::trace::hook_call(call);
        let Some(m) = get() else { return };
        m.plugin_calls.with_label_values(&[call.plugin, call.hook]).observe(call.elapsed.as_secs_f64());
        if let Outcome::Failed(kind, _) = call.outcome {
            m.plugin_failures.with_label_values(&[call.plugin, call.hook, kind.as_str()]).inc();
        }
    }
}

/// One TLS handshake: counted as failed unless it [succeeded](Handshake::succeeded)
/// before being dropped, so one abandoned at its deadline counts too.
pub struct Handshake {
    direction: &'static str,
    ok: bool,
}

impl Handshake {
    pub fn start(direction: &'static str) -> Self {
        Handshake { direction, ok: false }
    }

    pub fn succeeded(mut self) {
        self.ok = true;
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        if let Some(m) = get() {
            m.tls_handshakes.with_label_values(&[self.direction, if self.ok { "ok" } else { "failed" }]).inc();
        }
    }
}

/// Counts a login's outcome.
pub fn login(service: &str, ok: bool) {
    if let Some(m) = get() {
        m.logins.with_label_values(&[service, if ok { "ok" } else { "failed" }]).inc();
    }
}

/// Times a DNS lookup of `rtype` and counts its failure.
pub fn dns_query<T, E>(rtype: &str, elapsed: Duration, result: &Result<T, E>, nx: impl FnOnce(&E) -> bool) {
    if let Some(m) = get() {
        m.dns_queries.with_label_values(&[rtype]).observe(elapsed.as_secs_f64());
        if let Err(e) = result {
            let kind = if nx(e) { "nxdomain" } else { "error" };
            m.dns_failures.with_label_values(&[rtype, kind]).inc();
        }
    }
}

/// One more session of `service` (until the guard drops).
pub fn session(service: &'static str) -> Option<SessionGuard> {
    let m = get()?;
    m.connections.with_label_values(&[service]).inc();
    let gauge = m.sessions.with_label_values(&[service]);
    gauge.inc();
    Some(SessionGuard(gauge))
}

pub struct SessionGuard(IntGauge);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
