//! A record as a readable timeline (UTC times, one line per step).

use super::{Record, What};
use std::fmt::Write as _;

fn time(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn time_secs(secs: u64) -> String {
    time(secs.saturating_mul(1000))
}

/// The timeline of one record.
pub fn timeline(r: &Record) -> String {
    let mut out = String::new();
    let _ = match &r.message {
        Some(m) => writeln!(out, "message {m}"),
        None => writeln!(out, "transaction without a message"),
    };
    if !r.session.is_empty() {
        let _ = writeln!(out, "  session {} ({} from {})", r.session, r.service, r.client);
    }
    let _ = writeln!(out, "  outcome: {}", r.outcome);
    for s in &r.steps {
        let _ = match &s.what {
            What::Hook { plugin, tenant, hook, answer, micros, failed, decided } => {
                let who = match tenant {
                    Some(t) => format!("{plugin} (tenant {t})"),
                    None => plugin.clone(),
                };
                let mark = match (failed, decided) {
                    (true, _) => "  FAILED",
                    (false, true) => "  <- decided",
                    _ => "",
                };
                writeln!(
                    out,
                    "  {}    {hook:<7} plugin {who}: {answer} [{:.2} ms]{mark}",
                    time(s.at),
                    *micros as f64 / 1000.0
                )
            }
            What::Command { command, reply } => writeln!(out, "  {}  {command} -> {reply}", time(s.at)),
        };
    }
    if r.dropped > 0 {
        let _ = writeln!(out, "  … {} more steps not kept (trace.max_steps)", r.dropped);
    }
    for (n, a) in r.attempts.iter().enumerate() {
        let _ = writeln!(out, "  {}  delivery attempt {} (queue {})", time(a.at), n + 1, a.queue);
        for rc in &a.recipients {
            let server = rc.server.as_deref().unwrap_or("no server answered");
            let _ = write!(out, "      {} via {server}: {} -> {}", rc.to, rc.reply, rc.result);
            if let Some(next) = rc.next_attempt {
                let _ = write!(out, ", next try {}", time_secs(next));
            }
            out.push('\n');
        }
        for kind in &a.reports {
            let _ = writeln!(out, "      delivery status notification sent: {kind}");
        }
    }
    out
}
