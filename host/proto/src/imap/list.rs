//! LIST and LSUB (RFC 3501 6.3.8, 6.3.9) with CHILDREN (RFC 3348) and
//! SPECIAL-USE (RFC 6154) attributes: pattern matching over the names.

use super::list_extended::Selection;
use super::mutf7;
use super::request::ListedMailbox;
use super::wire;
use std::collections::BTreeMap;

pub const SEPARATOR: char = '/';

/// `*` matches anything, `%` anything but the separator (RFC 3501 6.3.8).
/// INBOX matches case-insensitively.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n) = if name.eq_ignore_ascii_case("INBOX") || name.to_ascii_uppercase().starts_with("INBOX/") {
        (normalize_inbox(pattern), normalize_inbox(name))
    } else {
        (pattern.to_string(), name.to_string())
    };
    glob(p.as_bytes(), n.as_bytes())
}

fn normalize_inbox(s: &str) -> String {
    if s.len() >= 5 && s[..5].eq_ignore_ascii_case("INBOX") && s.is_char_boundary(5) {
        format!("INBOX{}", &s[5..])
    } else {
        s.to_string()
    }
}

fn glob(p: &[u8], n: &[u8]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some(b'*') => (0..=n.len()).any(|i| glob(&p[1..], &n[i..])),
        Some(b'%') => {
            let stop = n.iter().position(|&c| c == SEPARATOR as u8).unwrap_or(n.len());
            (0..=stop).any(|i| glob(&p[1..], &n[i..]))
        }
        Some(&c) => n.first() == Some(&c) && glob(&p[1..], &n[1..]),
    }
}

/// One line of a LIST answer.
struct Entry {
    exists: bool,
    children: bool,
    special_use: Option<&'static str>,
    subscribed: bool,
    /// LSUB shows it, unsubscribed, as `\Noselect`: a subscribed name
    /// below it that `%` stopped short of (RFC 3501 6.3.9).
    lsub_parent: bool,
}

