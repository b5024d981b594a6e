//! SEARCH (RFC 3501 6.4.4): the RFC's key set evaluated per message, with
//! the store's flags and, for header and text keys, the message bytes.

use super::flags::MessageFlags;
use super::request::MessageData;
use super::sequence::resolve;
use super::view::View;
use chrono::{DateTime, NaiveDate, Utc};
use imap_codec::imap_types::search::SearchKey;
use mail_parser::{HeaderValue, MessageParser};

/// Deepest nesting of NOT/OR/parentheses accepted; deeper is refused with
/// BAD before any work (and keeps evaluation's recursion bounded).
const MAX_DEPTH: usize = 32;

pub(crate) struct SearchPlan {
    key: Key,
    /// Some key needs the message's bytes.
    pub content: bool,
    /// The only messages that can match, when a top-level UID or
    /// sequence-set key says so: `UID 99990:* BODY x` reads ten bodies,
    /// not the mailbox.
    pub candidates: Option<Vec<u32>>,
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
    None,
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
    pub fn new(criteria: Vec<SearchKey<'static>>, view: &View) -> Result<SearchPlan, &'static str> {
        let key = Key::And(criteria.iter().map(|k| convert(k, view, 0)).collect::<Result<_, _>>()?);
        let content = key.needs_content();
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
        Ok(SearchPlan { key, content, candidates })
    }
}

fn lower(s: &impl AsRef<[u8]>) -> String {
    String::from_utf8_lossy(s.as_ref()).to_lowercase()
}

fn convert(key: &SearchKey<'_>, view: &View, depth: usize) -> Result<Key, &'static str> {
    if depth > MAX_DEPTH {
        return Err("search criteria nested too deeply");
    }
    let d = depth + 1;
    Ok(match key {
        SearchKey::And(keys) => Key::And(keys.as_ref().iter().map(|k| convert(k, view, d)).collect::<Result<_, _>>()?),
        SearchKey::Or(a, b) => Key::Or(Box::new(convert(a, view, d)?), Box::new(convert(b, view, d)?)),
        SearchKey::Not(k) => Key::Not(Box::new(convert(k, view, d)?)),
        SearchKey::All | SearchKey::Old => Key::All,
        // No session sees \Recent here (RFC 9051 dropped it).
        SearchKey::New | SearchKey::Recent => Key::None,
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
    fn needs_content(&self) -> bool {
        match self {
            Key::And(keys) => keys.iter().any(Key::needs_content),
            Key::Or(a, b) => a.needs_content() || b.needs_content(),
            Key::Not(k) => k.needs_content(),
            Key::SentBefore(_) | Key::SentOn(_) | Key::SentSince(_) | Key::Header(..) | Key::Body(_) | Key::Text(_) => {
                true
            }
            _ => false,
        }
    }
}

/// What text keys look at, parsed once per message.
struct Parsed {
    /// (lower-case name, lower-case decoded value) of every header field.
    fields: Vec<(String, String)>,
    body: String,
    sent: Option<NaiveDate>,
}

fn parse(raw: &[u8]) -> Parsed {
    let Some(msg) = MessageParser::new().parse(raw) else {
        return Parsed { fields: Vec::new(), body: String::from_utf8_lossy(raw).to_lowercase(), sent: None };
    };
    let mut fields = Vec::new();
    for h in msg.headers() {
        let value = match h.value() {
            HeaderValue::Text(t) => t.to_string(),
            HeaderValue::TextList(l) => l.join(", "),
            HeaderValue::Address(a) => a
                .iter()
                .map(|addr| {
                    format!("{} <{}>", addr.name.as_deref().unwrap_or(""), addr.address.as_deref().unwrap_or(""))
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => {
                let raw_value = raw.get(h.offset_start() as usize..h.offset_end() as usize).unwrap_or(b"");
                String::from_utf8_lossy(raw_value).trim().to_string()
            }
        };
        fields.push((h.name().to_lowercase(), value.to_lowercase()));
    }
    let mut body = String::new();
    for i in 0..msg.text_body.len().max(msg.html_body.len()) {
        if let Some(t) = msg.body_text(i) {
            body.push_str(&t.to_lowercase());
            body.push('\n');
        }
    }
    let sent = msg.date().and_then(|d| DateTime::<Utc>::from_timestamp(d.to_timestamp(), 0)).map(|t| t.date_naive());
    Parsed { fields, body, sent }
}

/// Whether the message matches. `seq` is its sequence number.
pub(crate) fn matches(plan: &SearchPlan, m: &MessageData, _seq: u32, _view: &View) -> bool {
    let parsed = if plan.content { m.content.as_deref().map(parse) } else { None };
    eval(&plan.key, m, parsed.as_ref())
}

fn eval(key: &Key, m: &MessageData, p: Option<&Parsed>) -> bool {
    let internal = DateTime::<Utc>::from_timestamp(m.internal_date, 0).map(|t| t.date_naive());
    match key {
        Key::All => true,
        Key::None => false,
        Key::And(keys) => keys.iter().all(|k| eval(k, m, p)),
        Key::Or(a, b) => eval(a, m, p) || eval(b, m, p),
        Key::Not(k) => !eval(k, m, p),
        Key::Uids(uids) => uids.binary_search(&m.uid).is_ok(),
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
        Key::Header(name, s) => p.is_some_and(|p| p.fields.iter().any(|(n, v)| n == name && v.contains(s.as_str()))),
        Key::Body(s) => p.is_some_and(|p| p.body.contains(s.as_str())),
        Key::Text(s) => {
            p.is_some_and(|p| p.body.contains(s.as_str()) || p.fields.iter().any(|(_, v)| v.contains(s.as_str())))
        }
    }
}
