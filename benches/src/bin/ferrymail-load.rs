//! ferrymail-load: the same client for ferrymail and its peers.
//!
//! ```text
//! ferrymail-load smtp --port 20025 --sessions 20 --messages 20000 --size 2048 \
//!     --rcpt bench1@bench.test,bench2@bench.test --count-pop3 bench1@bench.test:pw,...
//! ferrymail-load pop3 --port 20110 --user imap10k@bench.test --password pw
//! ferrymail-load imap --port 1143 --user imap10k --password benchpass
//! ferrymail-load idle --port 20025 --connections 10000 --ehlo --watch-pid PID
//! ferrymail-load count --count-pop3 u:p --pop3-port 20110
//! ```
//! Every mode prints one JSON line (also appended to `--json-out`).

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use ferrymail_benches::counter::{self, Counter};
use ferrymail_benches::fetch::{self, FetchOptions};
use ferrymail_benches::idle::{self, IdleOptions};
use ferrymail_benches::smtp::{self, SmtpOptions};
use ferrymail_benches::{rss, stats};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "ferrymail-load", about = "Load generator for SMTP, POP3 and IMAP servers (loopback benchmarks)")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// N concurrent SMTP sessions sending M messages of S octets.
    Smtp(SmtpArgs),
    /// POP3: log in, STAT+LIST, RETR every message.
    Pop3(FetchArgs),
    /// IMAP: LOGIN, SELECT, FETCH metadata, FETCH every body.
    Imap(FetchArgs),
    /// Hold many idle connections and report the server's memory per connection.
    Idle(IdleArgs),
    /// Print the delivered-message counter.
    Count(CountArgs),
    /// Print an argon2id PHC string of a password (read from stdin) with
    /// ferrymail's parameters (the argon2 crate's defaults), so a peer's
    /// password file can make logins cost the same work as ferrymail's.
    Phc,
}

#[derive(Args)]
struct Common {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    /// Seconds to wait for any single reply.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Server process to watch: peak RSS (of it and its children) is reported.
    #[arg(long)]
    watch_pid: Option<u32>,
    /// Free-form label copied into the result.
    #[arg(long, default_value = "")]
    label: String,
    /// Append the JSON result line to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

impl Common {
    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }
}

#[derive(Args)]
struct CountArgs {
    /// user:password pairs whose POP3 STAT counts are summed.
    #[arg(long)]
    count_pop3: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    pop3_host: String,
    #[arg(long, default_value_t = 110)]
    pop3_port: u16,
    /// Maildir roots whose new/ and cur/ files are counted.
    #[arg(long, value_delimiter = ',')]
    count_maildirs: Vec<PathBuf>,
    /// Shell command printing the count.
    #[arg(long)]
    count_cmd: Option<String>,
}

impl CountArgs {
    fn counter(&self) -> Result<Option<Counter>> {
        let chosen = [self.count_pop3.is_some(), !self.count_maildirs.is_empty(), self.count_cmd.is_some()];
        if chosen.iter().filter(|&&c| c).count() > 1 {
            bail!("choose one of --count-pop3, --count-maildirs, --count-cmd");
        }
        Ok(if let Some(spec) = &self.count_pop3 {
            Some(Counter::Pop3 {
                addr: format!("{}:{}", self.pop3_host, self.pop3_port),
                users: counter::parse_users(spec)?,
            })
        } else if !self.count_maildirs.is_empty() {
            Some(Counter::Maildirs(self.count_maildirs.clone()))
        } else {
            self.count_cmd.clone().map(Counter::Command)
        })
    }
}

#[derive(Args)]
struct SmtpArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Body octets per message (headers add ~230).
    #[arg(long, default_value_t = 2048)]
    size: usize,
    /// Recipients; session i sends to recipient i mod n.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "bench1@bench.test,bench2@bench.test,bench3@bench.test,bench4@bench.test"
    )]
    rcpt: Vec<String>,
    #[arg(long, default_value = "loadgen@client.test")]
    from: String,
    #[arg(long, default_value = "client.test")]
    helo: String,
    /// A new connection (and EHLO, QUIT) for every message.
    #[arg(long)]
    conn_per_msg: bool,
    /// Never pipeline, even when PIPELINING is offered.
    #[arg(long)]
    no_pipelining: bool,
    #[command(flatten)]
    count: CountArgs,
    /// More ports of the same service (the other nodes of a cluster, on
    /// --host): session i connects to the i-th of --port and these, mod n.
    #[arg(long, value_delimiter = ',')]
    also_ports: Vec<u16>,
    /// Seconds to wait for the delivered counter to catch up.
    #[arg(long, default_value_t = 900.0)]
    deliver_timeout: f64,
}

#[derive(Args)]
struct FetchArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    /// IMAP only.
    #[arg(long, default_value = "INBOX")]
    mailbox: String,
}

#[derive(Args)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Say EHLO after the greeting (SMTP).
    #[arg(long)]
    ehlo: bool,
    /// Seconds to keep the connections open after the measurement.
    #[arg(long, default_value_t = 2.0)]
    hold_secs: f64,
    #[arg(long, default_value_t = 200)]
    parallel: usize,
}

#[tokio::main]
async fn main() {
    match run(Cli::parse()).await {
        Ok(true) => {}
        // Finished, but some messages failed or were lost: the JSON says which.
        Ok(false) => std::process::exit(2),
        Err(e) => {
            eprintln!("ferrymail-load: {e:#}");
            std::process::exit(1);
        }
    }
}

