//! Fuzz target `fle`: the election-port decoders of `zk_wire::fle`.
//!
//! The input is used three ways:
//! - as one frame: `FleMessage::parse`, `Notification::parse`,
//!   `InitialMessage::parse` and `DynamicConfig::parse_bytes` (and its
//!   server iterator);
//! - as one direction of an election connection, cut into segments whose
//!   sizes come from the input's first byte, reassembled with `FleFramer`;
//! - through a `QuorumTracker` and a `QuorumAnalysis` as the two directions
//!   of one election connection.
//!
//! Checks: no panic, no endless iterator; a decoded notification reports
//! the length it was given and carries a config only from version 2; a
//! config iterates exactly the servers it counted; frames handed out never
//! add up to more than the input; after `finish` no link is left and every
//! reassembly chunk is back in the pool.
#![no_main]

use core::fmt::Write;
use core::net::SocketAddr;

use zk_wire::{ErrorCounts, Instant};
use zk_wire::fle::{DynamicConfig, FleFramer, FleMessage, InitialMessage, Notification};
use zk_wire::packet::{TcpFlags, TcpSegment};
use zk_wire::quorum::{Config, Link, QuorumTracker};
use zk_wire::quorum_analysis::QuorumAnalysis;
use zk_wire::stream::{ChunkPool, HalfStream, Item, StreamCounters};

struct Discard;

impl Write for Discard {
    fn write_str(&mut self, _: &str) -> core::fmt::Result {
        Ok(())
    }
}

fn one_frame(data: &[u8]) {
    let _ = write!(Discard, "{:?}", FleMessage::parse(data));
    let _ = write!(
        Discard,
        "{:?}",
        InitialMessage::parse(data).map(|m| m.addresses().count())
    );
    if let Ok(n) = Notification::parse(data) {
        assert_eq!(n.len, data.len());
        assert!(n.config.is_none() || n.version > 1);
        if let Some(Ok(c)) = n.dynamic_config() {
            assert_eq!(c.servers().count(), c.len());
        }
    }
    if let Ok(c) = DynamicConfig::parse_bytes(data) {
        assert_eq!(c.servers().count(), c.len());
        assert!(c.participants() <= c.len());
    }
}

fn segments(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let step = 1 + cut as usize % 97;
    let mut pool = ChunkPool::new(vec![0u8; 256 * 4], 256);
    let mut hs = HalfStream::new();
    if cut & 0x80 != 0 {
        hs.syn(&mut pool, 0);
    }
    let mut c = StreamCounters::default();
    let mut errors = ErrorCounts::ZERO;
    let mut total = 0usize;
    for (k, piece) in stream.chunks(step).enumerate() {
        hs.push(
            &mut pool,
            &FleFramer::default(),
            1 + (k * step) as u32,
            piece,
            piece.len(),
            &mut c,
            &mut errors,
            &mut |it| {
                if let Item::Frame(f) = it {
                    total += f.len();
                    let _ = FleMessage::parse(f);
                }
            },
        );
    }
    assert!(total <= stream.len());
    hs.close(&mut pool, &mut c);
    assert_eq!(pool.in_use(), 0);
}

fn tracker(data: &[u8]) {
    let a: SocketAddr = "10.0.0.3:40000".parse().unwrap();
    let b: SocketAddr = "10.0.0.1:3888".parse().unwrap();
    let mut t = QuorumTracker::new(
        vec![Link::EMPTY; 8],
        vec![0u8; 512 * 4],
        512,
        Config::default(),
    );
    let mut an = Box::new(QuorumAnalysis::default());
    let flags = TcpFlags {
        syn: false,
        ack: true,
        fin: false,
        rst: false,
        psh: true,
    };
    let (mut aseq, mut bseq) = (1u32, 1u32);
    let mut now = 1_000_000i64;
    let mut rest = data;
    while let Some((&h, tail)) = rest.split_first() {
        let n = (h as usize & 0x3f).min(tail.len());
        let (payload, tail) = tail.split_at(n);
        rest = tail;
        let from_a = h & 0x40 == 0;
        now += i64::from(h) * 10_000;
        let (src, dst, seq) = if from_a {
            (a, b, &mut aseq)
        } else {
            (b, a, &mut bseq)
        };
        let seg = TcpSegment {
            src,
            dst,
            seq: *seq,
            ack: 0,
            flags: TcpFlags {
                syn: h & 0x80 != 0 && n == 0,
                ..flags
            },
            window: 0,
            payload,
            wire_len: payload.len(),
        };
        *seq = seq.wrapping_add(n as u32);
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
    for e in an.elections() {
        assert!(e.closed);
        assert!(e.voters().len() <= zk_wire::quorum_analysis::MAX_VOTERS);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    one_frame(data);
    segments(data);
    tracker(data);
});
