//! The tables of zk-stats: what the stats daemon counts, fed by flow events.
//!
//! Input: [`crate::flow::Event`]s of the client protocol. Output: counters
//! and heavy-hitter tables that keep the older Python daemon's vocabulary
//! (zktraffic's `stats/accumulators.py`), so existing dashboards keep
//! working:
//!
//! - per (request type, path): count and bytes (`GetDataRequest/a/b`,
//!   `GetDataRequestBytes/a/b`), plus `reads/…`, `writes/…` (with their
//!   bytes) and `watches/…` per path;
//! - the same per (…, client IP) and per (…, auth identity);
//! - watch events per (event type, path) (`NodeDataChanged/a/b`);
//! - exact totals: requests and bytes by type, `total/reads`,
//!   `total/writes`, `total/readBytes`, `total/writeBytes`, replies by type
//!   and error code, watch events by type, sessions (connects, reconnects,
//!   expirations, closes);
//! - latency per request type, and per (type, path) for the busiest paths,
//!   as log-linear histograms ([`Histogram`]).
//!
//! Counting rules (the old daemon's, except where noted):
//! - a request's size is its frame body (the length prefix's value);
//! - writes are create (all forms), delete, deleteContainer, setData,
//!   setACL, reconfig and a multi with at least one write sub-op; every
//!   other request is a read (connects and pings included);
//! - watches: getData / exists / getChildren / getChildren2 with the watch
//!   flag, addWatch, setWatches and setWatches2;
//! - the path of a multi is its first sub-op's path; requests without a
//!   path count under `""` (key `PingRequest`, `reads`);
//! - an ephemeral create counts as `CreateEphemeralRequest`, a connect
//!   with a session id as `ReconnectRequest`;
//! - SetAuth counts under `/<scheme>` (the old daemon used `/<credential>`,
//!   which put secrets in its output);
//! - the auth identity is [`crate::flow::Event::auth`] (`digest:user`),
//!   `noauth` before any SetAuth (the old daemon used the credential).
//!
//! `--aggregation-depth D` keeps the first D components of every path
//! (`/a/b/c` at depth 1 is `/a`); 0 keeps full paths.
//!
//! Memory is fixed: the three keyed tables (per path, per client IP, per
//! auth identity) are Space-Saving [`TopK`]s over caller storage; a key is
//! a [`RowKind`] byte (request kind with its read/write and watch flags,
//! or event type), the client or identity, then the path, cut at
//! [`KEY_MAX`] bytes. A request updates one row per table; the old
//! daemon's `reads/…`, `writes/…` and `watches/…` rows are the sums of the
//! request rows of the same path ([`RowKind::opnames`], summed by the
//! reader). Updates go through a small direct-mapped combiner per table
//! that sums repeats of a key before they reach the [`TopK`] (the same
//! multiset of weighted updates, so the same guarantees); readers call
//! [`Tables::flush`] first. Everything else is arrays.
//!
//! Error bounds: a row's count overestimates by at most the table's
//! [`TableInfo::error_bound`] (0 while no key was ever evicted); a summed
//! `reads/…` row by at most that times the rows summed. A path heavy in
//! `reads` but light in every single request type can be missing from a
//! full table's `reads` rows.
//!
//! A host keeps one `Tables` for the current window and one for the
//! totals since start, and at each window's end folds the first into the
//! second ([`Tables::absorb`]) and clears it: one table update per event.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::topk::KEY_MAX;
use super::{Counted, Histogram, Slot, TopK};
use crate::client::{ErrorCode, EventType, MultiOpIter, OpCode, Request, RequestBody};
use crate::flow::{Event, Message};

/// Request kind of an ephemeral create (`CreateEphemeralRequest`).
pub const KIND_CREATE_EPHEMERAL: usize = OpCode::COUNT;
/// Request kind of a connect carrying a session id (`ReconnectRequest`).
pub const KIND_RECONNECT: usize = OpCode::COUNT + 1;
/// Request kinds: one per [`OpCode`] (by [`OpCode::index`]; createSession
/// is `ConnectRequest`), plus the two above.
pub const REQUEST_KINDS: usize = OpCode::COUNT + 2;

/// The stats name of a request kind (`"GetDataRequest"`, ...).
pub const fn request_kind_name(kind: usize) -> &'static str {
    match kind {
        KIND_CREATE_EPHEMERAL => "CreateEphemeralRequest",
        KIND_RECONNECT => "ReconnectRequest",
        k if k < OpCode::COUNT => OpCode::ALL[k].request_name(),
        _ => "UnknownRequest",
    }
}

/// Watch event kinds (the [`EventType`]s, the last for undefined values).
pub const EVENT_KINDS: usize = 9;

/// The event kind of an event type.
pub const fn event_kind(t: EventType) -> usize {
    match t {
        EventType::None => 0,
        EventType::NodeCreated => 1,
        EventType::NodeDeleted => 2,
        EventType::NodeDataChanged => 3,
        EventType::NodeChildrenChanged => 4,
        EventType::DataWatchRemoved => 5,
        EventType::ChildWatchRemoved => 6,
        EventType::PersistentWatchRemoved => 7,
        EventType::Unknown(_) => 8,
    }
}

/// The name of an event kind (`"NodeDataChanged"`, ...).
pub const fn event_kind_name(kind: usize) -> &'static str {
    match kind {
        0 => "None",
        1 => "NodeCreated",
        2 => "NodeDeleted",
        3 => "NodeDataChanged",
        4 => "NodeChildrenChanged",
        5 => "DataWatchRemoved",
        6 => "ChildWatchRemoved",
        7 => "PersistentWatchRemoved",
        _ => "UnknownWatchEvent",
    }
}

/// The error codes ZooKeeper defines, in the order of their reply slots.
pub const ERROR_CODES: [ErrorCode; 32] = [
    ErrorCode::OK,
    ErrorCode::SYSTEM_ERROR,
    ErrorCode::RUNTIME_INCONSISTENCY,
    ErrorCode::DATA_INCONSISTENCY,
    ErrorCode::CONNECTION_LOSS,
    ErrorCode::MARSHALLING_ERROR,
    ErrorCode::UNIMPLEMENTED,
    ErrorCode::OPERATION_TIMEOUT,
    ErrorCode::BAD_ARGUMENTS,
    ErrorCode::UNKNOWN_SESSION,
    ErrorCode::NEW_CONFIG_NO_QUORUM,
    ErrorCode::RECONFIG_IN_PROGRESS,
    ErrorCode::API_ERROR,
    ErrorCode::NO_NODE,
    ErrorCode::NO_AUTH,
    ErrorCode::BAD_VERSION,
    ErrorCode::NO_CHILDREN_FOR_EPHEMERALS,
    ErrorCode::NODE_EXISTS,
    ErrorCode::NOT_EMPTY,
    ErrorCode::SESSION_EXPIRED,
    ErrorCode::INVALID_CALLBACK,
    ErrorCode::INVALID_ACL,
    ErrorCode::AUTH_FAILED,
    ErrorCode::SESSION_MOVED,
    ErrorCode::NOT_READ_ONLY,
    ErrorCode::EPHEMERAL_ON_LOCAL_SESSION,
    ErrorCode::NO_WATCHER,
    ErrorCode::REQUEST_TIMEOUT,
    ErrorCode::RECONFIG_DISABLED,
    ErrorCode::SESSION_CLOSED_REQUIRE_SASL_AUTH,
    ErrorCode::QUOTA_EXCEEDED,
    ErrorCode::THROTTLED,
];

/// Reply slots per type: one per [`ERROR_CODES`] entry, plus one for
/// values ZooKeeper does not define.
pub const ERROR_SLOTS: usize = ERROR_CODES.len() + 1;

