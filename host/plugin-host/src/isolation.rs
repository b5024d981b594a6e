//! Tenant isolation: a plugin running for tenant T sees and affects only
//! T's recipients and T's accounts. `chain` decides whose chain a call
//! runs; here, against the [`Directory`], every answer that names a user, an account or a local
//! address is checked against that tenant before the host uses it.
//!
//! Scopes: each tenant is one (its domains); the global chain is another
//! (local domains no tenant owns). Remote addresses belong to no scope:
//! forwarding to them affects nobody here. An answer that names an address
//! of another scope is the plugin's failure — logged, then its failure
//! policy applies — never a decision.

use crate::directory::Directory;
use crate::plugin::Binding;
use ferrymail_policy::Route;

fn label(tenant: Option<&str>) -> String {
    match tenant {
        Some(t) => format!("tenant {t:?}"),
        None => "no tenant".into(),
    }
}

impl Directory {
    /// The scope of an address as the store will read it (the store trims
    /// and lower-cases account names).
    fn owner(&self, address: &str) -> Option<String> {
        self.tenant_of_address(address.trim())
    }

    /// The tenant of an `auth-ok` answer from `chain`'s plugins to a login
    /// as `login`: the user must belong to the chain's tenant, and a tenant
    /// the plugin names must be that user's. A login name without a domain
    /// has no tenant to run first (the global chain runs), so there the
    /// user's domain decides, as the global chain qualified it.
    pub(crate) fn login_tenant(
        &self,
        chain: Option<&str>,
        login: &str,
        user: &str,
        claimed: Option<&str>,
    ) -> Result<Option<String>, String> {
        let owner = self.owner(user);
        if let Some(claimed) = claimed
            && Some(claimed) != owner.as_deref()
        {
            return Err(format!("auth-ok names tenant {claimed:?} for {user:?} of {}", label(owner.as_deref())));
        }
        if login.contains('@') && owner.as_deref() != chain {
            return Err(format!(
                "auth-ok for a login of {} names {user:?} of {}",
                label(chain),
                label(owner.as_deref())
            ));
        }
        Ok(owner)
    }

    /// A route answer from `chain`'s plugins: a mailbox must be one of the
    /// chain's accounts; alias targets must be the chain's addresses or
    /// remote ones (each target is routed again by its own scope's chain,
    /// so a target of another tenant would reach that tenant's mailboxes
    /// past its rcpt and data policy).
    pub(crate) fn check_route(&self, chain: Option<&str>, route: &Route) -> Result<(), String> {
        match route {
            Route::Local { account } if self.owner(account).as_deref() != chain => Err(format!(
                "route local({account:?}) names an account of {} in a chain of {}",
                label(self.owner(account).as_deref()),
                label(chain)
            )),
            Route::Alias { targets } => match targets.iter().find(|t| !self.in_scope(chain, t)) {
                Some(t) => Err(format!(
                    "route alias names {t:?} of {} in a chain of {}",
                    label(self.owner(t).as_deref()),
                    label(chain)
                )),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// `directory.verify-password` from a plugin of `scope`: a tenant's
    /// plugins check only their own users' passwords (else they could guess
    /// another tenant's); the global chain checks any, as it qualifies bare
    /// login names.
    pub(crate) fn may_verify(&self, scope: Option<&str>, address: &str) -> bool {
        scope.is_none() || self.owner(address).as_deref() == scope
    }

    /// `address` may be named by `chain`'s plugins: one of its own, or a
    /// remote one.
    pub(crate) fn in_scope(&self, chain: Option<&str>, address: &str) -> bool {
        let address = address.trim();
        !self.is_local(address) || self.owner(address).as_deref() == chain
    }
}

/// Logs an answer that broke isolation, naming the plugin and why.
pub(crate) fn violation(b: &Binding, hook: &'static str, why: &str) {
    tracing::warn!(
        plugin = %b.scope.plugin,
        tenant = %b.scope.tenant_label(),
        hook,
        failure_policy = ?b.failure(),
        why = %why.escape_debug(),
        "plugin answer refused: tenant isolation"
    );
}
