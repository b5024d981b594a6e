//! Failed logins and unknown recipients, remembered across sessions and
//! protocols (issue 16 item 5): per client address and per account, in
//! memory, each count forgotten once `window` has passed since its last
//! failure.
//!
//! - Every failed login waits `base_delay`, doubled for each earlier
//!   failure from the same address (at most 16×): a sequential guesser
//!   slows down quickly.
//! - At `per_address` failures from an address, or `per_account` for an
//!   account, further logins are refused before any password is checked
//!   (SMTP `454 4.7.0`, POP3 `-ERR [SYS/TEMP]`) until the window passes.
//!   A login in flight counts as a failure until it succeeds, so parallel
//!   guesses cannot overshoot the threshold (20 at once were all answered
//!   before).
//! - Unknown recipients from one address past `free_probes` each wait a
//!   growing delay too, which slows address harvesting.
//!
//! An IPv6 client is counted by its /64: a host has that many addresses.

use super::connections::network_of;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The settings, from `[clients]` and `auth_failure_delay`.
#[derive(Debug, Clone)]
pub struct FailurePolicy {
    pub window: Duration,
    /// 0: never refused.
    pub per_address: u32,
    /// 0: never refused.
    pub per_account: u32,
    pub base_delay: Duration,
    /// Unknown recipients from one address before each further one is slowed.
    pub free_probes: u32,
    pub probe_delay: Duration,
    pub exempt: Vec<IpNet>,
}

/// The doubling stops here: 16 × the base delay.
const MAX_DOUBLINGS: u32 = 4;
/// Entries kept at most; past it the expired ones go, then the oldest.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    LoginFrom(IpAddr),
    LoginAs(String),
    ProbeFrom(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    count: u32,
    last: Instant,
}

/// Why a login was refused without checking the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Address { failures: u32 },
    Account { failures: u32 },
}

impl Refused {
    /// For the log line: which count reached its limit.
    pub fn scope(self) -> &'static str {
        match self {
            Refused::Address { .. } => "address",
            Refused::Account { .. } => "account",
        }
    }

    pub fn failures(self) -> u32 {
        match self {
            Refused::Address { failures } | Refused::Account { failures } => failures,
        }
    }
}

pub struct Failures {
    policy: FailurePolicy,
    entries: Mutex<HashMap<Key, Entry>>,
}

/// One login being checked. It counts as a failure from the start; say
/// how it ended with [`LoginAttempt::failed`] or
/// [`LoginAttempt::succeeded`]. Dropped undecided (a temporary failure of
/// the check), it is taken back: not the client's fault.
pub struct LoginAttempt {
    failures: Arc<Failures>,
    keys: Option<(Key, Key)>,
}

/// `base` doubled for every failure before the `nth`, at most [`MAX_DOUBLINGS`] times.
fn doubled(base: Duration, nth: u32) -> Duration {
    base.saturating_mul(1 << nth.saturating_sub(1).min(MAX_DOUBLINGS))
}

/// The account a login names, as counted: "Alice@Example.org " and
/// "alice@example.org" are one account.
pub fn account_key(name: &str) -> String {
    name.trim().to_lowercase()
}

impl Failures {
    pub fn new(policy: FailurePolicy) -> Arc<Self> {
        Arc::new(Failures { policy, entries: Mutex::new(HashMap::new()) })
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        self.policy.exempt.iter().any(|n| n.contains(&ip.to_canonical()))
    }

    /// The client as counted: itself, or its /64 for IPv6.
    fn client(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            v4 @ IpAddr::V4(_) => v4,
            v6 => network_of(v6),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live count of `key` (0 once the window has passed).
    fn count(&self, map: &HashMap<Key, Entry>, key: &Key, now: Instant) -> u32 {
        map.get(key).filter(|e| now.duration_since(e.last) < self.policy.window).map_or(0, |e| e.count)
    }

    fn bump(&self, map: &mut HashMap<Key, Entry>, key: Key, now: Instant) -> u32 {
        let live = self.count(map, &key, now);
        if live == 0 && !map.contains_key(&key) && map.len() >= MAX_ENTRIES {
            self.make_room(map, now);
        }
        let entry = map.entry(key).or_insert(Entry { count: 0, last: now });
        *entry = Entry { count: live + 1, last: now };
        entry.count
    }

    /// Drops the expired entries; if that is not enough (a flood from very
    /// many addresses), the tenth that failed longest ago.
    fn make_room(&self, map: &mut HashMap<Key, Entry>, now: Instant) {
        let window = self.policy.window;
        map.retain(|_, e| now.duration_since(e.last) < window);
        if map.len() >= MAX_ENTRIES {
            let mut ages: Vec<Instant> = map.values().map(|e| e.last).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 10];
            map.retain(|_, e| e.last > cut);
        }
    }

