//! Inbound checks: SPF on the HELO name and the MAIL FROM domain (RFC
//! 7208), every DKIM signature (RFC 6376; rsa-sha256 and ed25519-sha256,
//! RFC 8463) and DMARC (RFC 7489) with the organisational domain from the
//! public suffix list, summed up in one `Authentication-Results` field
//! (RFC 8601) under our host name. Look-ups go through the server's
//! resolver, with its timeouts and cache; a DNS failure or the whole-check
//! deadline gives `temperror`, never `fail`.
//!
//! This only measures. What to do about a failure is the chain's decision
//! (the `dmarc` plugin reads this field), so each tenant chooses.

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, MessageAuthenticator, SpfOutput, SpfResult};
use std::net::IpAddr;
use std::time::Duration;

/// What the checks are told about the transaction.
pub struct Transaction<'a> {
    /// Our host name: the authserv-id, and SPF's `%{r}`.
    pub hostname: &'a str,
    pub client_ip: IpAddr,
    /// The HELO/EHLO argument ("" when none was given).
    pub helo: &'a str,
    /// The reverse-path ("" for `<>`).
    pub mail_from: &'a str,
}

/// The results, and the field that reports them.
#[derive(Debug, Clone)]
pub struct Results {
    /// `Authentication-Results: …` with its CRLF.
    pub header: String,
    /// For the log line: "spf=pass dkim=pass dmarc=pass".
    pub summary: String,
}

/// Runs every check within `deadline`.
pub async fn check(auth: &MessageAuthenticator, tx: &Transaction<'_>, message: &[u8], deadline: Duration) -> Results {
    match tokio::time::timeout(deadline, run(auth, tx, message)).await {
        Ok(results) => results,
        Err(_) => Results {
            header: format!(
                "Authentication-Results: {};\r\n\tspf=temperror (checks timed out) smtp.mailfrom={};\r\n\tdkim=temperror (checks timed out);\r\n\tdmarc=temperror (checks timed out)\r\n",
                tx.hostname,
                if tx.mail_from.is_empty() { "<>".into() } else { shown_address(tx.mail_from) }
            ),
            summary: "spf=temperror dkim=temperror dmarc=temperror (timed out)".into(),
        },
    }
}

/// The organisational domain (RFC 7489 3.2): the public suffix plus one label.
pub fn organisational_domain(domain: &str) -> &str {
    psl::domain_str(domain).unwrap_or(domain)
}

async fn run(auth: &MessageAuthenticator, tx: &Transaction<'_>, message: &[u8]) -> Results {
    // A HELO argument that is no domain name gets no SPF check (RFC 7208
    // 2.3) and is not written into the field (see `pvalue`).
    let helo = pvalue(tx.helo).unwrap_or("");
    let shown_mail_from = shown_address(tx.mail_from);
    // RFC 7208 2.3: the HELO identity, checked on its own and used for
    // the null reverse-path (2.4: "postmaster@" the HELO name).
    let spf_helo = match helo.is_empty() || helo.starts_with('[') {
        true => None,
        false => Some(auth.verify_spf(SpfParameters::verify_ehlo(tx.client_ip, helo, tx.hostname)).await),
    };
    let spf_mail = match (tx.mail_from.is_empty(), &spf_helo) {
        (true, Some(h)) => h.clone(),
        (true, None) => auth.verify_spf(SpfParameters::verify_ehlo(tx.client_ip, helo, tx.hostname)).await,
        (false, _) => {
            auth.verify_spf(SpfParameters::verify_mail_from(tx.client_ip, helo, tx.hostname, tx.mail_from)).await
        }
    };
    let spf_helo = match spf_helo {
        Some(h) => Some(one_wellformed_record(auth, servfail_is_temperror(auth, h).await).await),
        None => None,
    };
    let spf_mail = one_wellformed_record(auth, servfail_is_temperror(auth, spf_mail).await).await;
    let mail_domain = match tx.mail_from.rsplit_once('@') {
        Some((_, d)) => d,
        None => helo,
    };
    // A message mail-auth cannot parse has no header section to speak of.
    let mut parsed = AuthenticatedMessage::parse(message).unwrap_or_default();
    let unchecked = limit_signatures(&mut parsed);
    let dkim = auth.verify_dkim(&parsed).await;
    let dmarc = auth
        .verify_dmarc(
            DmarcParameters::new(&parsed, &dkim, mail_domain, &spf_mail).with_domain_suffix_fn(organisational_domain),
        )
        .await;
    let from_domain = parsed.from.first().and_then(|f| f.rsplit_once('@')).map_or("", |(_, d)| d);
    let mut ar = AuthenticationResults::new(tx.hostname);
    ar = ar.with_spf_mailfrom_result(&spf_mail, tx.client_ip, &shown_mail_from, helo);
    if let Some(h) = &spf_helo
        && !tx.mail_from.is_empty()
    {
        ar = ar.with_spf_ehlo_result(h, tx.client_ip, helo);
    }
    let mut header = ar.to_header();
    header.truncate(header.trim_end().len());
    if dkim.is_empty() && unchecked.is_none() {
        // RFC 8601 2.7.1: "none" when the message was not signed.
        header.push_str(";\r\n\tdkim=none");
    }
    for d in &dkim {
        dkim_resinfo(&mut header, d, from_domain);
    }
    if let Some(why) = &unchecked {
        // RFC 8601 2.7.1: "policy", signed in a way we do not accept.
        header.push_str(";\r\n\tdkim=policy (");
        header.push_str(why);
        header.push(')');
    }
    // Ours, not mail-auth's `with_dmarc_result`: that writes "none" when a
    // record exists but nothing aligned passed, which RFC 7489 6.6.2 calls
    // a failure.
    let dmarc_domain = if dmarc.domain().is_empty() { from_domain } else { dmarc.domain() };
    header.push_str(";\r\n\tdmarc=");
    header.push_str(dmarc_result(&dmarc));
    if let Some(d) = pvalue(dmarc_domain) {
        header.push_str(" header.from=");
        header.push_str(d);
    }
    header.push_str(" policy.dmarc=");
    header.push_str(&dmarc.policy().to_string());
    header.push_str("\r\n");
    let dkim_words: Vec<String> = words(&header, "dkim=").collect();
    let dkim_summary = match dkim_words.iter().any(|w| w == "pass") {
        true => "pass".to_string(),
        false => dkim_words.first().cloned().unwrap_or_else(|| "none".into()),
    };
    let summary = format!(
        "spf={} dkim={dkim_summary} dmarc={} policy={}",
        spf_word(spf_mail.result()),
        words(&header, "dmarc=").next().unwrap_or_else(|| "none".into()),
        dmarc.policy()
    );
    Results { header, summary }
}

