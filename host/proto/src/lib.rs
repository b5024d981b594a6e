//! Sans-IO protocol state machines for ferrymail.
//!
//! Each session is fed bytes and yields events; replies accumulate in an
//! output buffer the driver drains. Where a decision is needed (policy, store,
//! authentication), the session stops with an event and does nothing more until
//! the decision is fed back, which keeps pipelined commands in order and keeps
//! I/O, wasm and storage out of this crate. Every RFC rule enforced here has a
//! unit test naming its section.
//!
//! # Layout
//! - [`smtp`]: the SMTP server session (RFC 5321 and extensions)
//! - [`client`]: the SMTP client session (outbound delivery)
//! - [`pop3`]: the POP3 server session (RFC 1939, RFC 2449)
//! - [`imap`]: the IMAP4rev1 server session (RFC 3501 and extensions)
//! - [`line`]: CRLF line splitting with a length limit, shared by both
//! - [`sasl`]: SASL PLAIN/LOGIN decoding, shared by both
//! - [`timer`]: whole-phase deadlines; every session takes the clock as
//!   an input (`next_event(now)`, `poll_timeout()`, `handle_timeout(now)`)

pub mod client;
pub mod imap;
pub mod line;
pub mod pop3;
pub mod sasl;
pub mod smtp;
pub mod timer;
