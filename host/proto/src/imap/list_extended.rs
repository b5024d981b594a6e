//! The LIST-EXTENDED forms clients send once SPECIAL-USE is advertised
//! (RFC 6154 5.1, RFC 5258 3): `LIST (SPECIAL-USE) "" "*"` and
//! `LIST "" "*" RETURN (SPECIAL-USE)`. imap-codec parses only the RFC 3501
//! form, so the options are taken off here and the rest parsed as usual.

/// Selection options (RFC 5258 3.1) that narrow a LIST.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only mailboxes with a special-use attribute (RFC 6154 5.1).
    pub special_use: bool,
    /// Only subscribed names (RFC 5258 3.1), existing or not.
    pub subscribed: bool,
}

/// `tag LIST (opts) ref pat [RETURN (opts)]` → `tag LIST ref pat` and the
/// selection; `None` when the line is not such a LIST (or names an option
/// we do not know, which then fails to parse: BAD).
pub fn rewrite(line: &[u8]) -> Option<(Vec<u8>, Selection)> {
    let body = line.strip_suffix(b"\r\n")?;
    if body.contains(&b'{') {
        return None;
    }
    let space = body.iter().position(|&b| b == b' ')?;
    let (tag, rest) = (&body[..space], &body[space + 1..]);
    if rest.len() < 5 || !rest[..5].eq_ignore_ascii_case(b"LIST ") {
        return None;
    }
    let mut args = &rest[5..];
    let mut selection = Selection::default();
    let mut changed = false;
    if args.first() == Some(&b'(') {
        let close = args.iter().position(|&b| b == b')')?;
        for option in args[1..close].split(|&b| b == b' ').filter(|o| !o.is_empty()) {
            match option.to_ascii_uppercase().as_slice() {
                b"SPECIAL-USE" => selection.special_use = true,
                b"SUBSCRIBED" => selection.subscribed = true,
                // Only change which names match in ways we already meet.
                b"REMOTE" | b"RECURSIVEMATCH" => {}
                _ => return None,
            }
        }
        args = args.get(close + 1..)?.strip_prefix(b" ")?;
        changed = true;
    }
    let upper = args.to_ascii_uppercase();
    if let Some(at) = find_last(&upper, b" RETURN (")
        && args.ends_with(b")")
    {
        for option in args[at + 9..args.len() - 1].split(|&b| b == b' ').filter(|o| !o.is_empty()) {
            // Every LIST answer carries these attributes already.
            match option.to_ascii_uppercase().as_slice() {
                b"SPECIAL-USE" | b"CHILDREN" | b"SUBSCRIBED" => {}
                _ => return None,
            }
        }
        args = &args[..at];
        changed = true;
    }
    if !changed {
        return None;
    }
    let mut out = Vec::with_capacity(line.len());
    out.extend_from_slice(tag);
    out.extend_from_slice(b" LIST ");
    out.extend_from_slice(args);
    out.extend_from_slice(b"\r\n");
    Some((out, selection))
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_and_return_options_come_off_rfc5258_3_rfc6154_5_1() {
        let (line, sel) = rewrite(b"t1 LIST (SPECIAL-USE) \"\" \"*\"\r\n").unwrap();
        assert_eq!((line.as_slice(), sel.special_use), (&b"t1 LIST \"\" \"*\"\r\n"[..], true));
        let (line, sel) = rewrite(b"t2 list \"\" \"%\" RETURN (SPECIAL-USE CHILDREN)\r\n").unwrap();
        assert_eq!((line.as_slice(), sel), (&b"t2 LIST \"\" \"%\"\r\n"[..], Selection::default()));
        let (_, sel) = rewrite(b"A02 LIST (SUBSCRIBED) \"\" \"*\"\r\n").unwrap();
        assert!(sel.subscribed);
        assert_eq!(rewrite(b"a LIST \"\" \"*\"\r\n"), None);
        assert_eq!(rewrite(b"a LIST (FROB) \"\" \"*\"\r\n"), None);
        assert_eq!(rewrite(b"a LSUB (SPECIAL-USE) \"\" \"*\"\r\n"), None);
    }
}
