//! Everything a guest returns is untrusted input. Every hook answer passes
//! [`Answer::check`] in `Binding::call` before the host looks at it; an
//! answer that breaks a rule is the plugin's failure (logged with the
//! plugin's name and the rule, then its failure policy applies), never
//! something the host repairs and uses. The wire encoder still neutralises
//! control bytes as a second line of defence.
//!
//! Rules, each with its source:
//! - reply code: three digits `[2-5][0-5][0-9]` (RFC 5321 4.2), in the
//!   class its verdict means: reject 5xx, tempfail 4xx, disconnect 4xx/5xx,
//!   route reject 4xx/5xx (the WIT's `verdict` and `destination`);
//! - enhanced code: `class.subject.detail`, class 2/4/5 equal to the reply
//!   code's first digit, subject and detail 1–3 digits (RFC 3463 2);
//! - reply text: lines of HT/SP/VCHAR (RFC 5321 4.2 textstring) split on
//!   "\n", each wire line at most 512 octets (RFC 5321 4.5.3.1.5);
//! - header field: name of ftext (RFC 5322 3.6.8), value of VCHAR/WSP with
//!   CRLF only before WSP (folding, RFC 5322 2.2.3), no line of only WSP
//!   (3.2.2), lines at most 998 octets (2.1.1);
//! - addresses: RFC 5321 4.1.2 Mailbox (RFC 6531 UTF-8 allowed), local part
//!   at most 64 octets, domain 255, the whole path 256 (4.5.3.1.1–3);
//! - host names: RFC 5321 4.1.2 Domain with labels of at most 63 octets
//!   (RFC 1035 2.3.4), or an IP address;
//! - retry intervals: 1 second to 30 days (a zero would retry in a busy
//!   loop, a huge one overflows the clock);
//! - sizes: bounded counts of lines, headers and alias targets, so one
//!   answer cannot make the host allocate without limit.

use crate::bindings::wit;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

/// Why an answer was refused: the field and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid answer: {}", self.0)
    }
}

impl std::error::Error for Invalid {}

type Checked = Result<(), Invalid>;

fn fail(what: impl Into<String>) -> Checked {
    Err(Invalid(what.into()))
}

/// RFC 5321 4.5.3.1.5: a reply line, code and CRLF included.
pub(crate) const MAX_REPLY_LINE: usize = 512;
/// Lines of one multi-line reply (the longest the host sends is EHLO's ~10).
pub(crate) const MAX_REPLY_LINES: usize = 32;
/// RFC 5322 2.1.1: a line of a message, CRLF excluded.
pub(crate) const MAX_HEADER_LINE: usize = 998;
/// One header value, folded lines included.
pub(crate) const MAX_HEADER_VALUE: usize = 8 * 1024;
/// Header fields one data answer may add.
pub(crate) const MAX_HEADERS: usize = 64;
/// RFC 5321 4.5.3.1.1–3.
pub(crate) const MAX_LOCAL_PART: usize = 64;
pub(crate) const MAX_DOMAIN: usize = 255;
/// The path is at most 256 octets with its angle brackets.
pub(crate) const MAX_ADDRESS: usize = 254;
/// RFC 1035 2.3.4.
pub(crate) const MAX_LABEL: usize = 63;
/// Targets of one alias answer.
pub(crate) const MAX_ALIAS_TARGETS: usize = 1000;
/// Retry intervals, seconds.
pub(crate) const RETRY_SECS: RangeInclusive<u64> = 1..=30 * 86_400;

/// A hook's answer, checked before the host uses any of it.
pub(crate) trait Answer {
    fn check(&self) -> Checked;

    /// Whether the answer ends the chain's walk (the plugin decided).
    fn decides(&self) -> bool;

    /// The answer as one line for the decision trace ("reject 550 5.7.1 …").
    /// Called only after [`Answer::check`] passed.
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// An answer as `Display`, formatted only if someone reads it.
pub(crate) struct Shown<'a, A: Answer>(pub &'a A);

impl<A: Answer> fmt::Display for Shown<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.show(f)
    }
}

fn show_reply(f: &mut fmt::Formatter<'_>, word: &str, r: &wit::Reply) -> fmt::Result {
    write!(f, "{word} {}", r.code)?;
    if let Some(e) = r.enhanced.as_deref().filter(|e| !e.is_empty()) {
        write!(f, " {e}")?;
    }
    // Multi-line texts are checked to be printable; one line in the trace.
    write!(f, " {}", r.text.replace('\n', " / "))
}

impl Answer for () {
    fn check(&self) -> Checked {
        Ok(())
    }

    fn decides(&self) -> bool {
        false
    }

    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("noted")
    }
}

