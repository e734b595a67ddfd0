//! Amplifies real captures into a large one for throughput benches.
//!
//! The input captures are concatenated into one *template* (each file's
//! timeline after the previous one's, a gap between them), then the
//! template is replayed as many times as the wanted size needs. Every
//! replica rewrites the client address of every TCP connection (the low 32
//! bits of its IP become a replica-and-file id in 10.0.0.0/8, or in the
//! original prefix for IPv6), so each replica's flows are new connections to
//! the same servers; ports, sequence numbers and payloads are kept byte for
//! byte, and the checksums are patched (RFC 1624) so they stay as right as
//! they were.
//!
//! Replicas run `concurrency` at a time: replica `r` starts `r × span /
//! concurrency` after the first, and their packets are merged by timestamp,
//! so the output looks like many sessions talking at once and timestamps
//! never go backwards. Frames that are not TCP are dropped; frames of other
//! link types are rewritten as Ethernet II.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;

use anyhow::{Result, bail};
use zk_wire::packet::LinkType;

use crate::net::{self, Endpoint, Layers};
use crate::pcap::{Capture, FILE_HEADER_LEN, RECORD_HEADER_LEN, Writer};

/// Ports taken for servers when a connection's SYN was not captured
/// (ZooKeeper client, quorum and election defaults, and the ports of the
/// shared test captures).
pub const SERVER_PORTS: [u16; 8] = [2181, 2888, 3888, 2781, 2782, 2783, 2784, 20022];

/// How to amplify.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop after the replica that makes the output at least this large.
    pub size_bytes: u64,
    /// Replicas in flight at once.
    pub concurrency: usize,
    /// Gap between consecutive input files inside the template (µs).
    pub gap_us: i64,
    /// Timestamp of the first output packet (µs since the epoch).
    pub start_us: i64,
    /// Extra server ports (besides [`SERVER_PORTS`]) for telling clients
    /// from servers when no SYN was captured.
    pub server_ports: Vec<u16>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            size_bytes: 300 << 20,
            concurrency: 64,
            gap_us: 1_000_000,
            start_us: 1_700_000_000_000_000,
            server_ports: Vec::new(),
        }
    }
}

/// One TCP packet of the template.
#[derive(Debug, Clone)]
struct Packet {
    ts_us: i64,
    orig_len: u32,
    data: Vec<u8>,
    layers: Layers,
    /// Which end is the client: the source (else the destination).
    client_is_src: bool,
    file: u32,
}

/// The input captures, ready to replay.
#[derive(Debug, Clone)]
pub struct Template {
    packets: Vec<Packet>,
    files: u32,
    span_us: i64,
    snaplen: u32,
    /// Frames of the inputs that were not TCP (dropped).
    pub skipped: u64,
}

/// What [`amplify`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Replicas of the template written.
    pub replicas: u64,
    /// Packets written.
    pub packets: u64,
    /// Bytes written, pcap headers included.
    pub bytes: u64,
    /// Packets with a TCP payload.
    pub data_packets: u64,
    /// First and last timestamp written (µs).
    pub first_us: i64,
    /// Last timestamp written (µs).
    pub last_us: i64,
}

impl Template {
    /// Builds the template from captures, in the order given.
    pub fn new(captures: &[Capture], opts: &Options) -> Result<Template> {
        let mut packets = Vec::new();
        let mut skipped = 0;
        let mut offset = 0i64;
        let mut snaplen = 0u32;
        let is_server = |p: u16| SERVER_PORTS.contains(&p) || opts.server_ports.contains(&p);
        for (file, cap) in captures.iter().enumerate() {
            let Some(link) = LinkType::from_linktype(cap.link_type) else {
                bail!("file {file}: link type {} is not supported", cap.link_type);
            };
            snaplen = snaplen.max(cap.snaplen);
            let mut clients: HashMap<(Endpoint, Endpoint), Endpoint> = HashMap::new();
            let first = cap.records.first().map_or(0, |r| r.ts_us);
            let mut last = 0i64;
            let start = packets.len();
            for r in &cap.records {
                let Some(l) = net::locate(link, &r.data) else {
                    skipped += 1;
                    continue;
                };
                let (src, dst) = l.endpoints(&r.data);
                let key = if src < dst { (src, dst) } else { (dst, src) };
                let syn_only = l.tcp_flags(&r.data) & 0x12 == 0x02;
                let client = match clients.entry(key) {
                    Entry::Occupied(mut e) => {
                        if syn_only {
                            e.insert(src);
                        }
                        *e.get()
                    }
                    Entry::Vacant(e) => {
                        let c = if syn_only || (is_server(dst.port) && !is_server(src.port)) {
                            src
                        } else if is_server(src.port) && !is_server(dst.port) {
                            dst
                        } else if src.port > dst.port {
                            src
                        } else {
                            dst
                        };
                        *e.insert(c)
                    }
                };
                let (data, orig_len) = net::to_ethernet(link, &r.data, r.orig_len, &l);
                last = last.max(r.ts_us - first);
                packets.push(Packet {
                    ts_us: offset + last,
                    orig_len,
                    data,
                    layers: net::shifted(link, l),
                    client_is_src: client == src,
                    file: file as u32,
                });
            }
            if packets.len() > start {
                offset += last + opts.gap_us;
            }
        }
        if packets.is_empty() {
            bail!("the inputs hold no TCP segment");
        }
        Ok(Template {
            packets,
            files: captures.len() as u32,
            span_us: offset,
            snaplen: snaplen.max(65535),
            skipped,
        })
    }

