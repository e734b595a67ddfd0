//! Just enough classic-pcap handling for the harness: read and write files
//! (either byte order, micro- or nanosecond stamps), find the TCP segments
//! of Ethernet/IPv4 frames, and build Ethernet/IPv4/TCP frames with valid
//! checksums (to inject packets into a capture).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

pub const LINKTYPE_ETHERNET: u32 = 1;

#[derive(Clone, Debug)]
pub struct PcapFile {
    /// The 24-byte global header as read (written back unchanged).
    pub header: [u8; 24],
    pub big_endian: bool,
    pub linktype: u32,
    pub records: Vec<Record>,
}

#[derive(Clone, Debug)]
pub struct Record {
    pub ts_sec: u32,
    pub ts_frac: u32,
    pub orig_len: u32,
    pub data: Vec<u8>,
    /// Offset of this record's 16-byte header in the file it came from.
    pub offset: usize,
}

fn u32_at(b: &[u8], off: usize, be: bool) -> u32 {
    let a: [u8; 4] = b[off..off + 4].try_into().unwrap();
    if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

impl PcapFile {
    pub fn parse(bytes: &[u8]) -> io::Result<PcapFile> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        if bytes.len() < 24 {
            return Err(bad("shorter than a pcap header"));
        }
        let magic_le = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        let big_endian = match magic_le {
            0xa1b2_c3d4 | 0xa1b2_3c4d => false,
            0xd4c3_b2a1 | 0x4d3c_b2a1 => true,
            _ => return Err(bad("not a classic pcap file")),
        };
        let linktype = u32_at(bytes, 20, big_endian);
        let mut records = Vec::new();
        let mut off = 24;
        while off + 16 <= bytes.len() {
            let incl = u32_at(bytes, off + 8, big_endian) as usize;
            if off + 16 + incl > bytes.len() {
                break; // truncated last record
            }
            records.push(Record {
                ts_sec: u32_at(bytes, off, big_endian),
                ts_frac: u32_at(bytes, off + 4, big_endian),
                orig_len: u32_at(bytes, off + 12, big_endian),
                data: bytes[off + 16..off + 16 + incl].to_vec(),
                offset: off,
            });
            off += 16 + incl;
        }
        Ok(PcapFile {
            header: bytes[..24].try_into().unwrap(),
            big_endian,
            linktype,
            records,
        })
    }

    pub fn read(path: &Path) -> io::Result<PcapFile> {
        Self::parse(&std::fs::read(path)?)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header.to_vec();
        for r in &self.records {
            put_u32(&mut out, r.ts_sec, self.big_endian);
            put_u32(&mut out, r.ts_frac, self.big_endian);
            put_u32(&mut out, r.data.len() as u32, self.big_endian);
            put_u32(
                &mut out,
                r.orig_len.max(r.data.len() as u32),
                self.big_endian,
            );
            out.extend_from_slice(&r.data);
        }
        out
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.to_bytes())
    }
}

impl PcapFile {
    /// The same records as a pcapng file (one section, one interface with
    /// microsecond timestamps, one Enhanced Packet Block per record), in the
    /// file's own byte order.
    pub fn to_pcapng(&self) -> Vec<u8> {
        fn u16b(v: u16, be: bool) -> [u8; 2] {
            if be { v.to_be_bytes() } else { v.to_le_bytes() }
        }
        fn u32b(v: u32, be: bool) -> [u8; 4] {
            if be { v.to_be_bytes() } else { v.to_le_bytes() }
        }
        let be = self.big_endian;
        let mut out = Vec::new();
        let block = |out: &mut Vec<u8>, kind: u32, body: &[u8]| {
            let pad = (4 - body.len() % 4) % 4;
            let total = (12 + body.len() + pad) as u32;
            out.extend_from_slice(&u32b(kind, be));
            out.extend_from_slice(&u32b(total, be));
            out.extend_from_slice(body);
            out.extend(std::iter::repeat_n(0u8, pad));
            out.extend_from_slice(&u32b(total, be));
        };
        // Section Header Block: byte-order magic, version 1.0, unknown length.
        let mut shb = u32b(0x1A2B_3C4D, be).to_vec();
        shb.extend_from_slice(&u16b(1, be));
        shb.extend_from_slice(&u16b(0, be));
        shb.extend_from_slice(&[0xff; 8]);
        block(&mut out, 0x0A0D_0D0A, &shb);
        // Interface Description Block (default resolution: microseconds).
        let mut idb = u16b(self.linktype as u16, be).to_vec();
        idb.extend_from_slice(&u16b(0, be));
        idb.extend_from_slice(&u32b(262_144, be));
        block(&mut out, 1, &idb);
        for r in &self.records {
            let ts = u64::from(r.ts_sec) * 1_000_000 + u64::from(r.ts_frac);
            let mut epb = u32b(0, be).to_vec();
            epb.extend_from_slice(&u32b((ts >> 32) as u32, be));
            epb.extend_from_slice(&u32b(ts as u32, be));
            epb.extend_from_slice(&u32b(r.data.len() as u32, be));
            epb.extend_from_slice(&u32b(r.orig_len, be));
            epb.extend_from_slice(&r.data);
            block(&mut out, 6, &epb);
        }
        out
    }
}

