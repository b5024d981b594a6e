//! The `Policy` seam: every decision a protocol needs is asked here.
//!
//! Protocol code (SMTP, POP3, IMAP, the delivery queue) knows only this trait.
//! The wasm plugin chain in `ferrymail-plugin-host` is the production
//! implementation; a native implementation in the server crate serves as the
//! test double. Nothing in this crate does I/O.
//!
//! # Layout
//! - [`reply`]: SMTP replies with enhanced status codes (RFC 5321 4.2, RFC 3463)
//! - [`verdict`]: what a hook answers, Haraka's vocabulary
//! - [`context`]: what a hook is told (session, envelope, message)
//! - [`decisions`]: routing, retry, and authentication outcomes
//! - [`edits`]: header edits a milter asks for, applied to the message
//! - [`logsafe`]: client-controlled text in log lines
//! - [`observe`]: every plugin call reported to the server's metrics and trace

pub mod context;
pub mod decisions;
pub mod edits;
pub mod logsafe;
pub mod observe;
pub mod reply;
pub mod verdict;

pub use context::{AuthRequest, Envelope, Service, SessionInfo};
pub use decisions::{AuthOutcome, DeliveryEvent, RetryContext, RetryDecision, Route, RouteContext};
pub use logsafe::{LogSafe, logsafe};
pub use reply::Reply;
pub use verdict::{DataVerdict, Verdict};

use async_trait::async_trait;
use std::sync::Arc;

/// The decisions a mail server makes, asked in protocol order.
///
/// Contract for implementors: every method must return in bounded time (the
/// plugin runtime enforces a deadline), must not panic, and turns internal
/// failures into a `tempfail`-class answer rather than an error: protocol code
/// has no error path for policy, only answers.
///
/// Defaults are what a permissive hook that "continues" means at the end of a
/// chain; the protocol layers interpret a final [`Verdict::Continue`] per hook
/// (see each method).
#[async_trait]
pub trait Policy: Send + Sync {
    /// After the TCP accept, before the 220 greeting. A final `Continue`
    /// greets the client.
    async fn connect(&self, _session: &SessionInfo) -> Verdict {
        Verdict::Continue
    }

    /// On HELO or EHLO (`ehlo` tells which). A final `Continue` accepts.
    async fn helo(&self, _session: &SessionInfo, _name: &str, _ehlo: bool) -> Verdict {
        Verdict::Continue
    }

    /// On SMTP AUTH, POP3 USER/PASS and IMAP LOGIN.
    async fn auth(&self, request: &AuthRequest) -> AuthOutcome;

    /// On MAIL FROM. `from` is empty for the null reverse-path `<>`.
    /// A final `Continue` accepts.
    async fn mail(&self, _session: &SessionInfo, _from: &str) -> Verdict {
        Verdict::Continue
    }

    /// On each RCPT TO. The envelope holds the recipients accepted so far.
    /// A final `Continue` is treated as a rejection ("relay access denied"):
    /// a recipient must be claimed, so a misconfigured chain is never an open relay.
    async fn rcpt(&self, session: &SessionInfo, envelope: &Envelope, rcpt: &str) -> Verdict;

    /// After the whole message is received, before the 250 that makes it ours.
    /// A final `Continue` accepts; headers to add are prepended in order.
    async fn data(&self, _session: &SessionInfo, _envelope: &Envelope, _message: &[u8]) -> DataVerdict {
        DataVerdict::default()
    }

    /// The reply to VRFY. Default: 252, cannot verify but will try (RFC 5321 3.5.3).
    async fn vrfy(&self, _session: &SessionInfo, _arg: &str) -> Reply {
        Reply::new(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
    }

    /// The reply to EXPN. Default: 502, not implemented (RFC 5321 3.5.3 allows disabling).
    async fn expn(&self, _session: &SessionInfo, _arg: &str) -> Reply {
        Reply::new(502, "5.5.1", "EXPN not available")
    }

    /// Where one recipient goes, decided when the message is queued.
    async fn route(&self, ctx: &RouteContext) -> Route;

    /// After a failed delivery attempt to one recipient.
    async fn retry(&self, ctx: &RetryContext) -> RetryDecision;

    /// A recipient was delivered or bounced. Informational.
    async fn event(&self, _event: &DeliveryEvent) {}

    /// The SMTP session (or a pickup, which asks `data` alone) is over:
    /// release what was kept for it, such as its milter connections.
    /// Called once, after its last hook call.
    async fn end(&self, _session: &SessionInfo) {}
}

/// A shared, swappable policy. Sessions clone the `Arc` when they start so a
/// reload never changes the chain under a session in progress.
pub type SharedPolicy = Arc<dyn Policy>;
