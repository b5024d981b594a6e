//! Message flags as the session keeps them: the RFC 3501 2.3.2 system
//! flags as bits (the store's layout) and keywords beside them.

use imap_codec::imap_types::flag::Flag;

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MessageFlags {
    /// `SEEN | ANSWERED | FLAGGED | DELETED | DRAFT` bits.
    pub system: u32,
    /// Keywords in the order they were set; compared case-insensitively.
    pub keywords: Vec<String>,
}

impl MessageFlags {
    pub const SEEN: u32 = 1;
    pub const ANSWERED: u32 = 1 << 1;
    pub const FLAGGED: u32 = 1 << 2;
    pub const DELETED: u32 = 1 << 3;
    pub const DRAFT: u32 = 1 << 4;
    /// `\Recent` (RFC 3501 2.3.2): a session's, never stored; the session
    /// adds it to what it shows.
    pub const RECENT: u32 = 1 << 6;

    const NAMES: [(u32, &'static str); 6] = [
        (Self::RECENT, "\\Recent"),
        (Self::SEEN, "\\Seen"),
        (Self::ANSWERED, "\\Answered"),
        (Self::FLAGGED, "\\Flagged"),
        (Self::DELETED, "\\Deleted"),
        (Self::DRAFT, "\\Draft"),
    ];

    pub fn system(bits: u32) -> Self {
        MessageFlags { system: bits, keywords: Vec::new() }
    }

    pub fn has(&self, bit: u32) -> bool {
        self.system & bit == bit
    }

    pub fn has_keyword(&self, keyword: &str) -> bool {
        self.keywords.iter().any(|k| k.eq_ignore_ascii_case(keyword))
    }

    /// From a command's flag list. `\Recent` and unknown `\`-flags cannot be
    /// set (RFC 3501 2.3.2) and are ignored, as Dovecot does.
    pub fn from_list(list: &[Flag<'_>]) -> Self {
        let mut out = MessageFlags::default();
        for flag in list {
            match flag {
                Flag::Seen => out.system |= Self::SEEN,
                Flag::Answered => out.system |= Self::ANSWERED,
                Flag::Flagged => out.system |= Self::FLAGGED,
                Flag::Deleted => out.system |= Self::DELETED,
                Flag::Draft => out.system |= Self::DRAFT,
                Flag::Keyword(atom) => {
                    if !out.has_keyword(atom.as_ref()) {
                        out.keywords.push(atom.as_ref().to_string());
                    }
                }
                Flag::Extension(_) => {}
            }
        }
        out
    }

    /// `(\Seen $Label1)`.
    pub fn write_list(&self, out: &mut Vec<u8>) {
        out.push(b'(');
        let mut first = true;
        for (bit, name) in Self::NAMES {
            if self.has(bit) {
                if !first {
                    out.push(b' ');
                }
                out.extend_from_slice(name.as_bytes());
                first = false;
            }
        }
        for k in &self.keywords {
            if !first {
                out.push(b' ');
            }
            out.extend_from_slice(k.as_bytes());
            first = false;
        }
        out.push(b')');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_list_is_written_system_flags_first() {
        let mut f = MessageFlags::system(MessageFlags::SEEN | MessageFlags::DELETED);
        f.keywords.push("$Forwarded".into());
        let mut out = Vec::new();
        f.write_list(&mut out);
        assert_eq!(out, b"(\\Seen \\Deleted $Forwarded)");
        let mut out = Vec::new();
        MessageFlags::default().write_list(&mut out);
        assert_eq!(out, b"()");
    }
}
