//! Seed corpora cut out of real captures, one directory per target:
//!
//! - `packet/`: every captured frame, plus each TCP frame re-wrapped in the
//!   other link types (Linux cooked v1/v2, BSD loopback both orders, raw IP,
//!   802.1Q and QinQ tags);
//! - `frame/`: every length-prefixed frame body of every TCP direction;
//! - `reassembly/`: every TCP direction as a stream plus the capture's own
//!   segmentation (as [`crate::reassembly::Case`]s), with a large and a tiny
//!   chunk;
//! - `tracker/`: every capture's port-2181 traffic mapped onto the two
//!   synthetic clients (as [`crate::tracker`] records), with roomy and tiny
//!   reassembly pools.
//!
//! File names are a hash of the content, so re-running adds nothing twice.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use zk_wire::packet::{self, LinkType};

use crate::reassembly::{Case, Op};
use crate::tracker::{self, Record, SEQ0};

/// Seeds written per target.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// `packet/` seeds.
    pub packet: usize,
    /// `frame/` seeds.
    pub frame: usize,
    /// `reassembly/` seeds.
    pub reassembly: usize,
    /// `tracker/` seeds.
    pub tracker: usize,
}

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn put(dir: &Path, data: &[u8], n: &mut usize) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let path = dir.join(format!("seed-{:016x}", fnv(data)));
    if !path.exists() {
        fs::write(path, data)?;
        *n += 1;
    }
    Ok(())
}

/// One TCP direction of a capture.
#[derive(Default)]
struct Direction {
    /// Sequence number of stream byte 0.
    base: Option<u32>,
    syn: bool,
    stream: Vec<u8>,
    ops: Vec<Op>,
}

/// Longest stream kept per direction: longer inputs only slow libFuzzer down.
const MAX_STREAM: usize = 8192;

impl Direction {
    fn add(&mut self, seq: u32, payload: &[u8]) {
        let base = *self.base.get_or_insert(seq);
        let Ok(off) = usize::try_from(seq.wrapping_sub(base) as i32) else {
            return;
        };
        if off + payload.len() > MAX_STREAM {
            return;
        }
        if self.stream.len() < off + payload.len() {
            self.stream.resize(off + payload.len(), 0);
        }
        self.stream[off..off + payload.len()].copy_from_slice(payload);
        for (i, piece) in payload.chunks(255).enumerate() {
            self.ops.push(Op {
                offset: (off + i * 255) as u16,
                len: piece.len() as u8,
                extra: 0,
                close: false,
                cut: false,
                syn: false,
            });
        }
    }

    /// Whole length-prefixed frame bodies from the start of the stream.
    fn bodies(&self) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(len) = self.stream.get(at..at + 4) {
            let n = i32::from_be_bytes(len.try_into().unwrap());
            let Ok(n) = usize::try_from(n) else { break };
            let Some(body) = self.stream.get(at + 4..at + 4 + n) else {
                break;
            };
            out.push(body);
            at += 4 + n;
        }
        out
    }
}

