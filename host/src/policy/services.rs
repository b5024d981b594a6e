//! What plugins reach through their capability imports, provided by the
//! server: the account store, the key-value tables, the resolver, and the
//! relay/local-domain settings of the configuration in force.

use crate::config::Config;
use crate::dns::Dns;
use crate::passwords;
use async_trait::async_trait;
use ferrymail_plugin_host::{HostServices, ServiceError};
use ferrymail_store::{SharedStore, StoreError};
use hickory_resolver::ResolveError;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub struct StoreServices {
    store: SharedStore,
    dns: Arc<Dns>,
    // Replaced on reload, so plugins see new local domains and relay networks.
    config: RwLock<Arc<Config>>,
}

impl StoreServices {
    pub fn new(store: SharedStore, dns: Arc<Dns>, config: Arc<Config>) -> Self {
        StoreServices { store, dns, config: RwLock::new(config) }
    }

    pub fn set_config(&self, config: Arc<Config>) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn store_error(e: StoreError) -> ServiceError {
    ServiceError::Failed(e.to_string())
}

fn ttl_secs(ttl: Option<Duration>) -> Option<u64> {
    // The store keeps whole seconds; a sub-second TTL still expires.
    ttl.map(|t| t.as_secs().max(1))
}

/// NXDOMAIN and "no records of this type" are answers (empty), not failures.
fn dns_result<T>(r: Result<Vec<T>, ResolveError>) -> Result<Vec<T>, ServiceError> {
    match r {
        Ok(v) => Ok(v),
        Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
        Err(e) => Err(ServiceError::Failed(e.to_string())),
    }
}

#[async_trait]
impl HostServices for StoreServices {
    async fn account_exists(&self, address: &str) -> Result<bool, ServiceError> {
        Ok(self.store.account(address).await.map_err(store_error)?.is_some())
    }

    async fn verify_password(&self, address: &str, password: &str) -> Result<bool, ServiceError> {
        let Some(account) = self.store.account(address).await.map_err(store_error)? else {
            return Ok(passwords::verify_unknown_async(password.to_string()).await);
        };
        Ok(passwords::verify_async(password.to_string(), account.password_hash).await)
    }

    fn is_local_domain(&self, domain: &str) -> bool {
        self.config().is_local_domain(domain)
    }

    fn client_may_relay(&self, ip: IpAddr) -> bool {
        self.config().may_relay(ip)
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, ServiceError> {
        self.store.kv_get(namespace, key.as_bytes()).await.map_err(store_error)
    }

    async fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), ServiceError> {
        self.store.kv_set(namespace, key.as_bytes(), value, ttl_secs(ttl)).await.map_err(store_error)
    }

    async fn kv_incr(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, ServiceError> {
        self.store.kv_incr(namespace, key.as_bytes(), delta, ttl_secs(ttl)).await.map_err(store_error)
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), ServiceError> {
        self.store.kv_delete(namespace, key.as_bytes()).await.map_err(store_error)
    }

    async fn dns_txt(&self, name: &str) -> Result<Vec<String>, ServiceError> {
        let resolver = self.dns.resolver().map_err(ServiceError::Failed)?;
        dns_result(crate::dns::timed("TXT", resolver.txt_lookup(name)).await.map(|l| {
            l.iter()
                .map(|txt| txt.txt_data().iter().map(|part| String::from_utf8_lossy(part)).collect::<String>())
                .collect()
        }))
    }

    async fn dns_a(&self, name: &str) -> Result<Vec<IpAddr>, ServiceError> {
        let resolver = self.dns.resolver().map_err(ServiceError::Failed)?;
        dns_result(
            crate::dns::timed("A", resolver.ipv4_lookup(name))
                .await
                .map(|l| l.iter().map(|a| IpAddr::V4(a.0)).collect()),
        )
    }

    async fn dns_aaaa(&self, name: &str) -> Result<Vec<IpAddr>, ServiceError> {
        let resolver = self.dns.resolver().map_err(ServiceError::Failed)?;
        dns_result(
            crate::dns::timed("AAAA", resolver.ipv6_lookup(name))
                .await
                .map(|l| l.iter().map(|a| IpAddr::V6(a.0)).collect()),
        )
    }

    async fn dns_mx(&self, name: &str) -> Result<Vec<(u16, String)>, ServiceError> {
        let resolver = self.dns.resolver().map_err(ServiceError::Failed)?;
        dns_result(crate::dns::timed("MX", resolver.mx_lookup(name)).await.map(|l| {
            l.iter().map(|mx| (mx.preference(), mx.exchange().to_utf8().trim_end_matches('.').to_string())).collect()
        }))
    }
}
