//! The transcript format of `ferrymail plugin test` (docs/plugin-test.md):
//! setup lines, then the client's side of one SMTP session (`>` command
//! lines and `message` contents) with the expectations that follow each
//! (`<` reply, `decided-by`, `header`, `no-header`, `kv`). Line-oriented,
//! so a failure names its line.

use std::net::IpAddr;
use std::path::Path;

/// A parsed transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub setup: Setup,
    pub steps: Vec<Step>,
}

/// What the session runs against: set before the first client line.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// The client's address, as hooks see it (`client`); TEST-NET-1 by
    /// default, an address the server neither trusts nor relays for.
    pub client: IpAddr,
    /// `submission`: the session is on the submission service (AUTH).
    pub submission: bool,
    /// Extra local domains (`domain`).
    pub domains: Vec<String>,
    /// Accounts (`account ADDRESS [PASSWORD]`).
    pub accounts: Vec<(String, String)>,
    /// DNS answers the plugin's look-ups get (`dns a|aaaa|txt|mx …`).
    pub dns: Vec<DnsRecord>,
    /// The plugin's config keys (`config KEY = TOML`), over `--config`'s.
    pub config: Vec<(String, serde_json::Value)>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            client: IpAddr::from([192, 0, 2, 1]),
            submission: false,
            domains: Vec::new(),
            accounts: Vec::new(),
            dns: Vec::new(),
            config: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsRecord {
    A(String, IpAddr),
    Txt(String, String),
    Mx(String, u16, String),
}

/// One line of the session part, with its line number.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub line: usize,
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `> LINE`: a command line, sent as typed (CRLF added).
    Send(String),
    /// `message FILE` or `message <<END … END`: the content after DATA,
    /// CRLF line ends; sent dot-stuffed and ended with `.`.
    Message { content: Vec<u8>, source: String },
    /// `< CODE [X.Y.Z] [TEXT]`: the reply to the last command.
    Reply(ReplyPattern),
    /// `decided-by NAME`: the plugin whose answer made that reply
    /// (`host`: none did, the server's own default answered).
    DecidedBy(String),
    /// `header NAME: VALUE`: the chain added this field to the last message.
    Header { name: String, value: String },
    /// `no-header NAME`: it did not add one of this name.
    NoHeader(String),
    /// `kv KEY = VALUE` / `kv KEY absent`: the plugin's key-value entry now.
    Kv { key: String, value: Option<String> },
}

/// An expected reply; `text` is a glob (`*` matches anything), compared
/// without regard to case; absent parts are not compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPattern {
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: Option<String>,
}

impl std::fmt::Display for ReplyPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = &self.enhanced {
            write!(f, " {e}")?;
        }
        if let Some(t) = &self.text {
            write!(f, " {t}")?;
        }
        Ok(())
    }
}

impl ReplyPattern {
    /// Whether a reply (code, enhanced code, text of its last line) matches.
    pub fn matches(&self, code: u16, enhanced: Option<&str>, text: &str) -> bool {
        self.code == code
            && self.enhanced.as_deref().is_none_or(|e| Some(e) == enhanced)
            && self.text.as_deref().is_none_or(|t| glob(t, text))
    }
}

