//! Per-connection state for the election (FLE) and quorum (ZAB) protocols.
//!
//! A [`QuorumTracker`] takes TCP segments, keeps one [`Link`] per
//! connection in a fixed-capacity, set-associative table keyed by the
//! 4-tuple (the same scheme as [`crate::flow::Tracker`]), reassembles each
//! direction ([`crate::stream`]) with the protocol's framer
//! ([`crate::fle::FleFramer`], [`crate::zab::ZabFramer`]), decodes the
//! frames and hands out [`QuorumEvent`]s.
//!
//! Which server sent what: election messages carry no sender id, and quorum
//! packets name their sender only in `FOLLOWERINFO`/`OBSERVERINFO`. The
//! tracker therefore keeps a small table of peers ([`Peers`]) learnt from
//! the initial messages of election connections (a server id and its
//! election address), from the dynamic config in version-2 notifications
//! and `NEWLEADER` (every server's quorum and election address) and from
//! `FOLLOWERINFO`; each event carries the server ids of both ends when they
//! are known.
//!
//! Connections are told apart by port: the acceptor of an election
//! connection listens on an election port, a leader on a quorum port. With
//! [`Config::learn_ports`] the tracker also adds the ports it finds in
//! dynamic configs and recognises connections on unknown ports by their
//! first bytes (an election initial message, a `FOLLOWERINFO`), for
//! ensembles on non-standard ports.
//!
//! Everything is bounded: links by the caller's table (the coldest link of a
//! full bucket is evicted, idle links expire), peers by [`MAX_PEERS`], ports
//! by [`MAX_PORTS`], reassembly memory by the chunk pool, and a snapshot
//! after `SNAP` is passed over in pieces.

use crate::ErrorCounts;
use crate::zab::PacketCounts;
use core::net::{IpAddr, SocketAddr};

use smoltcp::time::{Duration, Instant};

use crate::Error;
use crate::conntable::{self, Lookup};
use crate::fle::{DynamicConfig, FleFramer, FleMessage, InitialMessage, Notification};
use crate::packet::TcpSegment;
use crate::stream::{ChunkPool, HalfStream, Item, LengthPrefixed, StreamCounters};
use crate::zab::{PacketType, Payload, QuorumPacket, SNAPSHOT_SIGNATURE, ZabFramer, ZabMode};

/// Election or quorum ports a tracker can be told about (each).
pub const MAX_PORTS: usize = 16;

pub use crate::conntable::WAYS;

/// Servers the peer table remembers.
pub const MAX_PEERS: usize = 32;

/// The two server-to-server protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Proto {
    /// Fast Leader Election (default port 3888).
    Election,
    /// ZAB, leader to learners (default port 2888).
    Quorum,
}

impl Proto {
    /// `fle` or `zab`.
    pub const fn name(self) -> &'static str {
        match self {
            Proto::Election => "fle",
            Proto::Quorum => "zab",
        }
    }
}

/// How a [`QuorumTracker`] is set up.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    zab_ports: [u16; MAX_PORTS],
    n_zab: usize,
    fle_ports: [u16; MAX_PORTS],
    n_fle: usize,
    /// Largest quorum-packet data / election message accepted.
    pub max_packet_len: u32,
    /// A link with no segment for this long is forgotten.
    pub idle_timeout: Duration,
    /// Add ports from dynamic configs and from connections that open like
    /// election or quorum connections (omni mode).
    pub learn_ports: bool,
}

impl Default for Config {
    fn default() -> Self {
        let mut c = Config::without_ports();
        c.add_zab_port(2888);
        c.add_fle_port(3888);
        c
    }
}

fn add_port(ports: &mut [u16; MAX_PORTS], n: &mut usize, port: u16) -> bool {
    if ports[..*n].contains(&port) {
        return true;
    }
    if *n == MAX_PORTS {
        return false;
    }
    ports[*n] = port;
    *n += 1;
    true
}

impl Config {
    /// A configuration with no port yet.
    pub const fn without_ports() -> Self {
        Config {
            zab_ports: [0; MAX_PORTS],
            n_zab: 0,
            fle_ports: [0; MAX_PORTS],
            n_fle: 0,
            max_packet_len: LengthPrefixed::DEFAULT_MAX_LEN,
            idle_timeout: Duration::from_secs(600),
            learn_ports: false,
        }
    }

    /// Adds a quorum (leader) port; false if [`MAX_PORTS`] are set already.
    pub fn add_zab_port(&mut self, port: u16) -> bool {
        add_port(&mut self.zab_ports, &mut self.n_zab, port)
    }

    /// Adds an election port; false if [`MAX_PORTS`] are set already.
    pub fn add_fle_port(&mut self, port: u16) -> bool {
        add_port(&mut self.fle_ports, &mut self.n_fle, port)
    }

    /// The quorum ports.
    pub fn zab_ports(&self) -> &[u16] {
        &self.zab_ports[..self.n_zab]
    }

    /// The election ports.
    pub fn fle_ports(&self) -> &[u16] {
        &self.fle_ports[..self.n_fle]
    }

    /// The protocol served on `port`, if it is a configured port.
    pub fn proto_of(&self, port: u16) -> Option<Proto> {
        if self.fle_ports().contains(&port) {
            Some(Proto::Election)
        } else if self.zab_ports().contains(&port) {
            Some(Proto::Quorum)
        } else {
            None
        }
    }
}

/// Where a server listens: an IP (`None` when the config names a host)
/// and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Endpoint {
    /// The address, when it is known as an IP.
    pub ip: Option<IpAddr>,
    /// The port.
    pub port: u16,
}

impl Endpoint {
    fn matches(&self, a: &SocketAddr) -> Option<bool> {
        if self.port != a.port() {
            return None;
        }
        match self.ip {
            Some(ip) if ip == a.ip() => Some(true),
            Some(_) => None,
            None => Some(false),
        }
    }
}

