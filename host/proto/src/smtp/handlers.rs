//! One handler per SMTP command: the checks RFC 5321 makes before a command
//! may go to the policy, and the replies when it may not.

use super::command::{self, Command, MailParams};
use super::data::DataReceiver;
use super::replies::{self, r};
use super::session::{Ending, Pending, Phase, SmtpEvent, SmtpSession};
use ferrymail_policy::Reply;

/// RFC 5321 4.5.3.1.1: a local part is at most 64 octets.
const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 4.5.3.1.2: a domain is at most 255 octets.
const MAX_DOMAIN: usize = 255;
/// RFC 5321 4.5.3.1.3: a path, with its angle brackets, at most 256.
const MAX_PATH: usize = 256;

impl SmtpSession {
    pub(super) fn command(&mut self, line: &[u8]) -> Option<SmtpEvent> {
        if line.contains(&b'\n') || line.contains(&b'\r') {
            // RFC 5321 2.3.8: CR and LF only together, as the line end. A
            // bare LF would end the command for some servers and not for
            // others (the crack SMTP smuggling goes through).
            self.error(r(500, "5.5.2", "Bare CR or LF in command; lines must end with CRLF (RFC 5321 2.3.8)"));
            return None;
        }
        match command::parse(line) {
            Ok(cmd) => self.dispatch(cmd),
            Err(e) => {
                self.error(replies::parse_error(e));
                None
            }
        }
    }