/// Reply slot by negated error code (every defined code is in -127..=0).
const SLOT_OF_NEG: [u8; 128] = {
    let mut t = [ERROR_CODES.len() as u8; 128];
    let mut i = 0;
    while i < ERROR_CODES.len() {
        t[(-ERROR_CODES[i].0) as usize] = i as u8;
        i += 1;
    }
    t
};

/// The reply slot of an error code.
#[inline]
pub const fn error_slot(e: ErrorCode) -> usize {
    if e.0 <= 0 && e.0 > -128 {
        SLOT_OF_NEG[(-e.0) as usize] as usize
    } else {
        ERROR_CODES.len()
    }
}

/// The error name of a reply slot (`"Ok"`, `"NoNode"`, ..., `"Unknown"`).
pub const fn error_slot_name(slot: usize) -> &'static str {
    if slot < ERROR_CODES.len() {
        match ERROR_CODES[slot].name() {
            Some(n) => n,
            None => "Unknown",
        }
    } else {
        "Unknown"
    }
}

/// An "opname" of the old daemon: what a row of its output counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Requests of one kind (see [`request_kind_name`]).
    Request(usize),
    /// Read requests (`reads/…`).
    Reads,
    /// Write requests (`writes/…`).
    Writes,
    /// Requests that leave a watch (`watches/…`).
    Watches,
    /// Watch events of one kind (see [`event_kind_name`]).
    Event(usize),
}

impl Category {
    /// The opname: `"GetDataRequest"`, `"reads"`, `"writes"`, `"watches"`,
    /// `"NodeDataChanged"`.
    pub const fn name(self) -> &'static str {
        match self {
            Category::Request(k) => request_kind_name(k),
            Category::Reads => "reads",
            Category::Writes => "writes",
            Category::Watches => "watches",
            Category::Event(k) => event_kind_name(k),
        }
    }

    /// True when the old daemon also reports this opname's bytes (as the
    /// opname followed by `Bytes`: `GetDataRequestBytes`, `readsBytes`).
    pub const fn has_bytes(self) -> bool {
        matches!(
            self,
            Category::Request(_) | Category::Reads | Category::Writes
        )
    }
}

/// What one stored row counts, from its key's first byte: requests of one
/// kind that were reads or writes and did or did not leave a watch, or
/// watch events of one kind. A request updates one row per table; the
/// old daemon's `reads/…`, `writes/…` and `watches/…` rows are the sums of
/// the request rows of the same path ([`RowKind::opnames`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowKind {
    /// Requests of one kind.
    Request {
        /// The request kind (see [`request_kind_name`]).
        kind: usize,
        /// Counted as writes (else reads).
        write: bool,
        /// They left a watch.
        watch: bool,
    },
    /// Watch events of one kind (see [`event_kind_name`]).
    Event(usize),
}

const CODE_WATCH: u8 = 0x40;
const CODE_WRITE: u8 = 0x80;
const CODE_EVENT: u8 = 0xf0;

impl RowKind {
    /// The key's first byte.
    pub const fn code(self) -> u8 {
        match self {
            RowKind::Request { kind, write, watch } => {
                kind as u8 | if write { CODE_WRITE } else { 0 } | if watch { CODE_WATCH } else { 0 }
            }
            RowKind::Event(k) => CODE_EVENT + k as u8,
        }
    }

    /// The row kind a key's first byte names.
    pub const fn from_code(c: u8) -> Option<RowKind> {
        if c >= CODE_EVENT {
            let k = (c - CODE_EVENT) as usize;
            return if k < EVENT_KINDS {
                Some(RowKind::Event(k))
            } else {
                None
            };
        }
        let kind = (c & 0x3f) as usize;
        if kind >= REQUEST_KINDS {
            return None;
        }
        Some(RowKind::Request {
            kind,
            write: c & CODE_WRITE != 0,
            watch: c & CODE_WATCH != 0,
        })
    }

    /// The opnames the row counts under, each with whether its bytes count
    /// too: a request row under its kind and `reads` or `writes` (bytes
    /// and all), and under `watches` (count only) when it left a watch; an
    /// event row under its event type (count only).
    pub fn opnames(self) -> impl Iterator<Item = (Category, bool)> {
        let (a, b, c) = match self {
            RowKind::Request { kind, write, watch } => (
                Some((Category::Request(kind), true)),
                Some((
                    if write {
                        Category::Writes
                    } else {
                        Category::Reads
                    },
                    true,
                )),
                watch.then_some((Category::Watches, false)),
            ),
            RowKind::Event(k) => (Some((Category::Event(k), false)), None, None),
        };
        a.into_iter().chain(b).chain(c)
    }
}

/// Which keyed table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Keys are (category, path).
    Paths,
    /// Keys are (category, client IP, path).
    Ips,
    /// Keys are (category, auth identity, path).
    Auths,
}

impl Scope {
    /// Every scope, in table order.
    pub const ALL: [Scope; 3] = [Scope::Paths, Scope::Ips, Scope::Auths];

    /// Position in [`Scope::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A stable lower-case name (`"paths"`, `"ips"`, `"auths"`).
    pub const fn name(self) -> &'static str {
        match self {
            Scope::Paths => "paths",
            Scope::Ips => "ips",
            Scope::Auths => "auths",
        }
    }
}

/// The identity of a connection that sent no SetAuth.
pub const NOAUTH: &[u8] = b"noauth";

/// A keyed row's key, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyView<'a> {
    /// What the row counts.
    pub kind: RowKind,
    /// The client IP ([`Scope::Ips`] only).
    pub client: Option<IpAddr>,
    /// The auth identity ([`Scope::Auths`] only; [`NOAUTH`] without one).
    pub auth: Option<&'a [u8]>,
    /// The (aggregated) path; may be cut at [`KEY_MAX`] bytes, so not
    /// always whole UTF-8.
    pub path: &'a [u8],
}

impl<'a> KeyView<'a> {
    /// Decodes a key of a `scope` table; `None` for bytes no table wrote.
    pub fn decode(scope: Scope, key: &'a [u8]) -> Option<KeyView<'a>> {
        let (&code, rest) = key.split_first()?;
        let kind = RowKind::from_code(code)?;
        let mut v = KeyView {
            kind,
            client: None,
            auth: None,
            path: rest,
        };
        match scope {
            Scope::Paths => {}
            Scope::Ips => {
                let (&fam, rest) = rest.split_first()?;
                let (ip, rest) = match fam {
                    4 if rest.len() >= 4 => {
                        let (a, r) = rest.split_at(4);
                        (IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])), r)
                    }
                    6 if rest.len() >= 16 => {
                        let (a, r) = rest.split_at(16);
                        let mut b = [0u8; 16];
                        b.copy_from_slice(a);
                        (IpAddr::V6(Ipv6Addr::from(b)), r)
                    }
                    _ => return None,
                };
                v.client = Some(ip);
                v.path = rest;
            }
            Scope::Auths => {
                let (&n, rest) = rest.split_first()?;
                let n = n as usize;
                if rest.len() < n {
                    return None;
                }
                let (id, rest) = rest.split_at(n);
                v.auth = Some(id);
                v.path = rest;
            }
        }
        Some(v)
    }
}

/// Keeps the first `depth` components of `path` (0 keeps it whole): the
/// part before the (depth+1)-th `/`, as the old daemon's `parent_path`
/// (`/a/b/c` at depth 1 is `/a`, at depth 2 `/a/b`).
pub fn aggregate(path: &[u8], depth: usize) -> &[u8] {
    if depth == 0 {
        return path;
    }
    let mut seen = 0;
    for (i, &b) in path.iter().enumerate() {
        if b == b'/' {
            seen += 1;
            if seen == depth + 1 {
                return &path[..i];
            }
        }
    }
    path
}

