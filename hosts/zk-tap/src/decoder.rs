//! Frames in, statistics out: zk-wire's pipeline behind one call.
//!
//! `packet::parse` (L2-L4) -> `flow::Tracker` (reassembly, pairing,
//! latency) -> `stats::Tables` (the zk-stats tables). The decoder keeps
//! the totals since start: an appliance is scraped by Prometheus, which
//! computes rates itself, so it holds one set of tables, not a window and
//! a total.

use smoltcp::time::Instant;
use zk_wire::ErrorCounts;
use zk_wire::flow::{Config, Flow, Tracker};
use zk_wire::packet::{self, LinkType};
use zk_wire::stats::{Options, Slot, Tables};

/// What the decoder saw, beyond zk-wire's own counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// Frames fed in.
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Frames that were not TCP (ARP, UDP, ...).
    pub non_tcp: u64,
    /// Frames whose L2-L4 headers did not parse, by [`zk_wire::Error::index`].
    pub link_errors: ErrorCounts,
    /// Timestamp of the last frame (µs on the caller's clock).
    pub last_frame_us: i64,
}

/// A TCP SYN seen: who opens a connection to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syn {
    /// The opener.
    pub src: core::net::SocketAddr,
    /// The address it connects to.
    pub dst: core::net::SocketAddr,
}

/// zk-wire's flow tracker and stats tables over caller storage.
pub struct Decoder<'a> {
    link: LinkType,
    tracker: Tracker<&'a mut [Flow], &'a mut [u8]>,
    tables: Tables<&'a mut [Slot]>,
    /// Frames, bytes, link-layer errors.
    pub health: Health,
}

/// Storage and settings of a [`Decoder`].
pub struct DecoderParts<'a> {
    /// Connection slots.
    pub flows: &'a mut [Flow],
    /// Reassembly pool, cut into chunks of `chunk_size` bytes.
    pub chunks: &'a mut [u8],
    /// Bytes per reassembly chunk (the largest frame decoded whole).
    pub chunk_size: usize,
    /// Counters of the per-path table.
    pub paths: &'a mut [Slot],
    /// Counters of the per-client table.
    pub ips: &'a mut [Slot],
    /// Counters of the per-identity table.
    pub auths: &'a mut [Slot],
}

impl<'a> Decoder<'a> {
    /// A decoder of `link` frames for the server ports of `config`.
    pub fn new(parts: DecoderParts<'a>, link: LinkType, config: Config, opts: Options) -> Self {
        Decoder {
            link,
            tracker: Tracker::new(parts.flows, parts.chunks, parts.chunk_size, config),
            tables: Tables::new(parts.paths, parts.ips, parts.auths, opts),
            health: Health::default(),
        }
    }

    /// Decodes one frame received at `ts`; returns the endpoints of a TCP
    /// SYN (a connection being opened), for the appliance's own admission
    /// of HTTP connections.
    pub fn frame(&mut self, ts: Instant, frame: &[u8]) -> Option<Syn> {
        let h = &mut self.health;
        h.frames += 1;
        h.bytes += frame.len() as u64;
        h.last_frame_us = ts.total_micros();
        match packet::parse(self.link, frame) {
            Ok(Some(seg)) => {
                let t = &mut self.tables;
                self.tracker.process(ts, &seg, &mut |ev| t.record(ev));
                (seg.flags.syn && !seg.flags.ack).then_some(Syn {
                    src: seg.src,
                    dst: seg.dst,
                })
            }
            Ok(None) => {
                h.non_tcp += 1;
                None
            }
            Err(e) => {
                h.link_errors.add(e);
                None
            }
        }
    }

    /// End of input (a capture file): forgets every flow, counting what
    /// they still held (a four-letter word's answer is only complete when
    /// its connection ends).
    pub fn finish(&mut self, now: Instant) {
        let t = &mut self.tables;
        self.tracker.finish(now, &mut |ev| t.record(ev));
    }

    /// The tracker (counters, flows).
    pub fn tracker(&self) -> &Tracker<&'a mut [Flow], &'a mut [u8]> {
        &self.tracker
    }

    /// The stats tables, with pending updates flushed.
    pub fn tables(&mut self) -> &Tables<&'a mut [Slot]> {
        self.tables.flush();
        &self.tables
    }
}
