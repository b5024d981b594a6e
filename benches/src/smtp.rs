//! The SMTP workload: `sessions` concurrent clients share `messages`
//! messages; each message goes to one recipient (session i uses recipient
//! i mod n, as one smtp-source process per recipient does). With
//! `persistent`, a session sends all its messages over one connection;
//! otherwise every message gets its own connection, EHLO and QUIT.

use crate::message;
use crate::wire::{SmtpReply, Wire};
use anyhow::{Result, bail};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SmtpOptions {
    /// Servers to send to; session i uses `addrs[i mod n]` (several nodes
    /// of one cluster share the load as a DNS round robin would).
    pub addrs: Vec<String>,
    pub sessions: usize,
    pub messages: usize,
    /// Body octets (headers come on top, ~200 octets).
    pub size: usize,
    pub rcpts: Vec<String>,
    pub from: String,
    pub helo: String,
    pub persistent: bool,
    /// Use PIPELINING (RFC 2920) when the server offers it.
    pub pipelining: bool,
    pub timeout: Duration,
    /// Distinguishes Message-IDs of separate runs.
    pub run_tag: String,
}

/// What the clients saw; "ok" means the final reply after DATA was 2xx.
#[derive(Debug, Default)]
pub struct SmtpOutcome {
    pub ok: u64,
    pub temp_fail: u64,
    pub perm_fail: u64,
    /// Messages never answered: connection errors, timeouts.
    pub lost: u64,
    /// Payload octets of acknowledged messages.
    pub bytes: u64,
    /// Final dot to final reply, acknowledged messages only.
    pub latencies: Vec<Duration>,
    pub pipelined: bool,
    pub errors: Vec<String>,
}

impl SmtpOutcome {
    fn merge(&mut self, o: SmtpOutcome) {
        self.ok += o.ok;
        self.temp_fail += o.temp_fail;
        self.perm_fail += o.perm_fail;
        self.lost += o.lost;
        self.bytes += o.bytes;
        self.latencies.extend(o.latencies);
        self.pipelined |= o.pipelined;
        for e in o.errors {
            if self.errors.len() < 10 {
                self.errors.push(e);
            }
        }
    }
}

pub fn split(total: usize, parts: usize) -> Vec<usize> {
    let (base, extra) = (total / parts, total % parts);
    (0..parts).map(|i| base + usize::from(i < extra)).collect()
}

pub async fn run(opts: SmtpOptions) -> Result<(SmtpOutcome, Duration)> {
    if opts.rcpts.is_empty() || opts.sessions == 0 || opts.addrs.is_empty() {
        bail!("need at least one recipient, one session and one server");
    }
    let opts = Arc::new(opts);
    let body = Arc::new(message::body(opts.size));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, quota) in split(opts.messages, opts.sessions).into_iter().enumerate() {
        let (opts, body) = (opts.clone(), body.clone());
        tasks.push(tokio::spawn(async move { session(&opts, &body, i, quota).await }));
    }
    let mut total = SmtpOutcome::default();
    for t in tasks {
        total.merge(t.await?);
    }
    Ok((total, start.elapsed()))
}

/// Errors after which a session gives up: a server that keeps dropping us
/// is not going to be measured meaningfully.
const MAX_CONNECTION_ERRORS: u32 = 10;

