//! "Delivered" means visible in the recipient's mailbox, not just
//! acknowledged. Each server is asked the way its users would see it:
//! ferrymail through POP3 STAT, Postfix through the Maildir files (as the
//! shared `smtp_load.py` does), anything else through a shell command that
//! prints a number.

use crate::fetch::{self, FetchOptions};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub enum Counter {
    /// POP3 STAT summed over these (user, password) pairs.
    Pop3 { addr: String, users: Vec<(String, String)> },
    /// Files in `new/` and `cur/` of these Maildirs.
    Maildirs(Vec<PathBuf>),
    /// A shell command that prints the count.
    Command(String),
}

impl Counter {
    pub async fn count(&self) -> Result<u64> {
        match self {
            Counter::Pop3 { addr, users } => {
                let mut total = 0;
                for (user, password) in users {
                    let opts = FetchOptions {
                        addr: addr.clone(),
                        user: user.clone(),
                        password: password.clone(),
                        timeout: Duration::from_secs(30),
                    };
                    total += fetch::pop3_stat(&opts).await.with_context(|| format!("POP3 STAT for {user}"))?;
                }
                Ok(total)
            }
            Counter::Maildirs(dirs) => {
                let mut n = 0;
                for d in dirs {
                    for sub in ["new", "cur"] {
                        if let Ok(rd) = std::fs::read_dir(d.join(sub)) {
                            n += rd.count() as u64;
                        }
                    }
                }
                Ok(n)
            }
            Counter::Command(cmd) => {
                let out = tokio::process::Command::new("sh").arg("-c").arg(cmd).output().await?;
                let text = String::from_utf8_lossy(&out.stdout);
                text.split_whitespace()
                    .next()
                    .and_then(|w| w.parse().ok())
                    .with_context(|| format!("count command printed {text:?}"))
            }
        }
    }

    /// Polls until the count reaches `target` or `timeout` passes; returns
    /// the last count and when the poll that read it started (a POP3 login
    /// costs a password hash, which must not count as delivery time).
    pub async fn wait_for(&self, target: u64, timeout: Duration, poll: Duration) -> Result<(u64, Instant)> {
        let deadline = Instant::now() + timeout;
        loop {
            let asked = Instant::now();
            let n = self.count().await?;
            if n >= target || Instant::now() >= deadline {
                return Ok((n, asked));
            }
            tokio::time::sleep(poll).await;
        }
    }
}

/// Parses `user:password,user:password`.
pub fn parse_users(spec: &str) -> Result<Vec<(String, String)>> {
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (u, p) = pair.rsplit_once(':').with_context(|| format!("{pair:?} is not user:password"))?;
            Ok((u.to_string(), p.to_string()))
        })
        .collect()
}
