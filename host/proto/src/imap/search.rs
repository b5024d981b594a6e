//! SEARCH (RFC 3501 6.4.4): the RFC's key set evaluated per message, with
//! the store's flags and, for header and text keys, the message bytes.

use super::flags::MessageFlags;
use super::request::MessageData;
use super::sequence::resolve;
use super::view::View;
use chrono::{DateTime, NaiveDate, Utc};
use imap_codec::imap_types::search::SearchKey;
use mail_parser::{Address, HeaderValue, Message, MessageParser};

/// Deepest nesting of NOT/OR/parentheses accepted; deeper is refused with
/// BAD before any work (and keeps evaluation's recursion bounded).
const MAX_DEPTH: usize = 32;

pub(crate) struct SearchPlan {
    key: Key,
    /// Some key needs the message's bytes (BODY, TEXT).
    pub content: bool,
    /// Some key needs header fields or the sent date, which the summary
    /// kept at delivery has (HEADER, FROM, SUBJECT, SENTON, ...).
    pub summary: bool,
    /// The only messages that can match, when a top-level UID or
    /// sequence-set key says so: `UID 99990:* BODY x` reads ten bodies,
    /// not the mailbox.
    pub candidates: Option<Vec<u32>>,
    /// Every key is answered by a message's search row ([`row_of`]) and
    /// the session's view (flags, numbers): no message is read.
    pub rows: bool,
}

/// Header fields kept in a message's search row: the ones RFC 3501 has
/// keys for. Other `HEADER` names are read from the summary.
const ROW_FIELDS: [&[u8]; 5] = [b"from", b"to", b"cc", b"bcc", b"subject"];

/// The first byte of every search row. Rows are kept in the store, so a
/// change of [`ROW_FIELDS`] or of the layout takes a new value: rows of
/// another format are then treated as missing and replaced on first use.
/// 2: the sent date is the Date: field's own wall-clock time (was UTC) and
/// address fields carry group names.
const ROW_FORMAT: u8 = 2;

/// A message's search row: [`ROW_FORMAT`], the sent date (i64 LE,
/// `i64::MIN` when none), then the [`header_lines`] of [`ROW_FIELDS`].
/// About 150 bytes where the summary has a kilobyte, read in one range
/// scan per mailbox.
pub(crate) fn row_of(header_lines: &[u8], sent: Option<i64>) -> Vec<u8> {
    let mut row = vec![ROW_FORMAT];
    row.extend_from_slice(&sent.unwrap_or(i64::MIN).to_le_bytes());
    for line in header_lines.split(|&b| b == b'\n') {
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        if line.len() > name.len() && ROW_FIELDS.contains(&name) {
            row.extend_from_slice(line);
            row.push(b'\n');
        }
    }
    row
}

/// Whether a row-only plan ([`SearchPlan::rows`]) matches the message `uid`
/// with search row `row`; flags come from the view. `None`: the row is of
/// another [`ROW_FORMAT`] (or damaged), so the message's summary decides.
pub(crate) fn matches_row(plan: &SearchPlan, uid: u32, row: &[u8], view: &View) -> Option<bool> {
    let (&format, rest) = row.split_first()?;
    let (sent, headers) = rest.split_first_chunk::<8>().filter(|_| format == ROW_FORMAT)?;
    let sent = Some(i64::from_le_bytes(*sent)).filter(|&s| s != i64::MIN).and_then(day_of);
    Some(eval_row(&plan.key, uid, headers, sent, view))
}

fn eval_row(key: &Key, uid: u32, headers: &[u8], sent: Option<NaiveDate>, view: &View) -> bool {
    match key {
        Key::All => true,
        Key::And(keys) => keys.iter().all(|k| eval_row(k, uid, headers, sent, view)),
        Key::Or(a, b) => eval_row(a, uid, headers, sent, view) || eval_row(b, uid, headers, sent, view),
        Key::Not(k) => !eval_row(k, uid, headers, sent, view),
        Key::Uids(uids) => uids.binary_search(&uid).is_ok(),
        Key::Flag(bit, set) => view.has_flag(uid, *bit) == Some(*set),
        Key::SentBefore(d) => sent.is_some_and(|s| s < *d),
        Key::SentOn(d) => sent.is_some_and(|s| s == *d),
        Key::SentSince(d) => sent.is_some_and(|s| s >= *d),
        Key::Header(name, s) => fields(headers).any(|(n, v)| n == name.as_bytes() && v.contains(s.as_str())),
        _ => false,
    }
}

