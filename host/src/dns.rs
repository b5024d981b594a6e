//! DNS through hickory-resolver, configured by `[dns]`. Built lazily: a
//! server that never needs a look-up never reads /etc/resolv.conf.

use crate::config::DnsConfig;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, TokioResolver};
use std::net::IpAddr;
use std::sync::OnceLock;

pub struct Dns {
    config: DnsConfig,
    resolver: OnceLock<Result<TokioResolver, String>>,
}

impl Dns {
    pub fn new(config: DnsConfig) -> Self {
        Dns { config, resolver: OnceLock::new() }
    }

    pub fn resolver(&self) -> Result<&TokioResolver, String> {
        self.resolver.get_or_init(|| build(&self.config)).as_ref().map_err(Clone::clone)
    }

    /// The client's name for Received headers: PTR, then forward-confirmed
    /// (the name must resolve back to the address, or it is not trusted).
    pub async fn confirmed_name(&self, ip: IpAddr) -> Option<String> {
        let resolver = self.resolver().ok()?;
        let ptr = timed("PTR", resolver.reverse_lookup(ip)).await.ok()?;
        let name = ptr.iter().next()?.to_utf8();
        let forward = timed("A/AAAA", resolver.lookup_ip(name.as_str())).await.ok()?;
        forward.iter().any(|a| a == ip).then(|| name.trim_end_matches('.').to_string())
    }

    pub fn is_nx(e: &ResolveError) -> bool {
        e.is_nx_domain()
    }
}

/// Runs one look-up of record type `rtype`, timing it and counting its
/// failure for the metrics.
pub async fn timed<T>(
    rtype: &'static str,
    lookup: impl std::future::Future<Output = Result<T, ResolveError>>,
) -> Result<T, ResolveError> {
    let started = std::time::Instant::now();
    let result = lookup.await;
    crate::metrics::dns_query(rtype, started.elapsed(), &result, Dns::is_nx);
    result
}

fn build(config: &DnsConfig) -> Result<TokioResolver, String> {
    let mut opts = ResolverOpts::default();
    opts.timeout = config.timeout;
    opts.attempts = 2;
    let builder = if config.nameservers.is_empty() {
        TokioResolver::builder_tokio().map_err(|e| format!("reading the system DNS configuration: {e}"))?
    } else {
        let mut rc = ResolverConfig::new();
        for addr in &config.nameservers {
            rc.add_name_server(NameServerConfig::new(*addr, Protocol::Udp));
            rc.add_name_server(NameServerConfig::new(*addr, Protocol::Tcp));
        }
        TokioResolver::builder_with_config(rc, TokioConnectionProvider::default())
    };
    Ok(builder.with_options(opts).build())
}
