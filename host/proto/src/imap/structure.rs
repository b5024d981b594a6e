//! ENVELOPE and BODY/BODYSTRUCTURE (RFC 3501 7.4.2), from mail-parser's
//! view of the message. Strings are the raw header values (encoded words
//! kept, as RFC 3501 wants); display names mail-parser decoded are
//! re-encoded as RFC 2047 UTF-8 words when they are not ASCII.

use super::wire::{nstring, string};
use base64::Engine;
use mail_parser::{Addr, Address, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// `(date subject from sender reply-to to cc bcc in-reply-to message-id)`.
#[cfg(test)]
pub fn envelope(out: &mut Vec<u8>, raw: &[u8]) {
    envelope_of(out, MessageParser::new().parse(raw).as_ref())
}

/// The envelope of an already parsed message (`None`: unparseable).
pub fn envelope_of(out: &mut Vec<u8>, msg: Option<&Message<'_>>) {
    match msg {
        Some(msg) => write_envelope(out, msg),
        None => out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    }
}

fn raw_value(msg: &Message<'_>, name: &str) -> Option<Vec<u8>> {
    let v = msg.header_raw(name.to_string())?;
    // Unfolded, without the space after the colon (RFC 5322 2.2.3).
    let unfolded: String = v.replace("\r\n", "").replace('\n', "");
    Some(unfolded.trim().as_bytes().to_vec())
}

fn write_envelope(out: &mut Vec<u8>, msg: &Message<'_>) {
    out.push(b'(');
    nstring(out, raw_value(msg, "Date").as_deref());
    out.push(b' ');
    nstring(out, raw_value(msg, "Subject").as_deref());
    let from = msg.from();
    // RFC 3501 7.4.2: sender and reply-to default to from.
    for list in [from, msg.sender().or(from), msg.reply_to().or(from), msg.to(), msg.cc(), msg.bcc()] {
        out.push(b' ');
        addresses(out, list);
    }
    out.push(b' ');
    nstring(out, raw_value(msg, "In-Reply-To").as_deref());
    out.push(b' ');
    nstring(out, raw_value(msg, "Message-ID").as_deref());
    out.push(b')');
}

/// An address list; a group (RFC 5322 3.4 `name: a, b;`) is the group's
/// start `(NIL NIL "name" NIL)`, its members, then the end
/// `(NIL NIL NIL NIL)` (RFC 3501 7.4.2), also when it has no members.
fn addresses(out: &mut Vec<u8>, list: Option<&Address<'_>>) {
    let mut any = false;
    let mut open = |out: &mut Vec<u8>| {
        out.push(if any { b' ' } else { b'(' });
        any = true;
    };
    let member = |a: &&Addr<'_>| a.address.is_some();
    match list {
        None => {}
        Some(Address::List(addrs)) => {
            for a in addrs.iter().filter(member) {
                open(out);
                address(out, a);
            }
        }
        Some(Address::Group(groups)) => {
            for g in groups {
                // mail-parser puts the addresses of a list that mixes
                // addresses and groups in groups without a name.
                let name = g.name.as_deref();
                if let Some(name) = name {
                    open(out);
                    out.extend_from_slice(b"(NIL NIL ");
                    string(out, name.as_bytes());
                    out.extend_from_slice(b" NIL)");
                }
                for a in g.addresses.iter().filter(member) {
                    open(out);
                    address(out, a);
                }
                if name.is_some() {
                    open(out);
                    out.extend_from_slice(b"(NIL NIL NIL NIL)");
                }
            }
        }
    }
    let end: &[u8] = if any { b")" } else { b"NIL" };
    out.extend_from_slice(end);
}

/// One `(name adl mailbox host)`.
fn address(out: &mut Vec<u8>, a: &Addr<'_>) {
    out.push(b'(');
    match a.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) if name.is_ascii() => string(out, name.as_bytes()),
        Some(name) => {
            let word = format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(name));
            string(out, word.as_bytes());
        }
        None => out.extend_from_slice(b"NIL"),
    }
    let address = a.address.as_deref().unwrap_or("");
    // An obsolete source route (RFC 5322 4.4 obs-route, `<@relay:user@host>`)
    // is the address's adl (RFC 3501 7.4.2); mail-parser leaves it in front.
    let (adl, address) = match address.split_once(':') {
        Some((route, rest)) if route.starts_with('@') => (Some(route), rest),
        _ => (None, address),
    };
    out.push(b' ');
    match adl {
        Some(route) => string(out, route.as_bytes()),
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let (mailbox, host) = address.rsplit_once('@').unwrap_or((address, ""));
    string(out, mailbox.as_bytes());
    out.push(b' ');
    if host.is_empty() {
        out.extend_from_slice(b"NIL")
    } else {
        string(out, host.as_bytes())
    }
    out.push(b')');
}