impl Answer for wit::Verdict {
    fn check(&self) -> Checked {
        match self {
            wit::Verdict::Continue | wit::Verdict::Accept => Ok(()),
            wit::Verdict::Reject(r) => reply(r, 500..=599, "reject"),
            wit::Verdict::Tempfail(r) => reply(r, 400..=499, "tempfail"),
            wit::Verdict::Disconnect(r) => reply(r, 400..=599, "disconnect"),
        }
    }

    fn decides(&self) -> bool {
        !matches!(self, wit::Verdict::Continue)
    }

    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            wit::Verdict::Continue => f.write_str("continue"),
            wit::Verdict::Accept => f.write_str("accept"),
            wit::Verdict::Reject(r) => show_reply(f, "reject", r),
            wit::Verdict::Tempfail(r) => show_reply(f, "tempfail", r),
            wit::Verdict::Disconnect(r) => show_reply(f, "disconnect", r),
        }
    }
}

impl Answer for wit::DataResult {
    fn check(&self) -> Checked {
        self.verdict.check()?;
        if self.add_headers.len() > MAX_HEADERS {
            return fail(format!("{} header fields added, at most {MAX_HEADERS}", self.add_headers.len()));
        }
        self.add_headers.iter().try_for_each(|h| header(&h.name, &h.value))
    }

    fn decides(&self) -> bool {
        self.verdict.decides()
    }

    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.verdict.show(f)?;
        match self.add_headers.len() {
            0 => Ok(()),
            n => write!(f, " (+{n} header fields)"),
        }
    }
}

impl Answer for wit::AuthResult {
    fn check(&self) -> Checked {
        let wit::AuthResult::Ok(ok) = self else {
            return Ok(());
        };
        mailbox(&ok.user).map_err(|Invalid(e)| Invalid(format!("auth-ok user: {e}")))?;
        match &ok.tenant {
            Some(t) if !crate::plan::valid_name(t) => fail(format!("auth-ok tenant {} is not a tenant name", clip(t))),
            _ => Ok(()),
        }
    }

    fn decides(&self) -> bool {
        !matches!(self, wit::AuthResult::Continue)
    }

    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the user name a client typed: the trace is not a log of
        // login attempts.
        f.write_str(match self {
            wit::AuthResult::Continue => "continue",
            wit::AuthResult::Ok(_) => "ok",
            wit::AuthResult::Fail => "fail",
            wit::AuthResult::Tempfail => "tempfail",
        })
    }
}

/// VRFY and EXPN answers: any reply, in any class.
impl Answer for Option<wit::Reply> {
    fn check(&self) -> Checked {
        self.as_ref().map_or(Ok(()), |r| reply(r, 200..=599, "reply"))
    }

    fn decides(&self) -> bool {
        self.is_some()
    }

    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Some(r) => show_reply(f, "reply", r),
            None => f.write_str("continue"),
        }
    }
}

impl Answer for Option<wit::Destination> {
    fn check(&self) -> Checked {
        let Some(d) = self else {
            return Ok(());
        };
        match d {
            wit::Destination::Local(account) => mailbox(account).map_err(|Invalid(e)| Invalid(format!("local: {e}"))),
            wit::Destination::Relay(h) => relay_host(&h.host, h.port),
            wit::Destination::Mx(domain) => self::domain(domain).map_err(|Invalid(e)| Invalid(format!("mx: {e}"))),
            wit::Destination::Alias(targets) => {
                if targets.len() > MAX_ALIAS_TARGETS {
                    return fail(format!("alias of {} targets, at most {MAX_ALIAS_TARGETS}", targets.len()));
                }
                targets.iter().try_for_each(|t| mailbox(t).map_err(|Invalid(e)| Invalid(format!("alias target: {e}"))))
            }
            wit::Destination::Discard => Ok(()),
            wit::Destination::Reject(r) => reply(r, 400..=599, "route reject"),
        }
    }

    fn decides(&self) -> bool {
        self.is_some()
    }

    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            None => f.write_str("continue"),
            Some(wit::Destination::Local(account)) => write!(f, "local {account}"),
            Some(wit::Destination::Relay(h)) => write!(f, "relay {}:{}", h.host, h.port),
            Some(wit::Destination::Mx(domain)) => write!(f, "mx {domain}"),
            Some(wit::Destination::Alias(targets)) => write!(f, "alias to {} addresses", targets.len()),
            Some(wit::Destination::Discard) => f.write_str("discard"),
            Some(wit::Destination::Reject(r)) => show_reply(f, "reject", r),
        }
    }
}

