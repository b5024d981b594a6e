//! SMTP AUTH (RFC 4954) with PLAIN and LOGIN: when AUTH may be used, the
//! challenge/response exchange, and the answer to the policy's decision.

use super::replies::r;
use super::session::{AuthResult, Pending, Phase, SmtpEvent, SmtpSession};
use crate::sasl::{self, SaslError};
use ferrymail_policy::Reply;

impl SmtpSession {
    /// AUTH is offered: configured, and over TLS unless plaintext is allowed.
    pub(super) fn auth_offered(&self) -> bool {
        self.cfg.auth && (self.info.tls || self.cfg.auth_without_tls)
    }

    pub(super) fn auth(&mut self, mechanism: String, initial: Option<String>) -> Option<SmtpEvent> {
        let refusal = if !self.cfg.auth {
            Some(r(502, "5.5.1", "AUTH not available"))
        } else if !self.auth_offered() {
            Some(r(538, "5.7.11", "Encryption required for requested authentication mechanism"))
        } else if !self.esmtp {
            Some(r(503, "5.5.1", "Send EHLO first"))
        } else if self.info.auth_user.is_some() {
            Some(r(503, "5.5.1", "Already authenticated"))
        } else if self.txn.is_some() {
            Some(r(503, "5.5.1", "AUTH not allowed during a mail transaction"))
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.send(&reply);
            return None;
        }
        match (mechanism.as_str(), initial) {
            ("PLAIN", Some(resp)) => self.sasl_response(Phase::SaslPlain, &resp),
            ("PLAIN", None) => {
                self.send(&Reply::plain(334, ""));
                self.phase = Phase::SaslPlain;
                None
            }
            ("LOGIN", Some(resp)) => self.sasl_response(Phase::SaslLoginUser, &resp),
            ("LOGIN", None) => {
                self.send(&Reply::plain(334, sasl::LOGIN_USER_CHALLENGE));
                self.phase = Phase::SaslLoginUser;
                None
            }
            _ => {
                self.error(r(504, "5.5.4", "Unrecognized authentication mechanism"));
                None
            }
        }
    }

    /// One line of the exchange; "*" cancels (RFC 4954 4).
    pub(super) fn sasl_line(&mut self, line: &[u8]) -> Option<SmtpEvent> {
        let phase = std::mem::replace(&mut self.phase, Phase::Command);
        let text = String::from_utf8_lossy(line).into_owned();
        if text.trim() == "*" {
            self.send(&r(501, "5.0.0", "Authentication cancelled"));
            return None;
        }
        self.sasl_response(phase, &text)
    }

    fn sasl_response(&mut self, phase: Phase, response: &str) -> Option<SmtpEvent> {
        let decoded = sasl::decode(response);
        let step = decoded.and_then(|bytes| match phase {
            Phase::SaslPlain => sasl::parse_plain(&bytes).map(|(u, p)| Some(("PLAIN", u, p))),
            Phase::SaslLoginUser => sasl::identity(bytes).map(|user| {
                self.phase = Phase::SaslLoginPass { user };
                None
            }),
            Phase::SaslLoginPass { user } => sasl::utf8(bytes).map(|pass| Some(("LOGIN", user, pass))),
            _ => Err(SaslError::Credentials),
        });
        match step {
            Ok(Some((mechanism, username, password))) => {
                self.ask(Pending::Auth, SmtpEvent::Auth { mechanism: mechanism.into(), username, password })
            }
            Ok(None) => {
                self.send(&Reply::plain(334, sasl::LOGIN_PASS_CHALLENGE));
                None
            }
            Err(SaslError::Encoding) => {
                self.phase = Phase::Command;
                self.error(r(501, "5.5.2", "Cannot decode response"));
                None
            }
            Err(SaslError::Credentials) => {
                self.phase = Phase::Command;
                self.error(r(535, "5.7.8", "Authentication credentials invalid"));
                None
            }
        }
    }

    /// Answers an Auth event. A failure counts towards `max_errors`, so
    /// one connection gets a bounded number of guesses.
    pub fn auth_result(&mut self, result: AuthResult) {
        if self.pending.take() != Some(Pending::Auth) {
            return;
        }
        match result {
            AuthResult::Ok { user, tenant } => {
                self.info.auth_user = Some(user);
                self.info.tenant = tenant;
                self.send(&r(235, "2.7.0", "Authentication successful"));
            }
            AuthResult::Fail => self.error(r(535, "5.7.8", "Authentication credentials invalid")),
            AuthResult::Tempfail => self.send(&r(454, "4.7.0", "Temporary authentication failure")),
            AuthResult::Refused => self.error(r(454, "4.7.0", "Too many failed logins, try again later")),
        }
    }
}