/// BODY (`extended` false) or BODYSTRUCTURE.
#[cfg(test)]
pub fn body_structure(out: &mut Vec<u8>, raw: &[u8], extended: bool) {
    body_structure_of(out, MessageParser::new().parse(raw).as_ref(), raw, extended)
}

/// BODY or BODYSTRUCTURE of an already parsed `raw` (`None`: unparseable).
pub fn body_structure_of(out: &mut Vec<u8>, msg: Option<&Message<'_>>, raw: &[u8], extended: bool) {
    match msg {
        Some(msg) => part(out, msg, raw, 0, extended, 0),
        None => out.extend_from_slice(b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"),
    }
}

/// Nesting beyond this is shown as an opaque part: a hostile message
/// cannot make the answer (or the recursion) unbounded.
const MAX_NESTING: usize = 20;

fn part(out: &mut Vec<u8>, msg: &Message<'_>, raw: &[u8], index: u32, extended: bool, depth: usize) {
    let Some(p) = msg.part(index) else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let ct = p.content_type();
    let (ctype, subtype) = match ct {
        Some(ct) => (ct.ctype().to_ascii_lowercase(), ct.subtype().unwrap_or("").to_ascii_lowercase()),
        None => ("text".to_string(), "plain".to_string()),
    };
    if let (PartType::Multipart(children), true) = (&p.body, depth < MAX_NESTING) {
        out.push(b'(');
        for &child in children {
            part(out, msg, raw, child, extended, depth + 1);
        }
        out.push(b' ');
        string(out, subtype.as_bytes());
        if extended {
            out.push(b' ');
            params(out, p);
            out.push(b' ');
            disposition(out, p);
            out.extend_from_slice(b" NIL NIL");
        }
        out.push(b')');
        return;
    }
    let body = raw.get(p.offset_body as usize..(p.offset_end as usize).min(raw.len())).unwrap_or(b"");
    out.push(b'(');
    string(out, if ctype.is_empty() { b"text" } else { ctype.as_bytes() });
    out.push(b' ');
    string(out, if subtype.is_empty() { b"plain" } else { subtype.as_bytes() });
    out.push(b' ');
    if ct.is_some() {
        params(out, p);
    } else {
        out.extend_from_slice(b"(\"charset\" \"us-ascii\")");
    }
    out.push(b' ');
    nstring(out, p.content_id().map(str::as_bytes));
    out.push(b' ');
    nstring(out, p.content_description().map(str::as_bytes));
    out.push(b' ');
    let encoding = p.content_transfer_encoding().unwrap_or("7bit").to_ascii_lowercase();
    string(out, encoding.as_bytes());
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    let lines = body.iter().filter(|&&b| b == b'\n').count();
    match &p.body {
        PartType::Message(inner) if depth < MAX_NESTING => {
            // message/rfc822: envelope, body structure, lines (RFC 3501 7.4.2).
            out.push(b' ');
            write_envelope(out, inner);
            out.push(b' ');
            let inner_raw = body;
            match MessageParser::new().parse(inner_raw) {
                Some(m) => part(out, &m, inner_raw, 0, extended, depth + 1),
                None => out.extend_from_slice(b"NIL"),
            }
            out.extend_from_slice(format!(" {lines}").as_bytes());
        }
        _ if ctype == "text" || ctype.is_empty() => out.extend_from_slice(format!(" {lines}").as_bytes()),
        _ => {}
    }
    if extended {
        out.extend_from_slice(b" NIL ");
        disposition(out, p);
        out.extend_from_slice(b" NIL NIL");
    }
    out.push(b')');
}

fn params(out: &mut Vec<u8>, p: &MessagePart<'_>) {
    attribute_list(out, p.content_type().and_then(|ct| ct.attributes()).unwrap_or(&[]));
}

/// A body parameter list (RFC 3501 7.4.2 body-fld-param): NIL when empty.
fn attribute_list(out: &mut Vec<u8>, attrs: &[mail_parser::Attribute<'_>]) {
    if attrs.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, a) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, a.name.to_ascii_lowercase().as_bytes());
        out.push(b' ');
        string(out, a.value.as_bytes());
    }
    out.push(b')');
}