/// A search key with sequence sets resolved to UIDs and strings lowered.
enum Key {
    All,
    And(Vec<Key>),
    Or(Box<Key>, Box<Key>),
    Not(Box<Key>),
    Uids(Vec<u32>),
    Flag(u32, bool),
    Keyword(String, bool),
    Larger(u64),
    Smaller(u64),
    Before(NaiveDate),
    On(NaiveDate),
    Since(NaiveDate),
    SentBefore(NaiveDate),
    SentOn(NaiveDate),
    SentSince(NaiveDate),
    /// A header field (lower-case name) containing a (lower-case) string.
    Header(String, String),
    Body(String),
    Text(String),
}

impl SearchPlan {
    /// `latin1`: the strings are ISO-8859-1 (SEARCH CHARSET ISO-8859-1),
    /// else UTF-8 (US-ASCII is a subset of both).
    pub fn new(criteria: Vec<SearchKey<'static>>, view: &View, latin1: bool) -> Result<SearchPlan, &'static str> {
        let key = Key::And(criteria.iter().map(|k| convert(k, view, 0, latin1)).collect::<Result<_, _>>()?);
        let content = key.needs(&|k| matches!(k, Key::Body(_) | Key::Text(_)));
        let summary = !content
            && key.needs(&|k| matches!(k, Key::Header(..) | Key::SentBefore(_) | Key::SentOn(_) | Key::SentSince(_)));
        let mut candidates: Option<Vec<u32>> = None;
        if let Key::And(keys) = &key {
            for k in keys {
                if let Key::Uids(uids) = k {
                    candidates = Some(match candidates {
                        None => uids.clone(),
                        Some(c) => c.into_iter().filter(|u| uids.binary_search(u).is_ok()).collect(),
                    });
                }
            }
        }
        let rows = !content
            && !key.needs(&|k| match k {
                Key::All | Key::Uids(_) | Key::Flag(..) => false,
                Key::SentBefore(_) | Key::SentOn(_) | Key::SentSince(_) => false,
                Key::Header(name, _) => !ROW_FIELDS.contains(&name.as_bytes()),
                _ => true,
            });
        Ok(SearchPlan { key, content, summary, candidates, rows })
    }
}

impl SearchPlan {
    /// Only system flags, UIDs and sequence numbers: the session's view
    /// answers without reading messages. (Keywords are not: the view knows
    /// them only for messages it has heard about.)
    pub fn view_only(&self) -> bool {
        !self.key.needs(&|k| !matches!(k, Key::All | Key::Uids(_) | Key::Flag(..)))
    }
}

/// [`matches`] for a [`SearchPlan::view_only`] plan, from the view's flags.
pub(crate) fn matches_view(plan: &SearchPlan, uid: u32, view: &View) -> bool {
    eval_view(&plan.key, uid, view)
}

fn eval_view(key: &Key, uid: u32, view: &View) -> bool {
    match key {
        Key::All => true,
        Key::And(keys) => keys.iter().all(|k| eval_view(k, uid, view)),
        Key::Or(a, b) => eval_view(a, uid, view) || eval_view(b, uid, view),
        Key::Not(k) => !eval_view(k, uid, view),
        Key::Uids(uids) => uids.binary_search(&uid).is_ok(),
        Key::Flag(bit, set) => view.has_flag(uid, *bit) == Some(*set),
        _ => false,
    }
}

fn convert(key: &SearchKey<'_>, view: &View, depth: usize, latin1: bool) -> Result<Key, &'static str> {
    let lower = |s: &dyn AsRef<[u8]>| -> String {
        match latin1 {
            // Every ISO-8859-1 byte is the Unicode code point of its value.
            true => s.as_ref().iter().map(|&b| char::from(b)).collect::<String>().to_lowercase(),
            false => String::from_utf8_lossy(s.as_ref()).to_lowercase(),
        }
    };
    if depth > MAX_DEPTH {
        return Err("search criteria nested too deeply");
    }
    let d = depth + 1;
    Ok(match key {
        SearchKey::And(keys) => {
            Key::And(keys.as_ref().iter().map(|k| convert(k, view, d, latin1)).collect::<Result<_, _>>()?)
        }
        SearchKey::Or(a, b) => Key::Or(Box::new(convert(a, view, d, latin1)?), Box::new(convert(b, view, d, latin1)?)),
        SearchKey::Not(k) => Key::Not(Box::new(convert(k, view, d, latin1)?)),
        SearchKey::All => Key::All,
        // \Recent is the session's (RFC 3501 2.3.2): the view answers.
        SearchKey::Recent => Key::Flag(MessageFlags::RECENT, true),
        SearchKey::Old => Key::Flag(MessageFlags::RECENT, false),
        SearchKey::New => Key::And(vec![Key::Flag(MessageFlags::RECENT, true), Key::Flag(MessageFlags::SEEN, false)]),
        SearchKey::SequenceSet(set) => Key::Uids(resolve(set, view, false).unwrap_or_default()),
        SearchKey::Uid(set) => Key::Uids(resolve(set, view, true)?),
        SearchKey::Answered => Key::Flag(MessageFlags::ANSWERED, true),
        SearchKey::Deleted => Key::Flag(MessageFlags::DELETED, true),
        SearchKey::Draft => Key::Flag(MessageFlags::DRAFT, true),
        SearchKey::Flagged => Key::Flag(MessageFlags::FLAGGED, true),
        SearchKey::Seen => Key::Flag(MessageFlags::SEEN, true),
        SearchKey::Unanswered => Key::Flag(MessageFlags::ANSWERED, false),
        SearchKey::Undeleted => Key::Flag(MessageFlags::DELETED, false),
        SearchKey::Undraft => Key::Flag(MessageFlags::DRAFT, false),
        SearchKey::Unflagged => Key::Flag(MessageFlags::FLAGGED, false),
        SearchKey::Unseen => Key::Flag(MessageFlags::SEEN, false),
        SearchKey::Keyword(k) => Key::Keyword(k.as_ref().to_string(), true),
        SearchKey::Unkeyword(k) => Key::Keyword(k.as_ref().to_string(), false),
        SearchKey::Larger(n) => Key::Larger(u64::from(*n)),
        SearchKey::Smaller(n) => Key::Smaller(u64::from(*n)),
        SearchKey::Before(d) => Key::Before(*d.as_ref()),
        SearchKey::On(d) => Key::On(*d.as_ref()),
        SearchKey::Since(d) => Key::Since(*d.as_ref()),
        SearchKey::SentBefore(d) => Key::SentBefore(*d.as_ref()),
        SearchKey::SentOn(d) => Key::SentOn(*d.as_ref()),
        SearchKey::SentSince(d) => Key::SentSince(*d.as_ref()),
        SearchKey::Bcc(s) => Key::Header("bcc".into(), lower(s)),
        SearchKey::Cc(s) => Key::Header("cc".into(), lower(s)),
        SearchKey::From(s) => Key::Header("from".into(), lower(s)),
        SearchKey::To(s) => Key::Header("to".into(), lower(s)),
        SearchKey::Subject(s) => Key::Header("subject".into(), lower(s)),
        SearchKey::Header(name, s) => Key::Header(lower(name), lower(s)),
        SearchKey::Body(s) => Key::Body(lower(s)),
        SearchKey::Text(s) => Key::Text(lower(s)),
    })
}

impl Key {
    /// Whether this key or one inside it satisfies `leaf`.
    fn needs(&self, leaf: &dyn Fn(&Key) -> bool) -> bool {
        match self {
            Key::And(keys) => keys.iter().any(|k| k.needs(leaf)),
            Key::Or(a, b) => a.needs(leaf) || b.needs(leaf),
            Key::Not(k) => k.needs(leaf),
            k => leaf(k),
        }
    }
}

/// What text keys look at, once per message: from the summary kept at
/// delivery when only header fields and the sent date are needed, else
/// parsed from the message's bytes.
struct Parsed<'a> {
    /// [`header_lines`] of the message.
    headers: std::borrow::Cow<'a, [u8]>,
    /// Lower-case text of the body parts; only when a key needs it.
    body: String,
    sent: Option<NaiveDate>,
}

/// Header fields as SEARCH compares them (RFC 3501 6.4.4: case-insensitive
/// substrings of the decoded field): one `name:value` line per field,
/// name and value in lower case, the value decoded (RFC 2047) and unfolded.
/// Computed at delivery and kept in the message's [`super::Summary`].
pub(crate) fn header_lines(msg: Option<&Message<'_>>, raw: &[u8]) -> Vec<u8> {
    let Some(msg) = msg else { return Vec::new() };
    let mut out = Vec::new();
    for h in msg.headers() {
        let value = match h.value() {
            HeaderValue::Text(t) => t.to_string(),
            HeaderValue::TextList(l) => l.join(", "),
            HeaderValue::Address(a) => addresses_text(a),
            _ => {
                let raw_value = raw.get(h.offset_start() as usize..h.offset_end() as usize).unwrap_or(b"");
                String::from_utf8_lossy(raw_value).trim().to_string()
            }
        };
        out.extend_from_slice(h.name().to_lowercase().replace([':', '\n', '\r'], " ").as_bytes());
        out.push(b':');
        out.extend_from_slice(value.to_lowercase().replace(['\n', '\r'], " ").as_bytes());
        out.push(b'\n');
    }
    out
}

/// An address field as SEARCH reads it: `name <address>` each, and a
/// group's name before its members (`team: a <a@b.c>;`), so `TO team`
/// finds the group as Dovecot does (imaptest search-addresses).
fn addresses_text(list: &Address<'_>) -> String {
    let one = |a: &mail_parser::Addr<'_>| {
        format!("{} <{}>", a.name.as_deref().unwrap_or(""), a.address.as_deref().unwrap_or(""))
    };
    let members = |addrs: &[mail_parser::Addr<'_>]| addrs.iter().map(one).collect::<Vec<_>>().join(", ");
    match list {
        Address::List(addrs) => members(addrs),
        Address::Group(groups) => groups
            .iter()
            .map(|g| match g.name.as_deref() {
                Some(name) => format!("{name}: {};", members(&g.addresses)),
                None => members(&g.addresses),
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The Date: field's wall-clock time in its own zone, as seconds since
/// 1970-01-01 00:00 of that zone: SENTBEFORE, SENTON and SENTSINCE compare
/// the date as written, "disregarding time and timezone" (RFC 3501 6.4.4),
/// so `Sun, 25 Mar 2007 00:00:00 +0200` is sent on the 25th, not on the
/// 24th it is in UTC.
pub(crate) fn sent_of(msg: Option<&Message<'_>>) -> Option<i64> {
    let d = msg?.date()?;
    let offset = i64::from(d.tz_hour) * 3600 + i64::from(d.tz_minute) * 60;
    Some(d.to_timestamp() + if d.tz_before_gmt { -offset } else { offset })
}

fn day_of(secs: i64) -> Option<NaiveDate> {
    DateTime::<Utc>::from_timestamp(secs, 0).map(|t| t.date_naive())
}

/// (name, value) of each line of [`header_lines`].
fn fields(lines: &[u8]) -> impl Iterator<Item = (&[u8], &str)> {
    lines.split(|&b| b == b'\n').filter_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        Some((&line[..colon], std::str::from_utf8(&line[colon + 1..]).ok()?))
    })
}

fn parse(raw: &[u8], with_body: bool) -> Parsed<'static> {
    let Some(msg) = MessageParser::new().parse(raw) else {
        return Parsed { headers: Vec::new().into(), body: String::from_utf8_lossy(raw).to_lowercase(), sent: None };
    };
    let mut body = String::new();
    if with_body {
        for i in 0..msg.text_body.len().max(msg.html_body.len()) {
            if let Some(t) = msg.body_text(i) {
                body.push_str(&t.to_lowercase());
                body.push('\n');
            }
        }
    }
    Parsed { headers: header_lines(Some(&msg), raw).into(), body, sent: sent_of(Some(&msg)).and_then(day_of) }
}

/// Whether the message matches. `seq` is its sequence number.
pub(crate) fn matches(plan: &SearchPlan, m: &MessageData, _seq: u32, view: &View) -> bool {
    let parsed = match (&m.content, &m.summary) {
        (Some(raw), _) if plan.content => Some(parse(raw, true)),
        (_, Some(summary)) if plan.summary => {
            Some(Parsed { headers: summary.headers().into(), body: String::new(), sent: summary.sent.and_then(day_of) })
        }
        (Some(raw), _) if plan.summary => Some(parse(raw, false)),
        _ => None,
    };
    eval(&plan.key, m, parsed.as_ref(), view)
}

fn eval(key: &Key, m: &MessageData, p: Option<&Parsed<'_>>, view: &View) -> bool {
    let internal = DateTime::<Utc>::from_timestamp(m.internal_date, 0).map(|t| t.date_naive());
    match key {
        Key::All => true,
        Key::And(keys) => keys.iter().all(|k| eval(k, m, p, view)),
        Key::Or(a, b) => eval(a, m, p, view) || eval(b, m, p, view),
        Key::Not(k) => !eval(k, m, p, view),
        Key::Uids(uids) => uids.binary_search(&m.uid).is_ok(),
        // \Recent is the session's, not the store's.
        Key::Flag(bit, set) if *bit == MessageFlags::RECENT => view.has_flag(m.uid, *bit) == Some(*set),
        Key::Flag(bit, set) => m.flags.has(*bit) == *set,
        Key::Keyword(k, set) => m.flags.has_keyword(k) == *set,
        Key::Larger(n) => m.size > *n,
        Key::Smaller(n) => m.size < *n,
        Key::Before(d) => internal.is_some_and(|i| i < *d),
        Key::On(d) => internal.is_some_and(|i| i == *d),
        Key::Since(d) => internal.is_some_and(|i| i >= *d),
        Key::SentBefore(d) => p.and_then(|p| p.sent).is_some_and(|s| s < *d),
        Key::SentOn(d) => p.and_then(|p| p.sent).is_some_and(|s| s == *d),
        Key::SentSince(d) => p.and_then(|p| p.sent).is_some_and(|s| s >= *d),
        Key::Header(name, s) => {
            p.is_some_and(|p| fields(&p.headers).any(|(n, v)| n == name.as_bytes() && v.contains(s.as_str())))
        }
        Key::Body(s) => p.is_some_and(|p| p.body.contains(s.as_str())),
        Key::Text(s) => {
            p.is_some_and(|p| p.body.contains(s.as_str()) || fields(&p.headers).any(|(_, v)| v.contains(s.as_str())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> Parsed<'static> {
        parse(raw.as_bytes(), false)
    }

    /// imaptest search-date: SENTON and friends take the date as written in
    /// the Date: field, whatever its zone (RFC 3501 6.4.4 "disregarding
    /// time and timezone"): 00:00 +0200 on the 25th is the 24th in UTC.
    #[test]
    fn sent_dates_are_the_fields_own_date_rfc3501_6_4_4() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let sent = |date: &str| parsed(&format!("Date: {date}\r\n\r\nx\r\n")).sent;
        assert_eq!(sent("Sun, 25 Mar 2007 00:00:00 +0200"), Some(day(2007, 3, 25)));
        assert_eq!(sent("Sat, 24 Mar 2007 23:00:00 +0200"), Some(day(2007, 3, 24)));
        assert_eq!(sent("Sun, 28 Oct 2007 23:00:00 -0500"), Some(day(2007, 10, 28)), "the 29th in UTC");
        assert_eq!(sent("Mon, 29 Oct 2007 00:30:00 +0530"), Some(day(2007, 10, 29)));
    }

    /// imaptest search-addresses: `TO groupname` finds the group's messages,
    /// as the group's name is part of the field (RFC 5322 3.4 group syntax).
    #[test]
    fn address_keys_see_group_names_rfc3501_6_4_4() {
        let p = parsed("To: team: a@b.c, Bo <d@e.f>;, x@y.z\r\nCc: empty:;\r\n\r\nx\r\n");
        let to: Vec<_> = fields(&p.headers).filter(|(n, _)| *n == b"to").map(|(_, v)| v.to_string()).collect();
        assert_eq!(to, ["team:  <a@b.c>, bo <d@e.f>;,  <x@y.z>"]);
        let cc: Vec<_> = fields(&p.headers).filter(|(n, _)| *n == b"cc").map(|(_, v)| v.to_string()).collect();
        assert_eq!(cc, ["empty: ;"]);
    }
}
