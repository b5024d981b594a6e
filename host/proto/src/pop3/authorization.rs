//! The AUTHORIZATION state (RFC 1939 4, 7): USER/PASS, AUTH PLAIN, STLS,
//! QUIT, and CAPA, which is valid in both states (RFC 2449 5).

use super::Pop3Event;
use super::command::Command;
use super::sasl::{self, Malformed};
use super::session::{Phase, Pop3Session, err, ok};
use super::transaction::WRONG_STATE;

impl Pop3Session {
    pub(super) fn forget_user(&mut self) {
        if let Phase::Authorization { user } = &mut self.phase {
            *user = None;
        }
    }

    /// `user` is the name from a USER command immediately before this one.
    pub(super) fn authorization(&mut self, cmd: Command, user: Option<String>) -> Option<Pop3Event> {
        if matches!(cmd, Command::User(_) | Command::Pass(_) | Command::Auth { .. }) && self.login_needs_tls() {
            // RFC 2595 2.1: credentials only under TLS here; the client
            // learns it from CAPA too (no USER, no SASL).
            return self.bad("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS");
        }
        let out = &mut self.output;
        match cmd {
            Command::User(name) => {
                // Always +OK: a -ERR here would tell strangers which
                // mailboxes exist (RFC 1939 13).
                ok(out, "send PASS");
                self.phase = Phase::Authorization { user: Some(name) };
            }
            Command::Pass(password) => {
                let Some(user) = user else {
                    return self.bad("PASS must follow USER");
                };
                let mechanism = "USER".into();
                return Some(Pop3Event::AuthRequested { user, password, mechanism });
            }
            Command::Auth { mechanism, initial } => {
                if !self.cfg.auth_plain || mechanism != "PLAIN" {
                    err(out, "unsupported authentication mechanism");
                } else if let Some(initial) = initial {
                    return self.sasl_response(&initial, false);
                } else {
                    out.extend_from_slice(b"+ \r\n");
                    self.phase = Phase::SaslResponse;
                }
            }
            Command::Stls if self.info.tls => err(out, "command not permitted when TLS active"),
            Command::Stls if !self.cfg.stls_available => err(out, "STLS not available"),
            Command::Stls => {
                ok(out, "Begin TLS negotiation");
                return Some(Pop3Event::StartTls);
            }
            Command::Quit => {
                let text = format!("{} POP3 server signing off", self.cfg.greeting_host);
                ok(out, &text);
                self.phase = Phase::Closed;
            }
            _ => return self.bad(WRONG_STATE),
        }
        None
    }

    /// A PLAIN response, from the AUTH line or its own line; only the latter
    /// may be "*", which cancels (RFC 5034 4).
    pub(super) fn sasl_response(&mut self, response: &str, continuation: bool) -> Option<Pop3Event> {
        if continuation && response == "*" {
            err(&mut self.output, "authentication cancelled");
            return None;
        }
        match sasl::decode_plain(response) {
            Ok(c) => Some(Pop3Event::AuthRequested { user: c.user, password: c.password, mechanism: "PLAIN".into() }),
            Err(Malformed(text)) => self.bad(text),
        }
    }

    /// RFC 2449 5. Capabilities usable in AUTHORIZATION are listed in both
    /// states as that section requires, except STLS, which RFC 2595 4 allows
    /// only before login and which is gone once TLS is up.
    pub(super) fn capa(&mut self) {
        let login_offered = !self.login_needs_tls();
        let out = &mut self.output;
        ok(out, "capability list follows");
        let mut caps = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
        // RFC 2449 6.8 / RFC 2595 2.1: a login this connection would
        // refuse is not advertised.
        if login_offered {
            caps.push("USER");
            if self.cfg.auth_plain {
                caps.push("SASL PLAIN");
            }
        }
        let before_login = matches!(self.phase, Phase::Authorization { .. });
        if self.cfg.stls_available && !self.info.tls && before_login {
            caps.push("STLS");
        }
        for cap in caps {
            out.extend_from_slice(cap.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !self.cfg.implementation.is_empty() {
            let text = format!("IMPLEMENTATION {}\r\n", self.cfg.implementation);
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(b".\r\n");
    }
}
