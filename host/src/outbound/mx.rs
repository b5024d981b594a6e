//! Where mail for a domain goes (RFC 5321 5.1): its MX hosts by ascending
//! preference, random among equals; the domain's own A/AAAA when it has no
//! MX (the implicit MX); nowhere for a null MX (RFC 7505); and a permanent
//! failure when the domain does not exist.

use crate::dns::Dns;
use ferrymail_policy::Reply;
use hickory_resolver::ResolveError;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use rand::seq::SliceRandom;
use std::net::{IpAddr, SocketAddr};

/// Addresses tried per destination, all MX hosts together (Postfix's
/// smtp_mx_address_limit is 5; a few more cost little on failure).
pub const MAX_ADDRESSES: usize = 10;

/// One address to connect to, with the name it was found under (for TLS
/// server names and a DSN's Remote-MTA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Hosts(Vec<Target>),
    /// Permanent: bounce (NXDOMAIN, null MX, mail loop).
    Failed(Reply),
    /// Temporary: retry later (SERVFAIL, timeout, no address yet).
    Deferred(Reply),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    pub preference: u16,
    /// Without the trailing dot; "" for the root (a null MX).
    pub exchange: String,
}

/// Orders MX records for delivery (RFC 5321 5.1). `Err` carries the reply
/// for a domain that must get no mail: a null MX (RFC 7505 3: a single
/// record whose exchange is the root) or MX hosts that all loop back to us.
pub fn order(records: &[MxRecord], our_names: &[&str], rng: &mut impl rand::Rng) -> Result<Vec<MxRecord>, Reply> {
    if !records.is_empty() && records.iter().all(|r| r.exchange.is_empty()) {
        return Err(Reply::new(556, "5.1.10", "Recipient address has a null MX (RFC 7505)"));
    }
    // A null MX beside real ones is a misconfiguration; the real ones win.
    let mut hosts: Vec<MxRecord> = records.iter().filter(|r| !r.exchange.is_empty()).cloned().collect();
    hosts.shuffle(rng);
    hosts.sort_by_key(|r| r.preference); // stable: equal preferences stay shuffled
    // RFC 5321 5.1: if we are one of the MX hosts, only those preferred over
    // us are candidates; none left means the mail would loop.
    let ours = hosts
        .iter()
        .filter(|r| our_names.iter().any(|n| n.eq_ignore_ascii_case(&r.exchange)))
        .map(|r| r.preference)
        .min();
    if let Some(own) = ours {
        hosts.retain(|r| r.preference < own);
        if hosts.is_empty() {
            return Err(Reply::new(554, "5.4.6", "Mail for this domain loops back to myself"));
        }
    }
    Ok(hosts)
}

/// An address literal (RFC 5321 4.1.3): `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
pub fn literal(domain: &str) -> Option<IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    let ip = inner.strip_prefix("IPv6:").or_else(|| inner.strip_prefix("ipv6:")).unwrap_or(inner);
    ip.parse().ok()
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') { name.to_string() } else { format!("{name}.") }
}

fn dns_temp(what: &str, e: &ResolveError) -> Reply {
    Reply::new(451, "4.4.3", format!("DNS lookup of {what} failed: {e}"))
}

/// NoError with no records (the name exists but has no such records).
fn is_nodata(e: &ResolveError) -> bool {
    matches!(
        e.proto().map(|p| p.kind()),
        Some(ProtoErrorKind::NoRecordsFound { response_code: ResponseCode::NoError, .. })
    )
}

/// The MX hosts of `domain`, as addresses to try in order.
pub async fn resolve_domain(dns: &Dns, domain: &str, port: u16, our_names: &[&str]) -> Resolution {
    if let Some(ip) = literal(domain) {
        return Resolution::Hosts(vec![Target { name: domain.to_string(), addr: SocketAddr::new(ip, port) }]);
    }
    let resolver = match dns.resolver() {
        Ok(r) => r,
        Err(e) => return Resolution::Deferred(Reply::new(451, "4.4.3", format!("no DNS resolver: {e}"))),
    };
    let records = match crate::dns::timed("MX", resolver.mx_lookup(fqdn(domain))).await {
        Ok(lookup) => lookup
            .iter()
            .map(|mx| MxRecord {
                preference: mx.preference(),
                exchange: mx.exchange().to_utf8().trim_end_matches('.').to_string(),
            })
            .collect::<Vec<_>>(),
        // Authoritative "no such domain": permanent (RFC 5321 5.1 leaves
        // nothing to try). SERVFAIL and timeouts are neither NX nor NODATA.
        Err(e) if e.is_nx_domain() => {
            return Resolution::Failed(Reply::new(550, "5.1.2", format!("Domain {domain} does not exist (NXDOMAIN)")));
        }
        Err(e) if is_nodata(&e) => Vec::new(),
        Err(e) => return Resolution::Deferred(dns_temp(&format!("MX {domain}"), &e)),
    };
    if records.is_empty() {
        // RFC 5321 5.1: no MX records: the domain itself is the implicit MX.
        return match addresses(dns, domain, port).await {
            Ok(t) if t.is_empty() => Resolution::Failed(Reply::new(
                550,
                "5.1.2",
                format!("Domain {domain} has no MX and no address records"),
            )),
            Ok(t) => Resolution::Hosts(t),
            Err(e) if e.is_nx_domain() || is_nodata(&e) => Resolution::Failed(Reply::new(
                550,
                "5.1.2",
                format!("Domain {domain} has no MX and no address records"),
            )),
            Err(e) => Resolution::Deferred(dns_temp(&format!("A/AAAA {domain}"), &e)),
        };
    }
    let hosts = match order(&records, our_names, &mut rand::thread_rng()) {
        Ok(h) => h,
        Err(reply) => return Resolution::Failed(reply),
    };
    let mut targets = Vec::new();
    let mut last_error = None;
    for mx in hosts {
        match addresses(dns, &mx.exchange, port).await {
            Ok(t) => targets.extend(t),
            Err(e) => last_error = Some(dns_temp(&format!("MX host {}", mx.exchange), &e)),
        }
        if targets.len() >= MAX_ADDRESSES {
            break;
        }
    }
    targets.truncate(MAX_ADDRESSES);
    if targets.is_empty() {
        // MX hosts without addresses may be a transient state of the zone.
        return Resolution::Deferred(
            last_error.unwrap_or_else(|| Reply::new(451, "4.4.3", format!("No address for any MX host of {domain}"))),
        );
    }
    Resolution::Hosts(targets)
}