impl Answer for Option<wit::RetryDecision> {
    fn check(&self) -> Checked {
        match self {
            Some(wit::RetryDecision::RetryAfter(s) | wit::RetryDecision::WarnAndRetry(s))
                if !RETRY_SECS.contains(s) =>
            {
                fail(format!("retry interval of {s} s outside {}..={} s", RETRY_SECS.start(), RETRY_SECS.end()))
            }
            _ => Ok(()),
        }
    }

    fn decides(&self) -> bool {
        self.is_some()
    }

    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            None => f.write_str("continue"),
            Some(wit::RetryDecision::RetryAfter(s)) => write!(f, "retry after {s} s"),
            Some(wit::RetryDecision::WarnAndRetry(s)) => write!(f, "warn the sender, retry after {s} s"),
            Some(wit::RetryDecision::Bounce) => f.write_str("bounce"),
        }
    }
}

/// At most 40 characters of guest text, quoted and escaped (CR as `\r`),
/// for the log line.
fn clip(s: &str) -> String {
    let mut out = String::from("\"");
    out.extend(s.chars().take(40).flat_map(char::escape_debug));
    if s.chars().count() > 40 {
        out.push('…');
    }
    out.push('"');
    out
}

/// RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39, within `class`.
fn reply(r: &wit::Reply, class: RangeInclusive<u16>, verdict: &str) -> Checked {
    let c = r.code;
    if !(200..=599).contains(&c) || (c / 10) % 10 > 5 {
        return fail(format!("{verdict} reply code {c} is not an SMTP reply code (RFC 5321 4.2)"));
    }
    if !class.contains(&c) {
        return fail(format!("{verdict} reply code {c} outside {}..={}", class.start(), class.end()));
    }
    let enhanced = r.enhanced.as_deref().filter(|e| !e.is_empty());
    if let Some(e) = enhanced {
        enhanced_code(e, c)?;
    }
    let prefix = 4 + enhanced.map_or(0, |e| e.len() + 1);
    reply_text(&r.text, prefix)
}

/// RFC 3463 2: class "." subject "." detail; class = "2" / "4" / "5",
/// subject = 1*3digit, detail = 1*3digit; the class is the reply code's
/// first digit (RFC 3463 2, RFC 2034 4).
pub(crate) fn enhanced_code(e: &str, code: u16) -> Checked {
    let bad = || fail(format!("enhanced code {} does not match RFC 3463 2 for reply {code}", clip(e)));
    let mut parts = e.split('.');
    let (Some(class), Some(subject), Some(detail), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return bad();
    };
    let number = |s: &str| (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    let class_ok = matches!(class, "2" | "4" | "5") && u16::from(class.as_bytes()[0] - b'0') == code / 100;
    if class_ok && number(subject) && number(detail) { Ok(()) } else { bad() }
}

/// RFC 5321 4.2: textstring = 1*(%d09 / %d32-126); lines split on "\n";
/// each wire line (`prefix` octets of code and enhanced code, then the
/// text, then CRLF) at most 512 octets (4.5.3.1.5).
pub(crate) fn reply_text(text: &str, prefix: usize) -> Checked {
    let lines = text.split('\n');
    if lines.clone().count() > MAX_REPLY_LINES {
        return fail(format!("reply text of more than {MAX_REPLY_LINES} lines"));
    }
    for line in lines {
        if let Some(b) = line.bytes().find(|&b| b != b'\t' && !(32..=126).contains(&b)) {
            return fail(format!("reply text {} holds byte {b:#04x} (RFC 5321 4.2 textstring)", clip(line)));
        }
        if prefix + line.len() + 2 > MAX_REPLY_LINE {
            return fail(format!(
                "reply line of {} octets, at most {MAX_REPLY_LINE} (RFC 5321 4.5.3.1.5)",
                prefix + line.len() + 2
            ));
        }
    }
    Ok(())
}

/// RFC 5322 3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126.
/// The value: VCHAR and WSP, CRLF only as folding before WSP (2.2.3), no
/// folded line of only WSP (3.2.2), every line at most 998 octets (2.1.1).
pub(crate) fn header(name: &str, value: &str) -> Checked {
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return fail(format!("header name {} is not RFC 5322 3.6.8 ftext", clip(name)));
    }
    if value.len() > MAX_HEADER_VALUE {
        return fail(format!("header {name} value of {} octets, at most {MAX_HEADER_VALUE}", value.len()));
    }
    let mut first = name.len() + 2;
    for (i, line) in value.split("\r\n").enumerate() {
        if let Some(b) = line.bytes().find(|&b| b != b'\t' && !(32..=126).contains(&b)) {
            return fail(format!(
                "header {name} value holds byte {b:#04x} (only VCHAR, WSP and CRLF folding, RFC 5322 2.2)"
            ));
        }
        if i > 0 && !line.starts_with([' ', '\t']) {
            return fail(format!("header {name} value has a line break not followed by WSP (RFC 5322 2.2.3)"));
        }
        if i > 0 && line.trim_start_matches([' ', '\t']).is_empty() {
            return fail(format!("header {name} value has a folded line of only WSP (RFC 5322 3.2.2)"));
        }
        if first + line.len() > MAX_HEADER_LINE {
            return fail(format!("header {name} has a line longer than {MAX_HEADER_LINE} octets (RFC 5322 2.1.1)"));
        }
        first = 0;
    }
    Ok(())
}

