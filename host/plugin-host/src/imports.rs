//! The host side of the capability imports: `host`, `kv`, `dns`,
//! `directory`, and the `message` resource. Capabilities the operator did not
//! grant answer `denied`; every awaited call is cut at
//! `sandbox.host_call_timeout` and its duration is not charged to the
//! plugin's deadline.

use crate::bindings::ferrymail::plugin::{directory, dns, host, kv, types};
use crate::bindings::wit::{Destination, HostError};
use crate::message::MessageData;
use crate::sandbox::Ctx;
use crate::services::ServiceError;
use ferrymail_policy::logsafe;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmtime::component::Resource;

/// Longest log line a plugin may write.
const MAX_LOG: usize = 4096;

impl Ctx {
    /// Run a host future under the host-call timeout, off the guest's clock.
    async fn host_call<T>(
        &mut self,
        granted: bool,
        fut: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, HostError> {
        if !granted {
            return Err(HostError::Denied);
        }
        let started = Instant::now();
        // The tenant's permit is for guest execution. Waiting on DNS or the
        // store must not hold it, and `directory.resolve` runs a route
        // chain of the same tenant, which needs a permit of its own.
        let held = self.permit.take().is_some();
        let result = tokio::time::timeout(self.scope.sandbox.host_call_timeout, fut).await;
        if held && let Some(limit) = &self.scope.limit {
            self.permit = limit.clone().acquire_owned().await.ok();
        }
        self.add_host_time(started.elapsed());
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(ServiceError::Timeout)) | Err(_) => Err(HostError::Timeout),
            Ok(Err(ServiceError::Failed(e))) => Err(HostError::Failed(e)),
        }
    }
}

impl host::Host for Ctx {
    async fn log(&mut self, level: host::Level, message: String) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > MAX_LOG {
            let mut cut = MAX_LOG;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let (plugin, tenant) = (&self.scope.plugin, self.scope.tenant_label());
        match level {
            host::Level::Trace => tracing::trace!(plugin, tenant, "{}", logsafe(&message)),
            host::Level::Debug => tracing::debug!(plugin, tenant, "{}", logsafe(&message)),
            host::Level::Info => tracing::info!(plugin, tenant, "{}", logsafe(&message)),
            host::Level::Warn => tracing::warn!(plugin, tenant, "{}", logsafe(&message)),
            host::Level::Error => tracing::error!(plugin, tenant, "{}", logsafe(&message)),
        }
        Ok(())
    }

    async fn config(&mut self) -> wasmtime::Result<String> {
        Ok(self.scope.config.clone())
    }

    async fn now(&mut self) -> wasmtime::Result<u64> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Ok(u64::try_from(now.as_millis()).unwrap_or(u64::MAX))
    }
}

fn ttl(secs: Option<u64>) -> Option<Duration> {
    secs.map(Duration::from_secs)
}

impl kv::Host for Ctx {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, HostError>> {
        let s = self.scope.clone();
        Ok(self.host_call(s.caps.kv, s.host.kv_get(&s.namespace, &key)).await)
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_secs: Option<u64>,
    ) -> wasmtime::Result<Result<(), HostError>> {
        let s = self.scope.clone();
        Ok(self.host_call(s.caps.kv, s.host.kv_set(&s.namespace, &key, &value, ttl(ttl_secs))).await)
    }

    async fn incr(
        &mut self,
        key: String,
        delta: i64,
        ttl_secs: Option<u64>,
    ) -> wasmtime::Result<Result<i64, HostError>> {
        let s = self.scope.clone();
        Ok(self.host_call(s.caps.kv, s.host.kv_incr(&s.namespace, &key, delta, ttl(ttl_secs))).await)
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), HostError>> {
        let s = self.scope.clone();
        Ok(self.host_call(s.caps.kv, s.host.kv_delete(&s.namespace, &key)).await)
    }
}

fn texts<T: ToString>(r: Result<Vec<T>, ServiceError>) -> Result<Vec<String>, ServiceError> {
    r.map(|v| v.iter().map(T::to_string).collect())
}

impl dns::Host for Ctx {
    async fn txt(&mut self, name: String) -> wasmtime::Result<Result<Vec<String>, HostError>> {
        let s = self.scope.clone();
        Ok(self.host_call(s.caps.dns, s.host.dns_txt(&name)).await)
    }

