//! Per-connection state for the ZooKeeper client protocol.
//!
//! A [`Tracker`] takes TCP segments (from [`crate::packet`]), keeps one
//! [`Flow`] per connection in a fixed-capacity, set-associative table keyed
//! by the 4-tuple, reassembles each direction into frames
//! ([`crate::stream`]), decodes them ([`crate::client`]) and hands out
//! [`Event`]s.
//!
//! ZooKeeper replies carry no opcode: a reply is paired with its request by
//! xid (`ReplyHeader.xid` echoes `RequestHeader.xid`, see `ClientCnxn.java`),
//! so each flow keeps a small FIFO of pending requests (xid, opcode, path
//! hash, timestamp). The server answers a session's requests in order, so
//! the match is almost always at the front of the FIFO. The pairing gives
//! the reply its type and the latency.
//!
//! The first frame of a connection is a `ConnectRequest` (no request
//! header), answered by a `ConnectResponse`. A connection whose first four
//! bytes are a four-letter word (`ruok`, `stat`, ...) carries no frames: the
//! server answers in plain text and closes.
//!
//! Everything is bounded: flows by the table the caller provides (the
//! coldest flow of a full bucket is evicted, idle flows expire), pending
//! requests by [`MAX_PENDING`] per flow, reassembly memory by the chunk pool.

use crate::ErrorCounts;
use core::net::SocketAddr;

use smoltcp::time::{Duration, Instant};

use crate::Error;
use crate::client::{
    self, ConnectRequest, ConnectResponse, FourLetterWord, OpCode, Reply, ReplyHeader, Request,
    RequestPrefix, WatchEvent,
};
use crate::conntable::{self, Lookup};
use crate::packet::TcpSegment;
use crate::stream::{ChunkPool, HalfStream, Item, LengthPrefixed, StreamCounters};

/// Pending requests remembered per flow (for pairing replies).
pub const MAX_PENDING: usize = 256;

/// Server ports a tracker can be told about.
pub const MAX_PORTS: usize = 16;

pub use crate::conntable::WAYS;

/// Longest auth identity a flow keeps (see [`Event::auth`]).
pub const MAX_AUTH_ID: usize = 64;

/// How a [`Tracker`] is set up.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    ports: [u16; MAX_PORTS],
    n_ports: usize,
    /// Largest frame body accepted (longer length prefixes are errors).
    pub max_frame_len: u32,
    /// A flow with no segment for this long is forgotten.
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        let mut c = Config {
            ports: [0; MAX_PORTS],
            n_ports: 0,
            max_frame_len: LengthPrefixed::DEFAULT_MAX_LEN,
            idle_timeout: Duration::from_secs(300),
        };
        c.add_port(2181);
        c
    }
}

impl Config {
    /// A configuration with no server port yet (add some with [`Config::add_port`]).
    pub fn without_ports() -> Self {
        Config {
            n_ports: 0,
            ..Config::default()
        }
    }

    /// Adds a ZooKeeper server port; false if [`MAX_PORTS`] are already set.
    pub fn add_port(&mut self, port: u16) -> bool {
        if self.ports[..self.n_ports].contains(&port) {
            return true;
        }
        if self.n_ports == MAX_PORTS {
            return false;
        }
        self.ports[self.n_ports] = port;
        self.n_ports += 1;
        true
    }

    /// The configured server ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports[..self.n_ports]
    }

    /// Is `port` a ZooKeeper server port?
    pub fn is_server_port(&self, port: u16) -> bool {
        self.ports[..self.n_ports].contains(&port)
    }
}

/// What a paired reply learnt from its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pairing {
    /// The request's opcode (the reply's type).
    pub opcode: OpCode,
    /// [`client::path_hash`] of the request's path (0 without a path).
    pub path_hash: u64,
    /// Reply timestamp minus request timestamp; `None` when the request was
    /// not seen and the type comes from a special xid (ping, auth,
    /// setWatches).
    pub latency: Option<Duration>,
}