/// One DKIM resinfo: the result, mail-auth's comment, and the signature's
/// domain (or identity), selector and the start of `b=` (RFC 8601
/// 2.7.1); a third-party signature authorised by the From domain is
/// `dkim-atps` (RFC 6541 8.1) with `header.from`. Each value is written
/// only if it is a `pvalue`: `i=` is
/// quoted-printable (RFC 6376 3.5), so a signature with
/// `i=a=3B=20dmarc=3Dpass@x` would otherwise write "; dmarc=pass" into
/// our field. mail-auth calls a body hash mismatch "neutral"; it is a
/// signature that failed verification (RFC 6376 6.1.3 PERMFAIL), "fail"
/// in RFC 8601 2.7.1, as dkimpy and OpenDKIM report it.
fn dkim_resinfo(header: &mut String, d: &mail_auth::DkimOutput<'_>, from_domain: &str) {
    use mail_auth::common::auth_results::AsAuthResult;
    use mail_auth::{DkimResult, Error};
    // mail-auth keeps "is ATPS" private; marking a copy shows it.
    let atps = d.clone().with_atps() == *d;
    header.push_str(if atps { ";\r\n\tdkim-atps=" } else { ";\r\n\tdkim=" });
    match d.result() {
        DkimResult::Neutral(Error::FailedBodyHashMatch) => header.push_str("fail (body hash did not verify)"),
        r => r.as_auth_result(header),
    }
    let Some(sig) = d.signature() else { return };
    match (pvalue(&sig.i), pvalue(&sig.d)) {
        (Some(i), _) => {
            header.push_str(" header.i=");
            header.push_str(i);
        }
        (None, Some(domain)) => {
            header.push_str(" header.d=");
            header.push_str(domain);
        }
        (None, None) => {}
    }
    if let Some(s) = pvalue(&sig.s) {
        header.push_str(" header.s=");
        header.push_str(s);
    }
    if sig.b.len() >= 6 {
        use base64::Engine;
        header.push_str(" header.b=");
        header.push_str(&base64::engine::general_purpose::STANDARD.encode(&sig.b[..6]));
    }
    if atps && let Some(from) = pvalue(from_domain) {
        header.push_str(" header.from=");
        header.push_str(from);
    }
}

