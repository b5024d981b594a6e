//! What `sendmail` does to a message before it is submitted, without I/O:
//! the input rules of the traditional interface (a lone "." ends input
//! unless `-i`), recipients taken from the headers with `-t`, Bcc removed,
//! and the header fields a submission server adds when a local program
//! leaves them out (RFC 6409 8: Date, Message-ID, From).

use mail_parser::{HeaderName, MessageParser};

/// How the message is to be treated.
#[derive(Debug, Clone)]
pub struct Options {
    /// `-t`: the recipients are in To, Cc and Bcc (added to the arguments).
    pub extract_recipients: bool,
    /// The envelope sender, also the From address when the message has none.
    pub sender: String,
    /// `-F`: the display name of a From field we add.
    pub full_name: Option<String>,
    /// Our hostname: the right-hand side of a Message-ID we add, and the
    /// domain of unqualified recipients.
    pub hostname: String,
    /// Unique per message: the left-hand side of a Message-ID we add.
    pub unique: String,
    /// RFC 5322 date-time for a Date field we add.
    pub date: String,
}

/// A message ready for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub recipients: Vec<String>,
    pub content: Vec<u8>,
}

/// Why a message cannot be submitted (sendmail exits with EX_USAGE or
/// EX_DATAERR: the caller must fix something, retrying will not help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    #[error("no recipients (give them as arguments, or use -t with To/Cc/Bcc fields)")]
    NoRecipients,
    #[error("recipient {0:?} is not an address")]
    BadRecipient(String),
    #[error("the message has no header section (it must start with header fields)")]
    NoHeaders,
}

/// The message as CRLF lines. Any of CRLF, LF or a lone CR ends a line, so
/// no bare CR or LF reaches SMTP (RFC 5321 2.3.8). Unless `dot_ends` is
/// false (`-i`, `-oi`), a line holding only "." ends the input, as the
/// classic sendmail interface defines.
pub fn read_input(input: &[u8], dot_ends: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 32);
    let mut rest = input;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n' || b == b'\r').unwrap_or(rest.len());
        let line = &rest[..end];
        rest = &rest[end..];
        rest = match rest {
            [b'\r', b'\n', tail @ ..] | [b'\r', tail @ ..] | [b'\n', tail @ ..] => tail,
            _ => rest,
        };
        if dot_ends && line == b"." {
            break;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Recipients (arguments first, then with `-t` the headers'), the Bcc
/// fields removed and the missing Date, Message-ID and From added.
pub fn prepare(content: &[u8], arguments: &[String], opts: &Options) -> Result<Prepared, PrepareError> {
    let header_end = header_end(content).ok_or(PrepareError::NoHeaders)?;
    let parsed = MessageParser::default().parse_headers(&content[..header_end]).ok_or(PrepareError::NoHeaders)?;

    let mut recipients = Vec::new();
    for r in arguments.iter().flat_map(|a| a.split(',')).map(str::trim).filter(|a| !a.is_empty()) {
        recipients.push(qualify(r, &opts.hostname)?);
    }
    let (mut has_date, mut has_id, mut has_from) = (false, false, false);
    let mut bcc_ranges = Vec::new();
    for h in parsed.headers() {
        match &h.name {
            HeaderName::Date => has_date = true,
            HeaderName::MessageId => has_id = true,
            HeaderName::From => has_from = true,
            _ => {}
        }
        let is_bcc = h.name == HeaderName::Bcc;
        if is_bcc {
            bcc_ranges.push(h.offset_field as usize..field_end(content, h.offset_end as usize));
        }
        if opts.extract_recipients && matches!(h.name, HeaderName::To | HeaderName::Cc | HeaderName::Bcc) {
            for addr in h.value.as_address().into_iter().flat_map(|a| a.iter()) {
                if let Some(a) = addr.address() {
                    recipients.push(qualify(a, &opts.hostname)?);
                }
            }
        }
    }
    dedup_keep_order(&mut recipients);
    if recipients.is_empty() {
        return Err(PrepareError::NoRecipients);
    }

    let mut out = Vec::with_capacity(content.len() + 256);
    if !has_from {
        match &opts.full_name {
            Some(name) => {
                out.extend_from_slice(format!("From: {} <{}>\r\n", quote_phrase(name), opts.sender).as_bytes())
            }
            None => out.extend_from_slice(format!("From: <{}>\r\n", opts.sender).as_bytes()),
        }
    }
    if !has_date {
        out.extend_from_slice(format!("Date: {}\r\n", opts.date).as_bytes());
    }
    if !has_id {
        out.extend_from_slice(format!("Message-ID: <{}@{}>\r\n", opts.unique, opts.hostname).as_bytes());
    }
    let mut pos = 0;
    for range in bcc_ranges {
        out.extend_from_slice(&content[pos..range.start]);
        pos = range.end;
    }
    out.extend_from_slice(&content[pos..]);
    Ok(Prepared { recipients, content: out })
}

/// The offset just past the blank line ending the header section; a
/// message without one is all header.
fn header_end(content: &[u8]) -> Option<usize> {
    if content.starts_with(b"\r\n") {
        return None;
    }
    Some(content.windows(4).position(|w| w == b"\r\n\r\n").map_or(content.len(), |p| p + 4))
}

/// mail-parser's offset_end stops before the line break; the field ends
/// after its CRLF.
fn field_end(content: &[u8], end: usize) -> usize {
    match content.get(end..end + 2) {
        Some(b"\r\n") => end + 2,
        _ => end,
    }
}

/// A bare user name is a local user at our hostname, as sendmail treats
/// it; anything else must look like local@domain with no spaces or
/// control characters (the server checks the full syntax).
fn qualify(address: &str, hostname: &str) -> Result<String, PrepareError> {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>');
    let bad = a.is_empty() || a.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if bad {
        return Err(PrepareError::BadRecipient(address.to_string()));
    }
    match a.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(a.to_string()),
        Some(_) => Err(PrepareError::BadRecipient(address.to_string())),
        None => Ok(format!("{a}@{hostname}")),
    }
}

fn dedup_keep_order(list: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|a| seen.insert(a.to_ascii_lowercase()));
}

/// A display name as an RFC 5322 quoted-string when it needs one.
fn quote_phrase(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().all(|c| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c)) {
        clean
    } else {
        format!("\"{}\"", clean.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