    /// May `ip` try a login as `account` now? The answer counts as a
    /// failure until it is settled.
    pub fn begin_login(self: &Arc<Self>, ip: IpAddr, account: &str) -> Result<LoginAttempt, Refused> {
        if self.exempt(ip) {
            return Ok(LoginAttempt { failures: self.clone(), keys: None });
        }
        let (from, user) = (Key::LoginFrom(Self::client(ip)), Key::LoginAs(account_key(account)));
        let now = Instant::now();
        let mut map = self.lock();
        let (by_address, by_account) = (self.count(&map, &from, now), self.count(&map, &user, now));
        if self.policy.per_address != 0 && by_address >= self.policy.per_address {
            return Err(Refused::Address { failures: by_address });
        }
        if self.policy.per_account != 0 && by_account >= self.policy.per_account {
            return Err(Refused::Account { failures: by_account });
        }
        self.bump(&mut map, from.clone(), now);
        self.bump(&mut map, user.clone(), now);
        Ok(LoginAttempt { failures: self.clone(), keys: Some((from, user)) })
    }

    /// An unknown recipient from `ip`: how long to wait before saying so.
    pub fn unknown_recipient(&self, ip: IpAddr) -> Duration {
        if self.exempt(ip) {
            return Duration::ZERO;
        }
        let n = self.bump(&mut self.lock(), Key::ProbeFrom(Self::client(ip)), Instant::now());
        match n.checked_sub(self.policy.free_probes) {
            Some(over) if over > 0 => doubled(self.policy.probe_delay, over),
            _ => Duration::ZERO,
        }
    }

    fn take_back(&self, keys: &(Key, Key)) {
        let mut map = self.lock();
        for key in [&keys.0, &keys.1] {
            if let Some(e) = map.get_mut(key) {
                e.count = e.count.saturating_sub(1);
                if e.count == 0 {
                    map.remove(key);
                }
            }
        }
    }
}

impl LoginAttempt {
    /// The password was right: this attempt is not counted. Earlier
    /// failures stay (an attacker with an account of its own must not be
    /// able to reset its address's count by logging in to it).
    pub fn succeeded(mut self) {
        if let Some(keys) = self.keys.take() {
            self.failures.take_back(&keys);
        }
    }

    /// The password was wrong: the attempt stays counted. Returns how long
    /// to wait before saying so, and the address's failure count.
    pub fn failed(mut self) -> (Duration, u32) {
        let base = self.failures.policy.base_delay;
        match self.keys.take() {
            Some((from, _)) => {
                let n = self.failures.count(&self.failures.lock(), &from, Instant::now()).max(1);
                (doubled(base, n), n)
            }
            None => (base, 0),
        }
    }
}

