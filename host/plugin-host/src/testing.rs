//! [`MemoryHost`]: [`HostServices`] over in-memory maps. The crate's tests
//! use it, and plugin authors can load their component with it to test a
//! plugin without a running server.

use crate::services::{HostServices, ServiceError};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

type Entry = (Vec<u8>, Option<Instant>);

/// In-memory accounts, domains, relay clients, kv and DNS records.
#[derive(Default)]
pub struct MemoryHost {
    accounts: Mutex<HashMap<String, String>>,
    local_domains: Mutex<HashSet<String>>,
    relay_clients: Mutex<HashSet<IpAddr>>,
    kv: Mutex<HashMap<(String, String), Entry>>,
    txt: Mutex<HashMap<String, Vec<String>>>,
    a: Mutex<HashMap<String, Vec<IpAddr>>>,
    mx: Mutex<HashMap<String, Vec<(u16, String)>>>,
    /// Every DNS name asked, in order (tests check what plugins looked up).
    pub dns_queries: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an account (address lower-cased) with a clear-text password.
    pub fn account(self, address: &str, password: &str) -> Self {
        lock(&self.accounts).insert(address.to_lowercase(), password.to_string());
        self
    }

    pub fn local_domain(self, domain: &str) -> Self {
        lock(&self.local_domains).insert(domain.to_lowercase());
        self
    }

    /// A client address that may relay (one address, not a network).
    pub fn relay_client(self, ip: IpAddr) -> Self {
        lock(&self.relay_clients).insert(ip);
        self
    }

    pub fn txt_record(self, name: &str, text: &str) -> Self {
        lock(&self.txt).entry(name.to_lowercase()).or_default().push(text.to_string());
        self
    }

    pub fn a_record(self, name: &str, ip: IpAddr) -> Self {
        lock(&self.a).entry(name.to_lowercase()).or_default().push(ip);
        self
    }

    pub fn mx_record(self, name: &str, preference: u16, exchange: &str) -> Self {
        lock(&self.mx).entry(name.to_lowercase()).or_default().push((preference, exchange.to_string()));
        self
    }

    /// Every live key of `namespace` (tests check isolation).
    pub fn kv_keys(&self, namespace: &str) -> Vec<String> {
        let now = Instant::now();
        let mut keys: Vec<String> = lock(&self.kv)
            .iter()
            .filter(|((ns, _), (_, exp))| ns == namespace && exp.is_none_or(|e| e > now))
            .map(|((_, k), _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    fn query(&self, name: &str) -> String {
        let name = name.trim_end_matches('.').to_lowercase();
        lock(&self.dns_queries).push(name.clone());
        name
    }
}

fn live(e: &Entry) -> bool {
    e.1.is_none_or(|exp| exp > Instant::now())
}

#[async_trait]
impl HostServices for MemoryHost {
    async fn account_exists(&self, address: &str) -> Result<bool, ServiceError> {
        Ok(lock(&self.accounts).contains_key(&address.to_lowercase()))
    }

    async fn verify_password(&self, address: &str, password: &str) -> Result<bool, ServiceError> {
        Ok(lock(&self.accounts).get(&address.to_lowercase()).is_some_and(|p| p == password))
    }

    fn is_local_domain(&self, domain: &str) -> bool {
        lock(&self.local_domains).contains(&domain.to_lowercase())
    }

    fn client_may_relay(&self, ip: IpAddr) -> bool {
        lock(&self.relay_clients).contains(&ip)
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, ServiceError> {
        let kv = lock(&self.kv);
        Ok(kv.get(&(namespace.into(), key.into())).filter(|e| live(e)).map(|e| e.0.clone()))
    }

    async fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), ServiceError> {
        let exp = ttl.map(|t| Instant::now() + t);
        lock(&self.kv).insert((namespace.into(), key.into()), (value.to_vec(), exp));
        Ok(())
    }

    async fn kv_incr(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, ServiceError> {
        let mut kv = lock(&self.kv);
        let k = (namespace.to_string(), key.to_string());
        let current = match kv.get(&k).filter(|e| live(e)) {
            Some((v, exp)) => {
                let bytes: [u8; 8] =
                    v.as_slice().try_into().map_err(|_| ServiceError::Failed("not a counter".into()))?;
                Some((i64::from_le_bytes(bytes), *exp))
            }
            None => None,
        };
        let (value, exp) = match current {
            Some((n, exp)) => (n.saturating_add(delta), exp),
            None => (delta, ttl.map(|t| Instant::now() + t)),
        };
        kv.insert(k, (value.to_le_bytes().to_vec(), exp));
        Ok(value)
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), ServiceError> {
        lock(&self.kv).remove(&(namespace.into(), key.into()));
        Ok(())
    }

    async fn dns_txt(&self, name: &str) -> Result<Vec<String>, ServiceError> {
        let name = self.query(name);
        Ok(lock(&self.txt).get(&name).cloned().unwrap_or_default())
    }

    async fn dns_a(&self, name: &str) -> Result<Vec<IpAddr>, ServiceError> {
        let name = self.query(name);
        Ok(lock(&self.a).get(&name).map(|v| v.iter().filter(|i| i.is_ipv4()).copied().collect()).unwrap_or_default())
    }

    async fn dns_aaaa(&self, name: &str) -> Result<Vec<IpAddr>, ServiceError> {
        let name = self.query(name);
        Ok(lock(&self.a).get(&name).map(|v| v.iter().filter(|i| i.is_ipv6()).copied().collect()).unwrap_or_default())
    }

    async fn dns_mx(&self, name: &str) -> Result<Vec<(u16, String)>, ServiceError> {
        let name = self.query(name);
        Ok(lock(&self.mx).get(&name).cloned().unwrap_or_default())
    }
}