/// A server the tracker knows of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Peer {
    /// The server id.
    pub sid: i64,
    /// Its election address.
    pub election: Option<Endpoint>,
    /// Its quorum address (where it listens when leading).
    pub quorum: Option<Endpoint>,
    /// The source IP of the connections it opened (initial message,
    /// FOLLOWERINFO), used to name connections whose first message was
    /// not captured.
    pub seen_ip: Option<IpAddr>,
    /// A participant (voter) per the last config seen; true when unknown.
    pub participant: bool,
}

/// The servers learnt from the traffic, at most [`MAX_PEERS`].
#[derive(Debug, Clone)]
pub struct Peers {
    peers: [Peer; MAX_PEERS],
    len: usize,
    /// Number of voting members in the last dynamic config seen (0: none seen).
    pub config_participants: usize,
    /// Version of the last dynamic config seen.
    pub config_version: Option<u64>,
    /// Peers not remembered because the table was full.
    pub overflow: u64,
}

const NO_PEER: Peer = Peer {
    sid: -1,
    election: None,
    quorum: None,
    seen_ip: None,
    participant: true,
};

impl Default for Peers {
    fn default() -> Self {
        Peers::new()
    }
}

impl Peers {
    /// An empty table.
    pub const fn new() -> Self {
        Peers {
            peers: [NO_PEER; MAX_PEERS],
            len: 0,
            config_participants: 0,
            config_version: None,
            overflow: 0,
        }
    }

    /// The known servers, in the order they were learnt.
    pub fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.peers[..self.len].iter()
    }

    /// Number of known servers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no server is known.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The peer with this id.
    pub fn get(&self, sid: i64) -> Option<&Peer> {
        self.peers[..self.len].iter().find(|p| p.sid == sid)
    }

    /// The entry for `sid`, created if there is room.
    pub fn entry(&mut self, sid: i64) -> Option<&mut Peer> {
        if let Some(i) = self.peers[..self.len].iter().position(|p| p.sid == sid) {
            return Some(&mut self.peers[i]);
        }
        if self.len == MAX_PEERS {
            self.overflow += 1;
            return None;
        }
        self.peers[self.len] = Peer { sid, ..NO_PEER };
        self.len += 1;
        Some(&mut self.peers[self.len - 1])
    }

    /// Voting members: from the last config when one was seen, else every
    /// known server.
    pub fn ensemble_size(&self) -> usize {
        if self.config_participants > 0 {
            self.config_participants
        } else {
            self.len
        }
    }

    /// Learns every server of a dynamic config.
    pub fn learn_config(&mut self, c: &DynamicConfig<'_>) {
        self.config_participants = c.participants();
        self.config_version = c.version();
        for s in c.servers() {
            let ip = s.ip();
            let participant = s.role == crate::fle::Role::Participant;
            if let Some(p) = self.entry(s.id as i64) {
                // A host name in the config keeps an IP already seen for
                // the same port.
                let keep = |old: Option<Endpoint>, port: u16| Endpoint {
                    ip: ip.or(old.filter(|e| e.port == port).and_then(|e| e.ip)),
                    port,
                };
                p.election = Some(keep(p.election, s.election_port));
                p.quorum = Some(keep(p.quorum, s.quorum_port));
                p.participant = participant;
            }
        }
    }

    /// The server listening at `a` for `proto` (an exact IP match first,
    /// then a match by port against a config that named a host).
    pub fn sid_at(&self, a: &SocketAddr, proto: Proto) -> Option<i64> {
        let mut by_port = None;
        for p in &self.peers[..self.len] {
            let ep = match proto {
                Proto::Election => p.election,
                Proto::Quorum => p.quorum,
            };
            match ep.and_then(|e| e.matches(a)) {
                Some(true) => return Some(p.sid),
                Some(false) if by_port.is_none() => by_port = Some(p.sid),
                _ => {}
            }
        }
        by_port
    }

    /// The one server that connects from `ip`: the one seen doing so, else
    /// the one configured at that address. Configured addresses are not
    /// used once a server was seen connecting from another address than
    /// its own (servers sharing a host, which may all connect from
    /// 127.0.0.1).
    pub fn sid_by_ip(&self, ip: IpAddr) -> Option<i64> {
        let unique = |uses: &dyn Fn(&Peer) -> bool| {
            let mut found = None;
            for p in &self.peers[..self.len] {
                if uses(p) {
                    if found.is_some() {
                        return Err(());
                    }
                    found = Some(p.sid);
                }
            }
            Ok(found)
        };
        match unique(&|p| p.seen_ip == Some(ip)) {
            Ok(Some(s)) => return Some(s),
            Err(()) => return None,
            Ok(None) => {}
        }
        let own = |p: &Peer| {
            [p.election, p.quorum]
                .iter()
                .flatten()
                .filter_map(|e| e.ip)
                .any(|i| Some(i) == p.seen_ip)
        };
        let shared_host = self.peers[..self.len]
            .iter()
            .any(|p| p.seen_ip.is_some() && !own(p));
        if shared_host {
            return None;
        }
        unique(&|p| {
            p.election.and_then(|e| e.ip) == Some(ip) || p.quorum.and_then(|e| e.ip) == Some(ip)
        })
        .ok()
        .flatten()
    }
}

/// A quorum packet with its decoded data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZabPacket<'a> {
    /// The packet (a prefix when `truncated`).
    pub packet: QuorumPacket<'a>,
    /// Its data decoded for its type, or why that failed.
    pub payload: Result<Payload<'a>, Error>,
    /// Only the first bytes were seen (larger than a chunk, or damaged).
    pub truncated: bool,
}

/// One decoded message between servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumMessage<'a> {
    /// The first message of an election connection.
    Initial(InitialMessage<'a>),
    /// A vote notification.
    Notification(Notification<'a>),
    /// A quorum packet.
    Packet(ZabPacket<'a>),
    /// The snapshot that followed a SNAP ended (its signature was seen).
    Snapshot {
        /// Bytes of the snapshot, signature included.
        bytes: u64,
    },
    /// A complete frame that did not decode.
    Malformed {
        /// Why it did not decode.
        error: Error,
    },
}

impl QuorumMessage<'_> {
    /// The message's name: `Initial`, `Notification`, the packet type's
    /// upper-case name (`PROPOSAL`, ...), `SNAPSHOT` or `Malformed`.
    pub fn name(&self) -> &'static str {
        match self {
            QuorumMessage::Initial(_) => "Initial",
            QuorumMessage::Notification(_) => "Notification",
            QuorumMessage::Packet(p) => p.packet.packet_type.name(),
            QuorumMessage::Snapshot { .. } => "SNAPSHOT",
            QuorumMessage::Malformed { .. } => "Malformed",
        }
    }
}