impl Drop for LoginAttempt {
    fn drop(&mut self) {
        if let Some(keys) = self.keys.take() {
            self.failures.take_back(&keys);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(per_address: u32, per_account: u32, exempt: &[&str]) -> Arc<Failures> {
        Failures::new(FailurePolicy {
            window: Duration::from_secs(900),
            per_address,
            per_account,
            base_delay: Duration::from_millis(100),
            free_probes: 3,
            probe_delay: Duration::from_millis(50),
            exempt: exempt.iter().map(|n| n.parse().unwrap()).collect(),
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn delays_grow_then_the_address_is_refused() {
        let f = failures(5, 0, &[]);
        let delays: Vec<_> = (0..5).map(|_| f.begin_login(ip("192.0.2.1"), "alice").unwrap().failed().0).collect();
        let ms: Vec<_> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600]);
        assert_eq!(f.begin_login(ip("192.0.2.1"), "bob").err(), Some(Refused::Address { failures: 5 }));
        assert!(f.begin_login(ip("192.0.2.2"), "bob").is_ok(), "another address is not refused");
    }

    #[test]
    fn the_doubling_is_capped() {
        assert_eq!(doubled(Duration::from_secs(1), 30), Duration::from_secs(16));
        assert_eq!(doubled(Duration::from_secs(1), 1), Duration::from_secs(1));
    }

    #[test]
    fn an_account_is_protected_from_many_addresses() {
        let f = failures(0, 3, &[]);
        for i in 1..=3 {
            f.begin_login(ip(&format!("192.0.2.{i}")), "Alice@A.test").unwrap().failed();
        }
        assert_eq!(f.begin_login(ip("203.0.113.9"), " alice@a.test").err(), Some(Refused::Account { failures: 3 }));
        assert!(f.begin_login(ip("203.0.113.9"), "bob@a.test").is_ok());
    }

    #[test]
    fn logins_in_flight_count_so_parallel_guesses_cannot_overshoot() {
        let f = failures(3, 0, &[]);
        let in_flight: Vec<_> = (0..3).map(|_| f.begin_login(ip("192.0.2.1"), "alice").unwrap()).collect();
        assert!(f.begin_login(ip("192.0.2.1"), "alice").is_err());
        drop(in_flight); // undecided (tempfail): taken back
        let ok = f.begin_login(ip("192.0.2.1"), "alice").unwrap();
        ok.succeeded();
        assert!(f.lock().is_empty(), "a success leaves nothing behind");
    }

    #[test]
    fn a_success_does_not_wipe_earlier_failures() {
        let f = failures(3, 0, &[]);
        for _ in 0..2 {
            f.begin_login(ip("192.0.2.1"), "victim").unwrap().failed();
        }
        f.begin_login(ip("192.0.2.1"), "own-account").unwrap().succeeded();
        f.begin_login(ip("192.0.2.1"), "victim").unwrap().failed();
        assert!(f.begin_login(ip("192.0.2.1"), "victim").is_err());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let f = failures(2, 0, &[]);
        f.begin_login(ip("2001:db8::1"), "a").unwrap().failed();
        f.begin_login(ip("2001:db8::2"), "b").unwrap().failed();
        assert!(f.begin_login(ip("2001:db8::ffff:3"), "c").is_err());
        assert!(f.begin_login(ip("2001:db8:0:1::1"), "c").is_ok());
    }

    #[test]
    fn failures_are_forgotten_after_the_window() {
        let f = failures(1, 1, &[]);
        f.begin_login(ip("192.0.2.1"), "alice").unwrap().failed();
        assert!(f.begin_login(ip("192.0.2.1"), "alice").is_err());
        let old = Instant::now() - Duration::from_secs(901);
        for e in f.lock().values_mut() {
            e.last = old;
        }
        assert!(f.begin_login(ip("192.0.2.1"), "alice").is_ok());
    }

    #[test]
    fn unknown_recipients_slow_down_after_the_free_ones() {
        let f = failures(0, 0, &[]);
        let ms: Vec<_> = (0..6).map(|_| f.unknown_recipient(ip("192.0.2.1")).as_millis()).collect();
        assert_eq!(ms, [0, 0, 0, 50, 100, 200]);
        assert_eq!(f.unknown_recipient(ip("192.0.2.2")), Duration::ZERO);
    }

    #[test]
    fn exempt_clients_are_not_counted() {
        let f = failures(1, 0, &["127.0.0.0/8"]);
        for _ in 0..5 {
            f.begin_login(ip("127.0.0.1"), "alice").unwrap().failed();
            assert_eq!(f.unknown_recipient(ip("127.0.0.1")), Duration::ZERO);
        }
        assert!(f.lock().is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let f = failures(0, 0, &[]);
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            f.unknown_recipient(IpAddr::V4(i.into()));
        }
        assert!(f.lock().len() <= MAX_ENTRIES);
    }
}