fn disposition(out: &mut Vec<u8>, p: &MessagePart<'_>) {
    let Some(d) = p.content_disposition() else {
        out.extend_from_slice(b"NIL");
        return;
    };
    out.push(b'(');
    string(out, d.ctype().to_ascii_lowercase().as_bytes());
    out.push(b' ');
    attribute_list(out, d.attributes().unwrap_or(&[]));
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(raw: &str) -> String {
        let mut out = Vec::new();
        envelope(&mut out, raw.as_bytes());
        String::from_utf8(out).unwrap()
    }

    fn bs(raw: &str) -> String {
        let mut out = Vec::new();
        body_structure(&mut out, raw.as_bytes(), true);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn envelope_defaults_sender_and_reply_to_to_from_rfc3501_7_4_2() {
        let e = env("Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nFrom: Terry Gray <gray@cac.washington.edu>\r\n\
             Subject: IMAP4rev1 WG mtg summary and minutes\r\nTo: imap@cac.washington.edu\r\n\
             Message-Id: <B27397-0100000@cac.washington.edu>\r\n\r\nbody\r\n");
        assert_eq!(
            e,
            "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((NIL NIL \"imap\" \"cac.washington.edu\")) NIL NIL NIL \"<B27397-0100000@cac.washington.edu>\")"
        );
    }

    /// imaptest fetch-envelope: groups are framed by a start and an end
    /// address, empty ones too (RFC 3501 7.4.2: "[RFC-2822] group syntax
    /// is indicated by a special form of address structure").
    #[test]
    fn envelope_groups_are_framed_rfc3501_7_4_2() {
        let e = env("From: user@domain\r\nTo: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\n\
             Cc: group:;, group2: (foo) ;\r\nBcc: a@b.c, team: d@e.f;\r\n\r\nbody\r\n");
        assert_eq!(
            e,
            "(NIL NIL ((NIL NIL \"user\" \"domain\")) ((NIL NIL \"user\" \"domain\")) ((NIL NIL \"user\" \"domain\")) \
             ((NIL NIL \"group\" NIL) (NIL NIL \"g1\" \"d1.org\") (NIL NIL \"g2\" \"d2.org\") (NIL NIL NIL NIL) \
             (NIL NIL \"group2\" NIL) (NIL NIL \"g3\" \"d3.org\") (NIL NIL NIL NIL)) \
             ((NIL NIL \"group\" NIL) (NIL NIL NIL NIL) (NIL NIL \"group2\" NIL) (NIL NIL NIL NIL)) \
             ((NIL NIL \"a\" \"b.c\") (NIL NIL \"team\" NIL) (NIL NIL \"d\" \"e.f\") (NIL NIL NIL NIL)) NIL NIL)"
        );
    }

    /// imaptest fetch-envelope: a source route is the address's adl.
    #[test]
    fn envelope_source_route_is_the_adl_rfc3501_7_4_2() {
        let e = env("From: <@route:user@domain>\r\n\r\nbody\r\n");
        assert!(e.starts_with("(NIL NIL ((NIL \"@route\" \"user\" \"domain\")) "), "{e}");
    }

    #[test]
    fn bodystructure_of_plain_text_rfc3501_7_4_2() {
        let b = bs("Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one\r\nline two\r\n");
        assert_eq!(b, "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 20 2 NIL NIL NIL NIL)");
    }

    #[test]
    fn bodystructure_of_multipart_rfc3501_7_4_2() {
        let b = bs("Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
             --XX\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=a.pdf\r\n\r\nAAAA\r\n--XX--\r\n");
        assert_eq!(
            b,
            "((\"text\" \"plain\" NIL NIL NIL \"7bit\" 2 0 NIL NIL NIL NIL)\
             (\"application\" \"pdf\" NIL NIL NIL \"base64\" 4 NIL (\"attachment\" (\"filename\" \"a.pdf\")) NIL NIL) \
             \"mixed\" (\"boundary\" \"XX\") NIL NIL NIL)"
        );
    }
}