async fn run(cli: Cli) -> Result<bool> {
    let ok = match cli.mode {
        Mode::Smtp(a) => smtp_mode(a).await?,
        Mode::Pop3(a) => fetch_mode(a, false).await?,
        Mode::Imap(a) => fetch_mode(a, true).await?,
        Mode::Idle(a) => {
            let opts = IdleOptions {
                addr: a.common.addr(),
                connections: a.connections,
                ehlo: a.ehlo,
                hold: Duration::from_secs_f64(a.hold_secs),
                parallel: a.parallel,
                pid: a.common.watch_pid,
                timeout: a.common.timeout(),
            };
            let mut v = idle::run(opts).await?;
            v["label"] = json!(a.common.label);
            let ok = v["failed"] == json!(0);
            stats::emit(&v, a.common.json_out.as_deref())?;
            ok
        }
        Mode::Phc => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let salt = argon2::password_hash::SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            let phc = argon2::PasswordHasher::hash_password(
                &argon2::Argon2::default(),
                password.trim_end_matches(['\r', '\n']).as_bytes(),
                &salt,
            )
            .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
            println!("{phc}");
            true
        }
        Mode::Count(a) => {
            let Some(counter) = a.counter()? else { bail!("no counter given") };
            println!("{}", counter.count().await?);
            true
        }
    };
    Ok(ok)
}

async fn smtp_mode(a: SmtpArgs) -> Result<bool> {
    let counter = a.count.counter()?;
    let base = match &counter {
        Some(c) => Some(c.count().await?),
        None => None,
    };
    let watch = a.common.watch_pid.map(rss::Watch::start);
    let run_tag = format!("{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());
    let addrs: Vec<String> =
        std::iter::once(a.common.addr()).chain(a.also_ports.iter().map(|p| format!("{}:{p}", a.common.host))).collect();
    let opts = SmtpOptions {
        addrs: addrs.clone(),
        sessions: a.sessions,
        messages: a.messages,
        size: a.size,
        rcpts: a.rcpt.clone(),
        from: a.from.clone(),
        helo: a.helo.clone(),
        persistent: !a.conn_per_msg,
        pipelining: !a.no_pipelining,
        timeout: a.common.timeout(),
        run_tag,
    };
    let started = Instant::now();
    let (mut outcome, accept) = smtp::run(opts).await?;
    let accept_s = accept.as_secs_f64();
    outcome.latencies.sort_unstable();
    let mut v = json!({
        "mode": "smtp", "label": a.common.label, "addr": addrs.join(","), "messages": a.messages,
        "sessions": a.sessions, "size": a.size, "persistent": !a.conn_per_msg, "pipelined": outcome.pipelined,
        "recipients": a.rcpt.len(), "ok": outcome.ok, "temp_fail": outcome.temp_fail, "perm_fail": outcome.perm_fail,
        "lost": outcome.lost, "accept_s": stats::round3(accept_s),
        "accept_msgs_per_s": stats::rate(outcome.ok as f64, accept_s),
        "bytes_per_s": stats::rate(outcome.bytes as f64, accept_s),
        "p50_ms": stats::percentile_ms(&outcome.latencies, 50.0),
        "p99_ms": stats::percentile_ms(&outcome.latencies, 99.0),
        "errors": outcome.errors,
    });
    let mut all_ok = outcome.ok == a.messages as u64;
    if let (Some(c), Some(base)) = (&counter, base) {
        let target = base + outcome.ok;
        let (n, asked) =
            c.wait_for(target, Duration::from_secs_f64(a.deliver_timeout), Duration::from_millis(200)).await?;
        let deliver_s = asked.duration_since(started).as_secs_f64().max(accept_s);
        let delivered = n.saturating_sub(base);
        v["delivered"] = json!(delivered);
        v["deliver_s"] = json!(stats::round3(deliver_s));
        v["deliver_msgs_per_s"] = json!(stats::rate(delivered as f64, deliver_s));
        all_ok &= delivered >= outcome.ok;
    }
    if let Some(w) = watch {
        let peak = w.finish().await;
        v["rss_peak_kb"] = json!(peak.rss_kb);
        v["pss_peak_kb"] = json!(peak.pss_kb);
    }
    v["all_ok"] = json!(all_ok);
    stats::emit(&v, a.common.json_out.as_deref())?;
    Ok(all_ok)
}

async fn fetch_mode(a: FetchArgs, imap: bool) -> Result<bool> {
    let opts = FetchOptions {
        addr: a.common.addr(),
        user: a.user.clone(),
        password: a.password.clone(),
        timeout: a.common.timeout(),
    };
    let watch = a.common.watch_pid.map(rss::Watch::start);
    let result = if imap { fetch::imap(&opts, &a.mailbox).await } else { fetch::pop3(&opts).await };
    let mut v = match result {
        Ok(v) => v,
        Err(e) if imap && is_refused(&e) => {
            bail!("{}: connection refused (is IMAP enabled on that port?): {e:#}", opts.addr)
        }
        Err(e) => return Err(e),
    };
    v["label"] = json!(a.common.label);
    v["addr"] = json!(opts.addr);
    if let Some(w) = watch {
        let peak = w.finish().await;
        v["rss_peak_kb"] = json!(peak.rss_kb);
        v["pss_peak_kb"] = json!(peak.pss_kb);
    }
    stats::emit(&v, a.common.json_out.as_deref())?;
    Ok(true)
}

fn is_refused(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}
