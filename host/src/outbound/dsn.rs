//! Delivery status notifications (RFC 3464) in a multipart/report (RFC
//! 6522): a human-readable part, the machine-readable
//! message/delivery-status, and the original headers as
//! text/rfc822-headers. Sent from the null reverse-path, so they are never
//! answered by another DSN (RFC 5321 6.1, 4.5.5).

use ferrymail_proto::client::reply::enhanced_prefix;
use ferrymail_store::schema::{QueueRecipient, StoredReply};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Given up: Action: failed.
    Failure,
    /// Still trying: Action: delayed.
    Delay,
}

pub struct Report<'a> {
    pub kind: Kind,
    /// Our host name (Reporting-MTA, From).
    pub hostname: &'a str,
    pub queue_id: &'a str,
    /// Who gets the report: the original envelope sender.
    pub to: &'a str,
    /// When the message arrived (unix seconds).
    pub arrival: u64,
    pub now: u64,
    pub recipients: Vec<&'a QueueRecipient>,
    /// The original content; only its header section is returned.
    pub original: &'a [u8],
}

/// The headers returned, at most this many octets (a header bomb is not
/// worth reflecting back).
const MAX_ORIGINAL_HEADERS: usize = 64 * 1024;
/// Remote text in one field, so no line exceeds RFC 5322 2.1.1's 998.
const MAX_DIAGNOSTIC: usize = 900;

/// The per-recipient status (RFC 3464 2.3.4): the reply's enhanced code
/// when it has one of the report's class, else the class alone ("5.0.0").
/// A failure after temporary errors (the retry policy gave up) is 4.4.7,
/// "delivery time expired" (RFC 3463 3.5).
pub fn status(reply: Option<&StoredReply>, kind: Kind) -> String {
    let class = if kind == Kind::Delay { 4 } else { 5 };
    match reply {
        Some(r) if r.code / 100 == class => {
            // The typed code, else one the server wrote into its text.
            let enhanced = r.enhanced.as_deref().and_then(|e| enhanced_prefix(e, r.code));
            match enhanced.or_else(|| enhanced_prefix(&r.text, r.code)) {
                Some(e) => e.to_string(),
                None => format!("{class}.0.0"),
            }
        }
        Some(r) if kind == Kind::Failure && r.code / 100 == 4 => "4.4.7".to_string(),
        _ => format!("{class}.0.0"),
    }
}

fn date(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0).unwrap_or_default().to_rfc2822()
}

/// Remote text may hold anything: one line, bounded, no control bytes.
fn clean(s: &str, max: usize) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(max).collect()
}

/// RFC 6533 3: a non-ASCII address is of type utf-8, not rfc822.
fn address_type(address: &str) -> &'static str {
    if address.is_ascii() { "rfc822" } else { "utf-8" }
}

/// The header section of `content` with CRLF line ends.
fn original_headers(content: &[u8]) -> Vec<u8> {
    let end = content
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| content.windows(2).position(|w| w == b"\n\n").map(|p| p + 1));
    let head = &content[..end.unwrap_or(content.len()).min(MAX_ORIGINAL_HEADERS)];
    let mut out = Vec::with_capacity(head.len() + 16);
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.is_empty() {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

pub fn build(r: &Report<'_>) -> Vec<u8> {
    let headers = original_headers(r.original);
    let mut boundary = format!("=_ferrymail_{}_{}", r.queue_id, r.now);
    while headers.windows(boundary.len()).any(|w| w == boundary.as_bytes()) {
        boundary.push_str(&format!("{:x}", rand::random::<u32>()));
    }
    let (subject, action, intro) = match r.kind {
        Kind::Failure => (
            "Undelivered Mail Returned to Sender",
            "failed",
            "Your message could not be delivered to one or more recipients. It has been\r\nreturned to you; the reason for each recipient is below.",
        ),
        Kind::Delay => (
            "Delayed Mail (still being retried)",
            "delayed",
            "Your message could not be delivered yet to the recipients below. It is\r\nstill queued and will be retried; you do not need to send it again.",
        ),
    };
    let mut m = String::with_capacity(2048 + headers.len());
    m += &format!("From: Mail Delivery System <MAILER-DAEMON@{}>\r\n", r.hostname);
    m += &format!("To: <{}>\r\n", clean(r.to, 500));
    m += &format!("Subject: {subject}\r\n");
    m += &format!("Date: {}\r\n", date(r.now));
    m += &format!("Message-ID: <{}.{}.{action}@{}>\r\n", r.queue_id, r.now, r.hostname);
    // RFC 3834 5: an automatic message; vacation responders must not answer.
    m += "Auto-Submitted: auto-replied\r\n";
    m += "MIME-Version: 1.0\r\n";
    m += &format!("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n");
    m += "This is a MIME-encapsulated delivery status notification.\r\n\r\n";
    m += &format!("--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
    m += &format!("This is the mail system at {}.\r\n\r\n{intro}\r\n\r\n", r.hostname);
    for rcpt in &r.recipients {
        let reply = rcpt.last_reply.as_ref().map_or_else(|| "no reply recorded".to_string(), ToString::to_string);
        m += &format!("<{}>: {}\r\n", clean(&rcpt.address, 500), clean(&reply, MAX_DIAGNOSTIC));
    }
    m += &format!("\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n");
    m += &format!(
        "Reporting-MTA: dns; {}\r\nX-Ferrymail-Queue-ID: {}\r\nArrival-Date: {}\r\n",
        r.hostname,
        r.queue_id,
        date(r.arrival)
    );
    for rcpt in &r.recipients {
        let address = clean(&rcpt.address, 500);
        m += &format!("\r\nFinal-Recipient: {}; {address}\r\nAction: {action}\r\n", address_type(&address));
        m += &format!("Status: {}\r\n", status(rcpt.last_reply.as_ref(), r.kind));
        if let Some(host) = &rcpt.remote_mta {
            m += &format!("Remote-MTA: dns; {}\r\n", clean(host, 255));
        }
        if let Some(reply) = &rcpt.last_reply {
            // RFC 3464 2.3.6: "smtp" only for what an SMTP server said.
            let kind = if rcpt.remote_mta.is_some() { "smtp" } else { "X-Ferrymail" };
            m += &format!("Diagnostic-Code: {kind}; {}\r\n", clean(&reply.to_string(), MAX_DIAGNOSTIC));
        }
        m += &format!("Last-Attempt-Date: {}\r\n", date(r.now));
    }
    m += &format!("\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n");
    let mut out = m.into_bytes();
    out.extend_from_slice(&headers);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
#[path = "dsn_tests.rs"]
mod tests;