/// One decoded message of the client protocol.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// The session handshake from the client (first frame of a connection).
    ConnectRequest(ConnectRequest<'a>),
    /// The server's answer to a [`Message::ConnectRequest`].
    ConnectResponse(ConnectResponse<'a>),
    /// A request, decoded in full.
    Request(Request<'a>),
    /// A request whose frame was larger than a chunk, or damaged by lost
    /// segments: its header and path.
    RequestPrefix(RequestPrefix<'a>),
    /// A reply, decoded in full with the type its request gave it.
    Reply(Reply<'a>, Pairing),
    /// A reply known by its header only: its request was not seen (the
    /// capture started later, or the pending table overflowed), or the
    /// frame was larger than a chunk or damaged. The pairing, when there is
    /// one, still gives its type and latency.
    ReplyHeader(ReplyHeader, Option<Pairing>),
    /// A watch notification (xid -1).
    WatchEvent(WatchEvent<'a>),
    /// A four-letter word opening a connection.
    FourLetterWord(FourLetterWord),
    /// The server's plain-text answer to a four-letter word, seen when the
    /// connection closes: its first bytes (up to a chunk), the event's
    /// `size` is the whole length.
    FourLetterReply(FourLetterWord, &'a [u8]),
    /// A complete frame that did not decode.
    Malformed {
        /// Why it did not decode.
        error: Error,
        /// Sent by the client (else by the server).
        from_client: bool,
    },
}

/// A decoded message with where and when it was seen.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Capture timestamp of the segment that completed the frame.
    pub ts: Instant,
    /// The client's address.
    pub client: SocketAddr,
    /// The server's address.
    pub server: SocketAddr,
    /// Session id once known from the handshake (0 until then).
    pub session: i64,
    /// Frame length on the wire, including the 4-byte length prefix.
    pub size: u32,
    /// Who the connection authenticated as, from its last `SetAuth`
    /// request: `scheme:user` for digest auth (the user part of
    /// `user:password`, never the password), the scheme alone for other
    /// schemes; UTF-8, cut at [`MAX_AUTH_ID`] bytes on a char boundary.
    /// Empty until a SetAuth is seen on the connection. A SetAuth request's
    /// own event already carries the identity it sets.
    pub auth: &'a [u8],
    /// What was said.
    pub message: Message<'a>,
}

/// Counters over everything a tracker saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// TCP segments handed to [`Tracker::process`].
    pub segments: u64,
    /// Segments on no configured server port.
    pub foreign: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Flows closed by FIN/RST.
    pub flows_closed: u64,
    /// Flows forgotten after the idle timeout.
    pub flows_expired: u64,
    /// Flows evicted from a full bucket to make room.
    pub flows_evicted: u64,
    /// Requests decoded (including handshakes and four-letter words).
    pub requests: u64,
    /// Replies decoded (including handshake responses).
    pub replies: u64,
    /// Watch events decoded.
    pub events: u64,
    /// Replies with no pending request.
    pub unpaired_replies: u64,
    /// Pending requests dropped because a flow's table was full.
    pub pending_overflow: u64,
    /// Framing errors (bad length prefixes) by [`Error::index`].
    pub frame_errors: ErrorCounts,
    /// Frames that did not decode, by [`Error::index`].
    pub decode_errors: ErrorCounts,
    /// Reassembly counters.
    pub stream: StreamCounters,
}

impl Counters {
    /// Framing and decoding errors of one kind.
    pub fn errors(&self, kind: Error) -> u64 {
        self.frame_errors.get(kind) + self.decode_errors.get(kind)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Pending {
    ts: Instant,
    path_hash: u64,
    xid: i32,
    opcode: Option<OpCode>,
}

const NO_PENDING: Pending = Pending {
    ts: Instant::ZERO,
    path_hash: 0,
    xid: 0,
    opcode: None,
};

/// FIFO of pending requests; removal from the middle leaves a hole that is
/// dropped when it reaches the front.
#[derive(Debug, Clone, Copy)]
struct PendingTable {
    slots: [Pending; MAX_PENDING],
    head: u16,
    len: u16,
}

impl PendingTable {
    const EMPTY: PendingTable = PendingTable {
        slots: [NO_PENDING; MAX_PENDING],
        head: 0,
        len: 0,
    };

    /// Remembers a request; false if the oldest had to be dropped.
    fn push(&mut self, p: Pending) -> bool {
        let mut fit = true;
        if self.len as usize == MAX_PENDING {
            self.pop_front();
            fit = false;
        }
        let at = (self.head as usize + self.len as usize) % MAX_PENDING;
        self.slots[at] = p;
        self.len += 1;
        fit
    }

    fn pop_front(&mut self) {
        self.slots[self.head as usize] = NO_PENDING;
        self.head = ((self.head as usize + 1) % MAX_PENDING) as u16;
        self.len -= 1;
        while self.len > 0 && self.slots[self.head as usize].opcode.is_none() {
            self.head = ((self.head as usize + 1) % MAX_PENDING) as u16;
            self.len -= 1;
        }
    }

    /// Takes the oldest pending request with this xid.
    fn take(&mut self, xid: i32) -> Option<Pending> {
        for i in 0..self.len as usize {
            let at = (self.head as usize + i) % MAX_PENDING;
            let p = self.slots[at];
            if p.opcode.is_some() && p.xid == xid {
                if i == 0 {
                    self.pop_front();
                } else {
                    self.slots[at].opcode = None;
                }
                return Some(p);
            }
        }
        None
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

/// A connection's auth identity (see [`Event::auth`]), fixed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct AuthId {
    bytes: [u8; MAX_AUTH_ID],
    len: u8,
}

impl AuthId {
    const NONE: AuthId = AuthId {
        bytes: [0; MAX_AUTH_ID],
        len: 0,
    };

    /// Appends the longest valid UTF-8 prefix of `part` that fits.
    fn push(&mut self, part: &[u8]) {
        let at = self.len as usize;
        let room = MAX_AUTH_ID - at;
        let mut take = part.len().min(room);
        let valid = match core::str::from_utf8(&part[..take]) {
            Ok(_) => take,
            Err(e) => e.valid_up_to(),
        };
        take = valid;
        self.bytes[at..at + take].copy_from_slice(&part[..take]);
        self.len = (at + take) as u8;
    }

    /// `scheme:user` for digest credentials (`user:password`), else the scheme.
    fn set(&mut self, scheme: &str, credential: &[u8]) {
        *self = AuthId::NONE;
        self.push(scheme.as_bytes());
        if scheme == "digest" {
            let user = credential
                .iter()
                .position(|&b| b == b':')
                .map_or(credential, |i| &credential[..i]);
            self.push(b":");
            self.push(user);
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Kind {
    /// Nothing decided yet.
    Unknown,
    /// Length-prefixed jute frames.
    Frames,
    /// A four-letter-word exchange.
    FourLetter(FourLetterWord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Handshake {
    /// The next client frame is a ConnectRequest (seen from the SYN).
    Expect,
    /// ConnectRequest seen, ConnectResponse due.
    Requested,
    /// Past the handshake (or the capture started after it).
    Done,
}

/// State of one client connection. Slots of a [`Tracker`]'s table.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    client: SocketAddr,
    server: SocketAddr,
    used: bool,
    last_seen: Instant,
    session: i64,
    kind: Kind,
    handshake: Handshake,
    fin_client: bool,
    fin_server: bool,
    /// Bytes of a four-letter-word reply seen.
    text_len: u32,
    auth: AuthId,
    c2s: HalfStream,
    s2c: HalfStream,
    pending: PendingTable,
}

impl Flow {
    /// An empty slot: fill a table with it (`vec![Flow::EMPTY; n]` or
    /// `[Flow::EMPTY; N]`).
    pub const EMPTY: Flow = Flow {
        client: SocketAddr::V4(core::net::SocketAddrV4::new(
            core::net::Ipv4Addr::UNSPECIFIED,
            0,
        )),
        server: SocketAddr::V4(core::net::SocketAddrV4::new(
            core::net::Ipv4Addr::UNSPECIFIED,
            0,
        )),
        used: false,
        last_seen: Instant::ZERO,
        session: 0,
        kind: Kind::Unknown,
        handshake: Handshake::Done,
        fin_client: false,
        fin_server: false,
        text_len: 0,
        auth: AuthId::NONE,
        c2s: HalfStream::new(),
        s2c: HalfStream::new(),
        pending: PendingTable::EMPTY,
    };
}

impl conntable::Entry for Flow {
    fn key(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.used.then_some((self.client, self.server))
    }
    fn last_seen(&self) -> Instant {
        self.last_seen
    }
}

impl Flow {
    /// Makes a slot a fresh flow, without rewriting the pending table's
    /// slots (an emptied table ignores them).
    fn reset(&mut self, client: SocketAddr, server: SocketAddr, now: Instant) {
        self.client = client;
        self.server = server;
        self.used = true;
        self.last_seen = now;
        self.session = 0;
        self.kind = Kind::Unknown;
        self.handshake = Handshake::Done;
        self.fin_client = false;
        self.fin_server = false;
        self.text_len = 0;
        self.auth = AuthId::NONE;
        self.c2s = HalfStream::new();
        self.s2c = HalfStream::new();
        self.pending.clear();
    }
}

fn plausible_request(body: &[u8]) -> bool {
    if body.len() < 8 {
        return false;
    }
    let op = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
    OpCode::from_i32(op).is_some() || client::looks_like_connect_request(body)
}

fn plausible_reply(body: &[u8]) -> bool {
    if body.len() < 16 {
        return false;
    }
    if client::looks_like_connect_response(body) {
        return true;
    }
    let xid = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let zxid = i64::from_be_bytes([
        body[4], body[5], body[6], body[7], body[8], body[9], body[10], body[11],
    ]);
    let err = i32::from_be_bytes([body[12], body[13], body[14], body[15]]);
    xid >= -8 && zxid >= -1 && client::ErrorCode(err).name().is_some()
}

/// Tracks every client connection seen and decodes their traffic.
///
/// `S` is the flow table's storage (a `[Flow; N]` array, a `Vec<Flow>`, or a
/// `&mut [Flow]`), `B` the reassembly pool's bytes. Neither grows.
pub struct Tracker<S: AsMut<[Flow]>, B: AsMut<[u8]>> {
    flows: S,
    buckets: usize,
    pool: ChunkPool<B>,
    config: Config,
    c2s_framer: LengthPrefixed,
    s2c_framer: LengthPrefixed,
    last_sweep: Instant,
    active: usize,
    /// Everything counted so far.
    pub counters: Counters,
}

impl<S: AsMut<[Flow]>, B: AsMut<[u8]>> Tracker<S, B> {
    /// A tracker over `flows` (its length rounded down to a multiple of
    /// [`WAYS`]) with a reassembly pool of `buffers` cut into chunks of
    /// `chunk_size` bytes. Frames larger than a chunk are decoded from
    /// their first `chunk_size` bytes.
    pub fn new(mut flows: S, buffers: B, chunk_size: usize, config: Config) -> Self {
        let buckets = conntable::buckets(flows.as_mut().len());
        let max = config.max_frame_len;
        Tracker {
            flows,
            buckets,
            pool: ChunkPool::new(buffers, chunk_size),
            config,
            c2s_framer: LengthPrefixed {
                min_len: 8,
                max_len: max,
                header_len: 8,
                plausible_body: plausible_request,
            },
            s2c_framer: LengthPrefixed {
                min_len: 16,
                max_len: max,
                header_len: 16,
                plausible_body: plausible_reply,
            },
            last_sweep: Instant::ZERO,
            active: 0,
            counters: Counters::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Adds a server port while running (a port learnt from the traffic);
    /// false if [`MAX_PORTS`] are already set.
    pub fn add_port(&mut self, port: u16) -> bool {
        self.config.add_port(port)
    }

    /// Flows currently tracked.
    pub fn active_flows(&self) -> usize {
        self.active
    }

    /// Flow slots in the table.
    pub fn flow_capacity(&self) -> usize {
        self.buckets * WAYS
    }

    /// Reassembly chunks lent out now, and in all.
    pub fn chunks_in_use(&self) -> (usize, usize) {
        (self.pool.in_use(), self.pool.capacity())
    }

    /// Finds the flow's slot, or makes one when `create`.
    fn slot(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        now: Instant,
        create: bool,
        sink: &mut impl FnMut(&Event<'_>),
    ) -> Option<usize> {
        let idx = match conntable::lookup(self.flows.as_mut(), &client, &server)? {
            Lookup::Found(idx) => return Some(idx),
            _ if !create => return None,
            Lookup::Free(idx) => idx,
            Lookup::Evict(idx) => {
                self.counters.flows_evicted += 1;
                self.drop_flow(idx, now, sink);
                idx
            }
        };
        let f = &mut self.flows.as_mut()[idx];
        f.reset(client, server, now);
        self.active += 1;
        self.counters.flows_created += 1;
        Some(idx)
    }

    /// Forgets a flow: hands out a pending four-letter reply, returns its
    /// chunks, counts partial frames.
    fn drop_flow(&mut self, idx: usize, now: Instant, sink: &mut impl FnMut(&Event<'_>)) {
        let f = &mut self.flows.as_mut()[idx];
        if !f.used {
            return;
        }
        if let Kind::FourLetter(word) = f.kind {
            let text = f.s2c.peek(&mut self.pool);
            sink(&Event {
                ts: now,
                client: f.client,
                server: f.server,
                session: 0,
                size: f.text_len,
                auth: &[],
                message: Message::FourLetterReply(word, text),
            });
            self.counters.replies += 1;
            f.s2c.discard(&mut self.pool);
        }
        f.c2s.close(&mut self.pool, &mut self.counters.stream);
        f.s2c.close(&mut self.pool, &mut self.counters.stream);
        f.pending.clear();
        f.used = false;
        self.active -= 1;
    }

    /// Forgets flows idle for longer than the configured timeout.
    pub fn expire(&mut self, now: Instant, sink: &mut impl FnMut(&Event<'_>)) {
        self.last_sweep = now;
        let timeout = self.config.idle_timeout;
        for idx in 0..self.buckets * WAYS {
            let f = &self.flows.as_mut()[idx];
            if f.used && conntable::is_idle(now, f.last_seen, timeout) {
                self.counters.flows_expired += 1;
                self.drop_flow(idx, now, sink);
            }
        }
    }

    /// End of input: forgets every flow (handing out pending four-letter
    /// replies and counting partial frames).
    pub fn finish(&mut self, now: Instant, sink: &mut impl FnMut(&Event<'_>)) {
        for idx in 0..self.buckets * WAYS {
            self.drop_flow(idx, now, sink);
        }
    }

    /// Processes one TCP segment captured at `ts`; decoded messages go to
    /// `sink` in wire order.
    pub fn process(
        &mut self,
        ts: Instant,
        seg: &TcpSegment<'_>,
        sink: &mut impl FnMut(&Event<'_>),
    ) {
        self.counters.segments += 1;
        let (client, server, from_client) = if self.config.is_server_port(seg.dst.port()) {
            (seg.src, seg.dst, true)
        } else if self.config.is_server_port(seg.src.port()) {
            (seg.dst, seg.src, false)
        } else {
            self.counters.foreign += 1;
            return;
        };
        if ts - self.last_sweep > self.config.idle_timeout / 2 && ts > self.last_sweep {
            self.expire(ts, sink);
        }
        let has_data = seg.wire_len > 0;
        let create = seg.flags.syn || has_data;
        let Some(idx) = self.slot(client, server, ts, create, sink) else {
            return;
        };

        if seg.flags.syn {
            let f = &mut self.flows.as_mut()[idx];
            let half = if from_client { &f.c2s } else { &f.s2c };
            let retransmitted = half.started() && half.next_seq() == seg.seq.wrapping_add(1);
            if from_client && !seg.flags.ack && half.started() && !retransmitted {
                // A new connection on the same 4-tuple.
                self.counters.flows_closed += 1;
                self.drop_flow(idx, ts, sink);
                if self.slot(client, server, ts, true, sink) != Some(idx) {
                    return;
                }
            }
            let f = &mut self.flows.as_mut()[idx];
            if !retransmitted {
                if from_client {
                    f.c2s.syn(&mut self.pool, seg.seq);
                    f.handshake = Handshake::Expect;
                } else {
                    f.s2c.syn(&mut self.pool, seg.seq);
                }
            }
        }

        let f = &mut self.flows.as_mut()[idx];
        f.last_seen = ts;
        if has_data || seg.flags.ack {
            self.data(idx, ts, seg, from_client, sink);
        }

        let f = &mut self.flows.as_mut()[idx];
        if seg.flags.fin {
            if from_client {
                f.fin_client = true;
            } else {
                f.fin_server = true;
            }
        }
        let four_letter_done = matches!(f.kind, Kind::FourLetter(_)) && f.fin_server;
        if seg.flags.rst || (f.fin_client && f.fin_server) || four_letter_done {
            self.counters.flows_closed += 1;
            self.drop_flow(idx, ts, sink);
        }
    }

    fn data(
        &mut self,
        idx: usize,
        ts: Instant,
        seg: &TcpSegment<'_>,
        from_client: bool,
        sink: &mut impl FnMut(&Event<'_>),
    ) {
        let flows = self.flows.as_mut();
        let f = &mut flows[idx];
        let counters = &mut self.counters;

        let has_data = seg.wire_len > 0;
        if f.kind == Kind::Unknown && !has_data {
            return;
        }
        if f.kind == Kind::Unknown {
            f.kind = Kind::Frames;
            let at_start = if from_client {
                !f.c2s.started()
                    || (f.c2s.is_synced() && f.c2s.next_seq() == seg.seq && f.c2s.buffered() == 0)
            } else {
                false
            };
            if let Some(word) = seg
                .payload
                .get(..4)
                .filter(|_| at_start)
                .and_then(FourLetterWord::parse)
            {
                f.kind = Kind::FourLetter(word);
                f.handshake = Handshake::Done;
                counters.requests += 1;
                sink(&Event {
                    ts,
                    client: f.client,
                    server: f.server,
                    session: 0,
                    size: seg.wire_len as u32,
                    auth: &[],
                    message: Message::FourLetterWord(word),
                });
                return;
            }
        }
        if let Kind::FourLetter(_) = f.kind {
            if !from_client && has_data {
                f.text_len = f.text_len.saturating_add(seg.wire_len as u32);
                f.s2c.push_raw(&mut self.pool, seg.seq, seg.payload);
            }
            return;
        }

        let Flow {
            client,
            server,
            session,
            handshake,
            auth,
            c2s,
            s2c,
            pending,
            ..
        } = f;
        let (client, server) = (*client, *server);
        let mut ctx = Ctx {
            ts,
            client,
            server,
            session,
            handshake,
            auth,
            pending,
            msgs: MsgCounters {
                requests: &mut counters.requests,
                replies: &mut counters.replies,
                events: &mut counters.events,
                unpaired: &mut counters.unpaired_replies,
                overflow: &mut counters.pending_overflow,
                errors: &mut counters.decode_errors,
            },
        };
        // This segment's ACK speaks for the other direction: a hole it
        // covers reached the peer but not the capture, so it is lost.
        if seg.flags.ack {
            if from_client {
                s2c.acked(
                    &mut self.pool,
                    &self.s2c_framer,
                    seg.ack,
                    &mut counters.stream,
                    &mut counters.frame_errors,
                    &mut |item| ctx.server_frame(item, sink),
                );
            } else {
                c2s.acked(
                    &mut self.pool,
                    &self.c2s_framer,
                    seg.ack,
                    &mut counters.stream,
                    &mut counters.frame_errors,
                    &mut |item| ctx.client_frame(item, sink),
                );
            }
        }
        if !has_data {
            return;
        }
        if from_client {
            c2s.push(
                &mut self.pool,
                &self.c2s_framer,
                seg.seq,
                seg.payload,
                seg.wire_len,
                &mut counters.stream,
                &mut counters.frame_errors,
                &mut |item| ctx.client_frame(item, sink),
            );
        } else {
            s2c.push(
                &mut self.pool,
                &self.s2c_framer,
                seg.seq,
                seg.payload,
                seg.wire_len,
                &mut counters.stream,
                &mut counters.frame_errors,
                &mut |item| ctx.server_frame(item, sink),
            );
        }
    }
}

struct MsgCounters<'c> {
    requests: &'c mut u64,
    replies: &'c mut u64,
    events: &'c mut u64,
    unpaired: &'c mut u64,
    overflow: &'c mut u64,
    errors: &'c mut ErrorCounts,
}

/// What decoding one frame of a flow needs.
struct Ctx<'c> {
    ts: Instant,
    client: SocketAddr,
    server: SocketAddr,
    session: &'c mut i64,
    handshake: &'c mut Handshake,
    auth: &'c mut AuthId,
    pending: &'c mut PendingTable,
    msgs: MsgCounters<'c>,
}

impl Ctx<'_> {
    fn emit(&self, size: usize, message: Message<'_>, sink: &mut impl FnMut(&Event<'_>)) {
        sink(&Event {
            ts: self.ts,
            client: self.client,
            server: self.server,
            session: *self.session,
            size: size as u32,
            auth: self.auth.as_bytes(),
            message,
        });
    }

    fn malformed(
        &mut self,
        error: Error,
        from_client: bool,
        size: usize,
        sink: &mut impl FnMut(&Event<'_>),
    ) {
        self.msgs.errors.add(error);
        self.emit(size, Message::Malformed { error, from_client }, sink);
    }

    fn remember(&mut self, xid: i32, opcode: OpCode, path: Option<&str>) {
        let p = Pending {
            ts: self.ts,
            path_hash: path.map_or(0, client::path_hash),
            xid,
            opcode: Some(opcode),
        };
        if !self.pending.push(p) {
            *self.msgs.overflow += 1;
        }
    }

    fn pair(&mut self, xid: i32) -> Option<Pairing> {
        let found = self.pending.take(xid).and_then(|p| {
            p.opcode.map(|opcode| Pairing {
                opcode,
                path_hash: p.path_hash,
                // A reply stamped before its request (merged captures,
                // `-i any`) has no meaningful latency.
                latency: (self.ts >= p.ts).then(|| self.ts - p.ts),
            })
        });
        if found.is_none() {
            *self.msgs.unpaired += 1;
            return client::special_xid_opcode(xid).map(|opcode| Pairing {
                opcode,
                path_hash: 0,
                latency: None,
            });
        }
        found
    }

    fn client_frame(&mut self, item: Item<'_>, sink: &mut impl FnMut(&Event<'_>)) {
        let (frame, size, whole) = match item {
            Item::Frame(f) => (f, f.len(), true),
            Item::Partial { prefix, total_len } => (prefix, total_len, false),
        };
        let body = &frame[4.min(frame.len())..];
        let connect = match *self.handshake {
            Handshake::Expect => true,
            Handshake::Requested => false,
            Handshake::Done => self.pending.len == 0 && client::looks_like_connect_request(body),
        };
        if connect {
            match ConnectRequest::parse(body) {
                Ok(req) => {
                    *self.handshake = Handshake::Requested;
                    if req.session_id != 0 {
                        *self.session = req.session_id;
                    }
                    *self.msgs.requests += 1;
                    self.emit(size, Message::ConnectRequest(req), sink);
                }
                Err(e) => {
                    *self.handshake = Handshake::Done;
                    self.malformed(e, true, size, sink);
                }
            }
            return;
        }
        if whole {
            match Request::parse(body) {
                Ok(req) => {
                    *self.msgs.requests += 1;
                    if let client::RequestBody::SetAuth {
                        scheme, credential, ..
                    } = req.body
                    {
                        self.auth.set(scheme, credential);
                    }
                    self.remember(req.xid, req.opcode, req.path());
                    self.emit(size, Message::Request(req), sink);
                }
                Err(e) => self.malformed(e, true, size, sink),
            }
        } else {
            match client::parse_request_prefix(body) {
                Ok(req) => {
                    *self.msgs.requests += 1;
                    self.remember(req.xid, req.opcode, req.path);
                    self.emit(size, Message::RequestPrefix(req), sink);
                }
                Err(e) => self.malformed(e, true, size, sink),
            }
        }
    }

    fn server_frame(&mut self, item: Item<'_>, sink: &mut impl FnMut(&Event<'_>)) {
        let (frame, size, whole) = match item {
            Item::Frame(f) => (f, f.len(), true),
            Item::Partial { prefix, total_len } => (prefix, total_len, false),
        };
        let body = &frame[4.min(frame.len())..];
        let connect = match *self.handshake {
            Handshake::Requested => true,
            Handshake::Expect => false,
            Handshake::Done => self.pending.len == 0 && client::looks_like_connect_response(body),
        };
        if connect {
            *self.handshake = Handshake::Done;
            match ConnectResponse::parse(body) {
                Ok(resp) => {
                    *self.session = resp.session_id;
                    *self.msgs.replies += 1;
                    self.emit(size, Message::ConnectResponse(resp), sink);
                }
                Err(e) => self.malformed(e, false, size, sink),
            }
            return;
        }
        let header = match client::parse_reply_header(body) {
            Ok(h) => h,
            Err(e) => return self.malformed(e, false, size, sink),
        };
        if header.xid == client::XID_WATCH_EVENT {
            match WatchEvent::parse(body) {
                Ok(ev) => {
                    *self.msgs.events += 1;
                    self.emit(size, Message::WatchEvent(ev), sink);
                }
                Err(e) => self.malformed(e, false, size, sink),
            }
            return;
        }
        *self.msgs.replies += 1;
        let pairing = self.pair(header.xid);
        let message = match pairing {
            Some(p) if whole => match Reply::parse(body, p.opcode) {
                Ok(reply) => Message::Reply(reply, p),
                Err(e) => {
                    self.msgs.errors.add(e);
                    Message::ReplyHeader(header, Some(p))
                }
            },
            _ => Message::ReplyHeader(header, pairing),
        };
        self.emit(size, message, sink);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::client::test_enc::Enc;
    use crate::packet::TcpFlags;
    use std::format;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    const CLIENT: &str = "10.0.0.1:40000";
    const SERVER: &str = "10.0.0.2:2181";

    /// One side of a synthetic connection: tracks its own sequence number.
    struct Conn {
        client: SocketAddr,
        server: SocketAddr,
        cseq: u32,
        sseq: u32,
    }

    fn framed(body: Vec<u8>) -> Vec<u8> {
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend(body);
        f
    }

    fn seg<'a>(
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        flags: TcpFlags,
        payload: &'a [u8],
    ) -> TcpSegment<'a> {
        TcpSegment {
            src,
            dst,
            seq,
            ack: 0,
            flags,
            window: 0,
            payload,
            wire_len: payload.len(),
        }
    }

    const DATA: TcpFlags = TcpFlags {
        syn: false,
        ack: true,
        fin: false,
        rst: false,
        psh: true,
    };

    struct Rig {
        t: Tracker<Vec<Flow>, Vec<u8>>,
        log: Vec<String>,
        now: i64,
    }

    fn describe(ev: &Event<'_>) -> String {
        match &ev.message {
            Message::ConnectRequest(c) => format!("ConnectRequest session={:x}", c.session_id),
            Message::ConnectResponse(c) => format!("ConnectResponse session={:x}", c.session_id),
            Message::Request(r) => {
                format!("{} {}", r.opcode.request_name(), r.path().unwrap_or("-"))
            }
            Message::RequestPrefix(r) => format!("{} prefix", r.opcode.request_name()),
            Message::Reply(r, p) => format!(
                "{} xid={} latency={:?}",
                p.opcode.reply_name(),
                r.header.xid,
                p.latency.map(|d| d.total_micros())
            ),
            Message::ReplyHeader(h, p) => {
                format!("ReplyHeader xid={} paired={}", h.xid, p.is_some())
            }
            Message::WatchEvent(w) => format!("WatchEvent {} {}", w.event_type.name(), w.path),
            Message::FourLetterWord(w) => format!("4lw {}", w.as_str()),
            Message::FourLetterReply(w, t) => {
                format!(
                    "4lw-reply {} {} size={}",
                    w.as_str(),
                    String::from_utf8_lossy(t),
                    ev.size
                )
            }
            Message::Malformed { error, .. } => format!("Malformed {}", error.name()),
        }
    }

    impl Rig {
        fn new(flows: usize) -> Self {
            Rig {
                t: Tracker::new(
                    vec![Flow::EMPTY; flows],
                    vec![0u8; 4096 * 16],
                    4096,
                    Config::default(),
                ),
                log: Vec::new(),
                now: 1_000_000,
            }
        }
        fn feed(&mut self, s: &TcpSegment<'_>) {
            self.now += 100;
            let log = &mut self.log;
            self.t
                .process(Instant::from_micros(self.now), s, &mut |ev| {
                    log.push(describe(ev))
                });
        }
        fn open(&mut self, client: &str, with_syn: bool) -> Conn {
            let c = Conn {
                client: client.parse().unwrap(),
                server: SERVER.parse().unwrap(),
                cseq: 1000,
                sseq: 5000,
            };
            if with_syn {
                let syn = TcpFlags {
                    syn: true,
                    ack: false,
                    fin: false,
                    rst: false,
                    psh: false,
                };
                self.feed(&seg(c.client, c.server, c.cseq - 1, syn, &[]));
                let synack = TcpFlags { ack: true, ..syn };
                self.feed(&seg(c.server, c.client, c.sseq - 1, synack, &[]));
            }
            c
        }
        fn send(&mut self, c: &mut Conn, bytes: &[u8]) {
            let s = seg(c.client, c.server, c.cseq, DATA, bytes);
            self.feed(&s);
            c.cseq = c.cseq.wrapping_add(bytes.len() as u32);
        }
        fn answer(&mut self, c: &mut Conn, bytes: &[u8]) {
            let s = seg(c.server, c.client, c.sseq, DATA, bytes);
            self.feed(&s);
            c.sseq = c.sseq.wrapping_add(bytes.len() as u32);
        }
        fn fin(&mut self, c: &mut Conn, from_client: bool) {
            let f = TcpFlags { fin: true, ..DATA };
            let s = if from_client {
                seg(c.client, c.server, c.cseq, f, &[])
            } else {
                seg(c.server, c.client, c.sseq, f, &[])
            };
            self.feed(&s);
        }
    }

    fn connect_request(session: i64) -> Vec<u8> {
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
    }
    fn connect_response(session: i64) -> Vec<u8> {
        framed(
            Enc::new()
                .i32(0)
                .i32(30000)
                .i64(session)
                .buf(&[7u8; 16])
                .bool(false)
                .done(),
        )
    }
    fn get_data(xid: i32, path: &str) -> Vec<u8> {
        framed(Enc::new().req(xid, 4).s(path).bool(true).done())
    }
    fn get_data_reply(xid: i32, data: &[u8]) -> Vec<u8> {
        framed(
            Enc::new()
                .rep(xid, 7, 0)
                .buf(data)
                .stat(&crate::client::test_enc::sample_stat())
                .done(),
        )
    }
    fn error_reply(xid: i32, err: i32) -> Vec<u8> {
        framed(Enc::new().rep(xid, 7, err).done())
    }

    #[test]
    fn handshake_then_requests_pair_with_replies_and_measure_latency() {
        let mut r = Rig::new(64);
        let mut c = r.open(CLIENT, true);
        r.send(&mut c, &connect_request(0));
        r.answer(&mut c, &connect_response(0x1234));
        r.send(&mut c, &get_data(1, "/a"));
        r.send(&mut c, &get_data(2, "/b"));
        r.answer(&mut c, &get_data_reply(1, b"hello"));
        r.answer(&mut c, &error_reply(2, -101));
        assert_eq!(
            r.log,
            [
                "ConnectRequest session=0",
                "ConnectResponse session=1234",
                "GetDataRequest /a",
                "GetDataRequest /b",
                "GetDataReply xid=1 latency=Some(200)",
                "GetDataReply xid=2 latency=Some(200)",
            ]
        );
        assert_eq!(r.t.counters.requests, 3);
        assert_eq!(r.t.counters.replies, 3);
        assert_eq!(r.t.counters.unpaired_replies, 0);
    }

    #[test]
    fn pipelined_requests_in_one_segment_and_replies_in_another() {
        let mut r = Rig::new(64);
        let mut c = r.open(CLIENT, true);
        r.send(&mut c, &connect_request(0));
        r.answer(&mut c, &connect_response(9));
        let reqs: Vec<u8> = (1..=200).flat_map(|x| get_data(x, "/p")).collect();
        let reps: Vec<u8> = (1..=200).flat_map(|x| get_data_reply(x, b"v")).collect();
        r.send(&mut c, &reqs);
        r.answer(&mut c, &reps);
        let replies = r
            .log
            .iter()
            .filter(|l| l.starts_with("GetDataReply"))
            .count();
        assert_eq!(replies, 200);
        assert_eq!(r.t.counters.unpaired_replies, 0);
    }

    #[test]
    fn pending_overflow_is_counted_and_later_replies_still_pair() {
        let mut r = Rig::new(64);
        let mut c = r.open(CLIENT, false);
        let n = MAX_PENDING as i32 + 10;
        for x in 1..=n {
            r.send(&mut c, &get_data(x, "/o"));
        }
        for x in 1..=n {
            r.answer(&mut c, &get_data_reply(x, b""));
        }
        assert_eq!(r.t.counters.pending_overflow, 10);
        assert_eq!(r.t.counters.unpaired_replies, 10);
        let paired = r
            .log
            .iter()
            .filter(|l| l.starts_with("GetDataReply"))
            .count();
        assert_eq!(paired, MAX_PENDING);
    }

    #[test]
    fn watch_events_and_pings_are_recognised_by_xid() {
        let mut r = Rig::new(64);
        let mut c = r.open(CLIENT, false);
        r.send(&mut c, &framed(Enc::new().req(-2, 11).done()));
        let ev = framed(Enc::new().rep(-1, -1, 0).i32(3).i32(3).s("/w").done());
        r.answer(&mut c, &ev);
        r.answer(&mut c, &error_reply(-2, 0));
        // A ping reply whose request was not seen still gets its type.
        r.answer(&mut c, &error_reply(-2, 0));
        assert_eq!(
            r.log,
            [
                "PingRequest -",
                "WatchEvent NodeDataChanged /w",
                "PingReply xid=-2 latency=Some(200)",
                "PingReply xid=-2 latency=None",
            ]
        );
    }

    #[test]
    fn four_letter_word_connection_reports_the_text_answer_on_close() {
        let mut r = Rig::new(64);
        let mut c = r.open(CLIENT, true);
        r.send(&mut c, b"ruok");
        r.answer(&mut c, b"im");
        r.answer(&mut c, b"ok");
        r.fin(&mut c, false);
        assert_eq!(r.log, ["4lw ruok", "4lw-reply ruok imok size=4"]);
        assert_eq!(r.t.active_flows(), 0);
        assert_eq!(r.t.chunks_in_use().0, 0);
        assert_eq!(r.t.counters.stream.truncated_at_close, 0);
        assert_eq!(r.t.counters.stream.bytes_skipped, 0);
    }

    #[test]
    fn capture_starting_mid_connection_decodes_from_the_next_frame() {
        let mut r = Rig::new(64);
        let mut c = r.open(CLIENT, false);
        let a = get_data(5, "/first");
        let b = get_data(6, "/second");
        // The capture starts 3 bytes into frame a.
        let mut stream = a[3..].to_vec();
        stream.extend_from_slice(&b);
        r.send(&mut c, &stream);
        r.answer(&mut c, &get_data_reply(5, b"x"));
        r.answer(&mut c, &get_data_reply(6, b"y"));
        assert_eq!(
            r.log,
            [
                "GetDataRequest /second",
                "ReplyHeader xid=5 paired=false",
                "GetDataReply xid=6 latency=Some(200)",
            ]
        );
    }

    #[test]
    fn reconnect_carries_the_session_id() {
        let mut r = Rig::new(64);
        let mut c = r.open(CLIENT, true);
        r.send(&mut c, &connect_request(0x77));
        r.answer(&mut c, &connect_response(0x77));
        assert_eq!(
            r.log,
            ["ConnectRequest session=77", "ConnectResponse session=77"]
        );
    }

    #[test]
    fn closed_flows_free_their_slot_and_full_buckets_evict_the_coldest() {
        let mut r = Rig::new(8); // one bucket of 8 ways
        for port in 0..20u16 {
            let mut c = r.open(&format!("10.0.0.9:{}", 30000 + port), false);
            r.send(&mut c, &get_data(1, "/e"));
        }
        assert_eq!(r.t.active_flows(), 8);
        assert_eq!(r.t.counters.flows_evicted, 12);
        let mut c = r.open("10.0.0.9:30019", false);
        c.cseq += get_data(1, "/e").len() as u32;
        r.fin(&mut c, true);
        r.fin(&mut c, false);
        assert_eq!(r.t.active_flows(), 7);
        assert_eq!(r.t.counters.flows_closed, 1);
    }

    #[test]
    fn idle_flows_expire_and_return_their_chunks() {
        let mut r = Rig::new(64);
        let mut c = r.open(CLIENT, true);
        let big = get_data(1, "/partial");
        r.send(&mut c, &big[..6]);
        assert_eq!(r.t.chunks_in_use().0, 1);
        r.now += 3600 * 1_000_000;
        let mut other = r.open("10.0.0.3:1", false);
        r.send(&mut other, &get_data(1, "/x"));
        assert_eq!(r.t.counters.flows_expired, 1);
        assert_eq!(r.t.chunks_in_use().0, 0);
        assert_eq!(r.t.counters.stream.truncated_at_close, 1);
    }

    #[test]
    fn a_hole_the_server_acknowledged_is_lost_at_once_and_later_frames_decode() {
        let mut r = Rig::new(64);
        let mut c = r.open(CLIENT, false);
        let (a, b, d) = (get_data(1, "/a"), get_data(2, "/b"), get_data(3, "/d"));
        r.send(&mut c, &a);
        // b never reaches the capture, d does (held out of order) ...
        let b_seq = c.cseq;
        c.cseq += b.len() as u32;
        r.send(&mut c, &d);
        assert_eq!(r.log.len(), 1);
        // ... and the server's ACK covers b: no need to wait for the close.
        let ack = TcpSegment {
            ack: b_seq + b.len() as u32 + d.len() as u32,
            ..seg(c.server, c.client, c.sseq, DATA, &[])
        };
        r.feed(&ack);
        assert_eq!(r.log, ["GetDataRequest /a", "GetDataRequest /d"]);
        assert_eq!(r.t.counters.stream.gaps, 1);
    }

    #[test]
    fn oversize_reply_still_yields_its_header_and_pairs() {
        let mut r = Rig::new(64);
        let mut c = r.open(CLIENT, false);
        r.send(&mut c, &get_data(3, "/big"));
        let reply = get_data_reply(3, &vec![b'z'; 20_000]);
        for piece in reply.chunks(1448) {
            r.answer(&mut c, piece);
        }
        r.send(&mut c, &get_data(4, "/small"));
        r.answer(&mut c, &get_data_reply(4, b"s"));
        assert_eq!(
            r.log,
            [
                "GetDataRequest /big",
                "ReplyHeader xid=3 paired=true",
                "GetDataRequest /small",
                "GetDataReply xid=4 latency=Some(100)",
            ]
        );
        assert_eq!(r.t.counters.stream.oversize, 1);
    }

    #[test]
    fn set_auth_gives_later_events_the_identity_without_the_secret() {
        let mut r = Rig::new(64);
        let mut c = r.open(CLIENT, true);
        let mut auths: Vec<Vec<u8>> = Vec::new();
        let mut feed = |r: &mut Rig, s: &TcpSegment<'_>| {
            r.now += 100;
            r.t.process(Instant::from_micros(r.now), s, &mut |ev| {
                auths.push(ev.auth.to_vec())
            });
        };
        let auth = framed(
            Enc::new()
                .req(-4, 100)
                .i32(0)
                .s("digest")
                .buf(b"alice:s3cret")
                .done(),
        );
        let get = get_data(1, "/a");
        feed(&mut r, &seg(c.client, c.server, c.cseq, DATA, &get));
        c.cseq += get.len() as u32;
        feed(&mut r, &seg(c.client, c.server, c.cseq, DATA, &auth));
        c.cseq += auth.len() as u32;
        let get2 = get_data(2, "/a");
        feed(&mut r, &seg(c.client, c.server, c.cseq, DATA, &get2));
        assert_eq!(auths, [&b""[..], b"digest:alice", b"digest:alice"]);

        // Other schemes keep only the scheme; a long user is cut.
        let mut id = AuthId::NONE;
        id.set("ip", b"10.0.0.1");
        assert_eq!(id.as_bytes(), b"ip");
        let long = [b'u'; 100];
        id.set("digest", &long);
        assert_eq!(id.as_bytes().len(), MAX_AUTH_ID);
        // A cut never splits a UTF-8 character.
        let mut multi = std::vec![b':'];
        multi.extend("é".repeat(60).as_bytes());
        id.set("digest", &multi[1..]);
        assert!(core::str::from_utf8(id.as_bytes()).is_ok());
    }

    #[test]
    fn garbage_and_lying_lengths_are_counted_and_decoding_resumes() {
        let mut r = Rig::new(64);
        let mut c = r.open(CLIENT, true);
        r.send(&mut c, &connect_request(0));
        let mut junk = 0x7fff_0000u32.to_be_bytes().to_vec();
        junk.extend_from_slice(&[0xEE; 40]);
        r.send(&mut c, &junk);
        r.send(&mut c, &get_data(1, "/after"));
        assert_eq!(r.log.last().unwrap(), "GetDataRequest /after");
        assert!(r.t.counters.errors(Error::OverLimit) >= 1);
    }
}
