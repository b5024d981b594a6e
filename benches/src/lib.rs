//! The engine of `ferrymail-load`, a load generator that speaks plain SMTP,
//! POP3 and IMAP to any server, so ferrymail and its peers (Postfix, Haraka,
//! Dovecot) are measured with the same client.
//!
//! # Layout
//! - [`wire`]: buffered line/reply reading shared by the three protocols
//! - [`message`]: the test messages (headers + a body of a given size)
//! - [`smtp`]: N concurrent sessions sending M messages, PIPELINING when offered
//! - [`fetch`]: POP3 (login, STAT+LIST, RETR all) and IMAP (LOGIN, SELECT, FETCH all)
//! - [`idle`]: many idle connections, to measure the memory a server holds for them
//! - [`counter`]: "delivered" counters (POP3 STAT, Maildir files, a shell command)
//! - [`rss`]: peak resident memory of the server process (tree) during a run
//! - [`stats`]: percentiles and the JSON result line

pub mod counter;
pub mod fetch;
pub mod idle;
pub mod message;
pub mod rss;
pub mod smtp;
pub mod stats;
pub mod wire;
