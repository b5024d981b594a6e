//! What a hook is told.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Which protocol front door a session came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Service {
    /// Port 25: mail from other MTAs.
    Smtp,
    /// Port 587: mail from our own users (RFC 6409).
    Submission,
    Pop3,
    Imap,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Pop3 => "pop3",
            Service::Imap => "imap",
        }
    }
}

/// A client session as a hook sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The id that appears in every log line of this session.
    pub id: String,
    pub service: Service,
    pub client_ip: IpAddr,
    pub client_port: u16,
    /// Reverse-DNS name of the client, when look-ups are enabled and it resolved.
    pub client_name: Option<String>,
    pub tls: bool,
    pub helo: Option<String>,
    /// The authenticated user, once AUTH succeeded.
    pub auth_user: Option<String>,
    /// The authenticated user's tenant, once AUTH succeeded.
    pub tenant: Option<String>,
}

impl SessionInfo {
    pub fn new(id: impl Into<String>, service: Service, client_ip: IpAddr, client_port: u16) -> Self {
        SessionInfo {
            id: id.into(),
            service,
            client_ip,
            client_port,
            client_name: None,
            tls: false,
            helo: None,
            auth_user: None,
            tenant: None,
        }
    }
}

/// The envelope of the transaction in progress (RFC 5321 2.3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The reverse-path; empty for the null sender `<>`.
    pub mail_from: String,
    /// Forward-paths accepted so far.
    pub rcpt_to: Vec<String>,
}

/// A login attempt from any protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    pub session: SessionInfo,
    /// The SASL mechanism or "USER" / "LOGIN" for the protocols' plain commands.
    pub mechanism: String,
    pub username: String,
    pub password: String,
}