/// Writes the untagged LIST (or LSUB) responses for `reference` +
/// `pattern` (both as the client sent them, modified UTF-7).
pub fn write(
    out: &mut Vec<u8>,
    lsub: bool,
    reference: &str,
    pattern: &str,
    mailboxes: &[ListedMailbox],
    subscriptions: &[String],
    selection: Selection,
) {
    let word = if lsub { "LSUB" } else { "LIST" };
    if pattern.is_empty() {
        // RFC 3501 6.3.8: the hierarchy delimiter and root name.
        out.extend_from_slice(format!("* {word} (\\Noselect) \"/\" \"\"\r\n").as_bytes());
        return;
    }
    let full = format!("{reference}{pattern}");
    // Every name, its parents (shown \Noselect when they do not exist), and
    // for LSUB the subscribed names.
    let mut all: BTreeMap<String, Entry> = BTreeMap::new();
    let blank = || Entry { exists: false, children: false, special_use: None, subscribed: false, lsub_parent: false };
    for m in mailboxes {
        let name = mutf7::encode(&m.name);
        let e = all.entry(name).or_insert_with(blank);
        e.exists = true;
        e.special_use = m.special_use;
    }
    for s in subscriptions {
        all.entry(mutf7::encode(s)).or_insert_with(blank).subscribed = true;
    }
    // RFC 3501 6.3.9: "if foo/bar is subscribed but foo is not, a % wildcard
    // to LSUB must return foo, not foo/bar, ... flagged \Noselect": a
    // subscribed name `%` stops short of shows its matching ancestors.
    let across = full.replace('%', "*");
    let names: Vec<String> = all.keys().cloned().collect();
    for name in names {
        let stopped_short = lsub && all[&name].subscribed && !matches(&full, &name) && matches(&across, &name);
        let mut parent = name.as_str();
        while let Some(i) = parent.rfind(SEPARATOR) {
            parent = &parent[..i];
            let e = all.entry(parent.to_string()).or_insert_with(blank);
            e.children = true;
            e.lsub_parent |= stopped_short && !e.subscribed && matches(&full, parent);
        }
    }
    for (name, e) in &all {
        let shown =
            if lsub || selection.subscribed { e.subscribed || (lsub && e.lsub_parent) } else { e.exists || e.children };
        if !matches(&full, name) || !shown || (selection.special_use && e.special_use.is_none()) {
            continue;
        }
        let mut attrs: Vec<&str> = Vec::new();
        if lsub && !e.subscribed {
            attrs.push("\\Noselect");
        } else if !e.exists {
            // RFC 5258 3.4: a subscribed name that does not exist.
            attrs.push(if selection.subscribed && !e.children { "\\NonExistent" } else { "\\Noselect" });
        }
        if !lsub {
            attrs.push(if e.children { "\\HasChildren" } else { "\\HasNoChildren" });
            attrs.extend(e.special_use);
            if e.subscribed {
                attrs.push("\\Subscribed");
            }
        }
        out.extend_from_slice(format!("* {word} ({}) \"/\" ", attrs.join(" ")).as_bytes());
        wire::astring(out, name.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_rfc3501_6_3_8() {
        assert!(matches("*", "a/b/c"));
        assert!(matches("%", "a"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(matches("a*c", "a/b/c"));
        assert!(matches("inbox", "INBOX"));
        assert!(!matches("Sent", "sent"));
    }

    fn list(lsub: bool, reference: &str, pattern: &str) -> String {
        let boxes = ["INBOX", "Sent", "Archive/2024", "Grüße"]
            .iter()
            .map(|n| ListedMailbox {
                name: n.to_string(),
                special_use: if *n == "Sent" { Some("\\Sent") } else { None },
            })
            .collect::<Vec<_>>();
        let mut out = Vec::new();
        write(
            &mut out,
            lsub,
            reference,
            pattern,
            &boxes,
            &["Sent".to_string(), "Gone".to_string()],
            Default::default(),
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn list_shows_attributes_and_missing_parents_rfc3501_6_3_8() {
        assert_eq!(list(false, "", ""), "* LIST (\\Noselect) \"/\" \"\"\r\n");
        assert_eq!(
            list(false, "", "%"),
            "* LIST (\\Noselect \\HasChildren) \"/\" Archive\r\n\
             * LIST (\\HasNoChildren) \"/\" Gr&APwA3w-e\r\n\
             * LIST (\\HasNoChildren) \"/\" INBOX\r\n\
             * LIST (\\HasNoChildren \\Sent \\Subscribed) \"/\" Sent\r\n"
        );
        assert_eq!(list(false, "Archive/", "*"), "* LIST (\\HasNoChildren) \"/\" Archive/2024\r\n");
    }

    #[test]
    fn lsub_lists_subscriptions_even_of_missing_names_rfc3501_6_3_9() {
        assert_eq!(list(true, "", "*"), "* LSUB (\\Noselect) \"/\" Gone\r\n* LSUB () \"/\" Sent\r\n");
    }

    /// RFC 3501 6.3.9's example (imaptest's subscribe script): with foo/bar
    /// subscribed and foo not, `%` returns foo flagged \Noselect (whether
    /// foo exists or not), `*` returns foo/bar and not foo.
    #[test]
    fn lsub_percent_returns_the_unsubscribed_parent_noselect_rfc3501_6_3_9() {
        let boxes: Vec<ListedMailbox> = ["t", "t/a", "t/b", "t/b/x", "t/c/y"]
            .iter()
            .map(|n| ListedMailbox { name: n.to_string(), special_use: None })
            .collect();
        let subs = ["t/a", "t/b/x", "t/c/y"].map(String::from);
        let lsub = |pattern: &str| {
            let mut out = Vec::new();
            write(&mut out, true, "", pattern, &boxes, &subs, Default::default());
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            lsub("t/%"),
            "* LSUB () \"/\" t/a\r\n* LSUB (\\Noselect) \"/\" t/b\r\n* LSUB (\\Noselect) \"/\" t/c\r\n"
        );
        assert_eq!(lsub("t/*"), "* LSUB () \"/\" t/a\r\n* LSUB () \"/\" t/b/x\r\n* LSUB () \"/\" t/c/y\r\n");
        assert_eq!(lsub("%"), "* LSUB (\\Noselect) \"/\" t\r\n");
        assert_eq!(lsub("*x"), "* LSUB () \"/\" t/b/x\r\n", "no parent when % is not in the pattern");
    }
}