/// A decoded message with where, when and between whom it was seen.
#[derive(Debug, Clone, Copy)]
pub struct QuorumEvent<'a> {
    /// Capture timestamp of the segment that completed the frame.
    pub ts: Instant,
    /// Election or quorum.
    pub proto: Proto,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sent by the side that opened the connection (for ZAB: the learner).
    pub from_initiator: bool,
    /// The sender's server id, when known.
    pub src_sid: Option<i64>,
    /// The receiver's server id, when known.
    pub dst_sid: Option<i64>,
    /// Frame length on the wire (with the length prefix for FLE).
    pub size: u32,
    /// What was said.
    pub message: QuorumMessage<'a>,
}

impl QuorumEvent<'_> {
    /// The connection's initiator (for ZAB: the learner).
    pub fn initiator(&self) -> SocketAddr {
        if self.from_initiator {
            self.src
        } else {
            self.dst
        }
    }

    /// The connection's acceptor (for ZAB: the leader).
    pub fn acceptor(&self) -> SocketAddr {
        if self.from_initiator {
            self.dst
        } else {
            self.src
        }
    }

    /// The initiator's server id, when known.
    pub fn initiator_sid(&self) -> Option<i64> {
        if self.from_initiator {
            self.src_sid
        } else {
            self.dst_sid
        }
    }

    /// The acceptor's server id, when known.
    pub fn acceptor_sid(&self) -> Option<i64> {
        if self.from_initiator {
            self.dst_sid
        } else {
            self.src_sid
        }
    }
}

/// Counters over everything a tracker saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// TCP segments handed to [`QuorumTracker::process`].
    pub segments: u64,
    /// Segments on no election or quorum port.
    pub foreign: u64,
    /// Links created.
    pub links_created: u64,
    /// Links closed by FIN/RST.
    pub links_closed: u64,
    /// Links forgotten after the idle timeout.
    pub links_expired: u64,
    /// Links evicted from a full bucket.
    pub links_evicted: u64,
    /// Election initial messages decoded.
    pub initial_messages: u64,
    /// Notifications decoded.
    pub notifications: u64,
    /// Quorum packets decoded, by [`PacketType::index`].
    pub packets: PacketCounts,
    /// Quorum packets seen only by their first bytes.
    pub truncated_packets: u64,
    /// Snapshots passed over after SNAP.
    pub snapshots: u64,
    /// Their bytes.
    pub snapshot_bytes: u64,
    /// Framing errors (impossible headers), by [`Error::index`].
    pub frame_errors: ErrorCounts,
    /// Frames or packet data that did not decode, by [`Error::index`].
    pub decode_errors: ErrorCounts,
    /// Ports learnt (with [`Config::learn_ports`]).
    pub ports_learnt: u64,
    /// Ports not added because the port list was full.
    pub ports_overflow: u64,
    /// Reassembly counters (snapshot pieces count as frames).
    pub stream: StreamCounters,
}

impl Counters {
    /// Quorum packets decoded, all types.
    pub fn packets_total(&self) -> u64 {
        self.packets.total()
    }

    /// Framing and decoding errors of one kind.
    pub fn errors(&self, kind: Error) -> u64 {
        self.frame_errors.get(kind) + self.decode_errors.get(kind)
    }
}

/// State of one election or quorum connection. Slots of a tracker's table.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    initiator: SocketAddr,
    acceptor: SocketAddr,
    proto: Proto,
    used: bool,
    last_seen: Instant,
    fin_i: bool,
    fin_a: bool,
    i2a: HalfStream,
    a2i: HalfStream,
    /// Server ids of the two ends (-1: unknown).
    i_sid: i64,
    a_sid: i64,
    /// The acceptor-to-initiator direction is inside a snapshot.
    snapshot: bool,
    snapshot_bytes: u64,
}

const UNSPECIFIED: SocketAddr = SocketAddr::V4(core::net::SocketAddrV4::new(
    core::net::Ipv4Addr::UNSPECIFIED,
    0,
));

impl conntable::Entry for Link {
    fn key(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.used.then_some((self.initiator, self.acceptor))
    }
    fn last_seen(&self) -> Instant {
        self.last_seen
    }
}

impl Link {
    /// An empty slot: fill a table with it.
    pub const EMPTY: Link = Link {
        initiator: UNSPECIFIED,
        acceptor: UNSPECIFIED,
        proto: Proto::Election,
        used: false,
        last_seen: Instant::ZERO,
        fin_i: false,
        fin_a: false,
        i2a: HalfStream::new(),
        a2i: HalfStream::new(),
        i_sid: -1,
        a_sid: -1,
        snapshot: false,
        snapshot_bytes: 0,
    };

    fn reset(&mut self, proto: Proto, initiator: SocketAddr, acceptor: SocketAddr, now: Instant) {
        *self = Link {
            initiator,
            acceptor,
            proto,
            used: true,
            last_seen: now,
            ..Link::EMPTY
        };
    }
}

/// Tracks every election and quorum connection seen and decodes them.
///
/// `S` is the link table's storage (`[Link; N]`, `Vec<Link>`, `&mut [Link]`),
/// `B` the reassembly pool's bytes. Neither grows.
pub struct QuorumTracker<S: AsMut<[Link]>, B: AsMut<[u8]>> {
    links: S,
    buckets: usize,
    pool: ChunkPool<B>,
    config: Config,
    last_sweep: Instant,
    active: usize,
    /// The servers learnt so far.
    pub peers: Peers,
    /// Everything counted so far.
    pub counters: Counters,
}

