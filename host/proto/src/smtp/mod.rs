//! The SMTP server side, sans-IO.
//!
//! - [`session`]: the state machine a listener drives
//! - [`command`]: one command line to a typed command (smtp-proto's grammar)
//! - [`data`]: DATA content: end detection, dot-unstuffing, limits

pub mod command;
pub mod data;
pub mod session;
#[cfg(test)]
mod tests;

pub use command::MailParams;
pub use session::{AuthResult, SmtpConfig, SmtpEvent, SmtpSession, Waiting};
