//! BODY[section] (RFC 3501 6.4.5): finding a part by its number and
//! cutting out its header, text or MIME header.

use imap_codec::imap_types::fetch::{Part, Section};
use mail_parser::{MessageParser, PartType};
use std::ops::Range;

/// A part located in the raw message: where its MIME header and body are,
/// and whether it encapsulates a message (message/rfc822).
struct Located {
    header: Range<usize>,
    body: Range<usize>,
    message: bool,
}

/// Finds part `path` of the message in `raw[range]` (RFC 3501 6.4.5 part
/// numbering: a message/rfc822 part's numbers continue in the message it
/// encapsulates).
fn locate(raw: &[u8], path: &[u32]) -> Option<Located> {
    let mut base = 0usize;
    let mut buf = raw;
    let parsed = MessageParser::new().parse(buf)?;
    let mut message = parsed;
    let mut index = 0u32;
    let root = message.part(0)?;
    let mut here = Located {
        header: root.offset_header as usize..root.offset_body as usize,
        body: root.offset_body as usize..root.offset_end as usize,
        message: true,
    };
    for (depth, &n) in path.iter().enumerate() {
        // Step into an encapsulated message (not for the top level, which
        // is a message already).
        // `here` is in `raw`'s offsets (not `buf`'s): two levels down,
        // `buf` no longer starts at 0.
        if depth > 0 && here.message {
            buf = &raw[here.body.clone()];
            base = here.body.start;
            message = MessageParser::new().parse(buf)?;
            index = 0;
        }
        let part = message.part(index)?;
        index = match &part.body {
            PartType::Multipart(children) => *children.get(n.checked_sub(1)? as usize)?,
            _ if n == 1 => index,
            _ => return None,
        };
        let part = message.part(index)?;
        here = Located {
            header: base + part.offset_header as usize..base + part.offset_body as usize,
            body: base + part.offset_body as usize..base + (part.offset_end as usize).min(buf.len()),
            message: matches!(part.body, PartType::Message(_)),
        };
    }
    Some(here)
}

/// The header and body of the message at `part` (the top level for `None`,
/// else an encapsulated message/rfc822 part).
fn message_at(raw: &[u8], part: Option<&Part>) -> Option<(Range<usize>, Range<usize>)> {
    match part {
        None => {
            let msg = MessageParser::new().parse(raw)?;
            let root = msg.part(0)?;
            Some((0..root.offset_body as usize, root.offset_body as usize..raw.len()))
        }
        Some(p) => {
            let here = locate(raw, p.0.as_ref().iter().map(|n| n.get()).collect::<Vec<_>>().as_slice())?;
            if !here.message {
                return None;
            }
            let inner = &raw[here.body.clone()];
            let msg = MessageParser::new().parse(inner)?;
            let root = msg.part(0)?;
            let start = here.body.start;
            Some((start..start + root.offset_body as usize, start + root.offset_body as usize..here.body.end))
        }
    }
}

/// The bytes `section` names; `None` for a part that does not exist.
pub fn extract(raw: &[u8], section: Option<&Section<'_>>) -> Option<Vec<u8>> {
    let Some(section) = section else { return Some(raw.to_vec()) };
    match section {
        Section::Part(p) => {
            let path: Vec<u32> = p.0.as_ref().iter().map(|n| n.get()).collect();
            let here = locate(raw, &path)?;
            Some(raw[here.body].to_vec())
        }
        Section::Mime(p) => {
            let path: Vec<u32> = p.0.as_ref().iter().map(|n| n.get()).collect();
            let here = locate(raw, &path)?;
            Some(raw[here.header].to_vec())
        }
        Section::Header(p) => message_at(raw, p.as_ref()).map(|(h, _)| raw[h].to_vec()),
        Section::Text(p) => message_at(raw, p.as_ref()).map(|(_, b)| raw[b].to_vec()),
        Section::HeaderFields(p, names) | Section::HeaderFieldsNot(p, names) => {
            let keep = matches!(section, Section::HeaderFields(..));
            let (h, _) = message_at(raw, p.as_ref())?;
            let names: Vec<&[u8]> = names.as_ref().iter().map(|n| n.as_ref()).collect();
            Some(filter_fields(&raw[h], &names, keep))
        }
    }
}