/// `value` if it can stand as a property value in our field as it is.
/// RFC 8601 2.2: a pvalue is a token, a domain or an address; a value
/// carrying ';', '(', ')', '"', '\\', ',' or white space would let whoever
/// chose it (the client's HELO and MAIL FROM, a signature's tags, the From
/// field) end our resinfo and write one of their own, such as
/// "dmarc=pass" ahead of ours, or open a comment that hides the rest.
fn pvalue(value: &str) -> Option<&str> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, ';' | '(' | ')' | '"' | '\\' | ',');
    (!value.is_empty() && !value.contains(bad)).then_some(value)
}

/// The reverse-path as our field shows it: as it is, or, when its local
/// part is a quoted string that is not a `pvalue`, the domain alone (RFC
/// 8601 2.2: the local part of an address property may be left out).
fn shown_address(mail_from: &str) -> std::borrow::Cow<'_, str> {
    if mail_from.is_empty() || pvalue(mail_from).is_some() {
        return mail_from.into();
    }
    match mail_from.rsplit_once('@').and_then(|(_, domain)| pvalue(domain)) {
        Some(domain) => domain.into(),
        // The SMTP parser lets no such domain through; never write it.
        None => "invalid".into(),
    }
}

/// RFC 7489 6.6.2: pass when an aligned SPF or DKIM pass exists; else,
/// with a record, temperror when a look-up failed and fail otherwise;
/// none without a record.
fn dmarc_result(d: &mail_auth::DmarcOutput) -> &'static str {
    use mail_auth::DmarcResult as R;
    let (spf, dkim) = (d.spf_result(), d.dkim_result());
    if *spf == R::Pass || *dkim == R::Pass {
        "pass"
    } else if matches!(spf, R::TempError(_)) || matches!(dkim, R::TempError(_)) {
        "temperror"
    } else if matches!(spf, R::PermError(_)) && d.dmarc_record().is_none() {
        "permerror"
    } else if d.dmarc_record().is_some() {
        "fail"
    } else {
        "none"
    }
}

/// RFC 6376 6.1: a verifier may limit the signatures it tries to verify.
/// Each costs a key look-up, a public-key operation and, in mail-auth
/// 0.7, a scan of the header section for each name in its `h=`, all in
/// one poll once the key is cached, so the whole-check deadline cannot
/// stop it: thousands of signatures, or one naming thousands of fields
/// over thousands of fields, would hold a worker thread for seconds. Real
/// mail carries one to three signatures naming a few dozen fields.
const MAX_SIGNATURES: usize = 10;
const MAX_SIGNED_FIELDS: usize = 100;
const MAX_HEADER_FIELDS: usize = 1_000;

/// Keeps the signatures that will be checked; says what was left out.
fn limit_signatures(parsed: &mut AuthenticatedMessage<'_>) -> Option<String> {
    let before = parsed.dkim_headers.len();
    if before > 0 && parsed.headers.len() > MAX_HEADER_FIELDS {
        parsed.dkim_headers.clear();
        return Some(format!("{before} not checked: more than {MAX_HEADER_FIELDS} header fields"));
    }
    parsed.dkim_headers.retain(|h| !matches!(&h.header, Ok(sig) if sig.h.len() > MAX_SIGNED_FIELDS));
    let long = before - parsed.dkim_headers.len();
    parsed.dkim_headers.truncate(MAX_SIGNATURES);
    let many = before - long - parsed.dkim_headers.len();
    let mut why = Vec::new();
    if long > 0 {
        why.push(format!("{long} signing more than {MAX_SIGNED_FIELDS} fields"));
    }
    if many > 0 {
        why.push(format!("{many} past the first {MAX_SIGNATURES}"));
    }
    (!why.is_empty()).then(|| format!("not checked: {}", why.join(", ")))
}

/// mail-auth 0.7 evaluates the first record that parses when a domain
/// publishes several (RFC 7208 4.5: permerror) and reads an unknown
/// mechanism such as `bogus:x` as an unknown modifier (4.6.1, 6: only
/// `name=value` may be unknown; anything else is a syntax error,
/// permerror). The top-level record is checked for both here; its answer
/// is in the resolver's cache, so this asks the network nothing.
async fn one_wellformed_record(auth: &MessageAuthenticator, out: SpfOutput) -> SpfOutput {
    if matches!(out.result(), SpfResult::None | SpfResult::TempError | SpfResult::PermError) || out.domain().is_empty()
    {
        return out;
    }
    let Ok(lookup) = auth.0.txt_lookup(format!("{}.", out.domain())).await else { return out };
    let records: Vec<String> = lookup
        .iter()
        .map(|txt| txt.txt_data().iter().map(|s| String::from_utf8_lossy(s)).collect::<String>())
        .filter(|r| {
            let r = r.to_ascii_lowercase();
            r == "v=spf1" || r.starts_with("v=spf1 ")
        })
        .collect();
    match records.as_slice() {
        [record] if record.split_ascii_whitespace().skip(1).all(known_term) => out,
        [_] => out.with_result(SpfResult::PermError),
        [] => out,
        _ => out.with_result(SpfResult::PermError),
    }
}