    /// TCP packets in one replica.
    pub fn packets(&self) -> usize {
        self.packets.len()
    }

    /// Bytes one replica adds to the output.
    pub fn bytes_per_replica(&self) -> u64 {
        self.packets
            .iter()
            .map(|p| (RECORD_HEADER_LEN + p.data.len()) as u64)
            .sum()
    }

    /// Time one replica spans, gaps included (µs).
    pub fn span_us(&self) -> i64 {
        self.span_us
    }

    /// Replicas needed for an output of at least `size` bytes.
    pub fn replicas_for(&self, size: u64) -> u64 {
        let per = self.bytes_per_replica().max(1);
        size.saturating_sub(FILE_HEADER_LEN as u64)
            .div_ceil(per)
            .max(1)
    }

    /// Frame `i` of replica `r`, client address rewritten.
    fn frame(&self, r: u64, i: usize, buf: &mut Vec<u8>) {
        let p = &self.packets[i];
        buf.clear();
        buf.extend_from_slice(&p.data);
        // 10.0.0.0/8 minus its first address; wraps after 16M (replica, file) pairs.
        let id = (r * u64::from(self.files) + u64::from(p.file)) % 0xff_ffff + 1;
        p.layers
            .rewrite_addr(buf, p.client_is_src, 0x0a00_0000 | id as u32);
    }
}

/// Writes an amplified capture of `replicas` replicas (see the module docs).
pub fn amplify<W: Write>(t: &Template, replicas: u64, opts: &Options, out: W) -> Result<Stats> {
    let mut w = Writer::new(out, 1, t.snaplen)?;
    let k = opts.concurrency.max(1) as i64;
    let stagger = (t.span_us / k).max(1);
    // Min-heap of (timestamp, replica, packet index); replicas enter as
    // their start time comes up, so the heap stays about `concurrency` big.
    let mut heap = BinaryHeap::new();
    let start_of = |r: u64| opts.start_us + r as i64 * stagger;
    let mut next_replica = 0u64;
    let mut stats = Stats {
        replicas,
        first_us: opts.start_us,
        ..Stats::default()
    };
    let mut buf = Vec::with_capacity(t.snaplen as usize);
    loop {
        while next_replica < replicas
            && heap
                .peek()
                .is_none_or(|Reverse((ts, _, _))| start_of(next_replica) <= *ts)
        {
            let r = next_replica;
            heap.push(Reverse((start_of(r) + t.packets[0].ts_us, r, 0usize)));
            next_replica += 1;
        }
        let Some(Reverse((ts, r, i))) = heap.pop() else {
            break;
        };
        t.frame(r, i, &mut buf);
        let p = &t.packets[i];
        w.write(ts, p.orig_len, &buf)?;
        if p.layers.payload < buf.len() {
            stats.data_packets += 1;
        }
        stats.last_us = ts;
        if i + 1 < t.packets.len() {
            heap.push(Reverse((start_of(r) + t.packets[i + 1].ts_us, r, i + 1)));
        }
    }
    stats.packets = w.records;
    stats.bytes = w.bytes;
    w.finish()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::pcap;

    fn shared(name: &str) -> Capture {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/captures/zktraffic/"
        );
        Capture::read(std::path::Path::new(&format!("{dir}{name}"))).unwrap()
    }

    #[test]
    fn replicas_are_distinct_flows_with_the_same_payloads_in_time_order() {
        let caps = [shared("set_data.pcap"), shared("dump.pcap")];
        let opts = Options {
            concurrency: 4,
            ..Options::default()
        };
        let t = Template::new(&caps, &opts).unwrap();
        assert_eq!(t.packets(), 74 + 40);
        let stats = amplify(&t, 10, &opts, Vec::new()).unwrap();
        assert_eq!(stats.packets, 10 * 114);
        let mut out = Vec::new();
        amplify(&t, 10, &opts, &mut out).unwrap();
        assert_eq!(out.len() as u64, stats.bytes);
        let (_, recs) = pcap::records(&out).unwrap();
        assert!(
            recs.windows(2).all(|w| w[0].0 <= w[1].0),
            "timestamps go backwards"
        );

        let mut flows = HashSet::new();
        let mut payload_bytes = 0usize;
        for (_, _, data) in &recs {
            let l = net::locate(LinkType::Ethernet, data).unwrap();
            assert!(net::checksums_ok(data, &l).0, "IPv4 header checksum broken");
            let (s, d) = l.endpoints(data);
            let (client, server) = if s.port == 2181 { (d, s) } else { (s, d) };
            assert_eq!(server.port, 2181);
            flows.insert((client, server));
            payload_bytes += data.len() - l.payload;
        }
        // set_data.pcap has 6 connections, dump.pcap one.
        assert_eq!(flows.len(), 10 * 7);
        let orig: usize = caps
            .iter()
            .flat_map(|c| &c.records)
            .map(|r| {
                let l = net::locate(LinkType::Ethernet, &r.data).unwrap();
                r.data.len() - l.payload
            })
            .sum();
        assert_eq!(payload_bytes, 10 * orig);
    }

    #[test]
    fn replica_count_covers_the_wanted_size() {
        let t = Template::new(&[shared("multi.pcap")], &Options::default()).unwrap();
        let n = t.replicas_for(1 << 20);
        let stats = amplify(&t, n, &Options::default(), std::io::sink()).unwrap();
        assert!(stats.bytes >= 1 << 20);
        assert!(stats.bytes < (1 << 20) + t.bytes_per_replica() + 24);
    }
}
