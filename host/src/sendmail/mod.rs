//! `sendmail` and `mailq` for local programs (cron, PHP's `mail()`, git,
//! mailutils): the options they use, the message on stdin, handed to the
//! running server over the control socket — or, when none runs, left in
//! `data_dir/maildrop` for the server to take when it starts, so a message
//! is never lost because the server was down. The binary behaves this way
//! when invoked as `sendmail` or `mailq` (symlinks), as Postfix's does.

pub mod message;
pub mod pickup;

use crate::config::Config;
use crate::control::{self, Request};
use anyhow::Context;
use base64::Engine;
use clap::Parser;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// sysexits.h: what cron and mail programs understand.
pub const EX_USAGE: u8 = 64;
pub const EX_DATAERR: u8 = 65;
pub const EX_UNAVAILABLE: u8 = 69;
pub const EX_SOFTWARE: u8 = 70;
pub const EX_TEMPFAIL: u8 = 75;

/// Where `sendmail`/`mailq` read the configuration when neither `-C` nor
/// `--config` names one (the systemd unit's file).
pub const SYSTEM_CONFIG: &str = "/etc/ferrymail/ferrymail.toml";

/// The sendmail command line as cron, PHP, git and mailutils use it.
/// Options that only tune classic sendmail's delivery (-oem, -odb, -v, -N,
/// -B, -R, -V, -n, -U) are accepted and have no effect.
#[derive(Debug, Clone, Parser)]
#[command(name = "sendmail", disable_help_flag = true, disable_version_flag = true)]
pub struct SendmailArgs {
    /// Recipients from the To, Cc and Bcc fields (added to the arguments); Bcc is removed.
    #[arg(short = 't')]
    pub extract: bool,
    /// A line with a single "." does not end the message (same as -oi).
    #[arg(short = 'i')]
    pub ignore_dots: bool,
    /// Classic sendmail options: "i" is -i, the rest are ignored.
    #[arg(short = 'o', value_name = "OPTION")]
    pub options: Vec<String>,
    /// The envelope sender (default: the local user at our hostname).
    #[arg(short = 'f', short_alias = 'r', value_name = "ADDRESS")]
    pub sender: Option<String>,
    /// The full name in a From field that sendmail adds.
    #[arg(short = 'F', value_name = "NAME")]
    pub full_name: Option<String>,
    /// Mode: m (deliver, the default) or p (list the queue, as mailq).
    #[arg(short = 'b', value_name = "MODE", default_value = "m")]
    pub mode: String,
    /// The ferrymail configuration file.
    #[arg(short = 'C', value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(short = 'v', action = clap::ArgAction::Count, hide = true)]
    pub verbose: u8,
    #[arg(short = 'N', hide = true)]
    pub dsn_notify: Option<String>,
    #[arg(short = 'B', hide = true)]
    pub body_type: Option<String>,
    #[arg(short = 'R', hide = true)]
    pub dsn_return: Option<String>,
    #[arg(short = 'V', hide = true)]
    pub envelope_id: Option<String>,
    #[arg(short = 'n', hide = true)]
    pub no_alias: bool,
    #[arg(short = 'U', hide = true)]
    pub initial_submission: bool,
    /// Recipients (comma-separated lists allowed).
    pub recipients: Vec<String>,
}

/// The configuration for a `sendmail`/`mailq` run: an explicit file, else
/// the system one when it exists, else the defaults.
pub fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    let system = Path::new(SYSTEM_CONFIG);
    let file = explicit.or_else(|| system.is_file().then_some(system));
    Ok(Config::load(file)?)
}