/// A relay host (a route's smarthost): its addresses, no MX look-up.
pub async fn resolve_host(dns: &Dns, host: &str, port: u16) -> Resolution {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Resolution::Hosts(vec![Target { name: host.to_string(), addr: SocketAddr::new(ip, port) }]);
    }
    match addresses(dns, host, port).await {
        Ok(t) if !t.is_empty() => Resolution::Hosts(t),
        Ok(_) => Resolution::Deferred(Reply::new(451, "4.4.3", format!("Relay host {host} has no address"))),
        // A relay host is our own configuration: a typo should not bounce
        // mail, so even NXDOMAIN defers while the operator fixes it.
        Err(e) => Resolution::Deferred(dns_temp(&format!("relay host {host}"), &e)),
    }
}

async fn addresses(dns: &Dns, host: &str, port: u16) -> Result<Vec<Target>, ResolveError> {
    let resolver = dns.resolver().map_err(ResolveError::from)?;
    let lookup = crate::dns::timed("A/AAAA", resolver.lookup_ip(fqdn(host))).await?;
    Ok(lookup.iter().map(|ip| Target { name: host.to_string(), addr: SocketAddr::new(ip, port) }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn mx(preference: u16, exchange: &str) -> MxRecord {
        MxRecord { preference, exchange: exchange.into() }
    }

    fn names(hosts: &[MxRecord]) -> Vec<&str> {
        hosts.iter().map(|h| h.exchange.as_str()).collect()
    }

    #[test]
    fn ascending_preference_rfc5321_5_1() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let out = order(&[mx(20, "b"), mx(10, "a"), mx(30, "c")], &[], &mut rng).unwrap();
        assert_eq!(names(&out), ["a", "b", "c"]);
    }

    #[test]
    fn random_among_equal_preferences_rfc5321_5_1() {
        let records = [mx(10, "a"), mx(10, "b"), mx(10, "c"), mx(5, "first")];
        let mut seen = std::collections::HashSet::new();
        for seed in 0..50 {
            let out = order(&records, &[], &mut rand::rngs::StdRng::seed_from_u64(seed)).unwrap();
            assert_eq!(out[0].exchange, "first");
            seen.insert(out[1].exchange.clone());
        }
        assert_eq!(seen.len(), 3, "every equal-preference host comes first sometimes");
    }

    #[test]
    fn null_mx_rfc7505_3() {
        let mut rng = rand::thread_rng();
        let e = order(&[mx(0, "")], &[], &mut rng).unwrap_err();
        assert_eq!((e.code, e.enhanced.as_deref()), (556, Some("5.1.10")));
        // Beside real hosts the null record is ignored.
        assert_eq!(names(&order(&[mx(0, ""), mx(10, "a")], &[], &mut rng).unwrap()), ["a"]);
    }

    #[test]
    fn own_mx_keeps_only_preferred_hosts_rfc5321_5_1() {
        let mut rng = rand::thread_rng();
        let records = [mx(10, "primary"), mx(20, "Me.Example"), mx(30, "other")];
        assert_eq!(names(&order(&records, &["me.example"], &mut rng).unwrap()), ["primary"]);
        let e = order(&[mx(10, "me.example")], &["me.example"], &mut rng).unwrap_err();
        assert_eq!(e.enhanced.as_deref(), Some("5.4.6"));
    }

    #[test]
    fn address_literals_rfc5321_4_1_3() {
        assert_eq!(literal("[192.0.2.1]"), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(literal("[IPv6:2001:db8::1]"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(literal("example.test"), None);
        assert_eq!(literal("[nonsense]"), None);
    }
}
