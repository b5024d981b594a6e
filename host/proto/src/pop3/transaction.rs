//! The TRANSACTION state (RFC 1939 5): the locked maildrop, deletion marks
//! and the commands that read them.

use super::command::{Command, MsgNum};
use super::session::{err, ok};
use super::{MaildropEntry, Pop3Event};

pub(super) const WRONG_STATE: &str = "command not valid in this state";

/// The maildrop as the client sees it: numbering and sizes are fixed at
/// login, deletions are only marks until UPDATE (RFC 1939 5, 6).
pub(super) struct Maildrop {
    entries: Vec<MaildropEntry>,
    deleted: Vec<bool>,
}

impl Maildrop {
    pub(super) fn new(entries: Vec<MaildropEntry>) -> Self {
        let deleted = vec![false; entries.len()];
        Self { entries, deleted }
    }

    pub(super) fn entry(&self, index: usize) -> Option<&MaildropEntry> {
        self.entries.get(index)
    }

    /// Messages and octets not marked deleted, as STAT reports them.
    pub(super) fn summary(&self) -> (usize, u64) {
        self.live().fold((0, 0), |(n, size), (_, e)| (n + 1, size.saturating_add(e.size)))
    }

    fn live(&self) -> impl Iterator<Item = (usize, &MaildropEntry)> {
        self.entries.iter().enumerate().filter(|(i, _)| !self.deleted[*i])
    }

    /// Resolves a 1-based message number to an index, or the `-ERR` text.
    fn lookup(&self, n: MsgNum) -> Result<usize, String> {
        let index = n.0.checked_sub(1).filter(|&i| i < self.entries.len());
        match index {
            None => Err("no such message".into()),
            Some(i) if self.deleted[i] => Err(format!("message {} already deleted", n.0)),
            Some(i) => Ok(i),
        }
    }

    /// Runs one TRANSACTION command. `Err` is a bad command (counted towards
    /// the error limit); a negative answer about a message is not one.
    pub(super) fn handle(&mut self, cmd: Command, out: &mut Vec<u8>) -> Result<Option<Pop3Event>, &'static str> {
        let found = |this: &Self, n: MsgNum, out: &mut Vec<u8>| this.lookup(n).map_err(|text| err(out, &text)).ok();
        match cmd {
            Command::Stat => {
                let (n, size) = self.summary();
                ok(out, &format!("{n} {size}"));
            }
            Command::List(None) => {
                let (n, size) = self.summary();
                ok(out, &format!("{n} messages ({size} octets)"));
                self.listing(out, |e| e.size.to_string());
            }
            Command::Uidl(None) => {
                ok(out, "unique-id listing follows");
                self.listing(out, |e| e.uid.clone());
            }
            Command::List(Some(n)) => {
                if let Some(i) = found(self, n, out) {
                    ok(out, &format!("{} {}", n.0, self.entries[i].size));
                }
            }
            Command::Uidl(Some(n)) => {
                if let Some(i) = found(self, n, out) {
                    ok(out, &format!("{} {}", n.0, self.entries[i].uid));
                }
            }
            Command::Retr(n) => {
                let event = found(self, n, out).map(|index| Pop3Event::MessageNeeded { index, top_lines: None });
                return Ok(event);
            }
            Command::Top(n, lines) => {
                let event = found(self, n, out).map(|index| Pop3Event::MessageNeeded { index, top_lines: Some(lines) });
                return Ok(event);
            }
            Command::Dele(n) => {
                if let Some(i) = found(self, n, out) {
                    self.deleted[i] = true;
                    ok(out, &format!("message {} deleted", n.0));
                }
            }
            Command::Noop => ok(out, ""),
            Command::Rset => {
                self.deleted.fill(false);
                let (n, size) = self.summary();
                ok(out, &format!("maildrop has {n} messages ({size} octets)"));
            }
            Command::Quit => {
                let delete = (0..self.entries.len()).filter(|&i| self.deleted[i]).collect();
                return Ok(Some(Pop3Event::UpdateRequested { delete }));
            }
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } | Command::Stls => {
                return Err(WRONG_STATE);
            }
            // The session answers CAPA itself: it depends on the config.
            Command::Capa => return Err(WRONG_STATE),
        }
        Ok(None)
    }

    /// The multi-line body of LIST and UIDL: deleted messages are left out
    /// (RFC 1939 7) but the others keep their numbers.
    fn listing(&self, out: &mut Vec<u8>, field: impl Fn(&MaildropEntry) -> String) {
        for (i, e) in self.live() {
            out.extend_from_slice(format!("{} {}\r\n", i + 1, field(e)).as_bytes());
        }
        out.extend_from_slice(b".\r\n");
    }
}