/// `sendmail …`: the exit status as sysexits.h defines it, with one line
/// on stderr for anything but success.
pub fn run(args: SendmailArgs, config_path: Option<&Path>) -> u8 {
    let config = match load_config(args.config.as_deref().or(config_path)) {
        Ok(c) => c,
        Err(e) => return fail(EX_SOFTWARE, &format!("{e:#}")),
    };
    match args.mode.as_str() {
        "m" => {}
        "p" => return mailq(&config),
        other => return fail(EX_USAGE, &format!("mode -b{other} is not supported (only -bm and -bp)")),
    }
    let mut input = Vec::new();
    // One octet past the limit is enough to know it is too big.
    let limit = config.submission.max_message_size as u64 + 1;
    if let Err(e) = std::io::stdin().lock().take(limit).read_to_end(&mut input) {
        return fail(EX_SOFTWARE, &format!("reading the message: {e}"));
    }
    if input.len() as u64 >= limit {
        return fail(EX_DATAERR, "the message exceeds submission.max_message_size");
    }
    let ignore_dots = args.ignore_dots || args.options.iter().any(|o| o == "i");
    let content = message::read_input(&input, !ignore_dots);
    let sender = args.sender.clone().unwrap_or_else(|| format!("{}@{}", local_user(), config.hostname));
    let opts = message::Options {
        extract_recipients: args.extract,
        sender: sender.clone(),
        full_name: args.full_name.clone(),
        hostname: config.hostname.clone(),
        unique: format!("{:x}.{}", ferrymail_store::now_secs(), std::process::id()),
        date: chrono::Local::now().to_rfc2822(),
    };
    let prepared = match message::prepare(&content, &args.recipients, &opts) {
        Ok(p) => p,
        Err(e @ message::PrepareError::NoRecipients) => return fail(EX_USAGE, &e.to_string()),
        Err(e) => return fail(EX_DATAERR, &e.to_string()),
    };
    let submission = pickup::Submission {
        sender,
        recipients: prepared.recipients,
        content: base64::engine::general_purpose::STANDARD.encode(&prepared.content),
        uid: None,
    };
    match hand_over(&config, submission) {
        Ok(()) => 0,
        Err((code, why)) => fail(code, &why),
    }
}

/// To the running server; to the maildrop when none runs.
fn hand_over(config: &Config, submission: pickup::Submission) -> Result<(), (u8, String)> {
    let request = Request::Submit(submission);
    match control::client::to_server(config, &request) {
        Ok(Some(response)) if response.ok => Ok(()),
        Ok(Some(response)) => {
            let why = response.output.join("; ");
            // The server says which: "temporary: …" or "permanent: …".
            let code = if why.starts_with("temporary") { EX_TEMPFAIL } else { EX_DATAERR };
            Err((code, why))
        }
        Ok(None) => {
            let Request::Submit(submission) = request else { unreachable!() };
            write_maildrop(config, &submission).map_err(|e| (EX_TEMPFAIL, format!("{e:#}")))
        }
        Err(e) => Err((EX_TEMPFAIL, format!("{e:#}"))),
    }
}

/// Durable before we return 0: written under a temporary name, synced,
/// renamed, and the directory synced (the name is part of the data).
fn write_maildrop(config: &Config, submission: &pickup::Submission) -> anyhow::Result<()> {
    let dir = pickup::maildrop_dir(&config.data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = format!("{:x}.{}.{:x}", ferrymail_store::now_secs(), std::process::id(), rand::random::<u32>());
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(&serde_json::to_vec(submission)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(format!("{name}.msg")))?;
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(())
}

/// `mailq` / `sendmail -bp`: the queue table, or "Mail queue is empty".
pub fn mailq(config: &Config) -> u8 {
    match control::client::run(config, &Request::QueueList { json: false }) {
        Ok(response) if response.ok => {
            let out = std::io::stdout();
            let mut out = out.lock();
            if response.output.last().is_some_and(|l| l == "0 entries") {
                let _ = writeln!(out, "Mail queue is empty");
            } else {
                for line in response.output {
                    let _ = writeln!(out, "{line}");
                }
            }
            0
        }
        Ok(response) => fail(EX_UNAVAILABLE, &response.output.join("; ")),
        Err(e) => fail(EX_UNAVAILABLE, &format!("{e:#}")),
    }
}

/// The name of the user running us (the default sender's local part).
fn local_user() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid{uid}"),
    }
}

fn fail(code: u8, why: &str) -> u8 {
    eprintln!("sendmail: {}", why.replace('\n', " "));
    code
}