/// RFC 7208 4.6.1: a term is a mechanism (one of 5.1–5.7, with an
/// optional qualifier) or a modifier `name=value`; mail-auth checks
/// their arguments.
fn known_term(term: &str) -> bool {
    let name_end = term.find([':', '/', '=']).unwrap_or(term.len());
    if term[name_end..].starts_with('=') {
        let name = &term[..name_end];
        return name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    }
    let name = term[..name_end].trim_start_matches(['+', '-', '~', '?']).to_ascii_lowercase();
    matches!(name.as_str(), "all" | "include" | "a" | "mx" | "ptr" | "ip4" | "ip6" | "exists")
}

/// mail-auth 0.7 reads a SERVFAIL (or REFUSED…) for the SPF record as "no
/// record", `none`; RFC 7208 4.4 says `temperror`: the domain may well
/// publish one. Asked again only in that case, to learn the response code.
async fn servfail_is_temperror(auth: &MessageAuthenticator, out: SpfOutput) -> SpfOutput {
    use mail_auth::hickory_resolver::ResolveErrorKind;
    use mail_auth::hickory_resolver::proto::ProtoErrorKind;
    use mail_auth::hickory_resolver::proto::op::ResponseCode;
    if out.result() != SpfResult::None || out.domain().is_empty() {
        return out;
    }
    let Err(e) = auth.0.txt_lookup(format!("{}.", out.domain())).await else { return out };
    let definite = match e.kind() {
        ResolveErrorKind::Proto(p) => match p.kind() {
            ProtoErrorKind::NoRecordsFound { response_code, .. } => {
                matches!(response_code, ResponseCode::NXDomain | ResponseCode::NoError)
            }
            _ => false,
        },
        _ => false,
    };
    if definite { out } else { out.with_result(SpfResult::TempError) }
}

fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

/// The result word after each `method=` in the field ("dkim=" → "pass", …).
fn words<'a>(header: &'a str, method: &'a str) -> impl Iterator<Item = String> + 'a {
    header.split(method).skip(1).map(|s| s.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("").to_string())
}

