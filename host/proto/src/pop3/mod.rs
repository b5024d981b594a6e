//! The POP3 server session: RFC 1939, with CAPA and response codes (RFC
//! 2449), AUTH PLAIN (RFC 5034, RFC 4616) and STLS (RFC 2595).
//!
//! # Driving a session
//! [`Pop3Session`] does no I/O and reads no clock: the driver passes `now`
//! in. It feeds the session bytes, asks it for the next [`Pop3Event`] and
//! writes whatever [`Pop3Session::take_output`] returns before it waits on
//! the client, every read and write bounded by
//! [`Pop3Session::poll_timeout`]:
//!
//! ```text
//! let mut s = Pop3Session::new(cfg, info);          // greeting is already queued
//! loop {
//!     let event = s.next_event(Instant::now());
//!     if let NeedInput | Flush | StartTls = event {
//!         // the output, before waiting on the client, under its deadline
//!         write_before(s.poll_timeout(), &s.take_output()).await?;
//!     }
//!     match event {
//!         NeedInput => match read_before(s.poll_timeout()).await {
//!             Data(bytes) => s.feed(&bytes),
//!             TimedOut => s.handle_timeout(Instant::now()),  // autologout
//!             Eof | Error => break,                 // client vanished: no UPDATE
//!         },
//!         Flush => {}                               // output written; go on
//!         AuthRequested { .. } => s.auth_done(check_and_lock(..)),
//!         MessageNeeded { index, .. } => s.message_ready(&load(index)?),
//!         UpdateRequested { delete } => s.update_done(expunge(&delete)),
//!         StartTls => { handshake_before(s.poll_timeout()).await?; s.tls_established() }
//!         Close => { farewell(&s.take_output()).await; break }
//!     }
//! }
//! ```
//!
//! Each decision event is repeated by `next_event` until its answer is fed
//! back, and input that arrives meanwhile is only buffered, so pipelined
//! commands (RFC 2449 6.6) are answered strictly in order.
//!
//! # Contracts for the driver
//! - UPDATE happens only through [`Pop3Event::UpdateRequested`], i.e. only
//!   after QUIT in the TRANSACTION state. A connection that drops, times out
//!   or errors must release the maildrop lock without deleting anything (RFC
//!   1939 6); the session never asks for it in that case.
//! - Delaying failed authentications is the driver's job (RFC 1939 13): it
//!   waits before calling [`Pop3Session::auth_done`] with a failure.
//! - A timeout (read or write) ends the session like a dropped connection:
//!   the lock is released and nothing deleted.
//! - The maildrop handed over in [`AuthDone::Ok`] is the session's view for
//!   the whole TRANSACTION state: message numbers and sizes never change
//!   under the client (RFC 1939 5).

mod authorization;
mod body;
mod command;
mod sasl;
mod session;
mod transaction;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use body::wire_size;
pub use session::Pop3Session;

/// Session settings; the driver builds one per listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pop3Config {
    /// Host name shown in the greeting and sign-off.
    pub greeting_host: String,
    /// Longest accepted command line including CRLF (RFC 2449 4: 255).
    pub max_line: usize,
    /// Bad commands before the session closes; 0 disables the limit.
    /// Failed authentications count, which bounds password guesses per
    /// connection.
    pub max_errors: u32,
    /// Offer STLS; the driver must have a certificate ready.
    pub stls_available: bool,
    /// Offer SASL PLAIN via AUTH (RFC 5034).
    pub auth_plain: bool,
    /// Logins (USER/PASS, AUTH) are allowed without TLS on this connection;
    /// when not, CAPA does not offer them until STLS.
    pub plaintext_auth: bool,
    /// Autologout (RFC 1939 3: at least 10 minutes): the deadline of every
    /// wait for a command, and of every write of an answer.
    pub idle_timeout: Duration,
    /// The STLS handshake.
    pub tls_timeout: Duration,
    /// Announced as the IMPLEMENTATION capability (RFC 2449 6.9); empty
    /// omits it.
    pub implementation: String,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Self {
            greeting_host: "localhost".into(),
            max_line: 255,
            max_errors: 10,
            stls_available: false,
            auth_plain: true,
            plaintext_auth: true,
            idle_timeout: Duration::from_secs(600),
            tls_timeout: Duration::from_secs(30),
            implementation: "ferrymail".into(),
        }
    }
}