/// The header fields whose names are (or, with `keep` false, are not) in
/// `names`, then the blank line (RFC 3501 6.4.5: "the subset ... including
/// the delimiting blank line").
fn filter_fields(header: &[u8], names: &[&[u8]], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let lines: Vec<(usize, usize)> = {
        let mut v = Vec::new();
        let mut i = 0;
        while i < header.len() {
            let end = header[i..].iter().position(|&b| b == b'\n').map_or(header.len(), |p| i + p + 1);
            v.push((i, end));
            i = end;
        }
        v
    };
    for (i, (a, b)) in lines.iter().enumerate() {
        let line = &header[*a..*b];
        let continuation = line.first().is_some_and(|c| *c == b' ' || *c == b'\t');
        if i > 0 && !continuation {
            fields.push(&header[start..*a]);
            start = *a;
        }
        if i == 0 {
            start = *a;
        }
    }
    if start < header.len() {
        fields.push(&header[start..]);
    }
    for field in fields {
        if field == b"\r\n" || field == b"\n" {
            continue;
        }
        let Some(colon) = field.iter().position(|&b| b == b':') else { continue };
        let name = field[..colon].trim_ascii_end();
        if names.iter().any(|n| n.eq_ignore_ascii_case(name)) == keep {
            out.extend_from_slice(field);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes the section spec as the response echoes it (`1.2.HEADER.FIELDS (FROM)`).
pub fn write_spec(out: &mut Vec<u8>, section: Option<&Section<'_>>) {
    let Some(section) = section else { return };
    let part = |out: &mut Vec<u8>, p: &Part, dot: bool| {
        let nums: Vec<String> = p.0.as_ref().iter().map(|n| n.to_string()).collect();
        out.extend_from_slice(nums.join(".").as_bytes());
        if dot {
            out.push(b'.');
        }
    };
    let fields = |out: &mut Vec<u8>, names: &[imap_codec::imap_types::core::AString<'_>]| {
        out.extend_from_slice(b" (");
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            super::wire::astring(out, n.as_ref());
        }
        out.push(b')');
    };
    match section {
        Section::Part(p) => part(out, p, false),
        Section::Mime(p) => {
            part(out, p, true);
            out.extend_from_slice(b"MIME");
        }
        Section::Header(p) => {
            if let Some(p) = p {
                part(out, p, true);
            }
            out.extend_from_slice(b"HEADER");
        }
        Section::Text(p) => {
            if let Some(p) = p {
                part(out, p, true);
            }
            out.extend_from_slice(b"TEXT");
        }
        Section::HeaderFields(p, names) => {
            if let Some(p) = p {
                part(out, p, true);
            }
            out.extend_from_slice(b"HEADER.FIELDS");
            fields(out, names.as_ref());
        }
        Section::HeaderFieldsNot(p, names) => {
            if let Some(p) = p {
                part(out, p, true);
            }
            out.extend_from_slice(b"HEADER.FIELDS.NOT");
            fields(out, names.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMPLE: &[u8] = b"From: a@example.org\r\nSubject: hi\r\n  there\r\nTo: b@example.org\r\n\r\nbody line\r\n";

    const MULTI: &[u8] = b"From: a@example.org\r\n\
Content-Type: multipart/mixed; boundary=XX\r\n\r\n\
preamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\npart one\r\n\
--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n\
--XX--\r\n";

    fn sec(s: &str) -> Section<'static> {
        use imap_codec::decode::Decoder;
        use imap_codec::imap_types::IntoStatic;
        use imap_codec::imap_types::command::CommandBody;
        use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames as Items, MessageDataItemName as Item};
        let cmd = format!("a FETCH 1 BODY[{s}]\r\n");
        let (_, c) = imap_codec::CommandCodec::default().decode(cmd.as_bytes()).unwrap();
        if let CommandBody::Fetch { macro_or_item_names: Items::MessageDataItemNames(items), .. } = c.body.into_static()
            && let Some(Item::BodyExt { section: Some(section), .. }) = items.into_iter().next()
        {
            return section;
        }
        unreachable!("not a section: {s}")
    }

    fn get(raw: &[u8], s: &str) -> Option<String> {
        extract(raw, Some(&sec(s))).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn header_and_text_rfc3501_6_4_5() {
        assert_eq!(
            get(SIMPLE, "HEADER").unwrap(),
            "From: a@example.org\r\nSubject: hi\r\n  there\r\nTo: b@example.org\r\n\r\n"
        );
        assert_eq!(get(SIMPLE, "TEXT").unwrap(), "body line\r\n");
        assert_eq!(get(SIMPLE, "1").unwrap(), "body line\r\n");
        assert_eq!(get(SIMPLE, "2"), None);
    }

    #[test]
    fn header_fields_keep_folding_and_end_blank_rfc3501_6_4_5() {
        assert_eq!(
            get(SIMPLE, "HEADER.FIELDS (subject TO)").unwrap(),
            "Subject: hi\r\n  there\r\nTo: b@example.org\r\n\r\n"
        );
        assert_eq!(
            get(SIMPLE, "HEADER.FIELDS.NOT (Subject)").unwrap(),
            "From: a@example.org\r\nTo: b@example.org\r\n\r\n"
        );
    }

    #[test]
    fn part_numbers_reach_into_encapsulated_messages_rfc3501_6_4_5() {
        assert_eq!(get(MULTI, "1").unwrap(), "part one");
        assert_eq!(get(MULTI, "1.MIME").unwrap(), "Content-Type: text/plain\r\n\r\n");
        assert_eq!(get(MULTI, "2.HEADER").unwrap(), "Subject: inner\r\n\r\n");
        assert_eq!(get(MULTI, "2.TEXT").unwrap(), "inner body");
        assert_eq!(get(MULTI, "2.1").unwrap(), "inner body");
        assert_eq!(get(MULTI, "3"), None);
    }

    /// A message/rfc822 inside a message/rfc822 inside the message (imaptest
    /// fetch-body-message-rfc822-x2): part 1.1.1 is the innermost body. The
    /// third level used to slice with the second level's offsets: a panic.
    #[test]
    fn part_numbers_reach_two_encapsulations_deep_rfc3501_6_4_5() {
        const X2: &[u8] = b"From: user@domain.org\r\nContent-Type: message/rfc822\r\n\r\n\
From: user2@domain.org\r\nContent-Type: message/rfc822\r\n\r\n\
From: sub@domain.org\r\nSubject: submsg\r\n\r\nHello world\r\n";
        assert_eq!(get(X2, "1.1").unwrap(), "From: sub@domain.org\r\nSubject: submsg\r\n\r\nHello world\r\n");
        assert_eq!(get(X2, "1.1.1").unwrap(), "Hello world\r\n");
        assert_eq!(get(X2, "1.1.HEADER").unwrap(), "From: sub@domain.org\r\nSubject: submsg\r\n\r\n");
        assert_eq!(get(X2, "1.1.TEXT").unwrap(), "Hello world\r\n");
    }
}
