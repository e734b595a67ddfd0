//! Target `tracker`: small synthetic TCP segments between two clients and a
//! server on port 2181, built from the input, fed to a `Tracker` (small
//! flow table, small pool, chosen by the input), then `finish`.
//!
//! Input layout:
//!
//! ```text
//! byte 0      bits 0-1: chunk size (64, 256, 4096, 128 KiB); bits 2-3: pool
//!             chunks (0, 2, 8, 16); bits 4-5: flow slots (8, 16, 32, 8);
//!             bit 6: frame limit 512 bytes (else the default)
//! then records, until the input runs out:
//!   byte 0    bits 0-1: direction (0 A->S, 1 S->A, 2 B->S, 3 S->B);
//!             bit 2 SYN, bit 3 ACK, bit 4 FIN, bit 5 RST;
//!             bit 6: a 4-byte i32 sequence jump follows;
//!             bit 7: a 1-byte count of payload bytes the capture cut follows
//!   byte 1    time since the previous segment: b^4 / 4 µs for b < 240
//!             (0 .. ~14 min); b >= 240 steps back (b - 239)^3 s (1 s ..
//!             ~68 min), as merged or multi-interface captures do
//!   [4 bytes] sequence jump (LE), with bit 6
//!   [1 byte]  bytes cut, with bit 7
//!   2 bytes   payload length (LE), then the payload
//! ```
//!
//! Each direction's sequence numbers follow on from its previous segment
//! (SYN and FIN count one), plus the jump when there is one, so in-order
//! traffic is the default and reorders, gaps and overlaps are one jump away.
//! Clients: A = 10.0.0.1:40000, B = 10.0.0.1:40001; server 10.0.0.9:2181.
//!
//! Checks: no panic; the tracker's counters agree with the events it handed
//! out (requests, replies, watch events, malformed frames, segments); every
//! event is about a known client and the server, stamped with the current
//! time; flows never exceed the table, chunks never exceed two per flow;
//! after `finish` no flow is left and every chunk is back in the pool.

use core::fmt::{self, Write};
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use zk_wire::Instant;
use zk_wire::flow::{Config, Counters, Event, Flow, Message, Tracker};
use zk_wire::packet::{TcpFlags, TcpSegment};

use crate::Input;

/// Client A.
pub const CLIENT_A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000);
/// Client B.
pub const CLIENT_B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40001);
/// The server.
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), 2181);

const CHUNKS: [usize; 4] = [64, 256, 4096, 128 * 1024];
const N_CHUNKS: [usize; 4] = [0, 2, 8, 16];
const FLOWS: [usize; 4] = [8, 16, 32, 8];
/// First sequence number of each direction (0 A->S, 1 S->A, 2 B->S, 3 S->B).
pub const SEQ0: [u32; 4] = [1000, 0x7fff_fff0, 0xffff_ff00, 5];

/// One synthetic segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Direction (0 A->S, 1 S->A, 2 B->S, 3 S->B).
    pub dir: u8,
    /// SYN, ACK, FIN, RST.
    pub syn: bool,
    /// ACK.
    pub ack: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
    /// Added to the sequence number the direction expects next.
    pub jump: i32,
    /// Payload bytes on the wire after the captured ones.
    pub cut: u8,
    /// Time code (see the module docs).
    pub dt: u8,
    /// Captured payload.
    pub payload: &'a [u8],
}

impl Record<'_> {
    /// Encodes one record.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let flags = self.dir & 3
            | (self.syn as u8) << 2
            | (self.ack as u8) << 3
            | (self.fin as u8) << 4
            | (self.rst as u8) << 5
            | ((self.jump != 0) as u8) << 6
            | ((self.cut != 0) as u8) << 7;
        out.extend_from_slice(&[flags, self.dt]);
        if self.jump != 0 {
            out.extend_from_slice(&self.jump.to_le_bytes());
        }
        if self.cut != 0 {
            out.push(self.cut);
        }
        out.extend_from_slice(&(self.payload.len() as u16).to_le_bytes());
        out.extend_from_slice(self.payload);
    }
}

/// Microseconds a time code moves the clock (negative: backwards).
pub fn dt_us(code: u8) -> i64 {
    if code < 240 {
        i64::from(code).pow(4) / 4
    } else {
        -i64::from(code - 239).pow(3) * 1_000_000
    }
}

/// The forward time code whose delay is closest to `us` microseconds.
pub fn dt_code(us: i64) -> u8 {
    (0u8..240)
        .min_by_key(|&b| (i64::from(b).pow(4) / 4 - us).abs())
        .unwrap_or(0)
}

