//! Test-only jute encoder: builds the byte sequences the decoders are tested
//! against (jute binary archive, as written by ZooKeeper's
//! `BinaryOutputArchive`), plus a deterministic byte-noise source for the
//! no-panic sweeps.

extern crate std;

use super::reply::Stat;
use std::vec::Vec;

/// A jute byte builder, by value so calls chain.
#[derive(Debug, Clone, Default)]
pub(crate) struct Enc(Vec<u8>);

impl Enc {
    pub(crate) fn new() -> Self {
        Enc(Vec::new())
    }
    pub(crate) fn done(self) -> Vec<u8> {
        self.0
    }
    pub(crate) fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub(crate) fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn bool(self, v: bool) -> Self {
        self.u8(u8::from(v))
    }
    pub(crate) fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    /// A jute buffer (length + bytes).
    pub(crate) fn buf(self, b: &[u8]) -> Self {
        self.i32(i32::try_from(b.len()).unwrap()).raw(b)
    }
    /// A jute null buffer / string / vector (-1).
    pub(crate) fn null(self) -> Self {
        self.i32(-1)
    }
    /// A jute ustring.
    pub(crate) fn s(self, v: &str) -> Self {
        self.buf(v.as_bytes())
    }
    /// A jute vector<ustring>.
    pub(crate) fn strs(self, v: &[&str]) -> Self {
        let mut e = self.i32(i32::try_from(v.len()).unwrap());
        for s in v {
            e = e.s(s);
        }
        e
    }
    /// A jute vector<ACL> of (perms, scheme, id).
    pub(crate) fn acls(self, v: &[(i32, &str, &str)]) -> Self {
        let mut e = self.i32(i32::try_from(v.len()).unwrap());
        for (perms, scheme, id) in v {
            e = e.i32(*perms).s(scheme).s(id);
        }
        e
    }
    /// A RequestHeader.
    pub(crate) fn req(self, xid: i32, op: i32) -> Self {
        self.i32(xid).i32(op)
    }
    /// A ReplyHeader.
    pub(crate) fn rep(self, xid: i32, zxid: i64, err: i32) -> Self {
        self.i32(xid).i64(zxid).i32(err)
    }
    /// A MultiHeader.
    pub(crate) fn mh(self, ty: i32, done: bool, err: i32) -> Self {
        self.i32(ty).bool(done).i32(err)
    }
    /// The MultiHeader that ends a multi record.
    pub(crate) fn mdone(self) -> Self {
        self.mh(-1, true, -1)
    }
    /// A Stat record.
    pub(crate) fn stat(self, s: &Stat) -> Self {
        self.i64(s.czxid)
            .i64(s.mzxid)
            .i64(s.ctime)
            .i64(s.mtime)
            .i32(s.version)
            .i32(s.cversion)
            .i32(s.aversion)
            .i64(s.ephemeral_owner)
            .i32(s.data_length)
            .i32(s.num_children)
            .i64(s.pzxid)
    }
}

/// A Stat with every field distinct, to catch field-order mistakes.
pub(crate) fn sample_stat() -> Stat {
    Stat {
        czxid: 0x1111,
        mzxid: 0x2222,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_500,
        version: 3,
        cversion: 4,
        aversion: 5,
        ephemeral_owner: 0x0100_0000_0000_0042,
        data_length: 6,
        num_children: 7,
        pzxid: 0x3333,
    }
}

/// xorshift64*: deterministic noise for the no-panic sweeps.
pub(crate) struct Noise(u64);

impl Noise {
    pub(crate) fn new(seed: u64) -> Self {
        Noise(seed | 1)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % u64::try_from(n.max(1)).unwrap()).unwrap()
    }
    /// Replaces a few bytes of `b` with small or boundary values.
    pub(crate) fn mutate(&mut self, b: &mut [u8]) {
        if b.is_empty() {
            return;
        }
        for _ in 0..=self.below(4) {
            let i = self.below(b.len());
            let v = match self.below(5) {
                0 => 0xff,
                1 => 0x00,
                2 => 0x7f,
                3 => 0x80,
                _ => u8::try_from(self.next_u64() & 0xff).unwrap(),
            };
            if let Some(x) = b.get_mut(i) {
                *x = v;
            }
        }
    }
}
