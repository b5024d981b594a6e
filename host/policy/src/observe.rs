//! What the host learns from each plugin call, for the operator: the
//! metrics (latency, failures per plugin and hook) and the per-message
//! decision trace. The plugin runtime reports every call here; the server
//! installs one [`Observer`] at start-up. Nothing is reported before that,
//! and reporting costs one atomic load when no observer is installed.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

/// Why a plugin call produced no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The guest trapped (a panic, an unreachable, a bad memory access).
    Trap,
    /// `call_timeout` or the epoch deadline passed.
    Deadline,
    /// The memory cap was reached.
    Memory,
    /// `sandbox.fuel` ran out.
    Fuel,
    /// The answer broke a rule of the host's answer check.
    Invalid,
    /// Anything else (instantiation failed, a host call failed).
    Other,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Trap => "trap",
            Failure::Deadline => "deadline",
            Failure::Memory => "memory",
            Failure::Fuel => "fuel",
            Failure::Invalid => "invalid",
            Failure::Other => "other",
        }
    }
}

/// What one call came to.
pub enum Outcome<'a> {
    /// The plugin answered; the answer as one line ("reject 550 5.7.1 …").
    Answered(&'a dyn fmt::Display),
    /// It failed; `detail` says how (already safe for logs).
    Failed(Failure, &'a str),
}

/// One hook call of one plugin.
pub struct HookCall<'a> {
    pub plugin: &'a str,
    pub tenant: Option<&'a str>,
    pub hook: &'static str,
    /// From the call's start to its answer, waiting for the tenant's share
    /// of execution included.
    pub elapsed: Duration,
    pub outcome: Outcome<'a>,
    /// Whether this answer ended the chain's walk (a verdict other than
    /// continue, or a failure whose policy is `tempfail`).
    pub decided: bool,
}

/// Receives every plugin call. Called on the task that made the call,
/// synchronously: keep it short (count, push to a buffer).
pub trait Observer: Send + Sync {
    fn hook_call(&self, call: &HookCall<'_>);
}

static OBSERVER: OnceLock<Box<dyn Observer>> = OnceLock::new();

/// Installs the process's observer; `false` if one already was.
pub fn set_observer(observer: Box<dyn Observer>) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Whether anyone listens (skip preparing a report otherwise).
pub fn observing() -> bool {
    OBSERVER.get().is_some()
}

pub fn report(call: &HookCall<'_>) {
    if let Some(o) = OBSERVER.get() {
        o.hook_call(call);
    }
}
