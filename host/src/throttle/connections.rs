//! Concurrent connections per client address and per client network, over
//! every listener: one busy client (or one /24 of them) cannot take all of
//! `max_sessions` and lock everyone else out (issue 16 item 4).

use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The limits, from `[clients]`.
#[derive(Debug, Clone)]
pub struct ConnectionPolicy {
    /// 0: no limit.
    pub per_address: usize,
    /// Per /24 (IPv4) or /64 (IPv6); 0: no limit.
    pub per_network: usize,
    pub exempt: Vec<IpNet>,
}

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Address,
    Network,
}

impl Exceeded {
    pub fn as_str(self) -> &'static str {
        match self {
            Exceeded::Address => "address",
            Exceeded::Network => "network",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Network(IpAddr),
}

/// The live counts. Entries exist only while a connection holds them, so
/// the map is as big as the set of connected clients, never bigger.
pub struct ConnectionLimits {
    policy: ConnectionPolicy,
    counts: Mutex<HashMap<Key, usize>>,
}

/// Held for the life of one connection; dropping it frees the place.
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    keys: Option<(Key, Key)>,
}

/// An IPv4 client on a dual-stack socket shows up as `::ffff:a.b.c.d`:
/// counted, and its network taken, as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The client's /24 (IPv4) or /64 (IPv6), as its first address.
pub fn network_of(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & 0xffff_ff00).into()),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
    }
}

impl ConnectionLimits {
    pub fn new(policy: ConnectionPolicy) -> Arc<Self> {
        Arc::new(ConnectionLimits { policy, counts: Mutex::new(HashMap::new()) })
    }

    /// A place for one more connection from `ip`, or which limit it is over.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Exceeded> {
        let ip = canonical(ip);
        if self.policy.exempt.iter().any(|n| n.contains(&ip)) {
            return Ok(ConnectionSlot { limits: self.clone(), keys: None });
        }
        let (address, network) = (Key::Address(ip), Key::Network(network_of(ip)));
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let over = |key: &Key, limit: usize| limit != 0 && counts.get(key).copied().unwrap_or(0) >= limit;
        if over(&address, self.policy.per_address) {
            return Err(Exceeded::Address);
        }
        if over(&network, self.policy.per_network) {
            return Err(Exceeded::Network);
        }
        *counts.entry(address).or_default() += 1;
        *counts.entry(network).or_default() += 1;
        Ok(ConnectionSlot { limits: self.clone(), keys: Some((address, network)) })
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.counts.lock().unwrap().len()
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let Some((address, network)) = self.keys else { return };
        let mut counts = self.limits.counts.lock().unwrap_or_else(|e| e.into_inner());
        for key in [address, network] {
            if let Some(n) = counts.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: usize, per_network: usize, exempt: &[&str]) -> Arc<ConnectionLimits> {
        ConnectionLimits::new(ConnectionPolicy {
            per_address,
            per_network,
            exempt: exempt.iter().map(|n| n.parse().unwrap()).collect(),
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_cannot_take_more_than_its_share() {
        let l = limits(2, 0, &[]);
        let held: Vec<_> = (0..2).map(|_| l.admit(ip("192.0.2.1")).unwrap()).collect();
        assert_eq!(l.admit(ip("192.0.2.1")).err(), Some(Exceeded::Address));
        assert!(l.admit(ip("192.0.2.2")).is_ok(), "a neighbour is not refused");
        drop(held);
        assert!(l.admit(ip("192.0.2.1")).is_ok(), "closing frees the places");
    }

    #[test]
    fn a_network_is_counted_as_a_whole() {
        let l = limits(0, 3, &[]);
        let _held: Vec<_> =
            ["198.51.100.1", "198.51.100.2", "198.51.100.250"].iter().map(|a| l.admit(ip(a)).unwrap()).collect();
        assert_eq!(l.admit(ip("198.51.100.7")).err(), Some(Exceeded::Network));
        assert!(l.admit(ip("198.51.101.7")).is_ok(), "the next /24 is another network");
        let l6 = limits(0, 1, &[]);
        let _a = l6.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(l6.admit(ip("2001:db8:1:2:ffff::9")).err(), Some(Exceeded::Network), "same /64");
        assert!(l6.admit(ip("2001:db8:1:3::1")).is_ok());
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        let l = limits(1, 0, &[]);
        let _a = l.admit(ip("192.0.2.9")).unwrap();
        assert_eq!(l.admit(ip("::ffff:192.0.2.9")).err(), Some(Exceeded::Address));
    }

    #[test]
    fn exempt_clients_and_zero_limits_are_not_counted() {
        let l = limits(1, 1, &["10.0.0.0/8"]);
        let _held: Vec<_> = (0..10).map(|_| l.admit(ip("10.1.2.3")).unwrap()).collect();
        assert_eq!(l.tracked(), 0);
        let open = limits(0, 0, &[]);
        let _many: Vec<_> = (0..100).map(|_| open.admit(ip("192.0.2.1")).unwrap()).collect();
    }

    #[test]
    fn the_map_forgets_clients_that_left() {
        let l = limits(5, 5, &[]);
        let a = l.admit(ip("192.0.2.1")).unwrap();
        let b = l.admit(ip("203.0.113.1")).unwrap();
        assert_eq!(l.tracked(), 4);
        drop((a, b));
        assert_eq!(l.tracked(), 0);
    }
}
