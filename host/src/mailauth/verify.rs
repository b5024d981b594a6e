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
                if tx.mail_from.is_empty() { "<>" } else { tx.mail_from }
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
    let helo = tx.helo;
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
        Some(h) => Some(servfail_is_temperror(auth, h).await),
        None => None,
    };
    let spf_mail = servfail_is_temperror(auth, spf_mail).await;
    let mail_domain = match tx.mail_from.rsplit_once('@') {
        Some((_, d)) => d,
        None => helo,
    };
    // A message mail-auth cannot parse has no header section to speak of.
    let parsed = AuthenticatedMessage::parse(message).unwrap_or_default();
    let dkim = auth.verify_dkim(&parsed).await;
    let dmarc = auth
        .verify_dmarc(
            DmarcParameters::new(&parsed, &dkim, mail_domain, &spf_mail).with_domain_suffix_fn(organisational_domain),
        )
        .await;
    let from_domain = parsed.from.first().and_then(|f| f.rsplit_once('@')).map_or("", |(_, d)| d);
    let mut ar = AuthenticationResults::new(tx.hostname);
    ar = ar.with_spf_mailfrom_result(&spf_mail, tx.client_ip, tx.mail_from, helo);
    if let Some(h) = &spf_helo
        && !tx.mail_from.is_empty()
    {
        ar = ar.with_spf_ehlo_result(h, tx.client_ip, helo);
    }
    ar = ar.with_dkim_results(&dkim, from_domain);
    // mail-auth writes a body hash mismatch as "neutral"; it is a signature
    // that failed verification (RFC 6376 6.1.3 PERMFAIL), "fail" in RFC
    // 8601 2.7.1, as dkimpy and OpenDKIM report it.
    let mut header =
        ar.to_header().replace("dkim=neutral (body hash did not verify)", "dkim=fail (body hash did not verify)");
    // Ours, not mail-auth's `with_dmarc_result`: that writes "none" when a
    // record exists but nothing aligned passed, which RFC 7489 6.6.2 calls
    // a failure.
    let dmarc_field = format!(
        ";\r\n\tdmarc={} header.from={} policy.dmarc={}\r\n",
        dmarc_result(&dmarc),
        if dmarc.domain().is_empty() { from_domain } else { dmarc.domain() },
        dmarc.policy()
    );
    header.truncate(header.trim_end().len());
    header.push_str(&dmarc_field);
    if dkim.is_empty() {
        // RFC 8601 2.7.1: "none" when the message was not signed.
        header = header.replacen(";\r\n\tdmarc=", ";\r\n\tdkim=none;\r\n\tdmarc=", 1);
    }
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

/// The field is an `Authentication-Results` whose authserv-id (RFC 8601
/// 2.2: the first token of the value, after any comment) is ours.
fn claims(field: &[u8], authserv_id: &str) -> bool {
    let Some(colon) = field.iter().position(|&b| b == b':') else { return false };
    if !field[..colon].trim_ascii().eq_ignore_ascii_case(b"authentication-results") {
        return false;
    }
    let value = String::from_utf8_lossy(&field[colon + 1..]);
    let mut rest = value.trim_start();
    // Skip leading comments: "(comment) host; …".
    while let Some(after) = rest.strip_prefix('(') {
        rest = after.split_once(')').map_or("", |(_, r)| r).trim_start();
    }
    let id = rest.split(|c: char| c == ';' || c.is_whitespace()).next().unwrap_or("");
    id.trim_end_matches('.').eq_ignore_ascii_case(authserv_id.trim_end_matches('.'))
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
    fn an_id_that_only_starts_like_ours_is_not_ours() {
        assert!(strip_forged(b"Authentication-Results: mx.example.evil; x\r\n\r\n", "mx.example").is_none());
    }

    #[test]
    fn rfc7489_3_2_organisational_domain_uses_the_public_suffix_list() {
        assert_eq!(organisational_domain("mail.a.example.co.uk"), "example.co.uk");
        assert_eq!(organisational_domain("a.b.example.com"), "example.com");
    }
}
