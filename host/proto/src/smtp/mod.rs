//! The SMTP server side, sans-IO.
//!
//! - [`session`]: the state machine a listener drives, its events and timers
//! - `handlers`: one handler per command; `auth`: the AUTH exchange
//! - [`command`]: one command line to a typed command (smtp-proto's grammar)
//! - [`data`]: DATA content: end detection, dot-unstuffing, limits
//! - [`replies`]: replies on the wire, and the session's reply tables
//! - [`trace`]: `Received:` and plugin headers, the hop count

mod auth;
pub mod command;
pub mod data;
mod handlers;
pub mod replies;
pub mod session;
#[cfg(test)]
mod tests;
pub mod trace;

pub use command::MailParams;
pub use session::{AuthResult, Ending, SmtpConfig, SmtpEvent, SmtpSession};