/// A TCP segment found in a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSeg {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: Vec<u8>,
}

pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// The TCP segment of an Ethernet/IPv4 frame, if it is one.
pub fn tcp_segment(frame: &[u8]) -> Option<TcpSeg> {
    if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    if ip[0] >> 4 != 4 || ip[9] != 6 {
        return None;
    }
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    if total > ip.len() || ihl + 20 > total {
        return None;
    }
    let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let t = &ip[ihl..total];
    let doff = ((t[12] >> 4) as usize) * 4;
    if doff < 20 || doff > t.len() {
        return None;
    }
    Some(TcpSeg {
        src: SocketAddrV4::new(src_ip, u16::from_be_bytes([t[0], t[1]])),
        dst: SocketAddrV4::new(dst_ip, u16::from_be_bytes([t[2], t[3]])),
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
        flags: t[13],
        payload: t[doff..].to_vec(),
    })
}

fn checksum(data: &[u8], mut sum: u32) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [b] = chunks.remainder() {
        sum += (*b as u32) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet/IPv4/TCP frame with valid IP and TCP checksums.
pub fn build_tcp_frame(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend_from_slice(&src.port().to_be_bytes());
    tcp.extend_from_slice(&dst.port().to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.push(5 << 4);
    tcp.push(flags);
    tcp.extend_from_slice(&65535u16.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]);
    tcp.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.ip().octets());
    pseudo.extend_from_slice(&dst.ip().octets());
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    let mut sum = 0u32;
    for c in pseudo.chunks_exact(2) {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    let ck = checksum(&tcp, sum);
    tcp[16..18].copy_from_slice(&ck.to_be_bytes());

    let mut ip = Vec::with_capacity(20 + tcp.len());
    ip.push(0x45);
    ip.push(0);
    ip.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0]); // id 0, DF
    ip.push(64);
    ip.push(6);
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(&src.ip().octets());
    ip.extend_from_slice(&dst.ip().octets());
    let ck = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    ip.extend_from_slice(&tcp);

    let mut eth = vec![0u8; 12];
    eth.extend_from_slice(&[0x08, 0x00]);
    eth.extend_from_slice(&ip);
    eth
}

/// (seq, payload length) of the data-carrying segments from `from` to
/// `to`, in capture order, retransmissions (same seq and length) dropped.
pub fn data_segments(p: &PcapFile, from: SocketAddrV4, to: SocketAddrV4) -> Vec<(u32, usize)> {
    let mut seen = std::collections::HashSet::new();
    p.records
        .iter()
        .filter_map(|r| tcp_segment(&r.data))
        .filter(|s| s.src == from && s.dst == to && !s.payload.is_empty())
        .map(|s| (s.seq, s.payload.len()))
        .filter(|k| seen.insert(*k))
        .collect()
}

/// Payload lengths of the data-carrying segments from `from` to `to` (in
/// capture order, without retransmissions).
pub fn payload_lengths(p: &PcapFile, from: SocketAddrV4, to: SocketAddrV4) -> Vec<usize> {
    data_segments(p, from, to)
        .into_iter()
        .map(|(_, l)| l)
        .collect()
}

/// Number of retransmitted data segments (same seq and length seen again).
pub fn retransmissions(p: &PcapFile, from: SocketAddrV4, to: SocketAddrV4) -> usize {
    let all = p
        .records
        .iter()
        .filter_map(|r| tcp_segment(&r.data))
        .filter(|s| s.src == from && s.dst == to && !s.payload.is_empty())
        .count();
    all - data_segments(p, from, to).len()
}

/// Bytes of stream covered by the data segments from `from` to `to`: from
/// the first segment's seq to the highest end (sequence wrap handled).
pub fn stream_span(p: &PcapFile, from: SocketAddrV4, to: SocketAddrV4) -> u64 {
    let segs = data_segments(p, from, to);
    let Some(&(first, _)) = segs.first() else {
        return 0;
    };
    segs.iter()
        .map(|(seq, len)| seq.wrapping_sub(first) as u64 + *len as u64)
        .max()
        .unwrap_or(0)
}

/// A deterministic pseudo-random byte source (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_parse() {
        let a = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40000);
        let b = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 2181);
        let f = build_tcp_frame(a, b, 7, 9, tcp_flags::ACK | tcp_flags::PSH, b"hello");
        let s = tcp_segment(&f).unwrap();
        assert_eq!((s.src, s.dst, s.seq, s.ack), (a, b, 7, 9));
        assert_eq!(s.payload, b"hello");
        // IP header checksum verifies to zero.
        assert_eq!(checksum(&f[14..34], 0), 0);
        let mut file = PcapFile {
            header: [0; 24],
            big_endian: false,
            linktype: 1,
            records: vec![],
        };
        file.header[..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        file.header[20..24].copy_from_slice(&1u32.to_le_bytes());
        file.records.push(Record {
            ts_sec: 1,
            ts_frac: 2,
            orig_len: f.len() as u32,
            data: f.clone(),
            offset: 0,
        });
        let back = PcapFile::parse(&file.to_bytes()).unwrap();
        assert_eq!(back.records.len(), 1);
        assert_eq!(back.records[0].data, f);
        assert_eq!(back.records[0].offset, 24);
    }
}