/// `pattern` with `*` for any run of characters, case-insensitive.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.to_lowercase(), text.to_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !t.starts_with(first) || t.len() < first.len() + last.len() || !t.ends_with(last) {
        return false;
    }
    let mut rest = &t[first.len()..t.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `s` is an enhanced status code (RFC 3463: class.subject.detail).
pub fn is_enhanced(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..].iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A transcript error: its line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses `text`; `message FILE` paths are relative to `dir`.
pub fn parse(text: &str, dir: &Path) -> Result<Transcript, ParseError> {
    let mut setup = Setup::default();
    let mut steps = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((n, raw)) = lines.next() {
        let err = |message: String| ParseError { line: n, message };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The command is everything after "> ", trailing blanks included
        // (a client may send them), without the line end.
        if let Some(cmd) = raw.trim_start().strip_prefix('>') {
            let cmd = cmd.strip_prefix(' ').unwrap_or(cmd).trim_end_matches(['\r', '\n']);
            steps.push(Step { line: n, kind: StepKind::Send(cmd.to_string()) });
            continue;
        }
        if let Some(reply) = line.strip_prefix('<') {
            steps.push(Step { line: n, kind: StepKind::Reply(reply_pattern(reply.trim()).map_err(err)?) });
            continue;
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let kind = match word {
            "message" => {
                let (content, source) = match rest.strip_prefix("<<") {
                    Some(tag) => {
                        let tag = tag.trim();
                        if tag.is_empty() {
                            return Err(err("`message <<END` needs an end marker".into()));
                        }
                        let mut body = Vec::new();
                        loop {
                            match lines.next() {
                                Some((_, l)) if l.trim_end() == tag => break,
                                Some((_, l)) => body.push(l),
                                None => return Err(err(format!("no line `{tag}` ends this message"))),
                            }
                        }
                        (crlf(&body.join("\n")), format!("inline message of line {n}"))
                    }
                    None if rest.is_empty() => return Err(err("`message` needs a file or <<END".into())),
                    None => {
                        let path = dir.join(rest);
                        let bytes = std::fs::read(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
                        (crlf(&String::from_utf8_lossy(&bytes)), rest.to_string())
                    }
                };
                StepKind::Message { content, source }
            }
            "decided-by" if !rest.is_empty() => StepKind::DecidedBy(rest.to_string()),
            "header" => match rest.split_once(':') {
                Some((name, value)) if !name.trim().is_empty() => {
                    StepKind::Header { name: name.trim().to_string(), value: value.trim().to_string() }
                }
                _ => return Err(err("`header` needs NAME: VALUE".into())),
            },
            "no-header" if !rest.is_empty() => StepKind::NoHeader(rest.to_string()),
            "kv" => match (rest.split_once(" = "), rest.strip_suffix(" absent")) {
                (Some((key, value)), _) => StepKind::Kv { key: key.trim().into(), value: Some(value.to_string()) },
                (None, Some(key)) => StepKind::Kv { key: key.trim().into(), value: None },
                _ => return Err(err("`kv` needs KEY = VALUE or KEY absent".into())),
            },
            _ if !steps.is_empty() && is_setup(word) => {
                return Err(err(format!("`{word}` is a setup line: put it before the first `>` line")));
            }
            _ => {
                setup_line(&mut setup, word, rest).map_err(err)?;
                continue;
            }
        };
        if steps.is_empty() && !matches!(kind, StepKind::Reply(_) | StepKind::DecidedBy(_)) {
            return Err(err(format!("`{word}` before the first `>` line: nothing has been sent yet")));
        }
        steps.push(Step { line: n, kind });
    }
    Ok(Transcript { setup, steps })
}

fn is_setup(word: &str) -> bool {
    matches!(word, "client" | "submission" | "domain" | "account" | "dns" | "config")
}

fn setup_line(setup: &mut Setup, word: &str, rest: &str) -> Result<(), String> {
    let args: Vec<&str> = rest.split_whitespace().collect();
    match (word, args.as_slice()) {
        ("client", [ip]) => setup.client = ip.parse().map_err(|_| format!("`{ip}` is not an IP address"))?,
        ("submission", []) => setup.submission = true,
        ("domain", [d]) => setup.domains.push(d.to_ascii_lowercase()),
        ("account", [a]) => setup.accounts.push((a.to_string(), "secret".into())),
        ("account", [a, p]) => setup.accounts.push((a.to_string(), p.to_string())),
        ("dns", ["a" | "aaaa", name, ip]) => {
            let ip = ip.parse().map_err(|_| format!("`{ip}` is not an IP address"))?;
            setup.dns.push(DnsRecord::A(name.to_string(), ip));
        }
        ("dns", ["mx", name, pref, host]) => {
            let pref = pref.parse().map_err(|_| format!("`{pref}` is not an MX preference (0-65535)"))?;
            setup.dns.push(DnsRecord::Mx(name.to_string(), pref, host.to_string()));
        }
        ("dns", ["txt", name, ..]) => {
            let text = rest.trim_start()[3..].trim_start()[name.len()..].trim();
            setup.dns.push(DnsRecord::Txt(name.to_string(), text.trim_matches('"').to_string()));
        }
        ("config", _) => {
            let table: toml::Table = toml::from_str(rest).map_err(|e| format!("`config KEY = VALUE` (TOML): {e}"))?;
            for (k, v) in table {
                let v = serde_json::to_value(v).map_err(|e| e.to_string())?;
                setup.config.push((k, v));
            }
        }
        _ if is_setup(word) => return Err(format!("`{word} {rest}`: wrong arguments (see docs/plugin-test.md)")),
        _ => return Err(format!("unknown line `{word} {rest}` (see docs/plugin-test.md)")),
    }
    Ok(())
}

fn reply_pattern(s: &str) -> Result<ReplyPattern, String> {
    let mut parts = s.splitn(2, char::is_whitespace);
    let code = parts.next().unwrap_or("");
    let code = match code.parse::<u16>() {
        Ok(c) if (200..=599).contains(&c) => c,
        _ => return Err(format!("`< {s}`: a reply starts with its code (200-599)")),
    };
    let rest = parts.next().unwrap_or("").trim();
    let (first, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let (enhanced, text) = match is_enhanced(first) {
        true => (Some(first.to_string()), after.trim()),
        false => (None, rest),
    };
    Ok(ReplyPattern { code, enhanced, text: (!text.is_empty()).then(|| text.to_string()) })
}

/// Text with any line ends as CRLF lines, ending in CRLF.
fn crlf(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 16);
    for line in text.lines() {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Transcript, ParseError> {
        parse(text, Path::new("."))
    }

    #[test]
    fn a_session_with_every_kind_of_line() {
        let t = p("# a comment\nclient 203.0.113.9\ndomain example.com\naccount bob@example.com\n\
                   dns txt 9.113.0.203.bl.test \"listed\"\nconfig words = [\"viagra\"]\n\
                   < 220\n> EHLO c.test\n< 250\n> RCPT TO:<trap@example.com>\n< 550 5.7.1 trap*\n\
                   decided-by spamwords\n> DATA\n< 354\nmessage <<EOF\nSubject: hi\n\n.dot\nEOF\n< 250\n\
                   header X-Spam: yes\nno-header X-Other\nkv count = 1\nkv gone absent\n")
        .unwrap();
        assert_eq!(t.setup.client, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(t.setup.domains, ["example.com"]);
        assert_eq!(t.setup.accounts, [("bob@example.com".into(), "secret".into())]);
        assert_eq!(t.setup.dns, [DnsRecord::Txt("9.113.0.203.bl.test".into(), "listed".into())]);
        assert_eq!(t.setup.config, [("words".into(), serde_json::json!(["viagra"]))]);
        let kinds: Vec<StepKind> = t.steps.into_iter().map(|s| s.kind).collect();
        assert_eq!(kinds[0], StepKind::Reply(ReplyPattern { code: 220, enhanced: None, text: None }));
        assert_eq!(kinds[1], StepKind::Send("EHLO c.test".into()));
        assert_eq!(
            kinds[4],
            StepKind::Reply(ReplyPattern { code: 550, enhanced: Some("5.7.1".into()), text: Some("trap*".into()) })
        );
        assert_eq!(kinds[5], StepKind::DecidedBy("spamwords".into()));
        let StepKind::Message { content, .. } = &kinds[8] else { panic!("{:?}", kinds[8]) };
        assert_eq!(content, b"Subject: hi\r\n\r\n.dot\r\n");
        assert_eq!(kinds[10], StepKind::Header { name: "X-Spam".into(), value: "yes".into() });
        assert_eq!(kinds[11], StepKind::NoHeader("X-Other".into()));
        assert_eq!(kinds[12], StepKind::Kv { key: "count".into(), value: Some("1".into()) });
        assert_eq!(kinds[13], StepKind::Kv { key: "gone".into(), value: None });
    }

    #[test]
    fn errors_name_their_line() {
        assert_eq!(p("> EHLO x\nclient 1.2.3.4\n").unwrap_err().line, 2);
        assert_eq!(p("> EHLO x\n< 2x0\n").unwrap_err().line, 2);
        assert_eq!(p("bogus\n").unwrap_err().line, 1);
        assert_eq!(p("> DATA\nmessage <<EOF\nno end\n").unwrap_err().line, 2);
        assert_eq!(p("header X: y\n").unwrap_err().line, 1);
        assert_eq!(p("> DATA\nmessage missing-file.eml\n").unwrap_err().line, 2);
    }

    #[test]
    fn reply_text_without_an_enhanced_code() {
        let r = reply_pattern("250 Ok*").unwrap();
        assert_eq!(r, ReplyPattern { code: 250, enhanced: None, text: Some("Ok*".into()) });
        assert!(r.matches(250, Some("2.0.0"), "ok: queued as 1"));
        assert!(!r.matches(251, None, "Ok"));
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("a*c", "abc"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("Relay*", "relay access denied"));
        assert!(!glob("exact", "exactly"));
    }

    #[test]
    fn enhanced_codes_per_rfc_3463() {
        assert!(is_enhanced("5.7.1"));
        assert!(is_enhanced("2.1.500"));
        assert!(!is_enhanced("3.0.0"));
        assert!(!is_enhanced("5.7"));
        assert!(!is_enhanced("Relay"));
    }
}