/// Decodes an input into its config byte and records.
pub fn decode(data: &[u8]) -> (u8, Vec<Record<'_>>) {
    let mut i = Input::new(data);
    let config = i.u8();
    let mut records = Vec::new();
    while !i.is_empty() {
        let flags = i.u8();
        let dt = i.u8();
        let jump = if flags & 0x40 != 0 { i.u32() as i32 } else { 0 };
        let cut = if flags & 0x80 != 0 { i.u8() } else { 0 };
        let len = usize::from(i.u16());
        records.push(Record {
            dir: flags & 3,
            syn: flags & 4 != 0,
            ack: flags & 8 != 0,
            fin: flags & 16 != 0,
            rst: flags & 32 != 0,
            jump,
            cut,
            dt,
            payload: i.take(len),
        });
    }
    (config, records)
}

struct Discard;

impl Write for Discard {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        Ok(())
    }
}

/// What the events said, to compare with the counters.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    replies: u64,
    events: u64,
    malformed: u64,
}

/// Runs the checks over one input.
pub fn run(data: &[u8]) {
    check(data);
}

/// Runs the checks over one input and answers the tracker's counters.
pub fn check(data: &[u8]) -> Counters {
    let (config, records) = decode(data);
    let chunk = CHUNKS[usize::from(config & 3)];
    let n_chunks = N_CHUNKS[usize::from(config >> 2 & 3)];
    let n_flows = FLOWS[usize::from(config >> 4 & 3)];
    let mut cfg = Config::default();
    if config & 0x40 != 0 {
        cfg.max_frame_len = 512;
    }
    let mut t = Tracker::new(
        vec![Flow::EMPTY; n_flows],
        vec![0u8; chunk * n_chunks],
        chunk,
        cfg,
    );
    let mut next = SEQ0;
    let mut now = Instant::from_micros(1_700_000_000_000_000i64);
    let mut tally = Tally::default();
    let mut segments = 0u64;
    for (k, r) in records.iter().enumerate() {
        now = Instant::from_micros(now.total_micros() + dt_us(r.dt));
        let d = usize::from(r.dir);
        let client = if d < 2 { CLIENT_A } else { CLIENT_B };
        let (src, dst) = if d % 2 == 0 {
            (client, SERVER)
        } else {
            (SERVER, client)
        };
        let seq = next[d].wrapping_add(r.jump as u32);
        let wire_len = r.payload.len() + usize::from(r.cut);
        let seg = TcpSegment {
            src,
            dst,
            seq,
            ack: 0,
            flags: TcpFlags {
                syn: r.syn,
                ack: r.ack,
                fin: r.fin,
                rst: r.rst,
                psh: false,
            },
            window: 0,
            payload: r.payload,
            wire_len,
        };
        next[d] = seg.seq_end();
        segments += 1;
        t.process(now, &seg, &mut |ev: &Event<'_>| {
            on_event(ev, now, &mut tally, k);
        });
        assert!(
            t.active_flows() <= t.flow_capacity(),
            "record {k}: more flows than slots"
        );
        let (in_use, cap) = t.chunks_in_use();
        assert!(in_use <= cap);
        assert!(
            in_use <= 2 * t.active_flows(),
            "record {k}: {in_use} chunks lent to {} flows",
            t.active_flows()
        );
    }
    t.finish(now, &mut |ev: &Event<'_>| {
        on_event(ev, now, &mut tally, usize::MAX)
    });
    assert_eq!(t.active_flows(), 0, "flows left after finish");
    assert_eq!(t.chunks_in_use().0, 0, "chunks kept after finish");
    let c = &t.counters;
    assert_eq!(c.segments, segments, "segments counter");
    assert_eq!(c.foreign, 0, "every segment is on port 2181");
    assert_eq!(c.requests, tally.requests, "requests counter vs events");
    assert_eq!(c.replies, tally.replies, "replies counter vs events");
    assert_eq!(c.events, tally.events, "watch events counter vs events");
    let decode_errors: u64 = c.decode_errors.total();
    assert!(
        tally.malformed <= decode_errors,
        "{} malformed events, {decode_errors} decode errors counted",
        tally.malformed
    );
    assert!(c.flows_closed + c.flows_expired + c.flows_evicted <= c.flows_created);
    t.counters
}

fn on_event(ev: &Event<'_>, now: Instant, tally: &mut Tally, k: usize) {
    assert!(
        (ev.client == CLIENT_A || ev.client == CLIENT_B) && ev.server == SERVER,
        "record {k}: event for an unknown flow {} -> {}",
        ev.client,
        ev.server
    );
    assert_eq!(ev.ts, now, "record {k}: event stamped with another time");
    let _ = write!(Discard, "{ev:?}");
    match ev.message {
        Message::ConnectRequest(_)
        | Message::Request(_)
        | Message::RequestPrefix(_)
        | Message::FourLetterWord(_) => tally.requests += 1,
        Message::ConnectResponse(_)
        | Message::Reply(..)
        | Message::ReplyHeader(..)
        | Message::FourLetterReply(..) => tally.replies += 1,
        Message::WatchEvent(_) => tally.events += 1,
        Message::Malformed { .. } => tally.malformed += 1,
    }
}