/// Session lifecycle counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sessions {
    /// Connect requests without a session id (new sessions asked for).
    pub connects: u64,
    /// Connect requests with a session id (reconnects).
    pub reconnects: u64,
    /// Connect responses with a positive timeout (session established).
    pub established: u64,
    /// Connect responses with timeout 0: the session had expired
    /// (`SessionExpiration` in the old daemon).
    pub expired: u64,
    /// Close requests.
    pub closes: u64,
}

/// Exact counters (no table, no eviction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Requests by kind.
    pub requests: [u64; REQUEST_KINDS],
    /// Request bytes (frame bodies) by kind.
    pub request_bytes: [u64; REQUEST_KINDS],
    /// Read requests (`total/reads`).
    pub reads: u64,
    /// Their bytes (`total/readBytes`).
    pub read_bytes: u64,
    /// Write requests (`total/writes`).
    pub writes: u64,
    /// Their bytes (`total/writeBytes`).
    pub write_bytes: u64,
    /// Requests that leave a watch.
    pub watches: u64,
    /// Paired replies by the request's [`OpCode::index`] and [`error_slot`].
    pub replies: [[u64; ERROR_SLOTS]; OpCode::COUNT],
    /// Paired reply bytes (frame bodies) by [`OpCode::index`].
    pub reply_bytes: [u64; OpCode::COUNT],
    /// Replies whose request was not seen and whose xid is not special.
    pub unpaired_replies: u64,
    /// Their bytes.
    pub unpaired_reply_bytes: u64,
    /// Connect responses.
    pub connect_replies: u64,
    /// Their bytes.
    pub connect_reply_bytes: u64,
    /// Watch events by [`event_kind`].
    pub events: [u64; EVENT_KINDS],
    /// Their bytes.
    pub event_bytes: [u64; EVENT_KINDS],
    /// Session lifecycle.
    pub sessions: Sessions,
    /// Four-letter words seen.
    pub four_letter_words: u64,
    /// Four-letter-word answers seen.
    pub four_letter_replies: u64,
    /// Frames that did not decode.
    pub malformed: u64,
}

impl Totals {
    /// All zero.
    pub const ZERO: Totals = Totals {
        requests: [0; REQUEST_KINDS],
        request_bytes: [0; REQUEST_KINDS],
        reads: 0,
        read_bytes: 0,
        writes: 0,
        write_bytes: 0,
        watches: 0,
        replies: [[0; ERROR_SLOTS]; OpCode::COUNT],
        reply_bytes: [0; OpCode::COUNT],
        unpaired_replies: 0,
        unpaired_reply_bytes: 0,
        connect_replies: 0,
        connect_reply_bytes: 0,
        events: [0; EVENT_KINDS],
        event_bytes: [0; EVENT_KINDS],
        sessions: Sessions {
            connects: 0,
            reconnects: 0,
            established: 0,
            expired: 0,
            closes: 0,
        },
        four_letter_words: 0,
        four_letter_replies: 0,
        malformed: 0,
    };

    /// Adds another set of counters to this one.
    pub fn add(&mut self, o: &Totals) {
        fn sum<const N: usize>(a: &mut [u64; N], b: &[u64; N]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x = x.saturating_add(*y);
            }
        }
        sum(&mut self.requests, &o.requests);
        sum(&mut self.request_bytes, &o.request_bytes);
        for (a, b) in self.replies.iter_mut().zip(&o.replies) {
            sum(a, b);
        }
        sum(&mut self.reply_bytes, &o.reply_bytes);
        sum(&mut self.events, &o.events);
        sum(&mut self.event_bytes, &o.event_bytes);
        let s = &mut self.sessions;
        let t = &o.sessions;
        let mut scalars = [
            (&mut self.reads, o.reads),
            (&mut self.read_bytes, o.read_bytes),
            (&mut self.writes, o.writes),
            (&mut self.write_bytes, o.write_bytes),
            (&mut self.watches, o.watches),
            (&mut self.unpaired_replies, o.unpaired_replies),
            (&mut self.unpaired_reply_bytes, o.unpaired_reply_bytes),
            (&mut self.connect_replies, o.connect_replies),
            (&mut self.connect_reply_bytes, o.connect_reply_bytes),
            (&mut s.connects, t.connects),
            (&mut s.reconnects, t.reconnects),
            (&mut s.established, t.established),
            (&mut s.expired, t.expired),
            (&mut s.closes, t.closes),
            (&mut self.four_letter_words, o.four_letter_words),
            (&mut self.four_letter_replies, o.four_letter_replies),
            (&mut self.malformed, o.malformed),
        ];
        for (a, b) in scalars.iter_mut() {
            **a = a.saturating_add(*b);
        }
    }

    /// Paired replies of one type, all error codes.
    pub fn replies_of(&self, op: OpCode) -> u64 {
        self.replies[op.index()].iter().sum()
    }

    /// Paired replies of one type with a non-`Ok` error code.
    pub fn failed_replies_of(&self, op: OpCode) -> u64 {
        self.replies[op.index()][1..].iter().sum()
    }
}

impl Default for Totals {
    fn default() -> Self {
        Totals::ZERO
    }
}

/// (type, path) pairs whose latency is kept per path.
pub const LATENCY_PATHS: usize = 32;

/// Word-wise FNV-1a with a final mix (stable across runs).
fn hash_bytes(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Latency of the busiest (type, path) pairs: a small Space-Saving table
/// (counted on requests) whose slots carry a histogram; a slot taken over
/// by another pair starts a fresh histogram, so a heavy pair's histogram
/// covers its requests since it last entered the table.
#[derive(Debug, Clone)]
struct LatencyPaths {
    hashes: [u64; LATENCY_PATHS],
    counts: [u64; LATENCY_PATHS],
    lens: [u8; LATENCY_PATHS],
    keys: [[u8; KEY_MAX]; LATENCY_PATHS],
    hists: [Histogram; LATENCY_PATHS],
    len: usize,
    evictions: u64,
    misses: u64,
}

/// See [`LatencyPaths::admit`].
const ADMIT_EVERY: u64 = 8;

impl LatencyPaths {
    const EMPTY: LatencyPaths = LatencyPaths {
        hashes: [0; LATENCY_PATHS],
        counts: [0; LATENCY_PATHS],
        lens: [0; LATENCY_PATHS],
        keys: [[0; KEY_MAX]; LATENCY_PATHS],
        hists: [const { Histogram::new() }; LATENCY_PATHS],
        len: 0,
        evictions: 0,
        misses: 0,
    };

    fn find(&self, hash: u64) -> Option<usize> {
        self.hashes[..self.len].iter().position(|&h| h == hash)
    }

    /// Counts `weight` requests of `key`; answers its slot. When the
    /// table is full a new key takes over the smallest slot (its histogram
    /// starts afresh), except that unless `always`, only every
    /// [`ADMIT_EVERY`]-th new key does: a heavy pair still gets in within a
    /// few requests, and a stream of one-off paths does not churn the
    /// histograms of the busy ones.
    fn admit(&mut self, key: &[u8], hash: u64, weight: u64, always: bool) -> Option<usize> {
        let key = &key[..key.len().min(KEY_MAX)];
        if let Some(i) = self.find(hash)
            && &self.keys[i][..self.lens[i] as usize] == key
        {
            self.counts[i] = self.counts[i].saturating_add(weight);
            return Some(i);
        }
        let (i, base) = if self.len < LATENCY_PATHS {
            self.len += 1;
            (self.len - 1, 0)
        } else {
            self.misses = self.misses.wrapping_add(1);
            if !always && !self.misses.is_multiple_of(ADMIT_EVERY) {
                return None;
            }
            let mut min = 0;
            for j in 1..LATENCY_PATHS {
                if self.counts[j] < self.counts[min] {
                    min = j;
                }
            }
            self.evictions += 1;
            (min, self.counts[min])
        };
        self.hashes[i] = hash;
        self.counts[i] = base.saturating_add(weight);
        self.keys[i][..key.len()].copy_from_slice(key);
        self.lens[i] = key.len() as u8;
        if self.hists[i].count() > 0 {
            self.hists[i].clear();
        }
        Some(i)
    }

    fn record(&mut self, hash: u64, micros: u64) {
        if let Some(i) = self.find(hash) {
            self.hists[i].record(micros);
        }
    }

    fn clear(&mut self) {
        for h in &mut self.hists[..self.len] {
            if h.count() > 0 {
                h.clear();
            }
        }
        self.len = 0;
        self.evictions = 0;
        self.misses = 0;
    }
}

/// Entries of the (client, xid) -> latency-path cache.
const XID_CACHE: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct XidEntry {
    tag: u64,
    path: u64,
}

fn xid_tag(client: &SocketAddr, xid: i32) -> u64 {
    let ip = match client.ip() {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let b = u128::from(v6);
            (b as u64) ^ ((b >> 64) as u64).rotate_left(17)
        }
    };
    let mut h = ip ^ (u64::from(client.port()) << 32) ^ (u64::from(xid as u32) << 48);
    h ^= u64::from(xid as u32).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    (h ^ (h >> 29)) | 1
}