    fn dispatch(&mut self, cmd: Command) -> Option<SmtpEvent> {
        match cmd {
            Command::Helo(name) => {
                self.ask(Pending::Helo { name: name.clone(), ehlo: false }, SmtpEvent::Helo { name, ehlo: false })
            }
            Command::Ehlo(name) => {
                self.ask(Pending::Helo { name: name.clone(), ehlo: true }, SmtpEvent::Helo { name, ehlo: true })
            }
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to } => self.rcpt(to),
            Command::Data => self.data(),
            Command::Rset => {
                self.txn = None;
                self.send(&r(250, "2.0.0", "Reset state"));
                None
            }
            Command::Noop => {
                self.send(&r(250, "2.0.0", "OK"));
                None
            }
            Command::Quit => {
                self.send(&r(221, "2.0.0", &format!("{} closing connection", self.cfg.hostname)));
                self.close(Ending::Quit);
                None
            }
            Command::Help(_) => {
                self.send(&replies::help());
                None
            }
            Command::Vrfy(arg) | Command::Expn(arg) if arg.trim().is_empty() => {
                self.error(r(501, "5.5.4", "Syntax: VRFY/EXPN string"));
                None
            }
            Command::Vrfy(arg) => self.ask(Pending::Reply, SmtpEvent::Vrfy(arg)),
            Command::Expn(arg) => self.ask(Pending::Reply, SmtpEvent::Expn(arg)),
            Command::Verb => {
                // VERB (Sendmail's verbose mode) is answered, not refused:
                // old clients send it and expect a 2xx.
                self.send(&r(250, "2.0.0", "Verbose mode not supported; continuing"));
                None
            }
            Command::StartTls => self.starttls(),
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial),
            Command::NotImplemented(name) => {
                self.error(r(502, "5.5.1", &format!("{name} not implemented")));
                None
            }
        }
    }

    fn mail(&mut self, from: String, params: MailParams) -> Option<SmtpEvent> {
        // RFC 5321 4.1.4: a transaction needs a prior HELO/EHLO.
        let refusal = if self.info.helo.is_none() {
            Some(r(503, "5.5.1", "Send HELO/EHLO first"))
        } else if self.txn.is_some() {
            Some(r(503, "5.5.1", "Nested MAIL command"))
        } else if self.cfg.require_auth && self.info.auth_user.is_none() {
            Some(r(530, "5.7.0", "Authentication required"))
        } else if let Some(why) = too_long(&from) {
            Some(r(501, "5.1.7", &format!("Sender address rejected: {why}")))
        } else if params.size.is_some_and(|s| s > self.cfg.max_message_size) {
            Some(r(552, "5.3.4", "Message size exceeds fixed maximum message size"))
        } else if !from.is_ascii() && !params.smtputf8 {
            Some(r(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"))
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.send(&reply);
            return None;
        }
        self.ask(Pending::Mail { from: from.clone(), params: params.clone() }, SmtpEvent::Mail { from, params })
    }

    fn rcpt(&mut self, to: String) -> Option<SmtpEvent> {
        // RFC 5321 4.5.1: the parser lets a bare Postmaster through (any
        // case); the policy and the envelope get it qualified.
        let to = if to.eq_ignore_ascii_case("postmaster") {
            match &self.cfg.postmaster {
                Some(address) => address.clone(),
                None => format!("postmaster@{}", self.cfg.hostname),
            }
        } else {
            to
        };
        let refusal = match &self.txn {
            None => Some(r(503, "5.5.1", "Need MAIL command")),
            Some(t) if t.rcpts.len() >= self.cfg.max_recipients => {
                // RFC 5321 4.5.3.1.10: 452 so the client retries the rest later.
                Some(r(452, "4.5.3", "Too many recipients"))
            }
            Some(_) if to.is_empty() => Some(r(501, "5.1.3", "Bad recipient address syntax")),
            Some(_) if too_long(&to).is_some() => {
                Some(r(501, "5.1.3", &format!("Recipient address rejected: {}", too_long(&to).unwrap_or_default())))
            }
            Some(t) if !to.is_ascii() && !t.params.smtputf8 => {
                Some(r(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"))
            }
            Some(_) => None,
        };
        if let Some(reply) = refusal {
            self.send(&reply);
            return None;
        }
        self.ask(Pending::Rcpt { to: to.clone() }, SmtpEvent::Rcpt { to })
    }

    fn data(&mut self) -> Option<SmtpEvent> {
        // RFC 5321 3.3: 503 without MAIL; 554 when no recipient was accepted.
        match &self.txn {
            None => self.send(&r(503, "5.5.1", "Need MAIL command")),
            Some(t) if t.rcpts.is_empty() => self.send(&r(554, "5.5.1", "No valid recipients")),
            Some(_) => {
                self.send(&Reply::plain(354, "End data with <CR><LF>.<CR><LF>"));
                self.phase =
                    Phase::Data(Box::new(DataReceiver::new(self.cfg.max_message_size, self.cfg.max_text_line)));
            }
        }
        None
    }

    fn starttls(&mut self) -> Option<SmtpEvent> {
        if !self.cfg.starttls {
            self.error(r(502, "5.5.1", "STARTTLS not available"));
            None
        } else if self.info.tls {
            self.send(&r(503, "5.5.1", "TLS already active"));
            None
        } else {
            self.send(&r(220, "2.0.0", "Ready to start TLS"));
            self.ask(Pending::StartTls, SmtpEvent::StartTls)
        }
    }

    pub(super) fn helo_ok(&mut self, name: String, ehlo: bool) {
        // RFC 5321 4.1.4: EHLO/HELO also resets any transaction.
        self.txn = None;
        self.esmtp = ehlo;
        let greeting = format!("{} Hello {}", self.cfg.hostname, name);
        self.info.helo = Some(name);
        if !ehlo {
            self.send(&Reply::plain(250, greeting));
            return;
        }
        let mut lines = vec![
            greeting,
            "PIPELINING".into(),
            format!("SIZE {}", self.cfg.max_message_size),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ];
        if self.cfg.starttls && !self.info.tls {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() && self.info.auth_user.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        self.send(&Reply::plain(250, lines.join("\n")));
    }
}

/// Why an address is over RFC 5321 4.5.3.1's size limits, if it is.
fn too_long(address: &str) -> Option<&'static str> {
    // The domain cannot hold an '@'; a quoted local part can.
    let (local, domain) = address.rsplit_once('@').unwrap_or(("", address));
    if local.len() > MAX_LOCAL_PART {
        Some("local part longer than 64 octets (RFC 5321 4.5.3.1.1)")
    } else if domain.len() > MAX_DOMAIN {
        Some("domain longer than 255 octets (RFC 5321 4.5.3.1.2)")
    } else if address.len() + 2 > MAX_PATH {
        Some("path longer than 256 octets (RFC 5321 4.5.3.1.3)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_limits_rfc5321_4_5_3_1() {
        let local64 = "a".repeat(64);
        assert_eq!(too_long(&format!("{local64}@example.org")), None);
        assert!(too_long(&format!("{local64}a@example.org")).unwrap().contains("4.5.3.1.1"));
        assert!(too_long(&format!("a@{}.org", "d".repeat(252))).unwrap().contains("4.5.3.1.2"));
        assert_eq!(too_long(&format!("{}@{}", "a".repeat(64), "b".repeat(189))), None);
        assert!(too_long(&format!("{}@{}", "a".repeat(64), "b".repeat(190))).unwrap().contains("4.5.3.1.3"));
        assert_eq!(too_long(""), None);
    }
}
