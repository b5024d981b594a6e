//! `[delivery]`: the SMTP client that hands mail to other servers.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Port of the remote MX hosts (25; tests point it at their sinks).
    pub port: u16,
    /// Our name in EHLO/HELO; empty for `hostname`.
    pub helo_name: String,
    /// Outbound SMTP connections at once, all destinations together.
    pub max_connections: usize,
    /// Outbound SMTP connections at once to one destination (a domain, or
    /// a relay host), so one slow domain cannot take every connection.
    pub max_connections_per_domain: usize,
    /// How long a connection whose transaction ended waits for the next
    /// message to the same host (RFC 5321 3.3; Postfix's
    /// smtp_connection_cache_time_limit). Zero: one connection per message.
    #[serde(with = "humantime_serde")]
    pub connection_cache_time: Duration,
    /// How long after it was opened a connection may still take another
    /// message (Postfix's smtp_connection_reuse_time_limit).
    #[serde(with = "humantime_serde")]
    pub connection_reuse_time: Duration,
    /// TCP connect, per address tried.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// The 220 greeting (RFC 5321 4.5.3.2.1: 5 minutes).
    #[serde(with = "humantime_serde")]
    pub greeting_timeout: Duration,
    /// Replies to EHLO, MAIL, RCPT and the like (4.5.3.2.2/3: 5 minutes).
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// The 354 after DATA (4.5.3.2.4: 2 minutes).
    #[serde(with = "humantime_serde")]
    pub data_init_timeout: Duration,
    /// Sending the message content, per started MiB (4.5.3.2.5: 3 minutes):
    /// one deadline for the whole content, so a server that reads a byte at
    /// a time cannot stretch it.
    #[serde(with = "humantime_serde")]
    pub data_block_timeout: Duration,
    /// The reply after the final dot (4.5.3.2.6: 10 minutes).
    #[serde(with = "humantime_serde")]
    pub data_done_timeout: Duration,
    /// STARTTLS: "opportunistic" (when offered), "require", or "off".
    pub starttls: StartTlsPolicy,
    /// Server certificates: "verify" (webpki roots plus `tls_ca_file`;
    /// a bad certificate ends the session) or "no-verify".
    pub tls_verify: TlsVerify,
    /// Extra trust anchors (PEM) for `tls_verify = "verify"`; empty for none.
    pub tls_ca_file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTlsPolicy {
    Opportunistic,
    Require,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsVerify {
    Verify,
    NoVerify,
}

impl DeliveryConfig {
    /// Problems as (key, why), for [`super::Config::validate`].
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.port == 0 {
            out.push(("delivery.port", "must not be 0"));
        }
        if self.max_connections == 0 {
            out.push(("delivery.max_connections", "must be at least 1"));
        }
        if self.max_connections_per_domain == 0 {
            out.push(("delivery.max_connections_per_domain", "must be at least 1"));
        }
        let timeouts = [
            ("delivery.connect_timeout", self.connect_timeout),
            ("delivery.greeting_timeout", self.greeting_timeout),
            ("delivery.command_timeout", self.command_timeout),
            ("delivery.data_init_timeout", self.data_init_timeout),
            ("delivery.data_block_timeout", self.data_block_timeout),
            ("delivery.data_done_timeout", self.data_done_timeout),
        ];
        out.extend(
            timeouts.into_iter().filter(|(_, t)| t.is_zero()).map(|(key, _)| (key, "must be greater than zero")),
        );
        out
    }
}
