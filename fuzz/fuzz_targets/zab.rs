//! Fuzz target `zab`: the quorum-port decoders of `zk_wire::zab`.
//!
//! The input is used three ways:
//! - as one packet: `QuorumPacket::parse` and `parse_prefix`, the payload
//!   of every packet type (`Payload::parse`, `parse_prefix`), `Txn::parse`
//!   and its multi iterator, the authinfo iterator;
//! - as one direction of a quorum connection, cut into segments whose sizes
//!   come from the input's first byte, reassembled with `ZabFramer`,
//!   switching to snapshot mode after a SNAP as the tracker does;
//! - through a `QuorumTracker` and a `QuorumAnalysis` as the two
//!   directions of one learner-to-leader connection.
//!
//! Checks: no panic, no endless iterator; a parsed packet used no more bytes
//! than given and its lazy lists iterate to the length they announced;
//! frames and snapshot pieces never add up to more than the input; after
//! `finish` no link is left and every reassembly chunk is back in the pool.
#![no_main]

use core::fmt::Write;
use core::net::SocketAddr;

use zk_wire::{ErrorCounts, Instant};
use zk_wire::packet::{TcpFlags, TcpSegment};
use zk_wire::quorum::{Config, Link, QuorumTracker};
use zk_wire::quorum_analysis::QuorumAnalysis;
use zk_wire::stream::{ChunkPool, HalfStream, Item, StreamCounters};
use zk_wire::zab::{PacketType, Payload, QuorumPacket, Txn, TxnBody, ZabFramer, ZabMode};

struct Discard;

impl Write for Discard {
    fn write_str(&mut self, _: &str) -> core::fmt::Result {
        Ok(())
    }
}

fn walk_txn(t: &Txn<'_>) {
    let _ = t.body.path();
    if let TxnBody::Multi(m) = t.body {
        assert!(m.iter().count() == m.len());
    }
    let _ = write!(Discard, "{t:?}");
}

fn one_packet(data: &[u8]) {
    if let Ok((p, used)) = QuorumPacket::parse(data) {
        assert!(used <= data.len());
        assert_eq!(p.auth.iter().count(), p.auth.len());
        if let Ok(pl) = p.payload() {
            if let Some(t) = pl.txn() {
                walk_txn(t);
            }
            if let Payload::Ping(touches) = pl {
                assert_eq!(touches.iter().count(), touches.len());
            }
        }
    }
    if let Ok(p) = QuorumPacket::parse_prefix(data) {
        let _ = write!(Discard, "{:?}", p.payload());
    }
    for t in PacketType::ALL {
        let _ = write!(Discard, "{:?}", Payload::parse(t, data));
        let _ = write!(Discard, "{:?}", Payload::parse_prefix(t, data));
    }
    if let Ok(t) = Txn::parse(data) {
        walk_txn(&t);
    }
    let _ = Txn::parse_prefix(data);
}

fn segments(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let step = 1 + cut as usize % 61;
    let mut pool = ChunkPool::new(vec![0u8; 128 * 4], 128);
    let mut hs = HalfStream::new();
    if cut & 0x80 != 0 {
        hs.syn(&mut pool, 0);
    }
    let framer = ZabFramer::new(4096);
    let mut c = StreamCounters::default();
    let mut errors = ErrorCounts::ZERO;
    let mut total = 0usize;
    for (k, piece) in stream.chunks(step).enumerate() {
        hs.push(
            &mut pool,
            &framer,
            1 + (k * step) as u32,
            piece,
            piece.len(),
            &mut c,
            &mut errors,
            &mut |it| match it {
                Item::Frame(f) => {
                    total += f.len();
                    if framer.mode() == ZabMode::Snapshot {
                        if f.ends_with(&zk_wire::zab::SNAPSHOT_SIGNATURE) {
                            framer.set_snapshot(false);
                        }
                    } else if let Ok((p, _)) = QuorumPacket::parse(f) {
                        let _ = p.payload();
                        if p.packet_type == PacketType::Snap {
                            framer.set_snapshot(true);
                        }
                    }
                }
                Item::Partial { prefix, .. } => {
                    let _ = QuorumPacket::parse_prefix(prefix).map(|p| p.payload());
                }
            },
        );
    }
    assert!(total <= stream.len());
    hs.close(&mut pool, &mut c);
    assert_eq!(pool.in_use(), 0);
}

fn tracker(data: &[u8]) {
    let learner: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let leader: SocketAddr = "10.0.0.3:2888".parse().unwrap();
    let mut t = QuorumTracker::new(
        vec![Link::EMPTY; 8],
        vec![0u8; 512 * 4],
        512,
        Config::default(),
    );
    let mut an = Box::new(QuorumAnalysis::default());
    let (mut lseq, mut sseq) = (1u32, 1u32);
    let mut now = 1_000_000i64;
    let mut rest = data;
    while let Some((&h, tail)) = rest.split_first() {
        let n = (h as usize & 0x3f).min(tail.len());
        let (payload, tail) = tail.split_at(n);
        rest = tail;
        let from_learner = h & 0x40 == 0;
        now += i64::from(h) * 1000;
        let (src, dst, seq, ack) = if from_learner {
            (learner, leader, &mut lseq, sseq)
        } else {
            (
                leader,
                learner,
                &mut sseq,
                lseq.wrapping_add(u32::from(h & 0x80)),
            )
        };
        let seg = TcpSegment {
            src,
            dst,
            seq: *seq,
            ack,
            flags: TcpFlags {
                syn: false,
                ack: true,
                fin: false,
                rst: false,
                psh: true,
            },
            window: 0,
            payload,
            wire_len: payload.len(),
        };
        // Bit 7 on the learner's side: a lost segment before this one.
        *seq = seq.wrapping_add(n as u32).wrapping_add(if from_learner {
            u32::from(h >> 7) * 3
        } else {
            0
        });
        t.process(Instant::from_micros(now), &seg, &mut |ev| {
            an.observe(ev, &mut |f| {
                let _ = write!(Discard, "{f:?}");
            })
        });
    }
    t.finish();
    an.finish(&mut |_| {});
    assert_eq!(t.active_links(), 0);
    assert_eq!(t.chunks_in_use().0, 0);
    assert!(an.counters.commits <= an.counters.proposals);
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    one_packet(data);
    segments(data);
    tracker(data);
});
