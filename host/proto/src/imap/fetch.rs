//! FETCH (RFC 3501 6.4.5, 7.4.2): which items, whether contents are
//! needed, whether `\Seen` is set, and writing each message's response.

use super::request::MessageData;
use super::summary::Summary;
use super::{section, wire};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section};

pub(crate) struct FetchPlan {
    items: Vec<MessageDataItemName<'static>>,
    /// Some item needs the message's bytes.
    pub content: bool,
    /// Some item is ENVELOPE, BODY or BODYSTRUCTURE: the [`Summary`].
    ///
    /// [`Summary`]: super::Summary
    pub summary: bool,
    /// Some item sets `\Seen` (BODY[...] without PEEK, RFC822, RFC822.TEXT)
    /// and the mailbox is read-write.
    pub sets_seen: bool,
}

impl FetchPlan {
    pub fn new(items: MacroOrMessageDataItemNames<'static>, uid: bool, read_only: bool) -> FetchPlan {
        let mut items = match items {
            MacroOrMessageDataItemNames::Macro(m) => m.expand().into_iter().map(|i| i.into_static()).collect(),
            MacroOrMessageDataItemNames::MessageDataItemNames(items) => items,
        };
        // RFC 3501 6.4.8: UID FETCH always reports UID, first.
        if uid && !items.contains(&MessageDataItemName::Uid) {
            items.insert(0, MessageDataItemName::Uid);
        }
        let content = items.iter().any(|i| {
            matches!(
                i,
                MessageDataItemName::BodyExt { .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Header
                    | MessageDataItemName::Rfc822Text
            )
        });
        let summary = items.iter().any(|i| {
            matches!(i, MessageDataItemName::Envelope | MessageDataItemName::Body | MessageDataItemName::BodyStructure)
        });
        let sets_seen = !read_only
            && items.iter().any(|i| {
                matches!(
                    i,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
        FetchPlan { items, content, summary, sets_seen }
    }
}

/// The message's summary: the stored one, or computed once from `content`.
fn summary_of<'a>(m: &'a MessageData, computed: &'a mut Option<Summary>, content: &[u8]) -> &'a Summary {
    match &m.summary {
        Some(s) => s,
        None => computed.get_or_insert_with(|| Summary::compute(content)),
    }
}

/// `* seq FETCH (...)` for one message. `flags_changed`: its `\Seen` was
/// just set by this FETCH, so FLAGS is sent even if not asked for.
pub(crate) fn write(out: &mut Vec<u8>, seq: u32, m: &MessageData, plan: &FetchPlan, _uid: bool, flags_changed: bool) {
    out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !first {
            out.push(b' ');
        }
        first = false;
    };
    let content = m.content.as_deref().unwrap_or(b"");
    // Stored with the message; computed here only if the driver had none
    // and an item needs it (never for FLAGS or BODY[] alone: that parse
    // would cost more than the rest of the answer).
    let mut computed: Option<Summary> = None;
    let mut flags_sent = false;
    for item in &plan.items {
        match item {
            MessageDataItemName::Uid => {
                sep(out);
                out.extend_from_slice(format!("UID {}", m.uid).as_bytes());
            }
            MessageDataItemName::Flags => {
                sep(out);
                out.extend_from_slice(b"FLAGS ");
                m.flags.write_list(out);
                flags_sent = true;
            }
            MessageDataItemName::Rfc822Size => {
                sep(out);
                out.extend_from_slice(format!("RFC822.SIZE {}", m.size).as_bytes());
            }
            MessageDataItemName::InternalDate => {
                sep(out);
                out.extend_from_slice(b"INTERNALDATE ");
                wire::date_time(out, m.internal_date);
            }
            MessageDataItemName::Envelope => {
                sep(out);
                out.extend_from_slice(b"ENVELOPE ");
                out.extend_from_slice(summary_of(m, &mut computed, content).envelope());
            }
            MessageDataItemName::Body => {
                sep(out);
                out.extend_from_slice(b"BODY ");
                out.extend_from_slice(summary_of(m, &mut computed, content).body());
            }
            MessageDataItemName::BodyStructure => {
                sep(out);
                out.extend_from_slice(b"BODYSTRUCTURE ");
                out.extend_from_slice(summary_of(m, &mut computed, content).bodystructure());
            }
            MessageDataItemName::Rfc822 => {
                sep(out);
                out.extend_from_slice(b"RFC822 ");
                wire::literal(out, content);
            }
            MessageDataItemName::Rfc822Header => {
                sep(out);
                out.extend_from_slice(b"RFC822.HEADER ");
                wire::literal(out, section::extract(content, Some(&Section::Header(None))).as_deref().unwrap_or(b""));
            }
            MessageDataItemName::Rfc822Text => {
                sep(out);
                out.extend_from_slice(b"RFC822.TEXT ");
                wire::literal(out, section::extract(content, Some(&Section::Text(None))).as_deref().unwrap_or(b""));
            }
            MessageDataItemName::BodyExt { section: which, partial, .. } => {
                sep(out);
                out.extend_from_slice(b"BODY[");
                section::write_spec(out, which.as_ref());
                out.push(b']');
                let data = section::extract(content, which.as_ref());
                match (data, partial) {
                    // A part the message does not have is empty, as Dovecot
                    // answers (RFC 3501 leaves it open; NIL breaks clients
                    // that expect a string).
                    (None, Some((origin, _))) => {
                        out.extend_from_slice(format!("<{origin}> ").as_bytes());
                        wire::literal(out, b"");
                    }
                    (None, None) => {
                        out.push(b' ');
                        wire::literal(out, b"");
                    }
                    (Some(data), Some((origin, len))) => {
                        // RFC 3501 6.4.5: a partial fetch past the end is empty.
                        let from = (*origin as usize).min(data.len());
                        let to = from.saturating_add(len.get() as usize).min(data.len());
                        out.extend_from_slice(format!("<{origin}> ").as_bytes());
                        wire::literal(out, &data[from..to]);
                    }
                    (Some(data), None) => {
                        out.push(b' ');
                        wire::literal(out, &data);
                    }
                }
            }
            // BINARY is not advertised: nothing to report.
            MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. } => {}
        }
    }
    if flags_changed && !flags_sent {
        sep(out);
        out.extend_from_slice(b"FLAGS ");
        m.flags.write_list(out);
    }
    out.extend_from_slice(b")\r\n");
}
