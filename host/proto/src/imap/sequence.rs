//! Sequence sets (RFC 3501 9 `sequence-set`) resolved against the view.

use super::view::View;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

/// The UIDs a set names, ascending, each once. With `uid`, numbers are
/// UIDs and those that do not exist are ignored (RFC 3501 6.4.8); `*` is
/// the highest UID, so `559:*` always includes the last message. Without,
/// they are sequence numbers; `Err` if one is beyond the mailbox (RFC 3501
/// 9: a "sequence number ... greater than the number of messages" is
/// invalid).
pub fn resolve(set: &SequenceSet, view: &View, uid: bool) -> Result<Vec<u32>, &'static str> {
    let uids = view.uids();
    let mut out = Vec::new();
    if uid {
        let last = view.last_uid();
        let value = |s: &SeqOrUid| match s {
            SeqOrUid::Value(v) => v.get(),
            SeqOrUid::Asterisk => last,
        };
        for seq in set.0.as_ref() {
            let (a, b) = match seq {
                Sequence::Single(s) => (value(s), value(s)),
                Sequence::Range(x, y) => (value(x).min(value(y)), value(x).max(value(y))),
            };
            let from = uids.partition_point(|&u| u < a);
            let to = uids.partition_point(|&u| u <= b);
            out.extend_from_slice(&uids[from..to]);
        }
    } else {
        let n = uids.len() as u32;
        let value = |s: &SeqOrUid| match s {
            SeqOrUid::Value(v) => v.get(),
            SeqOrUid::Asterisk => n,
        };
        for seq in set.0.as_ref() {
            let (a, b) = match seq {
                Sequence::Single(s) => (value(s), value(s)),
                Sequence::Range(x, y) => (value(x).min(value(y)), value(x).max(value(y))),
            };
            if a == 0 || b > n {
                return Err("invalid message sequence number");
            }
            out.extend_from_slice(&uids[a as usize - 1..b as usize]);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::flags::MessageFlags;

    fn view() -> View {
        let status = crate::imap::MailboxStatus {
            messages: 4,
            unseen: 4,
            uid_next: 13,
            uid_validity: 1,
            highest_modseq: 1,
            size: 0,
            recent: 0,
        };
        let messages = [3, 5, 9, 12].iter().map(|&u| (u, MessageFlags::default())).collect();
        View::new(false, crate::imap::SelectedMailbox::from_messages(0, status, messages))
    }

    fn set(s: &str) -> SequenceSet {
        SequenceSet::try_from(s).unwrap()
    }

    #[test]
    fn sequence_numbers_rfc3501_6_4_5() {
        assert_eq!(resolve(&set("2:*"), &view(), false).unwrap(), vec![5, 9, 12]);
        assert_eq!(resolve(&set("4:1,2"), &view(), false).unwrap(), vec![3, 5, 9, 12]);
        assert!(resolve(&set("5"), &view(), false).is_err());
    }

    #[test]
    fn uid_ranges_ignore_missing_uids_rfc3501_6_4_8() {
        assert_eq!(resolve(&set("4:10"), &view(), true).unwrap(), vec![5, 9]);
        assert_eq!(resolve(&set("100"), &view(), true).unwrap(), Vec::<u32>::new());
        // "a UID range of 559:* always includes the UID of the last message"
        assert_eq!(resolve(&set("559:*"), &view(), true).unwrap(), vec![12]);
    }
}