/// RFC 5321 4.1.2: Mailbox = Local-part "@" ( Domain / address-literal ),
/// with RFC 6531's UTF-8 in atext, qtext and U-labels; size limits of
/// RFC 5321 4.5.3.1.1–3.
pub(crate) fn mailbox(address: &str) -> Checked {
    let bad = |why: &str| fail(format!("address {} {why}", clip(address)));
    if address.len() > MAX_ADDRESS {
        return bad(&format!("is longer than {MAX_ADDRESS} octets (RFC 5321 4.5.3.1.3)"));
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return bad("has no domain (RFC 5321 4.1.2)");
    };
    if local.len() > MAX_LOCAL_PART {
        return bad(&format!("has a local part longer than {MAX_LOCAL_PART} octets (RFC 5321 4.5.3.1.1)"));
    }
    if !(is_dot_string(local) || is_quoted_string(local)) {
        return bad("has a local part that is neither Dot-string nor Quoted-string (RFC 5321 4.1.2)");
    }
    if let Some(literal) = domain.strip_prefix('[') {
        return match literal.strip_suffix(']') {
            Some(l) if l.parse::<Ipv4Addr>().is_ok() => Ok(()),
            Some(l) if l.strip_prefix("IPv6:").is_some_and(|v6| v6.parse::<Ipv6Addr>().is_ok()) => Ok(()),
            _ => bad("has an address literal that is not IPv4 or IPv6 (RFC 5321 4.1.3)"),
        };
    }
    self::domain(domain).map_err(|Invalid(e)| Invalid(format!("address {}: {e}", clip(address))))
}

/// RFC 5321 4.1.2: Domain = sub-domain *("." sub-domain), sub-domain =
/// Let-dig [Ldh-str] or an RFC 6531 U-label; labels of at most 63 octets
/// (RFC 1035 2.3.4), the domain at most 255 (RFC 5321 4.5.3.1.2).
pub(crate) fn domain(d: &str) -> Checked {
    let bad = |why: &str| fail(format!("domain {} {why}", clip(d)));
    if d.is_empty() || d.len() > MAX_DOMAIN {
        return bad(&format!("must be 1 to {MAX_DOMAIN} octets (RFC 5321 4.5.3.1.2)"));
    }
    for label in d.split('.') {
        let let_dig = |c: char| c.is_ascii_alphanumeric() || !c.is_ascii();
        let ok = !label.is_empty()
            && label.len() <= MAX_LABEL
            && label.starts_with(let_dig)
            && label.ends_with(let_dig)
            && label.chars().all(|c| let_dig(c) || c == '-');
        if !ok {
            return bad(
                "is not an RFC 5321 4.1.2 Domain (labels of letters, digits and inner hyphens, at most 63 octets)",
            );
        }
    }
    Ok(())
}

/// A relay (smarthost) answer: a host name or an IP address (bare or as an
/// RFC 5321 4.1.3 address literal), and a port other than 0.
fn relay_host(host: &str, port: u16) -> Checked {
    if port == 0 {
        return fail("relay port 0");
    }
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let ip = literal.map(|l| l.strip_prefix("IPv6:").unwrap_or(l)).unwrap_or(host);
    if ip.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if literal.is_some() {
        return fail(format!("relay host {} is not an IP address literal", clip(host)));
    }
    domain(host).map_err(|Invalid(e)| Invalid(format!("relay host: {e}")))
}

/// Dot-string = Atom *("." Atom); atext (RFC 5322 3.2.3) with RFC 6531's
/// UTF8-non-ascii.
fn is_dot_string(local: &str) -> bool {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    !local.is_empty() && local.split('.').all(|atom| !atom.is_empty() && atom.chars().all(atext))
}

/// Quoted-string = DQUOTE *QcontentSMTP DQUOTE; qtextSMTP = %d32-33 /
/// %d35-91 / %d93-126 (or UTF-8), quoted-pairSMTP = "\" %d32-126.
fn is_quoted_string(local: &str) -> bool {
    let Some(inner) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
        return false;
    };
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        let ok = match c {
            '\\' => chars.next().is_some_and(|n| (' '..='~').contains(&n)),
            '"' => false,
            c => (' '..='~').contains(&c) || !c.is_ascii() && !c.is_control(),
        };
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