impl<S: AsMut<[Link]>, B: AsMut<[u8]>> QuorumTracker<S, B> {
    /// A tracker over `links` (rounded down to a multiple of [`WAYS`]) with
    /// a reassembly pool of `buffers` cut into `chunk_size`-byte chunks.
    pub fn new(mut links: S, buffers: B, chunk_size: usize, config: Config) -> Self {
        let buckets = conntable::buckets(links.as_mut().len());
        QuorumTracker {
            links,
            buckets,
            pool: ChunkPool::new(buffers, chunk_size),
            config,
            last_sweep: Instant::ZERO,
            active: 0,
            peers: Peers::new(),
            counters: Counters::default(),
        }
    }

    /// The configuration in force (ports learnt included).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Links currently tracked.
    pub fn active_links(&self) -> usize {
        self.active
    }

    /// Reassembly chunks lent out now, and in all.
    pub fn chunks_in_use(&self) -> (usize, usize) {
        (self.pool.in_use(), self.pool.capacity())
    }

    fn slot(
        &mut self,
        proto: Proto,
        initiator: SocketAddr,
        acceptor: SocketAddr,
        now: Instant,
        create: bool,
    ) -> Option<usize> {
        let idx = match conntable::lookup(self.links.as_mut(), &initiator, &acceptor)? {
            Lookup::Found(idx) => return Some(idx),
            _ if !create => return None,
            Lookup::Free(idx) => idx,
            Lookup::Evict(idx) => {
                self.counters.links_evicted += 1;
                self.drop_link(idx);
                idx
            }
        };
        self.links.as_mut()[idx].reset(proto, initiator, acceptor, now);
        self.active += 1;
        self.counters.links_created += 1;
        Some(idx)
    }

    fn drop_link(&mut self, idx: usize) {
        let l = &mut self.links.as_mut()[idx];
        if !l.used {
            return;
        }
        l.i2a.close(&mut self.pool, &mut self.counters.stream);
        l.a2i.close(&mut self.pool, &mut self.counters.stream);
        l.used = false;
        self.active -= 1;
    }

    /// Forgets links idle for longer than the configured timeout.
    pub fn expire(&mut self, now: Instant) {
        self.last_sweep = now;
        let timeout = self.config.idle_timeout;
        for idx in 0..self.buckets * WAYS {
            let l = &self.links.as_mut()[idx];
            if l.used && conntable::is_idle(now, l.last_seen, timeout) {
                self.counters.links_expired += 1;
                self.drop_link(idx);
            }
        }
    }

    /// End of input: forgets every link (counting partial frames).
    pub fn finish(&mut self) {
        for idx in 0..self.buckets * WAYS {
            self.drop_link(idx);
        }
    }

    /// Adds a port when learning is on; counts overflow.
    fn learn_port(&mut self, proto: Proto, port: u16) {
        if !self.config.learn_ports || self.config.proto_of(port).is_some() {
            return;
        }
        let ok = match proto {
            Proto::Election => self.config.add_fle_port(port),
            Proto::Quorum => self.config.add_zab_port(port),
        };
        if ok {
            self.counters.ports_learnt += 1;
        } else {
            self.counters.ports_overflow += 1;
        }
    }

