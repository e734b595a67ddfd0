//! The set-associative table that holds per-connection state.
//!
//! Both trackers (client connections in [`crate::flow`], election and
//! quorum links in [`crate::quorum`]) keep their connections in a slice of
//! slots the caller provides, cut into buckets of [`WAYS`] slots like a CPU
//! cache: a connection's 4-tuple hashes to one bucket, a lookup scans its
//! ways, and a new connection takes a free way or evicts the way seen least
//! recently. Lookups are O([`WAYS`]), nothing is ever rehashed, and a full
//! table degrades by evicting cold connections, never by growing.

use core::net::SocketAddr;

use smoltcp::time::{Duration, Instant};

/// Ways (slots) per bucket.
pub const WAYS: usize = 8;

/// A slot of a connection table.
pub trait Entry {
    /// The connection's two endpoints, in the order the tracker keys them
    /// (`None` for a free slot).
    fn key(&self) -> Option<(SocketAddr, SocketAddr)>;
    /// When the connection last carried a segment.
    fn last_seen(&self) -> Instant;
}

/// Where a connection is, or may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The connection's slot.
    Found(usize),
    /// A free slot of its bucket.
    Free(usize),
    /// Its bucket is full: the slot of the connection seen least recently.
    Evict(usize),
}

/// Buckets in a table of `slots` slots (a partial last bucket is unused).
pub fn buckets(slots: usize) -> usize {
    slots / WAYS
}

fn bucket_of(a: &SocketAddr, b: &SocketAddr, buckets: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |v: u64| {
        h ^= v;
        h = h.wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    };
    for x in [a, b] {
        match x {
            SocketAddr::V4(v4) => mix(u64::from(u32::from(*v4.ip()))),
            SocketAddr::V6(v6) => {
                let bits = u128::from(*v6.ip());
                mix(bits as u64);
                mix((bits >> 64) as u64);
            }
        }
        mix(u64::from(x.port()));
    }
    ((u128::from(h) * buckets as u128) >> 64) as usize
}

/// Finds the slot of connection (`a`, `b`) in `slots`, or where it would
/// go. `None` when the table has no bucket.
pub fn lookup<T: Entry>(slots: &[T], a: &SocketAddr, b: &SocketAddr) -> Option<Lookup> {
    let n = buckets(slots.len());
    if n == 0 {
        return None;
    }
    let base = bucket_of(a, b, n) * WAYS;
    let mut free = None;
    let mut coldest = (base, None::<Instant>);
    for (i, s) in slots[base..base + WAYS].iter().enumerate() {
        match s.key() {
            Some((x, y)) if x == *a && y == *b => return Some(Lookup::Found(base + i)),
            Some(_) => {
                let seen = s.last_seen();
                if coldest.1.is_none_or(|c| seen < c) {
                    coldest = (base + i, Some(seen));
                }
            }
            None => {
                free.get_or_insert(base + i);
            }
        }
    }
    Some(match free {
        Some(i) => Lookup::Free(i),
        None => Lookup::Evict(coldest.0),
    })
}

/// Has a connection last seen at `last_seen` been idle for longer than
/// `timeout` at `now`? A clock that steps back never makes it idle.
pub fn is_idle(now: Instant, last_seen: Instant, timeout: Duration) -> bool {
    now > last_seen && now - last_seen > timeout
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::vec::Vec;

    #[derive(Clone, Copy)]
    struct S(Option<(SocketAddr, SocketAddr)>, i64);
    impl Entry for S {
        fn key(&self) -> Option<(SocketAddr, SocketAddr)> {
            self.0
        }
        fn last_seen(&self) -> Instant {
            Instant::from_micros(self.1)
        }
    }

    fn addr(i: u16) -> SocketAddr {
        format!("10.0.0.1:{i}").parse().unwrap()
    }

    #[test]
    fn fills_free_ways_then_evicts_the_coldest() {
        let server: SocketAddr = "10.0.0.2:2181".parse().unwrap();
        let mut slots: Vec<S> = std::vec![S(None, 0); WAYS];
        for i in 0..WAYS as u16 {
            match lookup(&slots, &addr(i), &server).unwrap() {
                Lookup::Free(at) => slots[at] = S(Some((addr(i), server)), 100 - i64::from(i)),
                other => panic!("{other:?}"),
            }
        }
        for i in 0..WAYS as u16 {
            assert!(matches!(
                lookup(&slots, &addr(i), &server),
                Some(Lookup::Found(_))
            ));
        }
        let Some(Lookup::Evict(at)) = lookup(&slots, &addr(99), &server) else {
            panic!("a full bucket evicts");
        };
        assert_eq!(
            slots[at].0.unwrap().0,
            addr(WAYS as u16 - 1),
            "the coldest goes"
        );
        assert_eq!(lookup(&[] as &[S], &addr(1), &server), None);
    }

    #[test]
    fn idleness_ignores_clock_steps_back() {
        let t = |us| Instant::from_micros(us);
        let d = Duration::from_micros(10);
        assert!(is_idle(t(100), t(50), d));
        assert!(!is_idle(t(55), t(50), d));
        assert!(!is_idle(t(0), t(50), d));
    }
}