/// Re-wraps an Ethernet/IP frame in other link-layer headers.
fn link_variants(eth: &[u8]) -> Vec<Vec<u8>> {
    let Some(ip) = eth.get(14..) else {
        return Vec::new();
    };
    let (ethertype, v6) = match ip.first().map(|b| b >> 4) {
        Some(4) => ([0x08, 0x00], false),
        Some(6) => ([0x86, 0xdd], true),
        _ => return Vec::new(),
    };
    let cat = |head: &[u8]| [head, ip].concat();
    let mut sll = vec![0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
    sll.extend_from_slice(&ethertype);
    let mut sll2 = ethertype.to_vec();
    sll2.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let af: u32 = if v6 { 30 } else { 2 };
    let mut vlan = eth[..12].to_vec();
    vlan.extend_from_slice(&[0x88, 0xa8, 0, 7, 0x81, 0x00, 0, 42]);
    vlan.extend_from_slice(&ethertype);
    vec![
        cat(&sll),
        cat(&sll2),
        cat(&af.to_le_bytes()),
        cat(&af.to_be_bytes()),
        ip.to_vec(),
        cat(&vlan),
    ]
}

/// Writes the seeds of every capture under `out/<target>/`.
pub fn write_all(captures: &[impl AsRef<Path>], out: &Path) -> io::Result<Counts> {
    let mut n = Counts::default();
    for path in captures {
        let bytes = fs::read(path)?;
        let Some((link, records)) = crate::pcap::read(&bytes) else {
            continue;
        };
        let Some(link) = LinkType::from_linktype(link) else {
            continue;
        };
        let mut dirs: HashMap<(SocketAddr, SocketAddr), Direction> = HashMap::new();
        let mut order = Vec::new();
        // Tracker seed: port-2181 connections onto clients A and B.
        let mut clients: HashMap<SocketAddr, u8> = HashMap::new();
        let mut offsets: HashMap<(SocketAddr, bool), u32> = HashMap::new();
        let mut next = SEQ0;
        let mut last_ts = None;
        let mut tracker_input = vec![0x0f];
        let mut variants = 0;
        for &(ts, frame) in &records {
            put(&out.join("packet"), frame, &mut n.packet)?;
            let Ok(Some(seg)) = packet::parse(link, frame) else {
                continue;
            };
            if link == LinkType::Ethernet && variants < 8 && !seg.payload.is_empty() {
                variants += 1;
                for v in link_variants(frame) {
                    put(&out.join("packet"), &v, &mut n.packet)?;
                }
            }
            let key = (seg.src, seg.dst);
            let d = dirs.entry(key).or_insert_with(|| {
                order.push(key);
                Direction::default()
            });
            if seg.flags.syn {
                d.syn = true;
                d.base = Some(seg.seq.wrapping_add(1));
            }
            if !seg.payload.is_empty() {
                d.add(seg.seq, seg.payload);
            }

            let (client, from_client) = if seg.dst.port() == 2181 {
                (seg.src, true)
            } else if seg.src.port() == 2181 {
                (seg.dst, false)
            } else {
                continue;
            };
            if tracker_input.len() > 1 << 16 {
                continue;
            }
            let n_clients = clients.len() as u8;
            let which = *clients.entry(client).or_insert(n_clients % 2);
            let dir = which * 2 + u8::from(!from_client);
            let off = *offsets
                .entry((client, from_client))
                .or_insert_with(|| next[usize::from(dir)].wrapping_sub(seg.seq));
            let seq = seg.seq.wrapping_add(off);
            let dt = last_ts.map_or(0, |t| ts - t);
            last_ts = Some(ts);
            Record {
                dir,
                syn: seg.flags.syn,
                ack: seg.flags.ack,
                fin: seg.flags.fin,
                rst: seg.flags.rst,
                jump: seq.wrapping_sub(next[usize::from(dir)]) as i32,
                cut: seg.wire_len.saturating_sub(seg.payload.len()).min(255) as u8,
                dt: tracker::dt_code(dt),
                payload: seg.payload,
            }
            .encode(&mut tracker_input);
            next[usize::from(dir)] = seg.seq_end().wrapping_add(off);
        }
        if tracker_input.len() > 1 {
            put(&out.join("tracker"), &tracker_input, &mut n.tracker)?;
            // The same traffic through 64-byte chunks, two of them.
            tracker_input[0] = 0x04;
            put(&out.join("tracker"), &tracker_input, &mut n.tracker)?;
        }
        for key in order {
            let d = &dirs[&key];
            if d.stream.is_empty() {
                continue;
            }
            for body in d.bodies() {
                put(&out.join("frame"), body, &mut n.frame)?;
            }
            // 2048-byte chunks and one of them, or 64-byte chunks and two;
            // no frame length limit below 1 MiB.
            for config in [3 << 6 | 1 << 4 | 3 << 2, 3 << 6 | 2 << 4] {
                let case = Case {
                    config: config | u8::from(d.syn),
                    seq0: d.base.unwrap_or(0),
                    isn_shift: 0,
                    stream: &d.stream,
                    ops: d.ops.clone(),
                };
                put(&out.join("reassembly"), &case.encode(), &mut n.reassembly)?;
            }
        }
    }
    // A few hand-made reassembly cases: the toy framer's frames, reordered.
    let frames: Vec<u8> = (0u8..12)
        .flat_map(|i| {
            let body_len = 1 + usize::from(i) * 7;
            let mut f = (body_len as u32).to_be_bytes().to_vec();
            f.push(0xa0 | (i & 0xf));
            f.extend(std::iter::repeat_n(i, body_len - 1));
            f
        })
        .collect();
    for (k, config) in [0u8, 1, 0x11, 0x25, 0x4d, 0xfd].into_iter().enumerate() {
        let mut ops = Vec::new();
        let mut off = 0;
        while off < frames.len() {
            let len = (7 + 13 * k + off % 11).min(frames.len() - off).min(255);
            ops.push(Op {
                offset: off as u16,
                len: len as u8,
                extra: 0,
                close: false,
                cut: false,
                syn: false,
            });
            off += len;
        }
        ops.swap(1, 3);
        ops.push(ops[2]);
        let case = Case {
            config,
            seq0: u32::MAX - 20,
            isn_shift: 0,
            stream: &frames,
            ops,
        };
        put(&out.join("reassembly"), &case.encode(), &mut n.reassembly)?;
    }
    Ok(n)
}
