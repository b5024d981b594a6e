//! The IMAP4rev1 server session (RFC 3501), with IDLE (RFC 2177), UIDPLUS
//! (RFC 4315), MOVE (RFC 6851), LITERAL+ (RFC 7888), NAMESPACE (RFC 2342),
//! ID (RFC 2971), ENABLE (RFC 5161), UNSELECT (RFC 3691), SPECIAL-USE
//! (RFC 6154), CHILDREN (RFC 3348) and STARTTLS/LOGINDISABLED.
//!
//! Commands are framed and parsed by `imap-codec` (its `Fragmentizer`
//! splits lines and literals with a bounded buffer; `CommandCodec` is the
//! RFC 3501 grammar). Responses are written here (`wire`): they are few
//! shapes, and writing them directly keeps large FETCH answers free of
//! copies.
//!
//! # Driving a session
//! [`ImapSession`] does no I/O and reads no clock, like the POP3 session:
//!
//! ```text
//! let mut s = ImapSession::new(cfg, info);          // greeting is queued
//! loop {
//!     let event = s.next_event(Instant::now());
//!     if let NeedInput | Flush | StartTls = event {
//!         write_before(s.poll_timeout(), &s.take_output()).await?;
//!     }
//!     match event {
//!         NeedInput => select! {                    // a client byte or a change
//!             bytes = read_before(s.poll_timeout()) => s.feed(&bytes),
//!             change = feed.next(), if s.selected().is_some() => s.mailbox_changed(change),
//!         },
//!         Flush => {}
//!         Login { .. } => s.login_done(check(..)),
//!         Request(r) => s.answer(run(r).await),     // every store operation
//!         StartTls => { handshake().await?; s.tls_established() }
//!         Close => { farewell(&s.take_output()).await; break }
//!     }
//! }
//! ```
//!
//! Each decision event is repeated by `next_event` until it is answered,
//! and input arriving meanwhile is only buffered, so pipelined commands are
//! answered strictly in order.
//!
//! # What the session keeps
//! The selected mailbox's view: sequence number → UID and each message's
//! flags, as the client last heard of them. Changes by other sessions (and
//! POP3, and deliveries) arrive through [`ImapSession::mailbox_changed`]
//! and are announced at the end of the next command, or at once in IDLE;
//! EXPUNGE never during FETCH, STORE or SEARCH (RFC 3501 7.4.1).

mod auth;
mod commands;
mod fetch;
mod flags;
mod list;
mod list_extended;
mod mutf7;
mod request;
mod search;
mod section;
mod selected;
mod sequence;
mod session;
mod structure;
mod summary;
mod view;
mod wire;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use flags::MessageFlags;
pub use mutf7::{decode as decode_mailbox_name, encode as encode_mailbox_name};
pub use request::{
    Answer, CopyOutcome, Failure, ListedMailbox, MailboxStatus, MessageData, Request, SearchRows, SelectedMailbox,
    StoreFlags,
};
pub use session::ImapSession;
pub use summary::Summary;
pub use view::MailboxChange;

/// Session settings; the driver builds one per listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapConfig {
    /// Host name shown in the greeting.
    pub greeting_host: String,
    /// Longest command line (one line of a command, between literals),
    /// including CRLF. Over it: `* BYE` (the rest of the line cannot be
    /// told from a new command).
    pub max_line: usize,
    /// Largest literal accepted (APPEND's message, or any string). A
    /// synchronising literal over it is refused before the client sends it
    /// (`NO [TOOBIG]`); a non-synchronising one ends the session (RFC 7888 4).
    pub max_literal: u32,
    /// Bad commands before the session is closed; 0 disables the limit.
    pub max_errors: u32,
    /// Offer STARTTLS; the driver must have a certificate ready.
    pub starttls_available: bool,
    /// Logins are allowed without TLS on this connection; when not,
    /// CAPABILITY says LOGINDISABLED until STARTTLS (RFC 3501 6.2.3).
    pub plaintext_auth: bool,
    /// Autologout (RFC 3501 5.4: at least 30 minutes): the whole wait for
    /// a command (or in IDLE), and the whole write of an answer.
    pub idle_timeout: Duration,
    /// The STARTTLS handshake.
    pub tls_timeout: Duration,
    /// Messages per store request of a FETCH or SEARCH that needs message
    /// contents (bounds the memory one command holds).
    pub content_batch: usize,
    /// Messages per store request when only metadata is needed.
    pub meta_batch: usize,
}

impl Default for ImapConfig {
    fn default() -> Self {
        Self {
            greeting_host: "localhost".into(),
            max_line: 65536,
            max_literal: 25 * 1024 * 1024,
            max_errors: 20,
            starttls_available: false,
            plaintext_auth: true,
            idle_timeout: Duration::from_secs(30 * 60),
            tls_timeout: Duration::from_secs(30),
            content_batch: 256,
            meta_batch: 2048,
        }
    }
}

/// The driver's answer to [`ImapEvent::Login`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginDone {
    /// Credentials good; `user` and `tenant` are the account the policy named.
    Ok { user: String, tenant: Option<String> },
    /// Bad credentials: `NO [AUTHENTICATIONFAILED]` (RFC 5530).
    Fail,
    /// The directory could not decide: `NO [UNAVAILABLE]`.
    Tempfail,
    /// Credentials good, but the user has too many sessions: `NO [LIMIT]`
    /// (RFC 5530); the session stays unauthenticated.
    Limit,
}

/// What [`ImapSession::next_event`] needs from the driver. After every
/// event the driver writes [`ImapSession::take_output`] to the socket.
#[derive(Clone, PartialEq, Eq)]
pub enum ImapEvent {
    /// All buffered input is consumed: read from the socket and `feed`
    /// (and, with a mailbox selected, listen for its changes).
    NeedInput,
    /// Output passed its high-water mark mid-command: write it out, then
    /// call `next_event` again without reading.
    Flush,
    /// Verify the credentials, then call `login_done`.
    Login { user: String, password: String, mechanism: String },
    /// Run this store operation for the logged-in account, then call
    /// `answer` with its outcome.
    Request(Request),
    /// The `OK Begin TLS negotiation now` is queued: write it, run the
    /// TLS handshake (close on failure), then call `tls_established`.
    StartTls,
    /// Write the remaining output and close; the session is finished.
    Close,
}

/// Hand-written so a logged event never shows a password.
impl std::fmt::Debug for ImapEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NeedInput => f.write_str("NeedInput"),
            Self::Flush => f.write_str("Flush"),
            Self::Login { user, mechanism, .. } => f
                .debug_struct("Login")
                .field("user", user)
                .field("password", &"<redacted>")
                .field("mechanism", mechanism)
                .finish(),
            Self::Request(r) => f.debug_tuple("Request").field(r).finish(),
            Self::StartTls => f.write_str("StartTls"),
            Self::Close => f.write_str("Close"),
        }
    }
}