    /// With port learning on: does a segment on an unknown port open like
    /// an election or quorum connection?
    fn sniff(&self, seg: &TcpSegment<'_>) -> Option<Proto> {
        let p = seg.payload;
        let fle = FleFramer {
            max_len: self.config.max_packet_len,
        };
        if p.len() >= 20 && p[..4] == [0xff; 4] && crate::stream::Framer::plausible(&fle, p) {
            return Some(Proto::Election);
        }
        let zab = ZabFramer::new(self.config.max_packet_len);
        let t = p
            .get(..4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let info = t == Some(PacketType::FollowerInfo.code())
            || t == Some(PacketType::ObserverInfo.code());
        if info && zab.plausible_packet(p) {
            return Some(Proto::Quorum);
        }
        None
    }

    /// Processes one TCP segment captured at `ts`; decoded messages go to
    /// `sink` in wire order.
    pub fn process(
        &mut self,
        ts: Instant,
        seg: &TcpSegment<'_>,
        sink: &mut impl FnMut(&QuorumEvent<'_>),
    ) {
        self.counters.segments += 1;
        let mut classified = match (
            self.config.proto_of(seg.dst.port()),
            self.config.proto_of(seg.src.port()),
        ) {
            (Some(p), _) => Some((p, seg.src, seg.dst, true)),
            (None, Some(p)) => Some((p, seg.dst, seg.src, false)),
            (None, None) => None,
        };
        if classified.is_none()
            && self.config.learn_ports
            && let Some(p) = self.sniff(seg)
        {
            self.learn_port(p, seg.dst.port());
            if self.config.proto_of(seg.dst.port()) == Some(p) {
                classified = Some((p, seg.src, seg.dst, true));
            }
        }
        let Some((proto, initiator, acceptor, from_i)) = classified else {
            self.counters.foreign += 1;
            return;
        };
        if ts - self.last_sweep > self.config.idle_timeout / 2 && ts > self.last_sweep {
            self.expire(ts);
        }
        let has_data = seg.wire_len > 0;
        let create = seg.flags.syn || has_data;
        let Some(idx) = self.slot(proto, initiator, acceptor, ts, create) else {
            return;
        };
        if seg.flags.syn {
            let l = &self.links.as_mut()[idx];
            let half = if from_i { &l.i2a } else { &l.a2i };
            let retransmitted = half.started() && half.next_seq() == seg.seq.wrapping_add(1);
            if from_i && !seg.flags.ack && half.started() && !retransmitted {
                // A new connection on the same 4-tuple.
                self.counters.links_closed += 1;
                self.drop_link(idx);
                if self.slot(proto, initiator, acceptor, ts, true) != Some(idx) {
                    return;
                }
            }
            let l = &mut self.links.as_mut()[idx];
            if !retransmitted {
                if from_i {
                    l.i2a.syn(&mut self.pool, seg.seq);
                } else {
                    l.a2i.syn(&mut self.pool, seg.seq);
                }
            }
        }
        self.links.as_mut()[idx].last_seen = ts;
        if seg.flags.ack {
            // The peer's acknowledgement may show that bytes held after a
            // hole in the other direction will never be completed.
            self.run(idx, ts, !from_i, Feed::Acked(seg.ack), sink);
        }
        if has_data {
            self.run(idx, ts, from_i, Feed::Segment(seg), sink);
        }
        let l = &mut self.links.as_mut()[idx];
        if seg.flags.fin {
            if from_i {
                l.fin_i = true;
            } else {
                l.fin_a = true;
            }
        }
        if seg.flags.rst || (l.fin_i && l.fin_a) {
            self.counters.links_closed += 1;
            self.drop_link(idx);
        }
    }

    /// Feeds one direction of a link and decodes what comes out.
    fn run(
        &mut self,
        idx: usize,
        ts: Instant,
        from_i: bool,
        feed: Feed<'_, '_>,
        sink: &mut impl FnMut(&QuorumEvent<'_>),
    ) {
        let max_len = self.config.max_packet_len;
        let learn = self.config.learn_ports;
        let link = &mut self.links.as_mut()[idx];
        let counters = &mut self.counters;
        let peers = &mut self.peers;
        let Link {
            initiator,
            acceptor,
            proto,
            i2a,
            a2i,
            i_sid,
            a_sid,
            snapshot,
            snapshot_bytes,
            ..
        } = link;
        let (src, dst) = if from_i {
            (*initiator, *acceptor)
        } else {
            (*acceptor, *initiator)
        };
        let mut ctx = Ctx {
            ts,
            proto: *proto,
            src,
            dst,
            from_i,
            i_sid,
            a_sid,
            snapshot_bytes,
            peers,
            learnt: LearntPorts::default(),
            learn,
            counters: MsgCounters {
                initial: &mut counters.initial_messages,
                notifications: &mut counters.notifications,
                packets: &mut counters.packets,
                truncated: &mut counters.truncated_packets,
                snapshots: &mut counters.snapshots,
                snapshot_bytes: &mut counters.snapshot_bytes,
                errors: &mut counters.decode_errors,
            },
        };
        let half = if from_i { i2a } else { a2i };
        let pool = &mut self.pool;
        let (stream, frame_errors) = (&mut counters.stream, &mut counters.frame_errors);
        match *proto {
            Proto::Election => {
                let framer = FleFramer { max_len };
                let emit = &mut |item: Item<'_>| ctx.fle_frame(item, sink);
                feed.apply(half, pool, &framer, stream, frame_errors, emit);
            }
            Proto::Quorum => {
                let framer = ZabFramer::new(max_len);
                framer.set_snapshot(!from_i && *snapshot);
                let emit = &mut |item: Item<'_>| ctx.zab_frame(item, &framer, sink);
                feed.apply(half, pool, &framer, stream, frame_errors, emit);
                if !from_i {
                    *snapshot = framer.mode() == ZabMode::Snapshot;
                }
            }
        }
        let learnt = ctx.learnt;
        for (proto, port) in learnt.iter() {
            self.learn_port(proto, port);
        }
    }
}

/// What a direction is fed: a segment, or the other direction's ACK.
#[derive(Clone, Copy)]
enum Feed<'s, 'p> {
    Segment(&'s TcpSegment<'p>),
    Acked(u32),
}

impl Feed<'_, '_> {
    fn apply<B: AsMut<[u8]>, F: crate::stream::Framer>(
        self,
        half: &mut HalfStream,
        pool: &mut ChunkPool<B>,
        framer: &F,
        c: &mut StreamCounters,
        errors: &mut ErrorCounts,
        emit: &mut impl FnMut(Item<'_>),
    ) {
        match self {
            Feed::Segment(seg) => half.push(
                pool,
                framer,
                seg.seq,
                seg.payload,
                seg.wire_len,
                c,
                errors,
                emit,
            ),
            Feed::Acked(ack) => half.acked(pool, framer, ack, c, errors, emit),
        }
    }
}

/// Ports found in a config while decoding one segment (added afterwards).
#[derive(Debug, Default, Clone, Copy)]
struct LearntPorts {
    ports: [(u16, u16); MAX_PEERS],
    len: usize,
}

impl LearntPorts {
    fn push(&mut self, quorum: u16, election: u16) {
        if self.len < MAX_PEERS {
            self.ports[self.len] = (quorum, election);
            self.len += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = (Proto, u16)> + '_ {
        self.ports[..self.len]
            .iter()
            .flat_map(|&(q, e)| [(Proto::Quorum, q), (Proto::Election, e)])
    }
}

struct MsgCounters<'c> {
    initial: &'c mut u64,
    notifications: &'c mut u64,
    packets: &'c mut PacketCounts,
    truncated: &'c mut u64,
    snapshots: &'c mut u64,
    snapshot_bytes: &'c mut u64,
    errors: &'c mut ErrorCounts,
}

/// What decoding one frame of a link needs.
struct Ctx<'c> {
    ts: Instant,
    proto: Proto,
    src: SocketAddr,
    dst: SocketAddr,
    from_i: bool,
    i_sid: &'c mut i64,
    a_sid: &'c mut i64,
    snapshot_bytes: &'c mut u64,
    peers: &'c mut Peers,
    learnt: LearntPorts,
    learn: bool,
    counters: MsgCounters<'c>,
}

impl Ctx<'_> {
    /// The ids of both ends, from what the link learnt or the peer table.
    fn sids(&mut self) -> (Option<i64>, Option<i64>) {
        let (init, acc) = if self.from_i {
            (self.src, self.dst)
        } else {
            (self.dst, self.src)
        };
        if *self.a_sid < 0
            && let Some(s) = self.peers.sid_at(&acc, self.proto)
        {
            *self.a_sid = s;
        }
        let i = if *self.i_sid >= 0 {
            Some(*self.i_sid)
        } else {
            self.peers
                .sid_by_ip(init.ip())
                .filter(|&s| s != *self.a_sid)
        };
        let a = (*self.a_sid >= 0).then_some(*self.a_sid);
        if self.from_i { (i, a) } else { (a, i) }
    }

    fn emit(
        &mut self,
        size: usize,
        message: QuorumMessage<'_>,
        sink: &mut impl FnMut(&QuorumEvent<'_>),
    ) {
        let (src_sid, dst_sid) = self.sids();
        sink(&QuorumEvent {
            ts: self.ts,
            proto: self.proto,
            src: self.src,
            dst: self.dst,
            from_initiator: self.from_i,
            src_sid,
            dst_sid,
            size: size as u32,
            message,
        });
    }

    fn malformed(&mut self, error: Error, size: usize, sink: &mut impl FnMut(&QuorumEvent<'_>)) {
        self.counters.errors.add(error);
        self.emit(size, QuorumMessage::Malformed { error }, sink);
    }

    fn learn_config(&mut self, text: &str) {
        if let Ok(c) = DynamicConfig::parse(text) {
            self.peers.learn_config(&c);
            if self.learn {
                for s in c.servers() {
                    self.learnt.push(s.quorum_port, s.election_port);
                }
            }
        }
    }

    fn fle_frame(&mut self, item: Item<'_>, sink: &mut impl FnMut(&QuorumEvent<'_>)) {
        let (frame, size) = match item {
            Item::Frame(f) => (f, f.len()),
            Item::Partial { total_len, .. } => {
                return self.malformed(Error::Truncated, total_len, sink);
            }
        };
        match FleMessage::parse(frame) {
            Ok(FleMessage::Initial(m)) => {
                *self.counters.initial += 1;
                if self.from_i {
                    *self.i_sid = m.sid();
                    let ip = self.src.ip();
                    if let Some(p) = self.peers.entry(m.sid()) {
                        p.seen_ip = Some(ip);
                        // The address the sender announces, not the source
                        // of its connection (on one host every connection
                        // may leave from 127.0.0.1); a host name matches by
                        // port only.
                        if let Some((host, port)) = m.addresses().next()
                            && p.election.is_none_or(|e| e.ip.is_none())
                        {
                            p.election = Some(Endpoint {
                                ip: host.parse().ok(),
                                port,
                            });
                        }
                    }
                }
                self.emit(size, QuorumMessage::Initial(m), sink);
            }
            Ok(FleMessage::Notification(n)) => {
                *self.counters.notifications += 1;
                if let Some(text) = n.config {
                    self.learn_config(text);
                }
                self.emit(size, QuorumMessage::Notification(n), sink);
            }
            Err(e) => self.malformed(e, size, sink),
        }
    }

    fn zab_frame(
        &mut self,
        item: Item<'_>,
        framer: &ZabFramer,
        sink: &mut impl FnMut(&QuorumEvent<'_>),
    ) {
        if framer.mode() == ZabMode::Snapshot {
            let n = match item {
                Item::Frame(f) => f.len(),
                Item::Partial { total_len, .. } => total_len,
            };
            *self.snapshot_bytes += n as u64;
            let done = matches!(item, Item::Frame(f) if f.ends_with(&SNAPSHOT_SIGNATURE));
            if done {
                let bytes = *self.snapshot_bytes;
                *self.snapshot_bytes = 0;
                framer.set_snapshot(false);
                *self.counters.snapshots += 1;
                *self.counters.snapshot_bytes += bytes;
                self.emit(bytes as usize, QuorumMessage::Snapshot { bytes }, sink);
            }
            return;
        }
        let (packet, size, truncated) = match item {
            Item::Frame(f) => match QuorumPacket::parse(f) {
                Ok((p, _)) => (p, f.len(), false),
                Err(e) => return self.malformed(e, f.len(), sink),
            },
            Item::Partial { prefix, total_len } => match QuorumPacket::parse_prefix(prefix) {
                Ok(p) => (p, total_len, true),
                Err(e) => return self.malformed(e, total_len, sink),
            },
        };
        let t = packet.packet_type;
        self.counters.packets.add(t);
        if truncated {
            *self.counters.truncated += 1;
        }
        let payload = packet.payload();
        match &payload {
            Err(e) => self.counters.errors.add(*e),
            Ok(Payload::LearnerInfo(li)) if self.from_i => {
                *self.i_sid = li.sid;
                let ip = self.src.ip();
                if let Some(p) = self.peers.entry(li.sid) {
                    p.seen_ip = Some(ip);
                }
            }
            Ok(Payload::NewLeader { config }) if !truncated => self.learn_config(config),
            _ => {}
        }
        if t == PacketType::Snap && !self.from_i {
            framer.set_snapshot(true);
            *self.snapshot_bytes = 0;
        }
        self.emit(
            size,
            QuorumMessage::Packet(ZabPacket {
                packet,
                payload,
                truncated,
            }),
            sink,
        );
    }
}

#[cfg(test)]
pub(crate) mod test_rig {
    //! A synthetic network for tracker tests: connections with sequence
    //! numbers, segments fed to a tracker, events logged as text.
    extern crate std;
    use super::*;
    use crate::packet::TcpFlags;
    use std::format;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    pub(crate) const DATA: TcpFlags = TcpFlags {
        syn: false,
        ack: true,
        fin: false,
        rst: false,
        psh: true,
    };

    /// One connection: initiator `a` to acceptor `b`.
    #[derive(Clone, Copy)]
    pub(crate) struct Conn {
        pub(crate) a: SocketAddr,
        pub(crate) b: SocketAddr,
        pub(crate) aseq: u32,
        pub(crate) bseq: u32,
    }

    /// An owned copy of what an event said, for assertions.
    pub(crate) fn describe(ev: &QuorumEvent<'_>) -> String {
        let sid = |s: Option<i64>| s.map_or("?".into(), |v| format!("{v}"));
        let what = match &ev.message {
            QuorumMessage::Initial(m) => format!("Initial sid={}", m.sid()),
            QuorumMessage::Notification(n) => format!(
                "Notification {} leader={} epoch={}",
                n.state.name(),
                n.leader,
                n.election_epoch
            ),
            QuorumMessage::Packet(p) => format!(
                "{} zxid={:#x}{}{}",
                p.packet.packet_type.name(),
                p.packet.zxid,
                if p.truncated { " truncated" } else { "" },
                match &p.payload {
                    Err(e) => format!(" payload-error={e}"),
                    Ok(_) => String::new(),
                }
            ),
            QuorumMessage::Snapshot { bytes } => format!("SNAPSHOT bytes={bytes}"),
            QuorumMessage::Malformed { error } => format!("Malformed {error}"),
        };
        format!("{}->{} {what}", sid(ev.src_sid), sid(ev.dst_sid))
    }

    pub(crate) struct Net {
        pub(crate) t: QuorumTracker<Vec<Link>, Vec<u8>>,
        pub(crate) log: Vec<String>,
        pub(crate) now: i64,
    }

    impl Net {
        pub(crate) fn new(config: Config) -> Self {
            Net {
                t: QuorumTracker::new(vec![Link::EMPTY; 64], vec![0u8; 4096 * 16], 4096, config),
                log: Vec::new(),
                now: 1_000_000,
            }
        }

        pub(crate) fn feed(&mut self, seg: &TcpSegment<'_>) {
            self.now += 100;
            let log = &mut self.log;
            self.t
                .process(Instant::from_micros(self.now), seg, &mut |ev| {
                    log.push(describe(ev))
                });
        }

        pub(crate) fn open(&mut self, a: &str, b: &str, syn: bool) -> Conn {
            let c = Conn {
                a: a.parse().unwrap(),
                b: b.parse().unwrap(),
                aseq: 1000,
                bseq: 5000,
            };
            if syn {
                let f = TcpFlags {
                    syn: true,
                    ack: false,
                    fin: false,
                    rst: false,
                    psh: false,
                };
                self.feed(&seg(c.a, c.b, c.aseq - 1, f, &[]));
                self.feed(&seg(c.b, c.a, c.bseq - 1, TcpFlags { ack: true, ..f }, &[]));
            }
            c
        }

        /// Initiator to acceptor.
        pub(crate) fn send(&mut self, c: &mut Conn, bytes: &[u8]) {
            let s = seg(c.a, c.b, c.aseq, DATA, bytes);
            self.feed(&s);
            c.aseq = c.aseq.wrapping_add(bytes.len() as u32);
        }

        /// Acceptor to initiator.
        pub(crate) fn answer(&mut self, c: &mut Conn, bytes: &[u8]) {
            let s = seg(c.b, c.a, c.bseq, DATA, bytes);
            self.feed(&s);
            c.bseq = c.bseq.wrapping_add(bytes.len() as u32);
        }

        pub(crate) fn rst(&mut self, c: &Conn) {
            let f = TcpFlags { rst: true, ..DATA };
            self.feed(&seg(c.b, c.a, c.bseq, f, &[]));
        }
    }

    pub(crate) fn seg<'a>(
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
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::test_rig::*;
    use super::*;
    use crate::client::test_enc::Enc;
    use crate::fle::test_msgs::{initial, notification};
    use crate::zab::test_packets::*;
    use std::string::String;
    use std::vec::Vec;

    const CFG: &str = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
                       server.2=127.0.0.2:2888:3888:participant;127.0.0.2:2181\n\
                       server.3=127.0.0.3:2888:3888:participant;127.0.0.3:2181\n\
                       version=0";

    #[test]
    fn election_connection_names_both_ends() {
        let mut n = Net::new(Config::default());
        let mut c = n.open("127.0.0.3:40000", "127.0.0.1:3888", true);
        n.send(&mut c, &initial(3, "127.0.0.3:3888"));
        n.send(&mut c, &notification(0, 3, 0, 1, CFG));
        n.answer(&mut c, &notification(0, 1, 0, 1, CFG));
        n.answer(&mut c, &notification(0, 3, 0, 1, CFG));
        assert_eq!(
            n.log,
            [
                "3->? Initial sid=3",
                "3->1 Notification LOOKING leader=3 epoch=1",
                "1->3 Notification LOOKING leader=1 epoch=1",
                "1->3 Notification LOOKING leader=3 epoch=1",
            ]
        );
        assert_eq!(n.t.peers.ensemble_size(), 3);
        assert_eq!(n.t.counters.notifications, 3);
        assert_eq!(n.t.counters.initial_messages, 1);
    }

    #[test]
    fn learner_session_sync_and_broadcast() {
        let mut n = Net::new(Config::default());
        let mut c = n.open("127.0.0.1:50000", "127.0.0.3:2888", true);
        n.send(&mut c, &follower_info(1, 1));
        n.answer(
            &mut c,
            &packet(17, 0x2_0000_0000, Some(&0x10000i32.to_be_bytes())),
        );
        n.send(
            &mut c,
            &packet(18, 0x1_0000_0004, Some(&1i32.to_be_bytes())),
        );
        // SNAP, the snapshot, NEWLEADER with config: all in one segment.
        let mut snapshot = Enc::new().i32(0).i32(0).s("/zookeeper").done();
        snapshot.extend_from_slice(&SNAPSHOT_SIGNATURE);
        let seg = [
            packet(15, 0x1_0000_0004, None),
            snapshot.clone(),
            packet(10, 0x2_0000_0000, Some(CFG.as_bytes())),
        ]
        .concat();
        n.answer(&mut c, &seg);
        n.send(&mut c, &packet(3, 0x2_0000_0000, None));
        n.answer(&mut c, &packet(12, -1, None));
        n.answer(&mut c, &proposal(0x2_0000_0001, "/a"));
        n.send(&mut c, &packet(3, 0x2_0000_0001, None));
        n.answer(&mut c, &packet(4, 0x2_0000_0001, None));
        let expect: Vec<String> = [
            "1->? FOLLOWERINFO zxid=0x100000000",
            "?->1 LEADERINFO zxid=0x200000000",
            "1->? ACKEPOCH zxid=0x100000004",
            "?->1 SNAP zxid=0x100000004",
        ]
        .iter()
        .map(|s| String::from(*s))
        .chain([
            std::format!("?->1 SNAPSHOT bytes={}", snapshot.len()),
            // The config in NEWLEADER names the leader.
            "3->1 NEWLEADER zxid=0x200000000".into(),
            "1->3 ACK zxid=0x200000000".into(),
            "3->1 UPTODATE zxid=0xffffffffffffffff".into(),
            "3->1 PROPOSAL zxid=0x200000001".into(),
            "1->3 ACK zxid=0x200000001".into(),
            "3->1 COMMIT zxid=0x200000001".into(),
        ])
        .collect();
        assert_eq!(n.log, expect);
        assert_eq!(n.t.counters.snapshots, 1);
        assert_eq!(n.t.counters.errors(Error::Truncated), 0);
        n.rst(&c);
        assert_eq!(n.t.active_links(), 0);
        assert_eq!(n.t.chunks_in_use().0, 0);
    }

    #[test]
    fn mid_connection_capture_and_bad_input_are_counted() {
        let mut n = Net::new(Config::default());
        let mut c = n.open("127.0.0.2:50001", "127.0.0.3:2888", false);
        let p = proposal(0x2_0000_0005, "/mid");
        n.answer(&mut c, &p[7..]);
        n.answer(&mut c, &packet(4, 0x2_0000_0004, None));
        n.answer(&mut c, &packet(4, 0x2_0000_0005, None));
        // An unknown type in step, then a good packet.
        n.answer(&mut c, &packet(42, 0, None));
        n.answer(&mut c, &packet(5, 0x40, None));
        n.answer(&mut c, &packet(4, 0x2_0000_0006, None));
        // A known type whose data does not decode (in step: no hunting).
        n.answer(
            &mut c,
            &packet(6, -1, Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        );
        assert_eq!(
            n.log,
            [
                "?->? COMMIT zxid=0x200000004",
                "?->? COMMIT zxid=0x200000005",
                "?->? PING zxid=0x40",
                "?->? COMMIT zxid=0x200000006",
                "?->? REVALIDATE zxid=0xffffffffffffffff payload-error=bad_length",
            ]
        );
        assert_eq!(n.t.counters.frame_errors.get(Error::UnknownOpcode), 1);
        assert_eq!(n.t.counters.decode_errors.get(Error::BadLength), 1);
    }

    #[test]
    fn ports_are_learnt_from_configs_and_first_bytes() {
        let mut config = Config::without_ports();
        config.learn_ports = true;
        let mut n = Net::new(config);
        let cfg = "server.1=localhost:2780:2783:participant;0.0.0.0:2181\n\
                   server.2=localhost:2781:2784:participant;0.0.0.0:2182\nversion=0";
        // An election connection on an unknown port, known by its first bytes.
        let mut c = n.open("127.0.0.1:43245", "127.0.0.1:2783", true);
        n.send(&mut c, &initial(2, "localhost:2784"));
        n.send(&mut c, &notification(0, 2, 0, 1, cfg));
        assert_eq!(n.t.config().fle_ports(), [2783, 2784]);
        assert_eq!(n.t.config().zab_ports(), [2780, 2781]);
        // The quorum port 2781 came from the config: this link is decoded.
        let mut q = n.open("127.0.0.1:60088", "127.0.0.1:2781", true);
        n.send(&mut q, &follower_info(1, 0));
        // A quorum connection on a port no config named.
        let mut q2 = n.open("127.0.0.1:60100", "127.0.0.1:9999", true);
        n.send(&mut q2, &follower_info(3, 0));
        assert_eq!(
            n.log,
            [
                "2->? Initial sid=2",
                "2->1 Notification LOOKING leader=2 epoch=1",
                "1->2 FOLLOWERINFO zxid=0x0",
                "3->? FOLLOWERINFO zxid=0x0",
            ]
        );
        assert_eq!(n.t.counters.ports_learnt, 5);
    }

    #[test]
    fn servers_sharing_a_host_are_not_named_by_their_source_address() {
        let cfg = DynamicConfig::parse(CFG).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Distinct hosts: a connection from 127.0.0.2 is server 2's.
        let mut p = Peers::new();
        p.learn_config(&cfg);
        assert_eq!(p.sid_by_ip(ip("127.0.0.2")), Some(2));
        p.entry(1).unwrap().seen_ip = Some(ip("127.0.0.1"));
        assert_eq!(p.sid_by_ip(ip("127.0.0.2")), Some(2));
        assert_eq!(p.sid_by_ip(ip("127.0.0.1")), Some(1));
        // Server 3 seen connecting from 127.0.0.1: addresses name nobody.
        p.entry(3).unwrap().seen_ip = Some(ip("127.0.0.1"));
        assert_eq!(p.sid_by_ip(ip("127.0.0.2")), None);
        assert_eq!(p.sid_by_ip(ip("127.0.0.1")), None);
        // Listening addresses still name the acceptor.
        let a: SocketAddr = "127.0.0.1:3888".parse().unwrap();
        assert_eq!(p.sid_at(&a, Proto::Election), Some(1));
        assert_eq!(
            p.sid_at(&"127.0.0.3:2888".parse().unwrap(), Proto::Quorum),
            Some(3)
        );
        assert_eq!(p.ensemble_size(), 3);
    }

    #[test]
    fn full_table_evicts_and_idle_links_expire() {
        let mut n = Net::new(Config::default());
        for i in 0..100u16 {
            let mut c = n.open(
                &std::format!("10.0.0.1:{}", 30000 + i),
                "10.0.0.2:2888",
                false,
            );
            n.send(&mut c, &packet(5, 0, None)[..7]);
        }
        assert!(n.t.active_links() <= 64);
        assert!(n.t.counters.links_evicted >= 36);
        n.now += 3600 * 1_000_000;
        let mut c = n.open("10.0.0.9:1", "10.0.0.2:3888", false);
        n.send(&mut c, &notification(0, 1, 0, 1, ""));
        assert_eq!(n.t.active_links(), 1);
        assert_eq!(n.t.chunks_in_use().0, 0);
    }
}
