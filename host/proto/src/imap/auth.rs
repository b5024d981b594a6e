//! The not-authenticated state (RFC 3501 6.2): STARTTLS, AUTHENTICATE
//! (PLAIN, with SASL-IR, RFC 4959) and LOGIN.

use super::ImapEvent;
use super::selected::Job;
use super::session::{ImapSession, Mode, tagged};
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::command::CommandBody;

impl ImapSession {
    pub(super) fn not_authenticated(&mut self, tag: String, body: CommandBody<'static>) -> Option<ImapEvent> {
        match body {
            CommandBody::StartTLS => {
                if self.info.tls || !self.cfg.starttls_available {
                    return self.bad(&tag, "STARTTLS not available");
                }
                tagged(&mut self.output, &tag, "OK", "Begin TLS negotiation now");
                Some(ImapEvent::StartTls)
            }
            CommandBody::Login { username, password } => {
                if self.login_disabled() {
                    // RFC 3501 6.2.3: LOGINDISABLED means LOGIN gets NO.
                    tagged(&mut self.output, &tag, "NO", "[PRIVACYREQUIRED] Use STARTTLS first");
                    return None;
                }
                let (Ok(user), Ok(password)) = (
                    String::from_utf8(username.as_ref().to_vec()),
                    String::from_utf8(password.declassify().as_ref().to_vec()),
                ) else {
                    tagged(&mut self.output, &tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
                    self.count_error();
                    return None;
                };
                if user.is_empty() || user.chars().any(char::is_control) {
                    tagged(&mut self.output, &tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
                    self.count_error();
                    return None;
                }
                self.job = Some(Job::Login { tag });
                Some(ImapEvent::Login { user, password, mechanism: "LOGIN".into() })
            }
            CommandBody::Authenticate { mechanism, initial_response } => {
                if mechanism != AuthMechanism::Plain {
                    tagged(&mut self.output, &tag, "NO", "[CANNOT] Unsupported authentication mechanism");
                    return None;
                }
                if self.login_disabled() {
                    tagged(&mut self.output, &tag, "NO", "[PRIVACYREQUIRED] Use STARTTLS first");
                    return None;
                }
                match initial_response {
                    Some(response) => self.plain(tag, response.declassify()),
                    None => {
                        self.output.extend_from_slice(b"+ \r\n");
                        self.mode = Mode::AuthResponse { tag };
                        None
                    }
                }
            }
            _ => None,
        }
    }

    /// The client's response to `+ ` (RFC 3501 6.2.2): `*` cancels.
    pub(super) fn auth_response(&mut self, tag: String, data: AuthenticateData<'_>) -> Option<ImapEvent> {
        match data {
            AuthenticateData::Cancel => {
                tagged(&mut self.output, &tag, "BAD", "AUTHENTICATE cancelled");
                None
            }
            AuthenticateData::Continue(bytes) => self.plain(tag, bytes.declassify()),
        }
    }

    fn plain(&mut self, tag: String, decoded: &[u8]) -> Option<ImapEvent> {
        match crate::sasl::parse_plain(decoded) {
            Ok((user, password)) => {
                self.job = Some(Job::Login { tag });
                Some(ImapEvent::Login { user, password, mechanism: "PLAIN".into() })
            }
            Err(_) => {
                tagged(&mut self.output, &tag, "NO", "[AUTHENTICATIONFAILED] Malformed PLAIN response");
                self.count_error();
                None
            }
        }
    }
}
