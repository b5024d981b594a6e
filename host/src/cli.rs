//! The command line.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "ferrymail", version, about = "A plugin-based mail server: SMTP, POP3, queue and delivery, policy in WebAssembly")]
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
