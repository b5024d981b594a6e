//! ferrymail: a mail server in one binary, with every policy decision made
//! by sandboxed WebAssembly plugins.
//!
//! # Layout
//! - [`config`]: figment loading of defaults, file and environment
//! - [`server`]: start-up, signals, reload; [`state`]: what listeners share
//! - [`listener`]: the shared accept loop; [`net`]: plain/TLS connections
//! - [`throttle`]: per-client connection limits, failed-login and probe counting
//! - [`smtp`], [`pop3`], [`imap`]: the protocol drivers over `ferrymail-proto`
//! - [`delivery`]: the delivery agent (routing, mailbox filing, queueing)
//! - [`outbound`]: the queue scheduler, SMTP client, retries and DSNs
//! - [`policy`]: how the `Policy` is built (the plugin chain over the store)
//! - [`mailauth`]: DKIM signing keys and signatures, SPF/DKIM/DMARC checks
//! - [`plugin_test`]: `ferrymail plugin test`, a plugin through a scripted session
//! - [`control`]: the CLI ↔ server control socket
//! - [`metrics`]: the Prometheus endpoint; [`trace`]: the per-transaction decision trace
//! - [`dns`], [`tls`], [`passwords`], [`logging`]: infrastructure

pub mod cli;
pub mod config;
pub mod control;
pub mod delivery;
pub mod dns;
pub mod imap;
pub mod listener;
pub mod logging;
pub mod mailauth;
pub mod metrics;
pub mod net;
pub mod outbound;
pub mod passwords;
pub mod plugin_new;
pub mod plugin_test;
pub mod policy;
pub mod pop3;
pub mod sendmail;
pub mod server;
pub mod service_manager;
pub mod smtp;
pub mod state;
pub mod sweeps;
pub mod throttle;
pub mod tls;
pub mod trace;
