//! Connection limits checked before the upgrade: `server.max_connections` (503) and
//! `server.max_connections_per_ip` (429). A [`Slot`] is held for a session's life and
//! gives its place back when dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitReached {
    Total,
    PerAddress,
}

#[derive(Debug)]
pub struct Limits {
    max_total: usize,
    max_per_ip: Option<usize>,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection.
#[derive(Debug)]
pub struct Slot {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Limits {
    pub fn new(max_total: usize, max_per_ip: Option<usize>) -> Arc<Self> {
        Arc::new(Limits {
            max_total,
            max_per_ip,
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, LimitReached> {
        let admitted = self
            .total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_total).then_some(n + 1)
            });
        if admitted.is_err() {
            return Err(LimitReached::Total);
        }
        if let Some(max) = self.max_per_ip {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= max {
                drop(per_ip);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(LimitReached::PerAddress);
            }
            *count += 1;
        }
        Ok(Slot {
            limits: Arc::clone(self),
            ip,
        })
    }

    pub fn current(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let limits = &self.limits;
        if limits.max_per_ip.is_some() {
            let mut per_ip = limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = per_ip.get_mut(&self.ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&self.ip);
                }
            }
        }
        limits.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_and_per_address_limits_give_places_back() {
        let limits = Limits::new(3, Some(2));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = limits.try_acquire(a).unwrap();
        let _a2 = limits.try_acquire(a).unwrap();
        assert_eq!(limits.try_acquire(a).unwrap_err(), LimitReached::PerAddress);
        let _b1 = limits.try_acquire(b).unwrap();
        assert_eq!(limits.try_acquire(b).unwrap_err(), LimitReached::Total);
        drop(a1);
        assert_eq!(limits.current(), 2);
        let _b2 = limits.try_acquire(b).unwrap();
        assert_eq!(limits.current(), 3);
    }
}