/// One (type, path) latency row.
#[derive(Debug, Clone, Copy)]
pub struct LatencyRow<'a> {
    /// The request type.
    pub opcode: OpCode,
    /// The (aggregated) path, maybe cut at [`KEY_MAX`] - 1 bytes.
    pub path: &'a [u8],
    /// Requests counted for the pair (overestimated like a [`TopK`] count).
    pub requests: u64,
    /// Latencies of its paired replies since it last entered the table.
    pub histogram: &'a Histogram,
}

/// How the tables are set up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Keep the first D components of every path (0: whole paths).
    pub aggregation_depth: usize,
}

/// Figures of one keyed table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableInfo {
    /// Counters in the table.
    pub capacity: usize,
    /// Keys held now.
    pub len: usize,
    /// Total weight counted (updates, or merged counts).
    pub total: u64,
    /// Keys that displaced another (table overflow).
    pub evictions: u64,
    /// Upper bound of any row's overcount (0 while every count is exact).
    pub error_bound: u64,
}

/// Everything zk-stats counts for one stretch of traffic (a window, or
/// the totals since start).
pub struct Tables<S: AsRef<[Slot]> + AsMut<[Slot]>> {
    opts: Options,
    keyed: [TopK<S>; 3],
    pending: [Combiner; 3],
    /// Error bound added by [`Tables::absorb`], per scope.
    merged_error: [u64; 3],
    /// Exact counters.
    pub totals: Totals,
    latency: [Histogram; OpCode::COUNT],
    latency_all: Histogram,
    latency_paths: LatencyPaths,
    xids: [XidEntry; XID_CACHE],
}

/// Updates of one keyed table waiting to be added, one per key: a
/// direct-mapped cache in front of the [`TopK`]. A hit (the common case:
/// traffic repeats its keys) is a hash and a compare in a small, hot
/// array; a miss hands the evicted key's summed count to the table. The
/// table sees the same multiset of (key, weight) updates, in batches, so
/// every Space-Saving guarantee holds; readers flush first.
#[derive(Clone)]
struct Combiner {
    hashes: [u64; COMBINER],
    counts: [u64; COMBINER],
    bytes: [u64; COMBINER],
    lens: [u8; COMBINER],
    keys: [[u8; KEY_MAX]; COMBINER],
}

/// Entries of a [`Combiner`].
const COMBINER: usize = 256;

impl Combiner {
    const EMPTY: Combiner = Combiner {
        hashes: [0; COMBINER],
        counts: [0; COMBINER],
        bytes: [0; COMBINER],
        lens: [0; COMBINER],
        keys: [[0; KEY_MAX]; COMBINER],
    };

    #[inline]
    fn add<S: AsRef<[Slot]> + AsMut<[Slot]>>(
        &mut self,
        table: &mut TopK<S>,
        key: &[u8],
        weight: u64,
        bytes: u64,
    ) {
        let key = &key[..key.len().min(KEY_MAX)];
        let hash = hash_bytes(key);
        let i = (hash as usize) % COMBINER;
        if self.counts[i] > 0 {
            if self.hashes[i] == hash && &self.keys[i][..self.lens[i] as usize] == key {
                self.counts[i] += weight;
                self.bytes[i] += bytes;
                return;
            }
            table.add(
                &self.keys[i][..self.lens[i] as usize],
                self.counts[i],
                self.bytes[i],
            );
        }
        self.hashes[i] = hash;
        self.counts[i] = weight;
        self.bytes[i] = bytes;
        self.lens[i] = key.len() as u8;
        self.keys[i][..key.len()].copy_from_slice(key);
    }

    fn flush<S: AsRef<[Slot]> + AsMut<[Slot]>>(&mut self, table: &mut TopK<S>) {
        for i in 0..COMBINER {
            if self.counts[i] > 0 {
                table.add(
                    &self.keys[i][..self.lens[i] as usize],
                    self.counts[i],
                    self.bytes[i],
                );
                self.counts[i] = 0;
                self.bytes[i] = 0;
            }
        }
    }

    fn clear(&mut self) {
        self.counts = [0; COMBINER];
        self.bytes = [0; COMBINER];
    }
}

/// Where a request's keys are built: the path sits at [`PATH_AT`] and
/// each scope writes its prefix (category byte, client or identity) just
/// before it, so the path is copied once and every key is one slice.
const PATH_AT: usize = KEY_MAX;

/// What one request contributes.
struct Req<'p> {
    kind: usize,
    path: &'p [u8],
    write: bool,
    watch: bool,
    /// Op code for latency rows (None: no per-path latency).
    latency_op: Option<OpCode>,
    xid: i32,
}

impl<S: AsRef<[Slot]> + AsMut<[Slot]>> Tables<S> {
    /// Tables over caller storage: `paths`, `ips` and `auths` give the
    /// counters of the three keyed tables (see [`Scope`]).
    pub fn new(paths: S, ips: S, auths: S, opts: Options) -> Self {
        Tables {
            opts,
            keyed: [TopK::new(paths), TopK::new(ips), TopK::new(auths)],
            pending: [Combiner::EMPTY, Combiner::EMPTY, Combiner::EMPTY],
            merged_error: [0; 3],
            totals: Totals::ZERO,
            latency: [const { Histogram::new() }; OpCode::COUNT],
            latency_all: Histogram::new(),
            latency_paths: LatencyPaths::EMPTY,
            xids: [XidEntry { tag: 0, path: 0 }; XID_CACHE],
        }
    }

    /// The options in force.
    pub fn options(&self) -> Options {
        self.opts
    }