/// One message of a locked maildrop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildropEntry {
    /// UIDL unique-id: 1 to 70 octets in 0x21..=0x7E (RFC 1939 7), stable
    /// across sessions. Not checked here; the store must guarantee it.
    pub uid: String,
    /// Octets RETR sends before byte-stuffing, with CRLF line ends (RFC 1939
    /// 11); [`wire_size`] computes it from stored content.
    pub size: u64,
}

/// The driver's answer to [`Pop3Event::AuthRequested`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDone {
    /// Credentials good and the maildrop is now locked by this session;
    /// `user` and `tenant` are the account the policy named.
    Ok { maildrop: Vec<MaildropEntry>, user: String, tenant: Option<String> },
    /// Bad credentials; answered `-ERR [AUTH]` (RFC 2449 8.1.2).
    Fail,
    /// Credentials good but another session holds the lock; answered
    /// `-ERR [IN-USE]` (RFC 2449 8.1.1).
    InUse,
    /// The store or directory could not decide; answered `-ERR [SYS/TEMP]`
    /// (RFC 3206 4).
    Tempfail,
    /// Refused without a check: too many recent failures from this client
    /// or for this account. `-ERR [SYS/TEMP]` (RFC 3206 4: try again
    /// later, not a new password), counted as an error.
    Refused,
}

/// What [`Pop3Session::next_event`] needs from the driver. After every event
/// the driver writes [`Pop3Session::take_output`] to the socket.
#[derive(Clone, PartialEq, Eq)]
pub enum Pop3Event {
    /// All buffered input is consumed: read from the socket and `feed`.
    NeedInput,
    /// Output passed its high-water mark with commands still buffered (a
    /// pipelined flood of LIST, say): write it out, then call `next_event`
    /// again without reading.
    Flush,
    /// Verify the credentials, lock the maildrop, then call `auth_done`.
    AuthRequested {
        user: String,
        password: String,
        /// `"USER"` for USER/PASS, `"PLAIN"` for AUTH PLAIN.
        mechanism: String,
    },
    /// Load message `index` (0-based into the maildrop) and call
    /// `message_ready`, or `message_unavailable` if it cannot be read. The
    /// session does the line-end normalisation, byte-stuffing and, for TOP,
    /// the cut after `top_lines` body lines.
    MessageNeeded { index: usize, top_lines: Option<u32> },
    /// QUIT in TRANSACTION: remove these messages (0-based), release the
    /// lock and call `update_done` with whether all were removed.
    UpdateRequested { delete: Vec<usize> },
    /// `+OK Begin TLS negotiation` is queued: write it, run the TLS
    /// handshake (close on failure), then call `tls_established`.
    StartTls,
    /// Write the remaining output and close the connection; the session is
    /// finished and will only repeat this event.
    Close,
}

/// Hand-written so a logged event never shows a password.
impl std::fmt::Debug for Pop3Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NeedInput => f.write_str("NeedInput"),
            Self::Flush => f.write_str("Flush"),
            Self::AuthRequested { user, mechanism, .. } => f
                .debug_struct("AuthRequested")
                .field("user", user)
                .field("password", &"<redacted>")
                .field("mechanism", mechanism)
                .finish(),
            Self::MessageNeeded { index, top_lines } => {
                f.debug_struct("MessageNeeded").field("index", index).field("top_lines", top_lines).finish()
            }
            Self::UpdateRequested { delete } => f.debug_struct("UpdateRequested").field("delete", delete).finish(),
            Self::StartTls => f.write_str("StartTls"),
            Self::Close => f.write_str("Close"),
        }
    }
}
