//! The command line.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ferrymail",
    version,
    about = "A plugin-based mail server: SMTP, POP3, queue and delivery, policy in WebAssembly"
)]
pub struct Cli {
    /// Configuration file (TOML); defaults < this file < FERRYMAIL_* variables.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Ask the running server to reload its configuration and plugins (as SIGHUP does).
    Reload,
    /// Check plugin components; reload the running server's chains.
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
    },
    /// The store itself: schema migrations, moving an installation to PostgreSQL.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Inspect and act on the delivery queue.
    Queue {
        #[command(subcommand)]
        action: QueueAction,
    },
    /// Why a message was accepted, refused or deferred: each plugin's answer
    /// and time, each command's reply, each delivery attempt.
    Trace {
        /// A message id (`msg=` in the logs), session id (`session=`) or queue id.
        id: String,
        /// One line of JSON (a list of records) instead of the timeline.
        #[arg(long)]
        json: bool,
    },
    /// Submit a message from stdin with sendmail's options (-t -i -f -F …);
    /// also what the binary does when invoked as `sendmail`.
    #[command(disable_help_flag = true)]
    Sendmail(Box<crate::sendmail::SendmailArgs>),
    /// List the queue as `mailq` does (also invoked as `mailq`).
    Mailq,
    /// DKIM signing keys (stored in data_dir/dkim).
    Dkim {
        #[command(subcommand)]
        action: DkimAction,
    },
    /// TLS certificates for development.
    Cert {
        #[command(subcommand)]
        action: CertAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum DkimAction {
    /// Generate a key for DOMAIN and print the DNS TXT record to publish.
    /// A domain's first key signs at once; a later one (a rotation) only
    /// after `dkim activate`, once its record is published.
    Keygen {
        domain: String,
        /// The selector (default fmYYYYMM).
        #[arg(long)]
        selector: Option<String>,
        #[arg(long, value_enum, default_value = "rsa2048")]
        algorithm: crate::mailauth::keys::Algorithm,
    },
    /// Every stored key: domain, selector, algorithm, whether it signs now, its record.
    List,
    /// Sign DOMAIN's mail with SELECTOR's key from now on.
    Activate { domain: String, selector: String },
}

#[derive(Debug, Subcommand)]
pub enum CertAction {
    /// Write a self-signed certificate and key for HOSTNAME (PEM: NAME.crt,
    /// NAME.key) and print the [tls] lines that use them. For development:
    /// clients that verify certificates will refuse it.
    SelfSigned {
        #[arg(long)]
        hostname: String,
        /// Directory for the two files (created if missing).
        #[arg(long, value_name = "DIR", default_value = ".")]
        out_dir: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Bring the configured store's schema up to this build's version (the
    /// server also does this when it starts); says what was applied.
    Migrate,
    /// Copy a sled installation (stopped) into an empty PostgreSQL database:
    /// accounts, mailboxes, messages with their flags, and the queue.
    Copy {
        /// The sled store: `sled:PATH` (a data_dir, or its store directory).
        #[arg(long, value_name = "sled:PATH")]
        from: crate::control::store_copy::Location,
        /// The database: `postgres:URL` (its password from [store] when the URL has none).
        #[arg(long, value_name = "postgres:URL")]
        to: crate::control::store_copy::Location,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// Every queued message: id, age, next try, attempts, sender, recipients, last reply.
    List {
        /// One line of JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// One message in detail.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Try now: one message, or every message without an id.
    Flush { id: Option<String> },
    /// Remove a message without telling the sender.
    Delete { id: String },
    /// Give up on a message now and return it to the sender.
    Bounce { id: String },
}

#[derive(Debug, Subcommand)]
pub enum PluginAction {
    /// Start a plugin project in a new directory NAME: the host's WIT, a
    /// world exporting exactly --hooks (each stubbed to "no opinion"), a
    /// Makefile (`make` builds NAME.wasm), a README and a sample transcript.
    New {
        name: String,
        #[arg(long, value_enum)]
        lang: crate::plugin_new::Lang,
        /// Comma-separated: connect, helo, auth, mail, rcpt, data, vrfy,
        /// expn, route, retry, events.
        #[arg(long, value_enum, value_delimiter = ',', required = true)]
        hooks: Vec<crate::plugin_new::Hook>,
        /// Where to create it (default: ./NAME).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Report which hooks a component implements and whether it matches this
    /// host's WIT version (exit status 1 when it would not load).
    Check { file: PathBuf },
    /// Load every plugin the configuration names, as `serve` would, and list
    /// each with its hooks.
    List,
    /// Ask the running server to reload its configuration and plugins (as SIGHUP does).
    Reload,
    /// Run a plugin through a scripted SMTP session (docs/plugin-test.md)
    /// with the server's own code in this process; no server, no build.
    /// Exit status 1 and a diff when an expectation fails. `--config`
    /// (the server's) gives the chain, tenants and the plugin's config.
    Test {
        /// The component under test.
        #[arg(required_unless_present = "record")]
        file: Option<PathBuf>,
        /// The transcript: commands, replies, headers, kv expectations.
        #[arg(long, value_name = "FILE", required_unless_present = "record")]
        transcript: Option<PathBuf>,
        /// Run it in this tenant's chain (a `[tenants.T]` of the config,
        /// or a domain, which becomes a tenant of its own).
        #[arg(long, value_name = "T")]
        tenant: Option<String>,
        /// Its name in the chain and kv namespace (default: the file name
        /// without .wasm); a `[plugins.NAME]` of the config keeps its
        /// config, grants and failure policy.
        #[arg(long)]
        name: Option<String>,
        /// Instead: relay one live SMTP session from `--listen` to `--to`
        /// and write it to FILE as a transcript to replay.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["file", "transcript", "tenant", "name"])]
        record: Option<PathBuf>,
        /// With --record: where the client connects.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2526", requires = "record")]
        listen: std::net::SocketAddr,
        /// With --record: the live server (default: the config's first
        /// smtp.listen address).
        #[arg(long, value_name = "ADDR", requires = "record")]
        to: Option<std::net::SocketAddr>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account; the password is read from the first line of stdin.
    Add {
        address: String,
        /// Read the password from stdin (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Delete an account and its mail.
    Del { address: String },
    /// List accounts.
    List,
    /// Change a password, read from the first line of stdin.
    Passwd {
        address: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration and print the effective settings as TOML.
    Check,
}