    /// Counts one event.
    pub fn record(&mut self, ev: &Event<'_>) {
        let body = u64::from(ev.size.saturating_sub(4));
        match &ev.message {
            Message::ConnectRequest(c) => {
                let kind = if c.session_id != 0 {
                    self.totals.sessions.reconnects += 1;
                    KIND_RECONNECT
                } else {
                    self.totals.sessions.connects += 1;
                    OpCode::CreateSession.index()
                };
                let r = Req {
                    kind,
                    path: b"",
                    write: false,
                    watch: false,
                    latency_op: None,
                    xid: 0,
                };
                self.request(ev, &r, body);
            }
            Message::ConnectResponse(c) => {
                self.totals.connect_replies += 1;
                self.totals.connect_reply_bytes += body;
                if c.timeout > 0 {
                    self.totals.sessions.established += 1;
                } else {
                    self.totals.sessions.expired += 1;
                }
            }
            Message::Request(req) => {
                let mut path_buf = [0u8; KEY_MAX];
                let r = Self::full_request(req, &mut path_buf);
                self.request(ev, &r, body);
            }
            Message::RequestPrefix(p) => {
                let op = p.opcode;
                let (path, write) = if op == OpCode::Multi {
                    // The visible sub-ops decide; a cut list may hide a write.
                    let mut first = None;
                    let mut any_write = false;
                    let mut complete = true;
                    for sub in MultiOpIter::new(p.record) {
                        match sub {
                            Ok(s) => {
                                first = first.or(Some(s.path().unwrap_or("")));
                                any_write |= s.opcode.is_write();
                            }
                            Err(_) => {
                                complete = false;
                                break;
                            }
                        }
                    }
                    (first.unwrap_or(""), any_write || !complete)
                } else {
                    (p.path.unwrap_or(""), op.is_write())
                };
                let r = Req {
                    kind: op.index(),
                    path: path.as_bytes(),
                    write,
                    watch: false,
                    latency_op: Some(op),
                    xid: p.xid,
                };
                self.request(ev, &r, body);
            }
            Message::Reply(r, p) => self.reply(ev, p.opcode, r.header.err, r.header.xid, p, body),
            Message::ReplyHeader(h, Some(p)) => self.reply(ev, p.opcode, h.err, h.xid, p, body),
            Message::ReplyHeader(_, None) => {
                self.totals.unpaired_replies += 1;
                self.totals.unpaired_reply_bytes += body;
            }
            Message::WatchEvent(w) => {
                let kind = event_kind(w.event_type);
                self.totals.events[kind] += 1;
                self.totals.event_bytes[kind] += body;
                let path = aggregate(w.path.as_bytes(), self.opts.aggregation_depth);
                let path = &path[..path.len().min(KEY_MAX - 1)];
                let mut k = [0u8; KEY_MAX];
                k[0] = RowKind::Event(kind).code();
                k[1..1 + path.len()].copy_from_slice(path);
                self.pending[0].add(&mut self.keyed[0], &k[..1 + path.len()], 1, body);
            }
            Message::FourLetterWord(_) => self.totals.four_letter_words += 1,
            Message::FourLetterReply(..) => self.totals.four_letter_replies += 1,
            Message::Malformed { .. } => self.totals.malformed += 1,
        }
    }

    /// Kind, path, read/write and watch of a decoded request; SetAuth's
    /// path (`/scheme`) is built in `buf`.
    fn full_request<'r>(req: &Request<'r>, buf: &'r mut [u8; KEY_MAX]) -> Req<'r> {
        let op = req.opcode;
        let mut kind = op.index();
        let mut watch = req.watch() == Some(true);
        let path: &[u8] = match req.body {
            RequestBody::Create { path, mode, .. } => {
                if mode.is_ephemeral() {
                    kind = KIND_CREATE_EPHEMERAL;
                }
                path.as_bytes()
            }
            RequestBody::Multi(ops) => ops.first().and_then(|o| o.path()).unwrap_or("").as_bytes(),
            RequestBody::SetAuth { scheme, .. } => {
                let s = scheme.as_bytes();
                let n = s.len().min(KEY_MAX - 1);
                buf[0] = b'/';
                buf[1..1 + n].copy_from_slice(&s[..n]);
                &buf[..1 + n]
            }
            RequestBody::AddWatch { path, .. } => {
                watch = true;
                path.as_bytes()
            }
            RequestBody::SetWatches { .. } | RequestBody::SetWatches2 { .. } => {
                watch = true;
                b""
            }
            _ => req.path().unwrap_or("").as_bytes(),
        };
        Req {
            kind,
            path,
            write: req.is_write(),
            watch,
            latency_op: Some(op),
            xid: req.xid,
        }
    }

    fn request(&mut self, ev: &Event<'_>, r: &Req<'_>, body: u64) {
        let t = &mut self.totals;
        t.requests[r.kind] += 1;
        t.request_bytes[r.kind] += body;
        if r.kind == OpCode::CloseSession.index() {
            t.sessions.closes += 1;
        }
        if r.write {
            t.writes += 1;
            t.write_bytes += body;
        } else {
            t.reads += 1;
            t.read_bytes += body;
        }
        if r.watch {
            t.watches += 1;
        }
        let path = aggregate(r.path, self.opts.aggregation_depth);
        let path = &path[..path.len().min(KEY_MAX - 1)];
        let code = RowKind::Request {
            kind: r.kind,
            write: r.write,
            watch: r.watch,
        }
        .code();
        let mut buf = [0u8; PATH_AT + KEY_MAX];
        let end = PATH_AT + path.len();
        buf[PATH_AT..end].copy_from_slice(path);

        // Per path: [category][path].
        self.count_keyed(0, &mut buf, PATH_AT - 1, end, code, body);

        // Per client IP: [category][4|6][address][path].
        let start = match ev.client.ip() {
            IpAddr::V4(v4) => {
                buf[PATH_AT - 5] = 4;
                buf[PATH_AT - 4..PATH_AT].copy_from_slice(&v4.octets());
                PATH_AT - 6
            }
            IpAddr::V6(v6) => {
                buf[PATH_AT - 17] = 6;
                buf[PATH_AT - 16..PATH_AT].copy_from_slice(&v6.octets());
                PATH_AT - 18
            }
        };
        self.count_keyed(1, &mut buf, start, end, code, body);

        // Per auth identity: [category][length][identity][path].
        let id = if ev.auth.is_empty() { NOAUTH } else { ev.auth };
        let id = &id[..id.len().min(PATH_AT - 2)];
        buf[PATH_AT - id.len()..PATH_AT].copy_from_slice(id);
        buf[PATH_AT - id.len() - 1] = id.len() as u8;
        let start = PATH_AT - id.len() - 2;
        self.count_keyed(2, &mut buf, start, end, code, body);

        // Per-path latency: remember which pair the reply belongs to.
        if let Some(op) = r.latency_op
            && !r.path.is_empty()
        {
            buf[PATH_AT - 1] = op.index() as u8;
            let key = &buf[PATH_AT - 1..end];
            let hash = hash_bytes(key);
            if self.latency_paths.admit(key, hash, 1, false).is_some() {
                let tag = xid_tag(&ev.client, r.xid);
                self.xids[(tag as usize) % XID_CACHE] = XidEntry { tag, path: hash };
            }
        }
    }

    /// Counts one request under the key `buf[start..end]`, whose first
    /// byte is set to `code`.
    fn count_keyed(
        &mut self,
        t: usize,
        buf: &mut [u8; PATH_AT + KEY_MAX],
        start: usize,
        end: usize,
        code: u8,
        b: u64,
    ) {
        buf[start] = code;
        self.pending[t].add(&mut self.keyed[t], &buf[start..end], 1, b);
    }

    fn reply(
        &mut self,
        ev: &Event<'_>,
        op: OpCode,
        err: ErrorCode,
        xid: i32,
        p: &crate::flow::Pairing,
        body: u64,
    ) {
        let i = op.index();
        self.totals.replies[i][error_slot(err)] += 1;
        self.totals.reply_bytes[i] += body;
        if let Some(lat) = p.latency {
            let us = lat.total_micros();
            self.latency[i].record(us);
            self.latency_all.record(us);
            let tag = xid_tag(&ev.client, xid);
            let e = &mut self.xids[(tag as usize) % XID_CACHE];
            if e.tag == tag {
                e.tag = 0;
                let h = e.path;
                self.latency_paths.record(h, us);
            }
        }
    }

    /// Hands every pending update to the keyed tables. Call before reading
    /// them ([`Tables::rows`], [`Tables::table_info`]); [`Tables::absorb`]
    /// does it for both sides.
    pub fn flush(&mut self) {
        for i in 0..3 {
            self.pending[i].flush(&mut self.keyed[i]);
        }
    }

