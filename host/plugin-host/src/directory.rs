//! The directory a plugin's `directory` imports ask: which tenant owns a
//! domain, whether an address is ours. Built from the configuration before
//! any plugin is bound and holding no plugin, so every binding's sandbox
//! can keep it without a reference back to the chains it belongs to.
//!
//! `directory.resolve` is the one import that runs plugins (a route
//! chain). The chains reach a hook call through a [`Reentry`], lent to the
//! call while it runs and never kept by an idle instance; it counts how
//! deep resolve calls nest, so a route plugin that resolves its own
//! recipient ends at [`MAX_RESOLVE_DEPTH`] instead of recursing on.

use crate::services::HostServices;
use async_trait::async_trait;
use ferrymail_policy::Route;
use std::collections::HashMap;
use std::sync::Arc;

/// How many `directory.resolve` calls may nest: a resolve from inside a
/// route hook that was itself run by a resolve, and so on. Routing needs
/// one level (a VRFY or AUTH hook asking where an address goes); a few
/// more leave room for plugins that layer on others.
pub(crate) const MAX_RESOLVE_DEPTH: u32 = 4;

pub(crate) struct Directory {
    /// Tenant domains (lower-case, no trailing dot) to their tenant.
    domains: HashMap<String, String>,
    host: Arc<dyn HostServices>,
}

/// The domain of an address, lower-case, without a trailing dot.
pub(crate) fn domain_of(address: &str) -> Option<String> {
    let (_, d) = address.rsplit_once('@')?;
    Some(d.trim_end_matches(['.', '>']).to_ascii_lowercase())
}

impl Directory {
    pub(crate) fn new(domains: HashMap<String, String>, host: Arc<dyn HostServices>) -> Self {
        Directory { domains, host }
    }

    pub(crate) fn tenant_of_domain(&self, domain: &str) -> Option<&str> {
        self.domains.get(domain).map(String::as_str)
    }

    pub(crate) fn tenant_of_address(&self, address: &str) -> Option<String> {
        domain_of(address).and_then(|d| self.tenant_of_domain(&d).map(str::to_string))
    }

    /// `directory.is-local-domain`: the server's local domains and every
    /// tenant's.
    pub(crate) fn is_local_domain(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.tenant_of_domain(&domain).is_some() || self.host.is_local_domain(&domain)
    }

    pub(crate) fn is_local(&self, address: &str) -> bool {
        match domain_of(address) {
            Some(d) => self.tenant_of_domain(&d).is_some() || self.host.is_local_domain(&d),
            // RFC 5321 4.5.1: a bare "postmaster" is ours.
            None => address.eq_ignore_ascii_case("postmaster"),
        }
    }
}

/// Runs a tenant's route chain for `directory.resolve`: the chains, as a
/// hook call sees them.
#[async_trait]
pub(crate) trait Router: Send + Sync {
    /// One routing step for `address` in `tenant`'s chain; hook calls made
    /// on the way get `reentry`.
    async fn route_step(&self, reentry: &Reentry, tenant: Option<&str>, address: &str) -> Route;
}

/// The chains a hook call runs under, lent to it for the call, and how many
/// `directory.resolve` calls deep it is.
#[derive(Clone)]
pub(crate) struct Reentry {
    router: Arc<dyn Router>,
    depth: u32,
}

impl Reentry {
    /// A walk started by the server (depth 0).
    pub(crate) fn new(router: Arc<dyn Router>) -> Self {
        Reentry { router, depth: 0 }
    }

    /// `directory.resolve` from a call at this depth: the route chain runs
    /// one level deeper. `None` past [`MAX_RESOLVE_DEPTH`].
    pub(crate) async fn resolve(&self, tenant: Option<&str>, address: &str) -> Option<Route> {
        if self.depth >= MAX_RESOLVE_DEPTH {
            return None;
        }
        let deeper = Reentry { router: self.router.clone(), depth: self.depth + 1 };
        Some(self.router.route_step(&deeper, tenant, address).await)
    }
}
