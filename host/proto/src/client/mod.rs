//! The SMTP client side, sans-IO: what ferrymail says when it hands a
//! message to another server, and how it reads the answers.
//!
//! - [`session`]: the state machine an outbound connection drives
//! - [`transaction`]: envelope, per-recipient outcomes, dot-stuffing
//! - [`seven_bit`]: 8-bit content made 7-bit for servers without 8BITMIME
//! - [`reply`]: reply parsing (RFC 5321 4.2)
//! - [`extensions`]: the EHLO keywords we use

pub mod extensions;
pub mod reply;
pub mod session;
pub mod seven_bit;
#[cfg(test)]
mod tests;
pub mod transaction;

pub use extensions::Extensions;
pub use reply::{ReplyError, ReplyParser};
pub use session::{ClientEvent, ClientSession, Phase, Timeouts, TlsMode};
pub use transaction::{Outcome, RcptResult, Transaction, classify, classify_rcpt, dot_stuff};