async fn session(opts: &SmtpOptions, body: &[u8], index: usize, quota: usize) -> SmtpOutcome {
    let mut out = SmtpOutcome::default();
    let rcpt = &opts.rcpts[index % opts.rcpts.len()];
    let mut conn: Option<(Wire, bool)> = None;
    let mut errors = 0;
    let mut seq = 0;
    while seq < quota {
        if conn.is_none() {
            match open(opts, &opts.addrs[index % opts.addrs.len()]).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    note_error(&mut out, &mut errors, e);
                    if errors >= MAX_CONNECTION_ERRORS {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let (wire, pipelining) = conn.as_mut().expect("connected above");
        out.pipelined |= *pipelining;
        let id = format!("{}.{index}.{seq}@ferrymail-load", opts.run_tag);
        let payload = message::data_payload(&opts.from, rcpt, &id, body);
        match transaction(wire, *pipelining, &opts.from, rcpt, &payload).await {
            Ok((reply, latency)) => {
                seq += 1;
                match reply.code {
                    200..=299 => {
                        out.ok += 1;
                        out.bytes += payload.len() as u64;
                        out.latencies.push(latency);
                    }
                    400..=499 => out.temp_fail += 1,
                    _ => out.perm_fail += 1,
                }
                if reply.code == 421 || !opts.persistent {
                    let (mut wire, _) = conn.take().expect("connected");
                    if reply.code != 421 {
                        let _ = quit(&mut wire).await;
                    }
                }
            }
            Err(e) => {
                // The message's fate is unknown to us: it counts as lost
                // and is not retried (a retry could double-deliver).
                seq += 1;
                out.lost += 1;
                conn = None;
                note_error(&mut out, &mut errors, e);
                if errors >= MAX_CONNECTION_ERRORS {
                    break;
                }
            }
        }
    }
    out.lost += (quota - seq) as u64;
    if let Some((mut wire, _)) = conn {
        let _ = quit(&mut wire).await;
    }
    out
}

fn note_error(out: &mut SmtpOutcome, errors: &mut u32, e: anyhow::Error) {
    *errors += 1;
    if out.errors.len() < 10 {
        out.errors.push(format!("{e:#}"));
    }
}

async fn open(opts: &SmtpOptions, addr: &str) -> Result<(Wire, bool)> {
    let mut wire = Wire::connect(addr, opts.timeout).await?;
    let greeting = wire.smtp_reply().await?;
    if greeting.code != 220 {
        bail!("greeting: {} {}", greeting.code, greeting.lines.join(" "));
    }
    wire.send(format!("EHLO {}\r\n", opts.helo).as_bytes()).await?;
    let ehlo = wire.smtp_reply().await?;
    if ehlo.code != 250 {
        bail!("EHLO: {} {}", ehlo.code, ehlo.lines.join(" "));
    }
    let offers = ehlo.lines.iter().any(|l| l.eq_ignore_ascii_case("PIPELINING"));
    Ok((wire, offers && opts.pipelining))
}

async fn quit(wire: &mut Wire) -> Result<()> {
    wire.send(b"QUIT\r\n").await?;
    wire.smtp_reply().await?;
    Ok(())
}

/// One MAIL/RCPT/DATA transaction; returns the final reply (or the first
/// refusal) and the time from the end of the content to that reply.
async fn transaction(
    wire: &mut Wire,
    pipelining: bool,
    from: &str,
    rcpt: &str,
    payload: &[u8],
) -> Result<(SmtpReply, Duration)> {
    let mail = format!("MAIL FROM:<{from}>\r\n");
    let rcpt = format!("RCPT TO:<{rcpt}>\r\n");
    let (mail_r, rcpt_r, data_r) = if pipelining {
        wire.send(format!("{mail}{rcpt}DATA\r\n").as_bytes()).await?;
        (wire.smtp_reply().await?, wire.smtp_reply().await?, wire.smtp_reply().await?)
    } else {
        wire.send(mail.as_bytes()).await?;
        let m = wire.smtp_reply().await?;
        if !m.is_ok() {
            return Ok((m, Duration::ZERO));
        }
        wire.send(rcpt.as_bytes()).await?;
        let r = wire.smtp_reply().await?;
        if !r.is_ok() {
            reset(wire).await?;
            return Ok((r, Duration::ZERO));
        }
        wire.send(b"DATA\r\n").await?;
        (m, r, wire.smtp_reply().await?)
    };
    if data_r.code != 354 {
        if mail_r.is_ok() {
            reset(wire).await?;
        }
        let first_refusal = [mail_r, rcpt_r, data_r].into_iter().find(|r| !r.is_ok()).expect("DATA was refused");
        return Ok((first_refusal, Duration::ZERO));
    }
    wire.send(payload).await?;
    let sent = Instant::now();
    let reply = wire.smtp_reply().await?;
    Ok((reply, sent.elapsed()))
}

async fn reset(wire: &mut Wire) -> Result<()> {
    wire.send(b"RSET\r\n").await?;
    wire.smtp_reply().await?;
    Ok(())
}
