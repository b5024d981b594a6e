//! What a milter answers, turned into chain answers. Everything here is
//! untrusted input: reply codes, enhanced codes and header fields pass the
//! same checks as a plugin's (`validate`) before the host uses them.

use crate::validate;
use ferrymail_policy::edits::HeaderEdit;
use ferrymail_policy::{DataVerdict, Reply, Verdict};

use super::codec::Response;

/// A milter's answer is untrusted like a plugin's: the same rules for
/// replies (RFC 5321 4.2, RFC 3463) and header fields (RFC 5322), one
/// place (`validate`).
pub(crate) fn check(v: &DataVerdict) -> Result<(), String> {
    if let Some(r) = v.verdict.reply() {
        let enhanced = r.enhanced.as_deref().unwrap_or("");
        if !enhanced.is_empty() {
            validate::enhanced_code(enhanced, r.code).map_err(|e| e.0)?;
        }
        validate::reply_text(&r.text, 4 + enhanced.len() + usize::from(!enhanced.is_empty())).map_err(|e| e.0)?;
    }
    if v.edits.len() > validate::MAX_HEADERS {
        return Err(format!("{} header edits, at most {}", v.edits.len(), validate::MAX_HEADERS));
    }
    for e in &v.edits {
        match e {
            HeaderEdit::Append { name, value } | HeaderEdit::Insert { name, value, .. } => {
                validate::header(name, value).map_err(|e| e.0)?
            }
            // An empty value deletes the field: only the name needs checking.
            HeaderEdit::Change { name, value, .. } => {
                validate::header(name, if value.is_empty() { "x" } else { value }).map_err(|e| e.0)?
            }
        }
    }
    Ok(())
}

/// libmilter filters fold header values with bare LF (Postfix converts
/// them); the message is CRLF throughout.
pub(crate) fn crlf(value: String) -> String {
    if value.contains('\n') { value.replace("\r\n", "\n").replace('\n', "\r\n") } else { value }
}

/// The chain answer for reject, tempfail, discard or a reply code.
pub(crate) fn final_answer(name: &str, r: Response) -> Result<DataVerdict, String> {
    let verdict = match r {
        // Postfix's texts for a milter's plain reject and tempfail.
        Response::Reject => Verdict::Reject(Reply::new(550, "5.7.1", "Command rejected")),
        Response::Tempfail => Verdict::Tempfail(Reply::new(451, "4.7.1", "Service unavailable - try again later")),
        Response::Discard => return Ok(DataVerdict { discard: true, ..Default::default() }),
        Response::ReplyCode(text) => reply_code(&text).ok_or_else(|| format!("bad reply code {text:?}"))?,
        other => return Err(format!("unexpected {other:?} from milter {name}")),
    };
    Ok(DataVerdict { verdict, ..Default::default() })
}

/// SMFIR_REPLYCODE text: "550 5.7.1 text", possibly several lines
/// ("550-5.7.1 a\r\n550 5.7.1 b"). 4xx is a tempfail, 5xx a reject, 421
/// closes the session as it does for Postfix (RFC 5321 3.8); a milter
/// cannot turn a refusal into a success (2xx, 3xx are errors). The
/// answer check (codes, enhanced codes, text) applies after.
pub(crate) fn reply_code(text: &str) -> Option<Verdict> {
    let code: u16 = text.get(..3)?.parse().ok()?;
    let class = char::from(b'0' + (code / 100 % 10) as u8);
    let mut enhanced = None;
    let mut lines = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.get(..3) != text.get(..3) {
            return None; // every line of a multi-line reply has the same code
        }
        let rest = line.get(4..).unwrap_or("");
        let (e, t) = match rest.split_once(' ') {
            Some((e, t)) if e.split('.').count() == 3 && e.starts_with(class) => (Some(e), t),
            _ => (None, rest),
        };
        enhanced = enhanced.or(e);
        lines.push(t.to_string());
    }
    let reply = Reply { code, enhanced: enhanced.map(str::to_string), text: lines.join("\n") };
    match code {
        421 => Some(Verdict::Disconnect(reply)),
        400..=499 => Some(Verdict::Tempfail(reply)),
        500..=599 => Some(Verdict::Reject(reply)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_codes_become_verdicts() {
        assert_eq!(
            reply_code("554 5.7.1 Gtube pattern"),
            Some(Verdict::Reject(Reply::new(554, "5.7.1", "Gtube pattern")))
        );
        assert_eq!(reply_code("451 4.7.1 Try later"), Some(Verdict::Tempfail(Reply::new(451, "4.7.1", "Try later"))));
        assert_eq!(reply_code("421 4.7.0 Go away"), Some(Verdict::Disconnect(Reply::new(421, "4.7.0", "Go away"))));
        assert_eq!(
            reply_code("550 No enhanced"),
            Some(Verdict::Reject(Reply { code: 550, enhanced: None, text: "No enhanced".into() }))
        );
        assert_eq!(
            reply_code("550-5.7.1 first\r\n550 5.7.1 second"),
            Some(Verdict::Reject(Reply::new(550, "5.7.1", "first\nsecond")))
        );
        assert_eq!(reply_code("550-5.7.1 first\r\n250 ok"), None, "mixed codes");
        assert_eq!(reply_code("250 ok"), None, "a milter cannot make a refusal a success");
        assert_eq!(reply_code("x"), None);
        assert_eq!(reply_code("650 5.7.1 x"), None);
    }

    #[test]
    fn bad_answers_fail_the_check() {
        let reply = |code, e: &str, text: &str| DataVerdict {
            verdict: Verdict::Reject(Reply {
                code,
                enhanced: Some(e.into()).filter(|e: &String| !e.is_empty()),
                text: text.into(),
            }),
            ..Default::default()
        };
        assert!(check(&reply(554, "5.7.1", "Gtube pattern")).is_ok());
        assert!(check(&reply(554, "4.7.1", "class mismatch")).is_err(), "RFC 3463: class must match");
        assert!(check(&reply(554, "5.7.1", "bare\rCR")).is_err());
        let header = |name: &str, value: &str| DataVerdict {
            edits: vec![HeaderEdit::Append { name: name.into(), value: value.into() }],
            ..Default::default()
        };
        assert!(check(&header("X-Spam", "Yes")).is_ok());
        assert!(check(&header("X Spam", "Yes")).is_err(), "RFC 5322 2.2: no space in a field name");
        assert!(check(&header("X-Spam", "a\r\nInjected: 1")).is_err(), "a value cannot start a new field");
        let delete = DataVerdict {
            edits: vec![HeaderEdit::Change { name: "X-Old".into(), index: 1, value: String::new() }],
            ..Default::default()
        };
        assert!(check(&delete).is_ok(), "an empty change deletes");
        let many = DataVerdict {
            edits: (0..=validate::MAX_HEADERS)
                .map(|_| HeaderEdit::Append { name: "X".into(), value: "y".into() })
                .collect(),
            ..Default::default()
        };
        assert!(check(&many).is_err());
    }

    #[test]
    fn folded_values_get_crlf() {
        assert_eq!(crlf("a=1;\n\tb=2".into()), "a=1;\r\n\tb=2");
        assert_eq!(crlf("a=1;\r\n\tb=2".into()), "a=1;\r\n\tb=2");
    }
}