/// The content without `Authentication-Results` fields that claim
/// `authserv_id` (RFC 8601 5: a sender could forge our verdicts), or
/// `None` when it has none. Only the header section is looked at.
pub fn strip_forged(message: &[u8], authserv_id: &str) -> Option<Vec<u8>> {
    let mut fields = Vec::new(); // (start, end) of each field to drop
    let mut pos = 0;
    while pos < message.len() {
        let end = line_end(message, pos);
        let line = &message[pos..end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        // A field runs until a line that does not start with WSP.
        let mut field_end = end;
        while field_end < message.len() && matches!(message[field_end], b' ' | b'\t') {
            field_end = line_end(message, field_end);
        }
        if claims(&message[pos..field_end], authserv_id) {
            fields.push((pos, field_end));
        }
        pos = field_end;
    }
    if fields.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(message.len());
    let mut from = 0;
    for (start, end) in fields {
        out.extend_from_slice(&message[from..start]);
        from = end;
    }
    out.extend_from_slice(&message[from..]);
    Some(out)
}

fn line_end(message: &[u8], from: usize) -> usize {
    message[from..].iter().position(|&b| b == b'\n').map_or(message.len(), |i| from + i + 1)
}

/// The field is an `Authentication-Results` whose authserv-id is ours.
fn claims(field: &[u8], authserv_id: &str) -> bool {
    let Some(colon) = field.iter().position(|&b| b == b':') else { return false };
    if !field[..colon].trim_ascii().eq_ignore_ascii_case(b"authentication-results") {
        return false;
    }
    let id = first_value(&String::from_utf8_lossy(&field[colon + 1..]));
    id.trim_end_matches('.').eq_ignore_ascii_case(authserv_id.trim_end_matches('.'))
}

/// The authserv-id of an `Authentication-Results` value (RFC 8601 2.2):
/// a `value` (RFC 2045: a token or a quoted-string) after CFWS. Comments
/// nest and may hold quoted pairs (RFC 5322 3.2.2), and the id may be
/// quoted: read the way a reader of the field reads it, or a sender
/// could write `((x)) ours;` or `"ours";` and keep a field we would miss.
fn first_value(value: &str) -> String {
    let mut chars = value.chars().peekable();
    loop {
        match chars.peek() {
            Some(c) if c.is_whitespace() => {
                chars.next();
            }
            Some('(') => {
                let mut depth = 0usize;
                while let Some(c) = chars.next() {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        '\\' => {
                            chars.next();
                        }
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                }
            }
            _ => break,
        }
    }
    let mut id = String::new();
    if chars.peek() == Some(&'"') {
        chars.next();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => id.extend(chars.next()),
                '\r' | '\n' => {}
                c => id.push(c),
            }
        }
    } else {
        id.extend(chars.take_while(|&c| c != ';' && c != '(' && !c.is_whitespace()));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8601_5_results_claiming_our_id_are_removed_others_kept() {
        let m = b"Authentication-Results: MX.Example.;\r\n dkim=pass\r\nAuthentication-Results: other.example; spf=pass\r\nauthentication-results: (forged) mx.example; dmarc=pass\r\nSubject: x\r\n\r\nAuthentication-Results: mx.example; in the body\r\n";
        let out = strip_forged(m, "mx.example").unwrap();
        assert_eq!(
            out,
            b"Authentication-Results: other.example; spf=pass\r\nSubject: x\r\n\r\nAuthentication-Results: mx.example; in the body\r\n"
        );
        assert!(strip_forged(b"Subject: x\r\n\r\n", "mx.example").is_none());
    }

    #[test]
    fn rfc8601_2_2_the_id_is_found_after_nested_comments_and_when_quoted() {
        for forged in [
            "Authentication-Results: ((nested) comment) mx.example; dmarc=pass\r\n\r\n",
            "Authentication-Results: (a \\) quoted pair) mx.example; dmarc=pass\r\n\r\n",
            "Authentication-Results: \"mx.example\"; dmarc=pass\r\n\r\n",
            "Authentication-Results: \"mx\\.example\" 1; dmarc=pass\r\n\r\n",
            "Authentication-Results:\r\n\t(c)\r\n mx.example(c); dmarc=pass\r\n\r\n",
        ] {
            assert_eq!(strip_forged(forged.as_bytes(), "mx.example").as_deref(), Some(&b"\r\n"[..]), "{forged}");
        }
        for unclosed in ["Authentication-Results: (mx.example; x\r\n\r\n", "Authentication-Results: \"\r\n\r\n"] {
            assert!(strip_forged(unclosed.as_bytes(), "mx.example").is_none(), "{unclosed}");
        }
    }

    #[test]
    fn rfc8601_2_2_values_that_could_end_our_resinfo_are_not_written() {
        for ok in ["news@shop.example", "shop.example", "[192.0.2.1]", "[IPv6:2001:db8::1]", "b\u{fc}ro.example"] {
            assert_eq!(pvalue(ok), Some(ok));
        }
        for bad in ["", "a; dmarc=pass", "a dmarc=pass", "x(", "x)", "\"q\"", "a\\b", "a,b", "a\r\nb", "a\tb"] {
            assert_eq!(pvalue(bad), None, "{bad:?}");
        }
        assert_eq!(shown_address("news@shop.example"), "news@shop.example");
        assert_eq!(shown_address("\"x; dmarc=pass\"@evil.example"), "evil.example", "the local part is left out");
        assert_eq!(shown_address("\"john doe\"@evil.example"), "evil.example");
        assert_eq!(shown_address(""), "");
    }

    #[test]
    fn rfc7208_4_6_1_terms_are_mechanisms_or_name_value_modifiers() {
        for ok in [
            "-all",
            "~all",
            "include:a.example",
            "a",
            "a/24",
            "mx:b.example/24",
            "ip4:192.0.2.0/24",
            "ip6:2001:db8::/32",
            "?exists:%{i}.x.example",
            "ptr",
            "redirect=a.example",
            "exp=x.example",
            "x-custom=1",
        ] {
            assert!(known_term(ok), "{ok}");
        }
        for bad in ["bogus:mechanism", "allow", "+bogus", "1x=2", "=x", ""] {
            assert!(!known_term(bad), "{bad}");
        }
    }

    #[test]
    fn an_id_that_only_starts_like_ours_is_not_ours() {
        assert!(strip_forged(b"Authentication-Results: mx.example.evil; x\r\n\r\n", "mx.example").is_none());
    }

    #[test]
    fn rfc7489_3_2_organisational_domain_uses_the_public_suffix_list() {
        assert_eq!(organisational_domain("mail.a.example.co.uk"), "example.co.uk");
        assert_eq!(organisational_domain("a.b.example.com"), "example.com");
    }
}
