//! Trace information (RFC 5321 4.4): the `Received:` header prepended to
//! every accepted message, the headers plugins ask to add, and the hop
//! count that stops mail loops (RFC 5321 6.3).

use ferrymail_policy::SessionInfo;

/// `with` protocol names from RFC 3848.
fn protocol(esmtp: bool, tls: bool, auth: bool) -> &'static str {
    match (esmtp, tls, auth) {
        (false, _, _) => "SMTP",
        (true, false, false) => "ESMTP",
        (true, true, false) => "ESMTPS",
        (true, false, true) => "ESMTPA",
        (true, true, true) => "ESMTPSA",
    }
}

/// `Received: from HELO (NAME [IP]) by US with PROTO id ID [for <RCPT>]; DATE`.
/// The recipient is named only when there is exactly one, so a message to
/// many does not disclose the whole list to each. `date` is RFC 5322
/// date-time text (the session reads no clock).
pub fn received(session: &SessionInfo, hostname: &str, esmtp: bool, id: &str, rcpts: &[String], date: &str) -> String {
    let helo = session.helo.as_deref().map(sanitize).unwrap_or_else(|| "unknown".into());
    let name = session.client_name.as_deref().map(sanitize).unwrap_or_else(|| "unknown".into());
    let ip = match session.client_ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("IPv6:{v6}"),
    };
    let with = protocol(esmtp, session.tls, session.auth_user.is_some());
    let for_clause = match rcpts {
        [one] => format!("\r\n\tfor <{}>", sanitize(one)),
        _ => String::new(),
    };
    format!(
        "Received: from {helo} ({name} [{ip}])\r\n\tby {hostname} (ferrymail) with {with} id {id}{for_clause};\r\n\t{}\r\n",
        sanitize(date)
    )
}

/// Client-supplied text must not break the header: no CR/LF/control bytes,
/// no parentheses that would unbalance the comment.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_control() || c == '(' || c == ')' { '_' } else { c }).take(255).collect()
}

/// A header line from a plugin, made safe: a field name of printable ASCII
/// without ':', and a value with no bare line breaks (RFC 5322 2.2).
pub fn plugin_header(name: &str, value: &str) -> Option<String> {
    let name_ok = !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
    if !name_ok {
        return None;
    }
    let value: String = value.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
    Some(format!("{name}: {value}\r\n"))
}

/// `Received:` fields in the header section of `content` (up to the first
/// empty line). RFC 5321 6.3: a count past a large limit means a loop.
pub fn hops(content: &[u8]) -> usize {
    let mut count = 0;
    for line in content.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        // Field name, optional WSP (obs-optional, RFC 5322 4.5.3), colon.
        if let Some(rest) = line.get(..8).filter(|n| n.eq_ignore_ascii_case(b"Received")).map(|_| &line[8..])
            && rest.trim_ascii_start().first() == Some(&b':')
        {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrymail_policy::Service;

    const DATE: &str = "Wed, 2 Dec 2026 02:08:03 +0000";

    #[test]
    fn received_rfc5321_4_4() {
        let mut s = SessionInfo::new("s1", Service::Smtp, "192.0.2.1".parse().unwrap(), 4000);
        s.helo = Some("client.test".into());
        let h = received(&s, "mx.test", true, "00000000000000ff", &["a@b.test".into()], DATE);
        assert!(h.starts_with("Received: from client.test (unknown [192.0.2.1])\r\n\tby mx.test (ferrymail) with ESMTP id 00000000000000ff\r\n\tfor <a@b.test>;\r\n\tWed, 2 Dec"), "{h}");
        assert!(h.ends_with("\r\n") && h.matches("\r\n").count() == 4);
        let h = received(&s, "mx.test", false, "1", &["a@b".into(), "c@d".into()], DATE);
        assert!(!h.contains("for <") && h.contains("with SMTP"));
    }

    #[test]
    fn hostile_helo_cannot_inject_headers() {
        let mut s = SessionInfo::new("s1", Service::Smtp, "::1".parse().unwrap(), 4000);
        s.helo = Some("x\r\nBcc: victim@x".into());
        let h = received(&s, "mx.test", true, "1", &[], DATE);
        assert_eq!(h.matches("\r\n").count(), 3);
        assert!(h.contains("[IPv6:::1]"));
    }

    #[test]
    fn plugin_headers_are_sanitized() {
        assert_eq!(plugin_header("X-Spam", "yes\r\nBcc: x").unwrap(), "X-Spam: yes  Bcc: x\r\n");
        assert!(plugin_header("Bad Name", "v").is_none());
        assert!(plugin_header("a:b", "v").is_none());
    }

    #[test]
    fn hops_count_received_fields_of_the_header_only_rfc5321_6_3() {
        let msg = b"Received: a\r\n\tcontinued\r\nreceived : b\r\nRECEIVED:c\r\nReceived-SPF: pass\r\nX-Received: d\r\nSubject: s\r\n\r\nReceived: in the body\r\n";
        assert_eq!(hops(msg), 3);
        assert_eq!(hops(b""), 0);
        assert_eq!(hops(b"Received: x\n\nReceived: y\n"), 1);
    }
}
