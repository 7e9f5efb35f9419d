//! Login lockout: after `max_attempts` failed logins from one client address, that address is
//! refused (429) for `lockout`, even with the right password.
//!
//! An attempt is counted when it starts, not when Argon2 has finished, so parallel attempts
//! cannot slip past the limit; a success clears the address. Failures older than `lockout`
//! are forgotten. IPv6 addresses count per /64, the block one subscriber usually holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::session::after;

/// Addresses tracked at most; beyond it, entries that hold no lock are dropped first.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    attempts: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

pub struct Lockout {
    max_attempts: u32,
    lockout: Duration,
    clients: Mutex<HashMap<Option<IpAddr>, Entry>>,
}

/// How a client is keyed: IPv4 per address, IPv6 per /64.
fn bucket(ip: Option<IpAddr>) -> Option<IpAddr> {
    match ip {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let bits = u128::from(v6) & (u128::MAX << 64);
            Some(IpAddr::V6(bits.into()))
        }
        Some(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4),
        other => other,
    }
}

fn seconds_until(deadline: Instant, now: Instant) -> u64 {
    let left = deadline.saturating_duration_since(now);
    left.as_secs() + u64::from(left.subsec_nanos() > 0)
}

impl Lockout {
    pub fn new(max_attempts: u32, lockout: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            lockout,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Starts an attempt: `Err(seconds)` while the client is locked out.
    pub fn begin(&self, ip: Option<IpAddr>) -> Result<(), u64> {
        self.begin_at(ip, Instant::now())
    }

    fn begin_at(&self, ip: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let mut clients = self.clients.lock();
        if clients.len() >= MAX_TRACKED {
            self.prune(&mut clients, now);
        }
        let entry = clients.entry(bucket(ip)).or_insert(Entry {
            attempts: 0,
            last: now,
            locked_until: None,
        });
        match entry.locked_until {
            Some(until) if until > now => return Err(seconds_until(until, now)),
            Some(_) => {
                *entry = Entry {
                    attempts: 0,
                    last: now,
                    locked_until: None,
                }
            }
            None if now.duration_since(entry.last) >= self.lockout => entry.attempts = 0,
            None => {}
        }
        if entry.attempts >= self.max_attempts {
            let until = after(now, self.lockout);
            entry.locked_until = Some(until);
            return Err(seconds_until(until, now));
        }
        entry.attempts += 1;
        entry.last = now;
        Ok(())
    }

    /// The attempt failed: locks the client once it has used all its attempts.
    pub fn failed(&self, ip: Option<IpAddr>) {
        self.failed_at(ip, Instant::now());
    }

    fn failed_at(&self, ip: Option<IpAddr>, now: Instant) {
        if let Some(entry) = self.clients.lock().get_mut(&bucket(ip))
            && entry.attempts >= self.max_attempts
            && entry.locked_until.is_none()
        {
            entry.locked_until = Some(after(now, self.lockout));
        }
    }

    /// The attempt succeeded: the client starts afresh.
    pub fn succeeded(&self, ip: Option<IpAddr>) {
        self.clients.lock().remove(&bucket(ip));
    }

    fn prune(&self, clients: &mut HashMap<Option<IpAddr>, Entry>, now: Instant) {
        clients.retain(|_, e| match e.locked_until {
            Some(until) => until > now,
            None => now.duration_since(e.last) < self.lockout,
        });
        if clients.len() >= MAX_TRACKED {
            clients.retain(|_, e| e.locked_until.is_some());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    #[test]
    fn locks_after_the_allowed_attempts_then_releases() {
        let lockout = Lockout::new(3, Duration::from_secs(300));
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(lockout.begin_at(ip("192.0.2.1"), start), Ok(()));
            lockout.failed_at(ip("192.0.2.1"), start);
        }
        assert_eq!(lockout.begin_at(ip("192.0.2.1"), start), Err(300));
        assert_eq!(
            lockout.begin_at(ip("192.0.2.2"), start),
            Ok(()),
            "others are not locked"
        );
        let later = start + Duration::from_secs(301);
        assert_eq!(lockout.begin_at(ip("192.0.2.1"), later), Ok(()));
    }

    #[test]
    fn parallel_attempts_count_before_they_finish() {
        let lockout = Lockout::new(2, Duration::from_secs(60));
        let now = Instant::now();
        assert!(lockout.begin_at(ip("192.0.2.1"), now).is_ok());
        assert!(lockout.begin_at(ip("192.0.2.1"), now).is_ok());
        assert!(lockout.begin_at(ip("192.0.2.1"), now).is_err());
    }

    #[test]
    fn success_clears_and_old_failures_are_forgotten() {
        let lockout = Lockout::new(2, Duration::from_secs(60));
        let now = Instant::now();
        assert!(lockout.begin_at(ip("192.0.2.1"), now).is_ok());
        lockout.succeeded(ip("192.0.2.1"));
        assert!(lockout.begin_at(ip("192.0.2.1"), now).is_ok());
        assert!(lockout.begin_at(ip("192.0.2.1"), now).is_ok());
        let later = now + Duration::from_secs(61);
        assert!(lockout.begin_at(ip("192.0.2.1"), later).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(
            bucket(ip("2001:db8:1:2:aaaa::1")),
            bucket(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(bucket(ip("2001:db8:1:2::1")), bucket(ip("2001:db8:1:3::1")));
        assert_eq!(bucket(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }
}