    async fn a(&mut self, name: String) -> wasmtime::Result<Result<Vec<String>, HostError>> {
        let s = self.scope.clone();
        Ok(self.host_call(s.caps.dns, async { texts(s.host.dns_a(&name).await) }).await)
    }

    async fn aaaa(&mut self, name: String) -> wasmtime::Result<Result<Vec<String>, HostError>> {
        let s = self.scope.clone();
        Ok(self.host_call(s.caps.dns, async { texts(s.host.dns_aaaa(&name).await) }).await)
    }

    async fn mx(&mut self, name: String) -> wasmtime::Result<Result<Vec<dns::MxHost>, HostError>> {
        let s = self.scope.clone();
        let r = self.host_call(s.caps.dns, s.host.dns_mx(&name)).await;
        Ok(r.map(|v| v.into_iter().map(|(preference, exchange)| dns::MxHost { preference, exchange }).collect()))
    }
}

impl directory::Host for Ctx {
    async fn account_exists(&mut self, address: String) -> wasmtime::Result<Result<bool, HostError>> {
        let s = self.scope.clone();
        Ok(self.host_call(s.caps.directory, s.host.account_exists(&address)).await)
    }

    async fn verify_password(
        &mut self,
        address: String,
        password: String,
    ) -> wasmtime::Result<Result<bool, HostError>> {
        let s = self.scope.clone();
        if !s.directory.may_verify(s.tenant.as_deref(), &address) {
            return Ok(Err(HostError::Denied));
        }
        Ok(self.host_call(s.caps.directory, s.host.verify_password(&address, &password)).await)
    }

    async fn is_local_domain(&mut self, domain: String) -> wasmtime::Result<bool> {
        let s = &self.scope;
        Ok(s.caps.directory && s.directory.is_local_domain(&domain))
    }

    async fn client_may_relay(&mut self, ip: String) -> wasmtime::Result<bool> {
        let s = &self.scope;
        Ok(s.caps.directory && ip.parse().is_ok_and(|ip| s.host.client_may_relay(ip)))
    }

    async fn resolve(&mut self, address: String) -> wasmtime::Result<Result<Destination, HostError>> {
        let s = self.scope.clone();
        // Another tenant's routing (its aliases, its accounts) is not this
        // plugin's to see.
        if !s.directory.in_scope(s.tenant.as_deref(), &address) {
            return Ok(Err(HostError::Denied));
        }
        let Some(reentry) = self.reentry.clone() else {
            // Only a constructor runs outside a hook call.
            return Ok(Err(HostError::Failed("directory.resolve works inside hook calls only".into())));
        };
        let fut = async move {
            match reentry.resolve(s.tenant.as_deref(), &address).await {
                Some(route) => Ok(crate::convert::route_to(&route)),
                None => Err(ServiceError::Failed(format!(
                    "directory.resolve nested more than {} deep",
                    crate::directory::MAX_RESOLVE_DEPTH
                ))),
            }
        };
        Ok(self.host_call(self.scope.caps.directory, fut).await)
    }
}

impl types::HostMessage for Ctx {
    async fn size(&mut self, msg: Resource<MessageData>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&msg)?.bytes.len() as u64)
    }

    async fn headers(&mut self, msg: Resource<MessageData>) -> wasmtime::Result<Vec<types::Header>> {
        let m = self.table.get(&msg)?;
        Ok(m.headers.iter().map(|(name, value)| types::Header { name: name.clone(), value: value.clone() }).collect())
    }

    async fn header(&mut self, msg: Resource<MessageData>, name: String) -> wasmtime::Result<Vec<String>> {
        let m = self.table.get(&msg)?;
        Ok(m.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(&name)).map(|(_, v)| v.clone()).collect())
    }

    async fn read(&mut self, msg: Resource<MessageData>, offset: u64, len: u32) -> wasmtime::Result<Vec<u8>> {
        // Cap one read so a plugin cannot make the host copy 4 GiB at once.
        Ok(self.table.get(&msg)?.read(offset, len.min(1 << 20)))
    }

    async fn drop(&mut self, msg: Resource<MessageData>) -> wasmtime::Result<()> {
        self.table.delete(msg)?;
        Ok(())
    }
}

impl types::Host for Ctx {}