    /// Rows of one keyed table, in no particular order, as of the last
    /// [`Tables::flush`].
    pub fn rows(&self, scope: Scope) -> impl Iterator<Item = Counted<'_>> + '_ {
        self.keyed[scope.index()].iter()
    }

    /// The `i`-th row of one keyed table (`0..table_info(scope).len`, in
    /// [`Tables::rows`]' order), as of the last [`Tables::flush`].
    pub fn row_at(&self, scope: Scope, i: usize) -> Option<Counted<'_>> {
        self.keyed[scope.index()].row_at(i)
    }

    /// Figures of one keyed table, as of the last [`Tables::flush`].
    pub fn table_info(&self, scope: Scope) -> TableInfo {
        let t = &self.keyed[scope.index()];
        let own = if t.evictions() == 0 || t.capacity() == 0 {
            0
        } else {
            t.total() / t.capacity() as u64
        };
        TableInfo {
            capacity: t.capacity(),
            len: t.len(),
            total: t.total(),
            evictions: t.evictions(),
            error_bound: own.saturating_add(self.merged_error[scope.index()]),
        }
    }

    /// Latency of paired replies by the request's [`OpCode::index`].
    pub fn latency(&self) -> &[Histogram; OpCode::COUNT] {
        &self.latency
    }

    /// Latency of every paired reply, whatever its type.
    pub fn latency_all(&self) -> &Histogram {
        &self.latency_all
    }

    /// Latency of the busiest (type, path) pairs.
    pub fn latency_paths(&self) -> impl Iterator<Item = LatencyRow<'_>> + '_ {
        let lp = &self.latency_paths;
        (0..lp.len).filter_map(move |i| {
            let key = &lp.keys[i][..lp.lens[i] as usize];
            let (&op, path) = key.split_first()?;
            Some(LatencyRow {
                opcode: *OpCode::ALL.get(op as usize)?,
                path,
                requests: lp.counts[i],
                histogram: &lp.hists[i],
            })
        })
    }

    /// (type, path) pairs that displaced another in the latency table.
    pub fn latency_path_evictions(&self) -> u64 {
        self.latency_paths.evictions
    }

    /// Folds `other` (a finished window) into these tables: keyed rows are
    /// added (the error bound grows by `other`'s), counters summed,
    /// histograms merged.
    pub fn absorb<S2: AsRef<[Slot]> + AsMut<[Slot]>>(&mut self, other: &mut Tables<S2>) {
        self.flush();
        other.flush();
        for scope in Scope::ALL {
            let i = scope.index();
            for row in other.keyed[i].iter() {
                self.keyed[i].add(row.key, row.count, row.bytes);
            }
            let bound = other.table_info(scope).error_bound;
            self.merged_error[i] = self.merged_error[i].saturating_add(bound);
        }
        self.totals.add(&other.totals);
        for (a, b) in self.latency.iter_mut().zip(other.latency.iter()) {
            a.merge(b);
        }
        self.latency_all.merge(&other.latency_all);
        let lp = &other.latency_paths;
        for j in 0..lp.len {
            let key = &lp.keys[j][..lp.lens[j] as usize];
            if let Some(i) = self
                .latency_paths
                .admit(key, lp.hashes[j], lp.counts[j], true)
            {
                self.latency_paths.hists[i].merge(&lp.hists[j]);
            }
        }
        self.latency_paths.evictions += lp.evictions;
    }

    /// Forgets everything (the start of a new window).
    pub fn clear(&mut self) {
        for t in &mut self.keyed {
            t.clear();
        }
        for p in &mut self.pending {
            p.clear();
        }
        self.merged_error = [0; 3];
        self.totals = Totals::ZERO;
        for h in &mut self.latency {
            if h.count() > 0 {
                h.clear();
            }
        }
        if self.latency_all.count() > 0 {
            self.latency_all.clear();
        }
        self.latency_paths.clear();
        for e in &mut self.xids {
            e.tag = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::Instant;
    use crate::client::test_enc::Enc;
    use crate::flow::{Config, Flow, Tracker};
    use crate::packet::{TcpFlags, TcpSegment};
    use std::boxed::Box;
    use std::collections::BTreeMap;
    use std::format;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    const SERVER: &str = "10.0.0.2:2181";
    const DATA: TcpFlags = TcpFlags {
        syn: false,
        ack: true,
        fin: false,
        rst: false,
        psh: true,
    };

    type T = Tables<Vec<Slot>>;

    fn tables(cap: usize, depth: usize) -> Box<T> {
        Box::new(Tables::new(
            vec![Slot::EMPTY; cap],
            vec![Slot::EMPTY; cap],
            vec![Slot::EMPTY; cap],
            Options {
                aggregation_depth: depth,
            },
        ))
    }

    fn framed(body: Vec<u8>) -> Vec<u8> {
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend(body);
        f
    }

    /// A tracker feeding one table set, with per-connection sequence numbers.
    struct Rig {
        tracker: Tracker<Vec<Flow>, Vec<u8>>,
        t: Box<T>,
        now: i64,
        seqs: BTreeMap<(String, bool), u32>,
    }

    impl Rig {
        fn new(t: Box<T>) -> Rig {
            Rig {
                tracker: Tracker::new(
                    vec![Flow::EMPTY; 64],
                    vec![0u8; 4096 * 16],
                    4096,
                    Config::default(),
                ),
                t,
                now: 1_000_000,
                seqs: BTreeMap::new(),
            }
        }
        /// Sends `bytes` from the client (or the server) of connection `client`,
        /// `gap` µs after the previous segment.
        fn seg(&mut self, client: &str, from_client: bool, bytes: &[u8], gap: i64) {
            self.now += gap;
            let c: SocketAddr = client.parse().unwrap();
            let s: SocketAddr = SERVER.parse().unwrap();
            let seq = self
                .seqs
                .entry((client.into(), from_client))
                .or_insert(if from_client { 1000 } else { 5000 });
            let (src, dst) = if from_client { (c, s) } else { (s, c) };
            let segment = TcpSegment {
                src,
                dst,
                seq: *seq,
                ack: 0,
                flags: DATA,
                window: 0,
                payload: bytes,
                wire_len: bytes.len(),
            };
            *seq = seq.wrapping_add(bytes.len() as u32);
            let t = &mut self.t;
            self.tracker
                .process(Instant::from_micros(self.now), &segment, &mut |ev| {
                    t.record(ev)
                });
        }
        fn req(&mut self, client: &str, frame: &[u8]) {
            self.seg(client, true, frame, 10);
        }
        fn rep(&mut self, client: &str, frame: &[u8], latency: i64) {
            self.seg(client, false, frame, latency);
        }
    }

    fn get_data(xid: i32, path: &str, watch: bool) -> Vec<u8> {
        framed(Enc::new().req(xid, 4).s(path).bool(watch).done())
    }
    fn set_data(xid: i32, path: &str, data: &[u8]) -> Vec<u8> {
        framed(Enc::new().req(xid, 5).s(path).buf(data).i32(-1).done())
    }
    fn create(xid: i32, path: &str, flags: i32) -> Vec<u8> {
        framed(
            Enc::new()
                .req(xid, 1)
                .s(path)
                .buf(b"v")
                .acls(&[(31, "world", "anyone")])
                .i32(flags)
                .done(),
        )
    }
    fn reply(xid: i32, err: i32) -> Vec<u8> {
        framed(Enc::new().rep(xid, 7, err).done())
    }
    fn set_auth(user_pw: &str) -> Vec<u8> {
        framed(
            Enc::new()
                .req(-4, 100)
                .i32(0)
                .s("digest")
                .buf(user_pw.as_bytes())
                .done(),
        )
    }

    /// The old daemon's rows of one scope, as "opname|client|auth|path" ->
    /// (count, bytes): stored rows expanded by `RowKind::opnames` and summed.
    fn rows(t: &mut T, scope: Scope) -> BTreeMap<String, (u64, u64)> {
        t.flush();
        let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for r in t.rows(scope) {
            let k = KeyView::decode(scope, r.key).unwrap();
            for (cat, with_bytes) in k.kind.opnames() {
                let name = format!(
                    "{}|{}|{}|{}",
                    cat.name(),
                    k.client.map(|c| format!("{c}")).unwrap_or_default(),
                    k.auth
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .unwrap_or_default(),
                    String::from_utf8_lossy(k.path)
                );
                let e = out.entry(name).or_default();
                e.0 += r.count;
                if with_bytes {
                    e.1 += r.bytes;
                }
            }
        }
        out
    }

    #[test]
    fn requests_count_by_type_and_path_with_reads_writes_and_watches() {
        let mut r = Rig::new(tables(256, 0));
        let c = "10.0.0.1:40000";
        let g = get_data(1, "/a/b", true);
        r.req(c, &g);
        let s = set_data(2, "/a/c", b"12345");
        r.req(c, &s);
        let e = create(3, "/a/e", 1); // ephemeral
        r.req(c, &e);
        let multi = framed(
            Enc::new()
                .req(4, 14)
                .mh(4, false, -1)
                .s("/m/first")
                .bool(false)
                .mh(2, false, -1)
                .s("/m/gone")
                .i32(-1)
                .mdone()
                .done(),
        );
        r.req(c, &multi);
        let ping = framed(Enc::new().req(-2, 11).done());
        r.req(c, &ping);

        let p = rows(&mut r.t, Scope::Paths);
        let b = |f: &Vec<u8>| (f.len() - 4) as u64;
        assert_eq!(p["GetDataRequest|||/a/b"], (1, b(&g)));
        assert_eq!(p["reads|||/a/b"], (1, b(&g)));
        assert_eq!(p["watches|||/a/b"], (1, 0));
        assert_eq!(p["SetDataRequest|||/a/c"], (1, b(&s)));
        assert_eq!(p["writes|||/a/c"], (1, b(&s)));
        assert_eq!(p["CreateEphemeralRequest|||/a/e"], (1, b(&e)));
        assert_eq!(p["MultiRequest|||/m/first"], (1, b(&multi)));
        assert_eq!(p["writes|||/m/first"], (1, b(&multi)));
        assert_eq!(p["PingRequest|||"], (1, b(&ping)));
        assert_eq!(p["reads|||"], (1, b(&ping)));
        assert_eq!(p.len(), 11, "{p:?}");

        let t = &r.t.totals;
        assert_eq!((t.reads, t.writes, t.watches), (2, 3, 1));
        assert_eq!(t.read_bytes, b(&g) + b(&ping));
        assert_eq!(t.write_bytes, b(&s) + b(&e) + b(&multi));
        assert_eq!(t.requests[KIND_CREATE_EPHEMERAL], 1);
        assert_eq!(t.requests[OpCode::GetData.index()], 1);

        // Per IP and per auth (no SetAuth yet: noauth) mirror the paths.
        let ip = rows(&mut r.t, Scope::Ips);
        assert_eq!(ip["GetDataRequest|10.0.0.1||/a/b"], (1, b(&g)));
        assert_eq!(ip.len(), 11);
        let au = rows(&mut r.t, Scope::Auths);
        assert_eq!(au["SetDataRequest||noauth|/a/c"], (1, b(&s)));
    }

    #[test]
    fn aggregation_depth_keeps_the_first_components() {
        assert_eq!(aggregate(b"/a/b/c", 0), b"/a/b/c");
        assert_eq!(aggregate(b"/a/b/c", 1), b"/a");
        assert_eq!(aggregate(b"/a/b/c", 2), b"/a/b");
        assert_eq!(aggregate(b"/a/b/c", 3), b"/a/b/c");
        assert_eq!(aggregate(b"/a/b/c", 9), b"/a/b/c");
        assert_eq!(aggregate(b"/", 1), b"/");
        assert_eq!(aggregate(b"", 1), b"");
        assert_eq!(aggregate(b"/a/", 2), b"/a/");

        let mut r = Rig::new(tables(256, 1));
        let c = "10.0.0.1:40000";
        r.req(c, &get_data(1, "/load/0", false));
        r.req(c, &get_data(2, "/load/1", false));
        r.req(c, &get_data(3, "/other", false));
        let p = rows(&mut r.t, Scope::Paths);
        assert_eq!(p["GetDataRequest|||/load"].0, 2);
        assert_eq!(p["GetDataRequest|||/other"].0, 1);
    }

    #[test]
    fn set_auth_names_the_identity_and_never_the_secret() {
        let mut r = Rig::new(tables(256, 0));
        let c = "10.0.0.1:40000";
        r.req(c, &get_data(1, "/x", false));
        r.req(c, &set_auth("alice:s3cret"));
        r.req(c, &get_data(2, "/x", false));
        let au = rows(&mut r.t, Scope::Auths);
        assert_eq!(au["GetDataRequest||noauth|/x"].0, 1);
        assert_eq!(au["GetDataRequest||digest:alice|/x"].0, 1);
        assert_eq!(au["SetAuthRequest||digest:alice|/digest"].0, 1);
        let p = rows(&mut r.t, Scope::Paths);
        assert_eq!(p["SetAuthRequest|||/digest"].0, 1);
        r.t.flush();
        for scope in Scope::ALL {
            for row in r.t.rows(scope) {
                assert!(!row.key.windows(6).any(|w| w == b"s3cret"));
            }
        }
    }

    #[test]
    fn replies_count_by_type_and_error_and_measure_latency() {
        let mut r = Rig::new(tables(256, 0));
        let c = "10.0.0.1:40000";
        for x in 1..=10 {
            r.req(c, &get_data(x, "/hot", false));
            r.rep(c, &reply(x, 0), 1000 * i64::from(x));
        }
        r.req(c, &get_data(11, "/missing", false));
        r.rep(c, &reply(11, -101), 50);
        // A reply nobody asked for.
        r.rep(c, &reply(99, 0), 5);

        let t = &r.t.totals;
        let gd = OpCode::GetData.index();
        assert_eq!(t.replies[gd][error_slot(ErrorCode::OK)], 10);
        assert_eq!(t.replies[gd][error_slot(ErrorCode::NO_NODE)], 1);
        assert_eq!(t.failed_replies_of(OpCode::GetData), 1);
        assert_eq!(t.unpaired_replies, 1);
        assert_eq!(error_slot_name(error_slot(ErrorCode::NO_NODE)), "NoNode");
        assert_eq!(error_slot(ErrorCode(-999)), ERROR_SLOTS - 1);

        let h = &r.t.latency()[gd];
        assert_eq!(h.count(), 11);
        assert_eq!(h.max(), 10_000);
        let rows: Vec<_> = r.t.latency_paths().collect();
        let hot = rows.iter().find(|l| l.path == b"/hot").unwrap();
        assert_eq!((hot.opcode, hot.requests), (OpCode::GetData, 10));
        assert_eq!(hot.histogram.count(), 10);
        assert_eq!(hot.histogram.max(), 10_000);
        let p50 = hot.histogram.quantile(0.5);
        assert!((5000..=5312).contains(&p50), "{p50}");
    }

    #[test]
    fn watch_events_count_by_type_and_path() {
        let mut r = Rig::new(tables(256, 0));
        let c = "10.0.0.1:40000";
        let ev = framed(Enc::new().rep(-1, -1, 0).i32(3).i32(3).s("/w").done());
        r.rep(c, &ev, 1);
        r.rep(c, &ev, 1);
        let p = rows(&mut r.t, Scope::Paths);
        // Counted without bytes, as the old daemon did; the totals keep them.
        assert_eq!(p["NodeDataChanged|||/w"], (2, 0));
        assert_eq!(
            r.t.totals.event_bytes[event_kind(EventType::NodeDataChanged)],
            2 * (ev.len() as u64 - 4)
        );
        assert_eq!(r.t.totals.events[event_kind(EventType::NodeDataChanged)], 2);
        assert!(rows(&mut r.t, Scope::Ips).is_empty());
    }

    #[test]
    fn sessions_connects_reconnects_expirations_and_closes() {
        let mut r = Rig::new(tables(64, 0));
        let connect = |session: i64| {
            framed(
                Enc::new()
                    .i32(0)
                    .i64(0)
                    .i32(30000)
                    .i64(session)
                    .buf(&[0u8; 16])
                    .bool(false)
                    .done(),
            )
        };
        let response = |timeout: i32, session: i64| {
            framed(
                Enc::new()
                    .i32(0)
                    .i32(timeout)
                    .i64(session)
                    .buf(&[7u8; 16])
                    .bool(false)
                    .done(),
            )
        };
        let syn = |r: &mut Rig, client: &str| {
            let c: SocketAddr = client.parse().unwrap();
            let s: SocketAddr = SERVER.parse().unwrap();
            let seg = TcpSegment {
                src: c,
                dst: s,
                seq: 999,
                ack: 0,
                flags: TcpFlags {
                    syn: true,
                    ack: false,
                    fin: false,
                    rst: false,
                    psh: false,
                },
                window: 0,
                payload: &[],
                wire_len: 0,
            };
            let t = &mut r.t;
            r.tracker
                .process(Instant::from_micros(r.now), &seg, &mut |ev| t.record(ev));
        };
        syn(&mut r, "10.0.0.1:1");
        r.req("10.0.0.1:1", &connect(0));
        r.rep("10.0.0.1:1", &response(30000, 5), 10);
        r.req("10.0.0.1:1", &framed(Enc::new().req(1, -11).done()));
        syn(&mut r, "10.0.0.1:2");
        r.req("10.0.0.1:2", &connect(5));
        r.rep("10.0.0.1:2", &response(0, 0), 10);
        let s = r.t.totals.sessions;
        assert_eq!(
            (s.connects, s.reconnects, s.established, s.expired, s.closes),
            (1, 1, 1, 1, 1)
        );
        let p = rows(&mut r.t, Scope::Paths);
        assert_eq!(p["ConnectRequest|||"].0, 1);
        assert_eq!(p["ReconnectRequest|||"].0, 1);
        assert_eq!(p["CloseRequest|||"].0, 1);
        assert_eq!(p["reads|||"].0, 3);
    }

    #[test]
    fn a_request_cut_at_the_chunk_still_counts_with_its_path() {
        let mut r = Rig::new(tables(64, 0));
        let c = "10.0.0.1:40000";
        let big = set_data(1, "/big", &[b'z'; 20_000]);
        for piece in big.chunks(1448) {
            r.req(c, piece);
        }
        let p = rows(&mut r.t, Scope::Paths);
        assert_eq!(p["SetDataRequest|||/big"], (1, big.len() as u64 - 4));
        assert_eq!(p["writes|||/big"].0, 1);
    }

    #[test]
    fn absorb_folds_a_window_into_the_totals_and_clear_forgets_it() {
        let mut cumulative = tables(64, 0);
        let mut r = Rig::new(tables(64, 0));
        let c = "10.0.0.1:40000";
        for x in 1..=3 {
            r.req(c, &get_data(x, "/a", false));
            r.rep(c, &reply(x, 0), 100);
        }
        cumulative.absorb(&mut r.t);
        r.t.clear();
        assert!(r.t.rows(Scope::Paths).next().is_none());
        assert_eq!(r.t.totals, Totals::ZERO);
        for x in 4..=5 {
            r.req(c, &get_data(x, "/a", false));
            r.rep(c, &reply(x, 0), 300);
        }
        cumulative.absorb(&mut r.t);
        let p = rows(&mut cumulative, Scope::Paths);
        assert_eq!(p["GetDataRequest|||/a"].0, 5);
        assert_eq!(cumulative.totals.reads, 5);
        let h = &cumulative.latency()[OpCode::GetData.index()];
        assert_eq!((h.count(), h.max()), (5, 300));
        let lp: Vec<_> = cumulative.latency_paths().collect();
        assert_eq!(lp.len(), 1);
        assert_eq!((lp[0].requests, lp[0].histogram.count()), (5, 5));
        assert_eq!(cumulative.table_info(Scope::Paths).error_bound, 0);
    }

    #[test]
    fn a_flood_of_distinct_paths_keeps_memory_and_the_heavy_hitters() {
        let mut r = Rig::new(tables(128, 0));
        let c = "10.0.0.1:40000";
        let mut xid = 0;
        for i in 0..20_000u32 {
            xid += 1;
            let path = if i % 4 == 0 {
                format!("/heavy/{}", i % 3)
            } else {
                format!("/noise/{i}")
            };
            r.req(c, &get_data(xid, &path, false));
        }
        r.t.flush();
        let info = r.t.table_info(Scope::Paths);
        assert_eq!(info.capacity, 128);
        assert_eq!(info.len, 128);
        assert!(info.evictions > 0);
        assert!(info.error_bound > 0 && info.error_bound <= info.total / 128);
        let p = rows(&mut r.t, Scope::Paths);
        for h in 0..3 {
            let (count, _) = p[&format!("GetDataRequest|||/heavy/{h}")];
            let truth = (0..20_000u32).filter(|i| i % 4 == 0 && i % 3 == h).count() as u64;
            assert!(count >= truth && count - truth <= info.error_bound);
        }
        // The exact totals do not depend on the table.
        assert_eq!(r.t.totals.reads, 20_000);
    }

    #[test]
    fn keys_decode_back_and_row_kinds_round_trip() {
        for kind in 0..REQUEST_KINDS {
            for write in [false, true] {
                for watch in [false, true] {
                    let r = RowKind::Request { kind, write, watch };
                    assert_eq!(RowKind::from_code(r.code()), Some(r));
                }
            }
        }
        for k in 0..EVENT_KINDS {
            let r = RowKind::Event(k);
            assert_eq!(RowKind::from_code(r.code()), Some(r));
        }
        let r = RowKind::Request {
            kind: 4,
            write: false,
            watch: true,
        };
        let names: Vec<_> = r.opnames().map(|(c, b)| (c.name(), b)).collect();
        assert_eq!(
            names,
            [
                ("GetDataRequest", true),
                ("reads", true),
                ("watches", false)
            ]
        );
        assert_eq!(RowKind::from_code(0xff), None);
        assert_eq!(RowKind::from_code(63), None);
        assert_eq!(
            request_kind_name(OpCode::CreateSession.index()),
            "ConnectRequest"
        );
        assert_eq!(request_kind_name(KIND_RECONNECT), "ReconnectRequest");
        let mut v6 = [0u8; 19];
        v6[0] = r.code();
        v6[1] = 6;
        v6[17] = 1;
        v6[18] = b'/';
        let v6 = v6;
        let k = KeyView::decode(Scope::Ips, &v6).unwrap();
        assert_eq!(k.client, Some("::1".parse().unwrap()));
        assert_eq!((k.kind, k.path), (r, &b"/"[..]));
        assert_eq!(KeyView::decode(Scope::Ips, &[0x44, 6, 0]), None);
        assert_eq!(KeyView::decode(Scope::Auths, &[0x44, 9, b'a']), None);
        assert_eq!(KeyView::decode(Scope::Paths, &[]), None);
    }
}
