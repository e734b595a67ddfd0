//! Which client connection authenticated with which credential: the data
//! behind zk-stats' `/json/auths-dump` (the old daemon's `auth_by_client`).
//!
//! Fed by `SetAuth` requests (`AuthPacket { int type; ustring scheme;
//! buffer auth }` in `zookeeper.jute`, sent with xid -4). A credential is a
//! secret (digest auth sends `user:password` in clear): the log keeps it so
//! that an operator who asks (`--show-secrets`) can see it; the host
//! redacts it otherwise. Fixed memory: `N` connections in sets of
//! [`WAYS`] (by a hash of the address); a full set gives up the entry with
//! its oldest SetAuth (counted).

use core::net::SocketAddr;

use crate::Instant;
use crate::client::RequestBody;
use crate::flow::{Event, Message};

/// Longest scheme kept (longer ones are cut).
pub const SCHEME_MAX: usize = 32;
/// Longest credential kept (longer ones are cut, and marked so).
pub const CREDENTIAL_MAX: usize = 128;

/// Entries per set.
pub const WAYS: usize = 8;

/// One connection's last SetAuth.
#[derive(Debug, Clone, Copy)]
struct Entry {
    used: bool,
    client: SocketAddr,
    ts: Instant,
    count: u64,
    scheme: [u8; SCHEME_MAX],
    scheme_len: u8,
    credential: [u8; CREDENTIAL_MAX],
    credential_len: u8,
    cut: bool,
}

const EMPTY: Entry = Entry {
    used: false,
    client: SocketAddr::V4(core::net::SocketAddrV4::new(
        core::net::Ipv4Addr::UNSPECIFIED,
        0,
    )),
    ts: Instant::ZERO,
    count: 0,
    scheme: [0; SCHEME_MAX],
    scheme_len: 0,
    credential: [0; CREDENTIAL_MAX],
    credential_len: 0,
    cut: false,
};

/// One row of an [`AuthLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthRecord<'a> {
    /// The client connection (`ip:port`).
    pub client: SocketAddr,
    /// When its last SetAuth was seen.
    pub ts: Instant,
    /// SetAuth requests seen on the connection.
    pub count: u64,
    /// The scheme (`digest`, ...), maybe cut at [`SCHEME_MAX`] bytes.
    pub scheme: &'a [u8],
    /// The credential, maybe cut at [`CREDENTIAL_MAX`] bytes. A secret.
    pub credential: &'a [u8],
    /// True when the credential was longer than [`CREDENTIAL_MAX`].
    pub cut: bool,
}

/// The last SetAuth of up to `N` client connections.
#[derive(Debug, Clone)]
pub struct AuthLog<const N: usize> {
    entries: [Entry; N],
    len: usize,
    replaced: u64,
}

impl<const N: usize> Default for AuthLog<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> AuthLog<N> {
    /// An empty log.
    pub const fn new() -> Self {
        AuthLog {
            entries: [EMPTY; N],
            len: 0,
            replaced: 0,
        }
    }

    /// Notes the event if it is a SetAuth request.
    pub fn record(&mut self, ev: &Event<'_>) {
        if let Message::Request(req) = &ev.message
            && let RequestBody::SetAuth {
                scheme, credential, ..
            } = req.body
        {
            self.set(ev.client, ev.ts, scheme.as_bytes(), credential);
        }
    }

    /// The entries `client` may occupy.
    fn set_of(client: &SocketAddr) -> core::ops::Range<usize> {
        let sets = N / WAYS;
        if sets <= 1 {
            return 0..N;
        }
        let ip = match client.ip() {
            core::net::IpAddr::V4(v4) => u64::from(u32::from(v4)),
            core::net::IpAddr::V6(v6) => {
                let b = u128::from(v6);
                (b as u64) ^ ((b >> 64) as u64)
            }
        };
        let mut h = (ip ^ (u64::from(client.port()) << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 31;
        let s = ((u128::from(h) * sets as u128) >> 64) as usize;
        s * WAYS..s * WAYS + WAYS
    }

    /// Records `client`'s SetAuth at `ts`.
    pub fn set(&mut self, client: SocketAddr, ts: Instant, scheme: &[u8], credential: &[u8]) {
        let set = Self::set_of(&client);
        let ways = &self.entries[set.clone()];
        let i = match ways.iter().position(|e| e.used && e.client == client) {
            Some(i) => i,
            None => match ways.iter().position(|e| !e.used) {
                Some(i) => {
                    self.len += 1;
                    i
                }
                None => {
                    let mut oldest = 0;
                    for (j, e) in ways.iter().enumerate() {
                        if e.ts < ways[oldest].ts {
                            oldest = j;
                        }
                    }
                    self.replaced += 1;
                    oldest
                }
            },
        };
        let Some(e) = self.entries.get_mut(set.start + i) else {
            return;
        };
        if !(e.used && e.client == client) {
            *e = EMPTY;
        }
        e.used = true;
        e.client = client;
        e.ts = ts;
        e.count += 1;
        let n = scheme.len().min(SCHEME_MAX);
        e.scheme[..n].copy_from_slice(&scheme[..n]);
        e.scheme_len = n as u8;
        let n = credential.len().min(CREDENTIAL_MAX);
        e.credential[..n].copy_from_slice(&credential[..n]);
        e.credential_len = n as u8;
        e.cut = credential.len() > CREDENTIAL_MAX;
    }

    /// Connections held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no SetAuth was seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries replaced because the log was full.
    pub fn replaced(&self) -> u64 {
        self.replaced
    }

    /// Every connection held, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = AuthRecord<'_>> + '_ {
        self.entries.iter().filter(|e| e.used).map(|e| AuthRecord {
            client: e.client,
            ts: e.ts,
            count: e.count,
            scheme: &e.scheme[..e.scheme_len as usize],
            credential: &e.credential[..e.credential_len as usize],
            cut: e.cut,
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_full_set_replaces_its_oldest_entry() {
        let mut log = AuthLog::<16>::new();
        let t = Instant::from_micros;
        for i in 0..200u16 {
            log.set(
                addr(&format!("10.0.{}.{}:1", i / 200, i % 200)),
                t(i64::from(i)),
                b"digest",
                b"u:p",
            );
        }
        assert_eq!(log.len(), 16);
        assert_eq!(log.replaced(), 200 - 16);
        // The newest connection is always held.
        assert!(log.iter().any(|r| r.client == addr("10.0.0.199:1")));
    }

    #[test]
    fn keeps_the_last_credential_per_connection_and_replaces_the_oldest() {
        let mut log = AuthLog::<2>::new();
        let t = Instant::from_micros;
        log.set(addr("10.0.0.1:1"), t(1), b"digest", b"a:1");
        log.set(addr("10.0.0.1:1"), t(2), b"digest", b"a:2");
        log.set(addr("10.0.0.2:1"), t(3), b"digest", b"b:1");
        assert_eq!(log.len(), 2);
        let a = log.iter().find(|r| r.client == addr("10.0.0.1:1")).unwrap();
        assert_eq!((a.credential, a.count, a.ts), (&b"a:2"[..], 2, t(2)));
        log.set(addr("10.0.0.3:1"), t(4), b"digest", &[b'x'; 200]);
        assert_eq!(log.replaced(), 1);
        assert!(log.iter().all(|r| r.client != addr("10.0.0.1:1")));
        let c = log.iter().find(|r| r.client == addr("10.0.0.3:1")).unwrap();
        assert!(c.cut && c.credential.len() == CREDENTIAL_MAX);
    }
}
