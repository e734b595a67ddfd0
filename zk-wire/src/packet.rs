//! Link layer to TCP: find the TCP segment inside one captured frame, zero-copy.
//!
//! This is the first stage of the pipeline (`frame -> packet -> stream -> ...`).
//! It never copies: the returned [`TcpSegment`] borrows its payload from the
//! frame. Formats decoded here, and where each is defined:
//!
//! - pcap link-layer header types: the `LINKTYPE_*` values found in pcap and
//!   pcapng headers and the `DLT_*` values libpcap's `pcap_datalink()`
//!   returns, listed at <https://www.tcpdump.org/linktypes.html> and in
//!   libpcap's `pcap/dlt.h`.
//! - Ethernet II (IEEE 802.3 clause 3) with any stack of VLAN tags:
//!   IEEE 802.1Q (TPID 0x8100), IEEE 802.1ad (0x88a8) and the pre-standard
//!   QinQ TPID 0x9100.
//! - Linux cooked capture v1 and v2: tcpdump.org `LINKTYPE_LINUX_SLL.html`
//!   (16-byte header, protocol at offset 14) and `LINKTYPE_LINUX_SLL2.html`
//!   (20-byte header, protocol at offset 0).
//! - BSD loopback: `LINKTYPE_NULL` (4-byte address family in the capturing
//!   host's byte order) and `LINKTYPE_LOOP` (the same, big-endian).
//! - IPv4: RFC 791 (header, options, fragmentation).
//! - IPv6: RFC 8200 (header; extension headers and their chaining, §4).
//! - TCP: RFC 9293 §3.1 (header, data offset, control bits).
//!
//! Headers are read through `smoltcp::wire` views. Checksums are never
//! verified: captures taken on the sending host (and all loopback captures)
//! carry checksums the NIC was meant to fill in later. Only the first IP
//! fragment is decoded; later fragments hold no TCP header.

use core::net::{IpAddr, SocketAddr};

use smoltcp::wire::{
    EthernetFrame, IPV4_HEADER_LEN, IPV6_HEADER_LEN, IpProtocol, Ipv4Packet, Ipv6ExtHeader,
    Ipv6FragmentHeader, Ipv6Packet, TcpPacket,
};

use crate::{Error, Result};

/// Most VLAN tags accepted in front of one Ethernet payload; more is [`Error::Malformed`].
pub const MAX_VLAN_TAGS: usize = 8;

/// Most IPv6 extension headers accepted before TCP; more is [`Error::Malformed`].
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

/// EtherType values (IEEE 802 numbers) this module acts on.
mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag.
    pub const QINQ_OLD: u16 = 0x9100;
}

/// Address families in `LINKTYPE_NULL` / `LINKTYPE_LOOP` headers.
mod af {
    pub const INET: u32 = 2;
    /// AF_INET6 on NetBSD, OpenBSD and BSD/OS.
    pub const INET6_BSD: u32 = 24;
    /// AF_INET6 on FreeBSD and DragonFly.
    pub const INET6_FREEBSD: u32 = 28;
    /// AF_INET6 on Darwin (macOS, iOS).
    pub const INET6_DARWIN: u32 = 30;
}

/// Fixed link-layer header sizes.
mod field {
    /// `LINKTYPE_NULL` / `LINKTYPE_LOOP`: the address family word.
    pub const LOOPBACK_LEN: usize = 4;
    /// `LINKTYPE_LINUX_SLL`: protocol at bytes 14..16.
    pub const SLL_LEN: usize = 16;
    /// `LINKTYPE_LINUX_SLL2`: protocol at bytes 0..2.
    pub const SLL2_LEN: usize = 20;
    /// One VLAN tag after its TPID: TCI (2) + inner EtherType (2).
    pub const VLAN_TAG_LEN: usize = 4;
    /// Fixed IPv6 extension header size (and the size unit of the generic ones).
    pub const IPV6_EXT_LEN: usize = 8;
    /// TCP header without options.
    pub const TCP_HEADER_LEN: usize = 20;
}

/// pcap link types we decode (numbers are `LINKTYPE_*`/`DLT_*` values as
/// found in pcap/pcapng headers and from libpcap's `datalink()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): Ethernet II, with any stack of VLAN tags.
    Ethernet,
    /// `LINKTYPE_NULL` (0): BSD loopback, 4-byte address family in the
    /// capturing host's byte order (both orders are accepted).
    Null,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, address family big-endian.
    Loop,
    /// `LINKTYPE_LINUX_SLL` (113): Linux cooked capture v1 (`-i any`).
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux cooked capture v2.
    LinuxSll2,
    /// `LINKTYPE_RAW` (101; `DLT_RAW` is 12, or 14 on OpenBSD): bare IP,
    /// the version nibble decides v4 or v6.
    RawIp,
    /// `LINKTYPE_IPV4` (228): bare IPv4.
    Ipv4,
    /// `LINKTYPE_IPV6` (229): bare IPv6.
    Ipv6,
}

impl LinkType {
    /// Every link type, in declaration order.
    pub const ALL: [LinkType; 8] = [
        LinkType::Ethernet,
        LinkType::Null,
        LinkType::Loop,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
        LinkType::Ipv4,
        LinkType::Ipv6,
    ];

    /// The link type for a `LINKTYPE_*` or `DLT_*` number, or `None` if we
    /// do not decode it. Only the low 16 bits count: a classic pcap header
    /// keeps FCS information in the high bits (a trailing FCS is then cut
    /// off like Ethernet padding, by the IP length).
    pub const fn from_linktype(v: u32) -> Option<Self> {
        match v & 0xffff {
            0 => Some(LinkType::Null),
            1 => Some(LinkType::Ethernet),
            12 | 14 | 101 => Some(LinkType::RawIp),
            108 => Some(LinkType::Loop),
            113 => Some(LinkType::LinuxSll),
            228 => Some(LinkType::Ipv4),
            229 => Some(LinkType::Ipv6),
            276 => Some(LinkType::LinuxSll2),
            _ => None,
        }
    }

    /// The canonical `LINKTYPE_*` number (what a pcap file header would say).
    pub const fn linktype(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
        }
    }

    /// The `LINKTYPE_*` name without its prefix, as tcpdump.org spells it.
    pub const fn name(self) -> &'static str {
        match self {
            LinkType::Ethernet => "ETHERNET",
            LinkType::Null => "NULL",
            LinkType::Loop => "LOOP",
            LinkType::LinuxSll => "LINUX_SLL",
            LinkType::LinuxSll2 => "LINUX_SLL2",
            LinkType::RawIp => "RAW",
            LinkType::Ipv4 => "IPV4",
            LinkType::Ipv6 => "IPV6",
        }
    }
}

/// The TCP control bits a flow tracker needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TcpFlags {
    /// SYN: synchronize sequence numbers (connection open).
    pub syn: bool,
    /// ACK: the acknowledgment number is significant.
    pub ack: bool,
    /// FIN: no more data from the sender.
    pub fin: bool,
    /// RST: reset the connection.
    pub rst: bool,
    /// PSH: push function.
    pub psh: bool,
}

/// One TCP segment, borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TcpSegment<'a> {
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// Sequence number of the first payload byte (of the SYN, if set).
    pub seq: u32,
    /// Acknowledgment number (meaningful when `flags.ack` is set).
    pub ack: u32,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window field, unscaled.
    pub window: u16,
    /// Payload bytes present in the capture (cut to the IP datagram's own
    /// length: Ethernet pads short frames, the padding is NOT payload).
    pub payload: &'a [u8],
    /// Payload length the IP header says was on the wire (> `payload.len()`
    /// when the capture's snaplen cut the frame).
    pub wire_len: usize,
}

impl TcpSegment<'_> {
    /// Whether the capture holds less payload than was on the wire (snaplen cut).
    pub const fn is_cut(&self) -> bool {
        self.payload.len() < self.wire_len
    }

    /// Sequence space the segment occupies: payload on the wire, plus one
    /// each for SYN and FIN.
    pub const fn seq_len(&self) -> usize {
        self.wire_len
            .saturating_add(self.flags.syn as usize)
            .saturating_add(self.flags.fin as usize)
    }

    /// The sequence number just past this segment (`seq + seq_len`, mod 2^32).
    pub const fn seq_end(&self) -> u32 {
        // Truncating to u32 is the modulo-2^32 sequence arithmetic we want.
        self.seq.wrapping_add(self.seq_len() as u32)
    }
}

/// Parse one captured frame. `Ok(None)` for frames that are not TCP over IP
/// (ARP, UDP, ICMP, non-first IPv4/IPv6 fragments, ...) — these are not errors.
///
/// Errors: [`Error::Truncated`] when a header is cut by the capture,
/// [`Error::Malformed`] for impossible fields (IPv4 IHL < 5, TCP data offset
/// < 5 or beyond the segment, IPv4 total length < header length, unknown IP
/// version, too many VLAN tags or IPv6 extension headers).
///
/// An IPv4 total length (or IPv6 payload length) of 0 is taken to mean "the
/// rest of the capture", as TSO/BIG TCP captures on the sending host show it.
pub fn parse(link: LinkType, frame: &[u8]) -> Result<Option<TcpSegment<'_>>> {
    match link {
        LinkType::Ethernet => {
            let eth = EthernetFrame::new_checked(frame).map_err(|_| Error::Truncated)?;
            by_ethertype(u16::from(eth.ethertype()), eth.payload())
        }
        LinkType::LinuxSll => {
            let (&[.., hi, lo], rest) = frame
                .split_first_chunk::<{ field::SLL_LEN }>()
                .ok_or(Error::Truncated)?;
            by_ethertype(u16::from_be_bytes([hi, lo]), rest)
        }
        LinkType::LinuxSll2 => {
            let (&[hi, lo, ..], rest) = frame
                .split_first_chunk::<{ field::SLL2_LEN }>()
                .ok_or(Error::Truncated)?;
            by_ethertype(u16::from_be_bytes([hi, lo]), rest)
        }
        LinkType::Null => {
            let (&family, rest) = frame
                .split_first_chunk::<{ field::LOOPBACK_LEN }>()
                .ok_or(Error::Truncated)?;
            // Host byte order of the capturing machine: every family we know
            // is < 0x10000, so a value that large was written the other way.
            let le = u32::from_le_bytes(family);
            let family = if le > 0xffff { le.swap_bytes() } else { le };
            by_family(family, rest)
        }
        LinkType::Loop => {
            let (&family, rest) = frame
                .split_first_chunk::<{ field::LOOPBACK_LEN }>()
                .ok_or(Error::Truncated)?;
            by_family(u32::from_be_bytes(family), rest)
        }
        LinkType::RawIp => match frame.first() {
            Some(b) if b >> 4 == 4 => ipv4(frame),
            Some(b) if b >> 4 == 6 => ipv6(frame),
            Some(_) => Err(Error::Malformed),
            None => Err(Error::Truncated),
        },
        LinkType::Ipv4 => ipv4(frame),
        LinkType::Ipv6 => ipv6(frame),
    }
}

/// Dispatch on an EtherType (Ethernet, Linux cooked), walking VLAN tags.
#[inline]
fn by_ethertype(ethertype: u16, payload: &[u8]) -> Result<Option<TcpSegment<'_>>> {
    match ethertype {
        ethertype::IPV4 => ipv4(payload),
        ethertype::IPV6 => ipv6(payload),
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => vlan(payload),
        _ => Ok(None),
    }
}

/// Walk a stack of VLAN tags; `payload` starts at the first tag's TCI.
fn vlan(mut payload: &[u8]) -> Result<Option<TcpSegment<'_>>> {
    for _ in 0..MAX_VLAN_TAGS {
        let (&[_, _, hi, lo], rest) = payload
            .split_first_chunk::<{ field::VLAN_TAG_LEN }>()
            .ok_or(Error::Truncated)?;
        payload = rest;
        match u16::from_be_bytes([hi, lo]) {
            ethertype::IPV4 => return ipv4(payload),
            ethertype::IPV6 => return ipv6(payload),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {}
            _ => return Ok(None),
        }
    }
    Err(Error::Malformed)
}

/// Dispatch on a BSD loopback address family.
#[inline]
fn by_family(family: u32, payload: &[u8]) -> Result<Option<TcpSegment<'_>>> {
    match family {
        af::INET => ipv4(payload),
        af::INET6_BSD | af::INET6_FREEBSD | af::INET6_DARWIN => ipv6(payload),
        _ => Ok(None),
    }
}

/// IPv4 (RFC 791): options skipped, padding cut, snaplen cuts tolerated.
fn ipv4(packet: &[u8]) -> Result<Option<TcpSegment<'_>>> {
    // smoltcp's `Ipv4Packet::new_checked` refuses a packet shorter than its
    // total length (every snaplen-cut capture), so check here and read the
    // fixed header through a view over exactly its 20 bytes.
    let fixed = packet
        .first_chunk::<IPV4_HEADER_LEN>()
        .ok_or(Error::Truncated)?;
    let ip = Ipv4Packet::new_unchecked(fixed);
    if ip.version() != 4 {
        return Err(Error::Malformed);
    }
    let header_len = usize::from(ip.header_len());
    if header_len < IPV4_HEADER_LEN {
        return Err(Error::Malformed);
    }
    if packet.len() < header_len {
        return Err(Error::Truncated);
    }
    let total_len = match ip.total_len() {
        0 => packet.len(),
        n => usize::from(n),
    };
    let wire = total_len.checked_sub(header_len).ok_or(Error::Malformed)?;
    if ip.frag_offset() != 0 || ip.next_header() != IpProtocol::Tcp {
        return Ok(None);
    }
    let segment = packet
        .get(header_len..total_len.min(packet.len()))
        .ok_or(Error::Truncated)?;
    tcp(
        IpAddr::V4(ip.src_addr()),
        IpAddr::V4(ip.dst_addr()),
        segment,
        wire,
    )
}

/// IPv6 (RFC 8200): walks hop-by-hop, routing, fragment and destination
/// options headers to TCP; padding cut, snaplen cuts tolerated.
fn ipv6(packet: &[u8]) -> Result<Option<TcpSegment<'_>>> {
    // As for IPv4, `Ipv6Packet::new_checked` refuses snaplen-cut packets.
    let (fixed, body) = packet
        .split_first_chunk::<IPV6_HEADER_LEN>()
        .ok_or(Error::Truncated)?;
    let ip = Ipv6Packet::new_unchecked(fixed);
    if ip.version() != 6 {
        return Err(Error::Malformed);
    }
    let mut wire = match ip.payload_len() {
        0 => body.len(),
        n => usize::from(n),
    };
    let mut rest = body.get(..wire).unwrap_or(body);
    let src = IpAddr::V6(ip.src_addr());
    let dst = IpAddr::V6(ip.dst_addr());
    let mut next = ip.next_header();
    // Invariant: rest.len() <= wire.
    for _ in 0..=MAX_IPV6_EXT_HEADERS {
        let len = match next {
            IpProtocol::Tcp => return tcp(src, dst, rest, wire),
            IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                let ext = Ipv6ExtHeader::new_unchecked(ext_header(rest, wire)?);
                next = ext.next_header();
                (usize::from(ext.header_len()) + 1) * field::IPV6_EXT_LEN
            }
            IpProtocol::Ipv6Frag => {
                // Fixed 8 bytes; smoltcp's fragment view starts after the
                // next-header and reserved bytes.
                let header = ext_header(rest, wire)?;
                let [_, _, fragment @ ..] = header;
                if Ipv6FragmentHeader::new_unchecked(fragment).frag_offset() != 0 {
                    return Ok(None);
                }
                next = Ipv6ExtHeader::new_unchecked(header).next_header();
                field::IPV6_EXT_LEN
            }
            // No Next Header (59), ESP, ICMPv6, UDP, ...
            _ => return Ok(None),
        };
        wire = wire.checked_sub(len).ok_or(Error::Malformed)?;
        rest = rest.get(len..).ok_or(Error::Truncated)?;
    }
    Err(Error::Malformed)
}

/// The first 8 bytes of an IPv6 extension header.
#[inline]
fn ext_header(rest: &[u8], wire: usize) -> Result<&[u8; field::IPV6_EXT_LEN]> {
    match rest.first_chunk() {
        Some(header) => Ok(header),
        None if wire < field::IPV6_EXT_LEN => Err(Error::Malformed),
        None => Err(Error::Truncated),
    }
}

/// TCP (RFC 9293). `segment` is what the capture holds (cut to the IP
/// length), `wire` the segment length the IP header claims; `segment.len() <= wire`.
fn tcp<'a>(
    src: IpAddr,
    dst: IpAddr,
    segment: &'a [u8],
    wire: usize,
) -> Result<Option<TcpSegment<'a>>> {
    let Ok(tcp) = TcpPacket::new_checked(segment) else {
        return Err(tcp_error(segment, wire));
    };
    let header_len = usize::from(tcp.header_len());
    Ok(Some(TcpSegment {
        src: SocketAddr::new(src, tcp.src_port()),
        dst: SocketAddr::new(dst, tcp.dst_port()),
        seq: tcp.seq_number().0.cast_unsigned(),
        ack: tcp.ack_number().0.cast_unsigned(),
        flags: TcpFlags {
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            psh: tcp.psh(),
        },
        window: tcp.window_len(),
        payload: tcp.payload(),
        // header_len <= segment.len() <= wire, so this never fails.
        wire_len: wire.checked_sub(header_len).ok_or(Error::Malformed)?,
    }))
}

/// Why smoltcp refused a TCP header: cut by the capture, or impossible.
#[cold]
fn tcp_error(segment: &[u8], wire: usize) -> Error {
    if wire < field::TCP_HEADER_LEN {
        // The IP datagram cannot hold even a bare TCP header.
        return Error::Malformed;
    }
    match segment.get(12) {
        Some(&b) => {
            let header_len = usize::from(b >> 4) * 4;
            if header_len < field::TCP_HEADER_LEN || header_len > wire {
                Error::Malformed
            } else {
                Error::Truncated
            }
        }
        None => Error::Truncated,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use core::net::{Ipv4Addr, Ipv6Addr};
    use std::path::PathBuf;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetProtocol, EthernetRepr, IpAddress, Ipv4Repr, Ipv6Repr, TcpControl,
        TcpRepr, TcpSeqNumber,
    };

    use super::*;

    // ---- test-only frame builder -------------------------------------------------

    const C4: [u8; 4] = [10, 0, 0, 1];
    const S4: [u8; 4] = [10, 0, 0, 2];
    const C6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const S6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const SPORT: u16 = 40000;
    const DPORT: u16 = 2181;
    const SEQ: u32 = 0xfedc_ba98;
    const ACK: u32 = 0x0102_0304;
    const WINDOW: u16 = 0x7fff;
    /// A ZooKeeper ping request: length 8, xid -2, opcode 11.
    const PING: &[u8] = &[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 11];

    const PROTO_TCP: u8 = 6;
    const PROTO_UDP: u8 = 17;
    const PROTO_ICMPV6: u8 = 58;
    const NH_HOP: u8 = 0;
    const NH_ROUTE: u8 = 43;
    const NH_FRAG: u8 = 44;
    const NH_NONE: u8 = 59;
    const NH_DSTOPTS: u8 = 60;

    const F_FIN: u8 = 0x01;
    const F_SYN: u8 = 0x02;
    const F_RST: u8 = 0x04;
    const F_PSH: u8 = 0x08;
    const F_ACK: u8 = 0x10;

    fn tcp_with(flags: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
        let header_len = 20 + options.len();
        assert_eq!(header_len % 4, 0);
        let mut v = Vec::new();
        v.extend(SPORT.to_be_bytes());
        v.extend(DPORT.to_be_bytes());
        v.extend(SEQ.to_be_bytes());
        v.extend(ACK.to_be_bytes());
        v.push(((header_len / 4) as u8) << 4);
        v.push(flags);
        v.extend(WINDOW.to_be_bytes());
        v.extend([0xde, 0xad]); // wrong checksum on purpose
        v.extend([0, 0]);
        v.extend(options);
        v.extend(payload);
        v
    }

    fn tcp(payload: &[u8]) -> Vec<u8> {
        tcp_with(F_PSH | F_ACK, &[], payload)
    }

    /// `flags_frag`: the raw flags + fragment offset word (0x2000 = MF).
    fn ipv4_with(proto: u8, options: &[u8], flags_frag: u16, body: &[u8]) -> Vec<u8> {
        let header_len = 20 + options.len();
        assert_eq!(header_len % 4, 0);
        let mut v = Vec::new();
        v.push(0x40 | (header_len / 4) as u8);
        v.push(0);
        v.extend(((header_len + body.len()) as u16).to_be_bytes());
        v.extend([0x12, 0x34]);
        v.extend(flags_frag.to_be_bytes());
        v.push(64);
        v.push(proto);
        v.extend([0xbe, 0xef]); // wrong checksum on purpose
        v.extend(C4);
        v.extend(S4);
        v.extend(options);
        v.extend(body);
        v
    }

    fn ipv4(body: &[u8]) -> Vec<u8> {
        ipv4_with(PROTO_TCP, &[], 0x4000, body)
    }

    fn ipv6_with(next: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend((body.len() as u16).to_be_bytes());
        v.push(next);
        v.push(64);
        v.extend(C6);
        v.extend(S6);
        v.extend(body);
        v
    }

    fn ipv6(body: &[u8]) -> Vec<u8> {
        ipv6_with(PROTO_TCP, body)
    }

    /// A generic extension header of `(len8 + 1) * 8` bytes (Pad1 options).
    fn ext(next: u8, len8: u8) -> Vec<u8> {
        let mut v = vec![next, len8];
        v.resize((usize::from(len8) + 1) * 8, 0);
        v
    }

    fn frag(next: u8, offset8: u16, more: bool) -> Vec<u8> {
        let mut v = vec![next, 0];
        v.extend(((offset8 << 3) | u16::from(more)).to_be_bytes());
        v.extend(0xcafe_f00d_u32.to_be_bytes());
        v
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// Ethernet II; `tpids` are VLAN tags, outermost first.
    fn ethernet_tagged(tpids: &[u16], ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
        for (i, tpid) in tpids.iter().enumerate() {
            v.extend(tpid.to_be_bytes());
            v.extend((100 + i as u16).to_be_bytes()); // PCP 0, VID 100+i
        }
        v.extend(ethertype.to_be_bytes());
        v.extend(body);
        v
    }

    fn ethernet(ethertype: u16, body: &[u8]) -> Vec<u8> {
        ethernet_tagged(&[], ethertype, body)
    }

    fn sll(protocol: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        v.extend(protocol.to_be_bytes());
        v.extend(body);
        v
    }

    fn sll2(protocol: u16, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(protocol.to_be_bytes());
        v.extend([0, 0]); // reserved
        v.extend(3u32.to_be_bytes()); // interface index
        v.extend(1u16.to_be_bytes()); // ARPHRD_ETHER
        v.push(0); // PACKET_HOST
        v.push(6);
        v.extend([2, 0, 0, 0, 0, 1, 0, 0]);
        v.extend(body);
        v
    }

    fn null_le(family: u32, body: &[u8]) -> Vec<u8> {
        cat(&[&family.to_le_bytes(), body])
    }

    fn null_be(family: u32, body: &[u8]) -> Vec<u8> {
        cat(&[&family.to_be_bytes(), body])
    }

    fn one(link: LinkType, frame: &[u8]) -> TcpSegment<'_> {
        match parse(link, frame) {
            Ok(Some(seg)) => seg,
            other => panic!("{link:?}: expected a segment, got {other:?}"),
        }
    }

    fn assert_ping_v4(seg: &TcpSegment<'_>) {
        assert_eq!(seg.src, SocketAddr::new(Ipv4Addr::from(C4).into(), SPORT));
        assert_eq!(seg.dst, SocketAddr::new(Ipv4Addr::from(S4).into(), DPORT));
        assert_common(seg);
    }

    fn assert_ping_v6(seg: &TcpSegment<'_>) {
        assert_eq!(seg.src, SocketAddr::new(Ipv6Addr::from(C6).into(), SPORT));
        assert_eq!(seg.dst, SocketAddr::new(Ipv6Addr::from(S6).into(), DPORT));
        assert_common(seg);
    }

    fn assert_common(seg: &TcpSegment<'_>) {
        assert_eq!(seg.seq, SEQ);
        assert_eq!(seg.ack, ACK);
        assert_eq!(seg.window, WINDOW);
        assert_eq!(
            seg.flags,
            TcpFlags {
                psh: true,
                ack: true,
                ..TcpFlags::default()
            }
        );
        assert_eq!(seg.payload, PING);
        assert_eq!(seg.wire_len, PING.len());
        assert!(!seg.is_cut());
    }

    // ---- link types ----------------------------------------------------------------

    #[test]
    fn linktype_numbers_map_both_ways() {
        for (v, want) in [
            (0, LinkType::Null),
            (1, LinkType::Ethernet),
            (12, LinkType::RawIp),
            (14, LinkType::RawIp),
            (101, LinkType::RawIp),
            (108, LinkType::Loop),
            (113, LinkType::LinuxSll),
            (228, LinkType::Ipv4),
            (229, LinkType::Ipv6),
            (276, LinkType::LinuxSll2),
            (0x1000_0001, LinkType::Ethernet), // FCS bits in a pcap header
        ] {
            assert_eq!(LinkType::from_linktype(v), Some(want), "{v}");
        }
        for v in [2, 9, 105, 127, 147, 0xffff] {
            assert_eq!(LinkType::from_linktype(v), None, "{v}");
        }
        for link in LinkType::ALL {
            assert_eq!(LinkType::from_linktype(link.linktype()), Some(link));
            assert!(!link.name().is_empty());
        }
        assert_eq!(LinkType::LinuxSll2.name(), "LINUX_SLL2");
    }

    #[test]
    fn ethernet_ipv4_tcp_decodes_every_field() {
        let frame = ethernet(0x0800, &ipv4(&tcp(PING)));
        assert_ping_v4(&one(LinkType::Ethernet, &frame));
    }

    #[test]
    fn ethernet_ipv6_tcp_decodes_every_field() {
        let frame = ethernet(0x86dd, &ipv6(&tcp(PING)));
        assert_ping_v6(&one(LinkType::Ethernet, &frame));
    }

    #[test]
    fn ethernet_single_vlan_tag_is_skipped() {
        for tpid in [0x8100, 0x88a8, 0x9100] {
            let frame = ethernet_tagged(&[tpid], 0x0800, &ipv4(&tcp(PING)));
            assert_ping_v4(&one(LinkType::Ethernet, &frame));
        }
    }

    #[test]
    fn ethernet_double_vlan_tags_are_skipped() {
        let frame = ethernet_tagged(&[0x88a8, 0x8100], 0x86dd, &ipv6(&tcp(PING)));
        assert_ping_v6(&one(LinkType::Ethernet, &frame));
        let frame = ethernet_tagged(&[0x9100, 0x8100], 0x0800, &ipv4(&tcp(PING)));
        assert_ping_v4(&one(LinkType::Ethernet, &frame));
    }

    #[test]
    fn ethernet_vlan_stack_up_to_the_limit_is_accepted_beyond_is_malformed() {
        let tags = [0x8100u16; MAX_VLAN_TAGS + 1];
        let frame = ethernet_tagged(&tags[..MAX_VLAN_TAGS], 0x0800, &ipv4(&tcp(PING)));
        assert_ping_v4(&one(LinkType::Ethernet, &frame));
        let frame = ethernet_tagged(&tags, 0x0800, &ipv4(&tcp(PING)));
        assert_eq!(parse(LinkType::Ethernet, &frame), Err(Error::Malformed));
    }

    #[test]
    fn ethernet_vlan_tag_cut_short_is_truncated() {
        let frame = ethernet_tagged(&[0x8100], 0x0800, &[]);
        assert_eq!(
            parse(LinkType::Ethernet, &frame[..16]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn ethernet_vlan_tag_over_non_ip_is_not_tcp() {
        let frame = ethernet_tagged(&[0x8100], 0x0806, &[0; 28]);
        assert_eq!(parse(LinkType::Ethernet, &frame), Ok(None));
    }

    #[test]
    fn linux_sll_carries_ipv4_and_ipv6() {
        assert_ping_v4(&one(LinkType::LinuxSll, &sll(0x0800, &ipv4(&tcp(PING)))));
        assert_ping_v6(&one(LinkType::LinuxSll, &sll(0x86dd, &ipv6(&tcp(PING)))));
        // Tags left in by the capture are walked like Ethernet's.
        let tagged = cat(&[&[0, 5, 0x08, 0x00], &ipv4(&tcp(PING))]);
        assert_ping_v4(&one(LinkType::LinuxSll, &sll(0x8100, &tagged)));
        assert_eq!(parse(LinkType::LinuxSll, &sll(0x0806, &[0; 28])), Ok(None));
        assert_eq!(parse(LinkType::LinuxSll, &[0; 15]), Err(Error::Truncated));
    }

    #[test]
    fn linux_sll2_carries_ipv4_and_ipv6() {
        assert_ping_v4(&one(LinkType::LinuxSll2, &sll2(0x0800, &ipv4(&tcp(PING)))));
        assert_ping_v6(&one(LinkType::LinuxSll2, &sll2(0x86dd, &ipv6(&tcp(PING)))));
        assert_eq!(
            parse(LinkType::LinuxSll2, &sll2(0x0003, &[0; 28])),
            Ok(None)
        );
        assert_eq!(parse(LinkType::LinuxSll2, &[0; 19]), Err(Error::Truncated));
    }

    #[test]
    fn null_loopback_accepts_either_byte_order_and_every_inet6_value() {
        assert_ping_v4(&one(LinkType::Null, &null_le(2, &ipv4(&tcp(PING)))));
        assert_ping_v4(&one(LinkType::Null, &null_be(2, &ipv4(&tcp(PING)))));
        for family in [24, 28, 30] {
            assert_ping_v6(&one(LinkType::Null, &null_le(family, &ipv6(&tcp(PING)))));
            assert_ping_v6(&one(LinkType::Null, &null_be(family, &ipv6(&tcp(PING)))));
        }
        // AF_UNIX, AF_APPLETALK, ...: not IP.
        assert_eq!(
            parse(LinkType::Null, &null_le(1, &ipv4(&tcp(PING)))),
            Ok(None)
        );
        assert_eq!(
            parse(LinkType::Null, &null_be(16, &ipv4(&tcp(PING)))),
            Ok(None)
        );
        assert_eq!(parse(LinkType::Null, &[2, 0, 0]), Err(Error::Truncated));
    }

    #[test]
    fn loop_reads_the_family_big_endian() {
        assert_ping_v4(&one(LinkType::Loop, &null_be(2, &ipv4(&tcp(PING)))));
        for family in [24, 28, 30] {
            assert_ping_v6(&one(LinkType::Loop, &null_be(family, &ipv6(&tcp(PING)))));
        }
        // Little-endian 2 is 0x02000000 big-endian: not a family we know.
        assert_eq!(
            parse(LinkType::Loop, &null_le(2, &ipv4(&tcp(PING)))),
            Ok(None)
        );
    }

    #[test]
    fn raw_ip_dispatches_on_the_version_nibble() {
        for v in [12, 14, 101] {
            let link = LinkType::from_linktype(v).unwrap();
            assert_ping_v4(&one(link, &ipv4(&tcp(PING))));
            assert_ping_v6(&one(link, &ipv6(&tcp(PING))));
        }
        let mut bad = ipv4(&tcp(PING));
        bad[0] = 0x55;
        assert_eq!(parse(LinkType::RawIp, &bad), Err(Error::Malformed));
        assert_eq!(parse(LinkType::RawIp, &[]), Err(Error::Truncated));
    }

    #[test]
    fn ipv4_and_ipv6_link_types_insist_on_their_version() {
        assert_ping_v4(&one(LinkType::Ipv4, &ipv4(&tcp(PING))));
        assert_ping_v6(&one(LinkType::Ipv6, &ipv6(&tcp(PING))));
        assert_eq!(
            parse(LinkType::Ipv4, &ipv6(&tcp(PING))),
            Err(Error::Malformed)
        );
        assert_eq!(
            parse(LinkType::Ipv6, &ipv4(&tcp(PING))),
            Err(Error::Malformed)
        );
        // An EtherType that lies about the version is malformed too.
        let frame = ethernet(0x0800, &ipv6(&tcp(PING)));
        assert_eq!(parse(LinkType::Ethernet, &frame), Err(Error::Malformed));
    }

    // ---- IPv4 ----------------------------------------------------------------------

    #[test]
    fn ipv4_options_are_skipped() {
        // Record Route (7), 11 bytes, then End of Options and padding: IHL 8.
        let mut options = vec![7, 11, 4];
        options.resize(12, 0);
        let frame = ethernet(0x0800, &ipv4_with(PROTO_TCP, &options, 0, &tcp(PING)));
        assert_ping_v4(&one(LinkType::Ethernet, &frame));
        // The longest header: IHL 15.
        let frame = ipv4_with(PROTO_TCP, &[1; 40], 0, &tcp(PING));
        assert_ping_v4(&one(LinkType::Ipv4, &frame));
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A bare ACK is 54 bytes; Ethernet pads it to 60 (here with junk).
        let mut frame = ethernet(0x0800, &ipv4(&tcp_with(F_ACK, &[], &[])));
        assert_eq!(frame.len(), 54);
        frame.extend([0xaa; 6]);
        let seg = one(LinkType::Ethernet, &frame);
        assert!(seg.payload.is_empty());
        assert_eq!(seg.wire_len, 0);
        // Two payload bytes, padded.
        let mut frame = ethernet(0x0800, &ipv4(&tcp(&[1, 2])));
        frame.extend([0x55; 4]);
        let seg = one(LinkType::Ethernet, &frame);
        assert_eq!(seg.payload, &[1, 2]);
        assert_eq!(seg.wire_len, 2);
        // IPv6 too (and a trailing FCS is cut the same way).
        let mut frame = ethernet(0x86dd, &ipv6(&tcp(&[1, 2])));
        frame.extend([0xde, 0xad, 0xbe, 0xef]);
        let seg = one(LinkType::Ethernet, &frame);
        assert_eq!(seg.payload, &[1, 2]);
        assert_eq!(seg.wire_len, 2);
    }

    #[test]
    fn snaplen_cut_frame_keeps_the_wire_length() {
        let big = [0x5a; 1000];
        let frame = ethernet(0x0800, &ipv4(&tcp(&big)));
        let cut = &frame[..14 + 20 + 20 + 100];
        let seg = one(LinkType::Ethernet, cut);
        assert_eq!(seg.payload, &big[..100]);
        assert_eq!(seg.wire_len, 1000);
        assert!(seg.is_cut());

        let frame = ethernet(0x86dd, &ipv6(&tcp(&big)));
        let seg = one(LinkType::Ethernet, &frame[..14 + 40 + 20 + 7]);
        assert_eq!(seg.payload, &big[..7]);
        assert_eq!(seg.wire_len, 1000);
    }

    #[test]
    fn ipv4_later_fragments_are_not_tcp_first_fragment_is() {
        // Offset 185 * 8 = 1480, MF set and clear.
        for flags_frag in [0x2000 | 185, 185] {
            let frame = ethernet(0x0800, &ipv4_with(PROTO_TCP, &[], flags_frag, &[0; 64]));
            assert_eq!(parse(LinkType::Ethernet, &frame), Ok(None));
        }
        // First fragment (MF, offset 0): what is there is the start of the segment.
        let frame = ethernet(0x0800, &ipv4_with(PROTO_TCP, &[], 0x2000, &tcp(PING)));
        assert_ping_v4(&one(LinkType::Ethernet, &frame));
    }

    #[test]
    fn ipv4_total_length_zero_means_rest_of_capture() {
        let mut packet = ipv4(&tcp(PING));
        packet[2] = 0;
        packet[3] = 0;
        assert_ping_v4(&one(LinkType::Ipv4, &packet));
    }

    #[test]
    fn ipv4_impossible_fields_are_malformed() {
        // IHL < 5.
        let mut packet = ipv4(&tcp(PING));
        packet[0] = 0x44;
        assert_eq!(parse(LinkType::Ipv4, &packet), Err(Error::Malformed));
        // Total length smaller than the header.
        let mut packet = ipv4(&tcp(PING));
        packet[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(parse(LinkType::Ipv4, &packet), Err(Error::Malformed));
        // Total length too short for a TCP header.
        let mut packet = ipv4(&tcp(PING));
        packet[2..4].copy_from_slice(&30u16.to_be_bytes());
        assert_eq!(parse(LinkType::Ipv4, &packet), Err(Error::Malformed));
    }

    #[test]
    fn ipv4_header_cut_is_truncated() {
        let packet = ipv4_with(PROTO_TCP, &[1; 8], 0, &tcp(PING));
        assert_eq!(parse(LinkType::Ipv4, &packet[..19]), Err(Error::Truncated));
        assert_eq!(parse(LinkType::Ipv4, &packet[..27]), Err(Error::Truncated));
    }

    // ---- IPv6 extension headers ------------------------------------------------

    #[test]
    fn ipv6_extension_headers_are_walked_to_tcp() {
        let body = cat(&[
            &ext(NH_ROUTE, 0),
            &ext(NH_FRAG, 1),
            &frag(NH_DSTOPTS, 0, false),
            &ext(PROTO_TCP, 2),
            &tcp(PING),
        ]);
        let frame = ethernet(0x86dd, &ipv6_with(NH_HOP, &body));
        assert_ping_v6(&one(LinkType::Ethernet, &frame));
    }

    #[test]
    fn ipv6_first_fragment_is_tcp_later_fragments_are_not() {
        let body = cat(&[&frag(PROTO_TCP, 0, true), &tcp(PING)]);
        assert_ping_v6(&one(LinkType::Ipv6, &ipv6_with(NH_FRAG, &body)));
        for more in [true, false] {
            let body = cat(&[&frag(PROTO_TCP, 185, more), &[0; 64]]);
            assert_eq!(parse(LinkType::Ipv6, &ipv6_with(NH_FRAG, &body)), Ok(None));
        }
    }

    #[test]
    fn ipv6_no_next_header_and_other_protocols_are_not_tcp() {
        let body = cat(&[&ext(NH_NONE, 0), &[0; 16]]);
        assert_eq!(parse(LinkType::Ipv6, &ipv6_with(NH_HOP, &body)), Ok(None));
        assert_eq!(parse(LinkType::Ipv6, &ipv6_with(NH_NONE, &[])), Ok(None));
        let icmp = [128, 0, 0, 0, 0, 1, 0, 1];
        assert_eq!(
            parse(LinkType::Ipv6, &ipv6_with(PROTO_ICMPV6, &icmp)),
            Ok(None)
        );
        assert_eq!(
            parse(LinkType::Ipv6, &ipv6_with(PROTO_UDP, &[0; 8])),
            Ok(None)
        );
    }

    #[test]
    fn ipv6_extension_header_chain_over_the_limit_is_malformed() {
        let mut body = Vec::new();
        for _ in 0..MAX_IPV6_EXT_HEADERS {
            body.extend(ext(NH_DSTOPTS, 0));
        }
        // Patch the last header's next-header to TCP: exactly at the limit.
        body[(MAX_IPV6_EXT_HEADERS - 1) * 8] = PROTO_TCP;
        let at_limit = cat(&[&body, &tcp(PING)]);
        assert_ping_v6(&one(LinkType::Ipv6, &ipv6_with(NH_DSTOPTS, &at_limit)));
        // One more: malformed.
        let over = cat(&[&ext(NH_DSTOPTS, 0), &at_limit]);
        assert_eq!(
            parse(LinkType::Ipv6, &ipv6_with(NH_DSTOPTS, &over)),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn ipv6_extension_header_beyond_payload_length_is_malformed() {
        let body = cat(&[&ext(PROTO_TCP, 4), &tcp(PING)]);
        let mut packet = ipv6_with(NH_HOP, &body);
        packet[4..6].copy_from_slice(&16u16.to_be_bytes());
        assert_eq!(parse(LinkType::Ipv6, &packet), Err(Error::Malformed));
        packet[4..6].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(parse(LinkType::Ipv6, &packet), Err(Error::Malformed));
        // Cut by the capture instead: truncated.
        let packet = ipv6_with(NH_HOP, &body);
        assert_eq!(
            parse(LinkType::Ipv6, &packet[..40 + 20]),
            Err(Error::Truncated)
        );
        assert_eq!(
            parse(LinkType::Ipv6, &packet[..40 + 4]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn ipv6_payload_length_zero_means_rest_of_capture() {
        let mut packet = ipv6(&tcp(PING));
        packet[4] = 0;
        packet[5] = 0;
        assert_ping_v6(&one(LinkType::Ipv6, &packet));
    }

    // ---- TCP -------------------------------------------------------------------

    #[test]
    fn tcp_options_are_skipped() {
        // MSS, SACK permitted, timestamps, NOP, window scale: 20 bytes.
        let options = [
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let frame = ethernet(0x0800, &ipv4(&tcp_with(F_PSH | F_ACK, &options, PING)));
        assert_ping_v4(&one(LinkType::Ethernet, &frame));
        let frame = ethernet(0x86dd, &ipv6(&tcp_with(F_PSH | F_ACK, &[1; 40], PING)));
        assert_ping_v6(&one(LinkType::Ethernet, &frame));
    }

    #[test]
    fn tcp_flags_are_reported() {
        for (raw, want) in [
            (
                F_SYN,
                TcpFlags {
                    syn: true,
                    ..TcpFlags::default()
                },
            ),
            (
                F_SYN | F_ACK,
                TcpFlags {
                    syn: true,
                    ack: true,
                    ..TcpFlags::default()
                },
            ),
            (
                F_FIN | F_ACK,
                TcpFlags {
                    fin: true,
                    ack: true,
                    ..TcpFlags::default()
                },
            ),
            (
                F_RST,
                TcpFlags {
                    rst: true,
                    ..TcpFlags::default()
                },
            ),
            (
                0xff,
                TcpFlags {
                    syn: true,
                    ack: true,
                    fin: true,
                    rst: true,
                    psh: true,
                },
            ),
            (0, TcpFlags::default()),
        ] {
            let frame = ipv4(&tcp_with(raw, &[], &[]));
            assert_eq!(one(LinkType::Ipv4, &frame).flags, want, "{raw:#x}");
        }
    }

    #[test]
    fn seq_end_counts_syn_fin_and_wire_payload() {
        let frame = ipv4(&tcp_with(F_SYN, &[], &[]));
        let seg = one(LinkType::Ipv4, &frame);
        assert_eq!(seg.seq_len(), 1);
        assert_eq!(seg.seq_end(), SEQ.wrapping_add(1));
        // FIN plus 300 bytes on the wire (only 20 captured), from a sequence
        // number 256 short of 2^32: the end wraps.
        let mut frame = ipv4(&tcp_with(F_FIN | F_ACK, &[], &[0; 300]));
        frame[24..28].copy_from_slice(&0xffff_ff00_u32.to_be_bytes());
        let seg = one(LinkType::Ipv4, &frame[..60]);
        assert_eq!(seg.seq_len(), 301);
        assert_eq!(seg.seq_end(), 45);
    }

    #[test]
    fn tcp_impossible_data_offset_is_malformed() {
        // Data offset < 5.
        let mut packet = ipv4(&tcp(PING));
        packet[20 + 12] = 4 << 4;
        assert_eq!(parse(LinkType::Ipv4, &packet), Err(Error::Malformed));
        // Data offset beyond the segment the IP length describes.
        let mut packet = ipv4(&tcp_with(F_ACK, &[1; 20], &[]));
        packet[20 + 12] = 15 << 4; // 60 bytes of header in a 40-byte segment
        assert_eq!(parse(LinkType::Ipv4, &packet), Err(Error::Malformed));
        // IPv6 payload too short for a TCP header.
        let mut packet = ipv6(&tcp(PING));
        packet[4..6].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(parse(LinkType::Ipv6, &packet), Err(Error::Malformed));
    }

    #[test]
    fn tcp_header_cut_is_truncated() {
        let packet = ipv4(&tcp_with(F_ACK, &[1; 12], PING));
        for len in [20, 25, 32, 39, 51] {
            assert_eq!(
                parse(LinkType::Ipv4, &packet[..len]),
                Err(Error::Truncated),
                "{len}"
            );
        }
    }

    #[test]
    fn non_tcp_frames_are_none_not_errors() {
        // ARP.
        let arp = ethernet(0x0806, &[0; 28]);
        assert_eq!(parse(LinkType::Ethernet, &arp), Ok(None));
        // 802.3 length field + LLC.
        let llc = ethernet(0x0026, &[0x42, 0x42, 0x03, 0, 0]);
        assert_eq!(parse(LinkType::Ethernet, &llc), Ok(None));
        // UDP and ICMP over IPv4.
        let udp = ethernet(0x0800, &ipv4_with(PROTO_UDP, &[], 0, &[0; 8]));
        assert_eq!(parse(LinkType::Ethernet, &udp), Ok(None));
        let icmp = ipv4_with(1, &[], 0, &[8, 0, 0, 0, 0, 1, 0, 1]);
        assert_eq!(parse(LinkType::Ipv4, &icmp), Ok(None));
        // Just an Ethernet header.
        assert_eq!(parse(LinkType::Ethernet, &arp[..14]), Ok(None));
        assert_eq!(parse(LinkType::Ethernet, &arp[..13]), Err(Error::Truncated));
    }

    #[test]
    fn frames_built_by_smoltcp_decode_to_the_same_fields() {
        let caps = ChecksumCapabilities::default();
        let payload = b"\x00\x00\x00\x10hello, zookeeper";
        let repr = TcpRepr {
            src_port: 2181,
            dst_port: 51234,
            control: TcpControl::Psh,
            seq_number: TcpSeqNumber(-7),
            ack_number: Some(TcpSeqNumber(123_456)),
            window_len: 512,
            window_scale: None,
            max_seg_size: Some(1460),
            sack_permitted: true,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let tcp_len = repr.buffer_len();
        let eth = |ethertype| EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype,
        };

        let (src4, dst4) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
        let ip = Ipv4Repr {
            src_addr: src4,
            dst_addr: dst4,
            next_header: IpProtocol::Tcp,
            payload_len: tcp_len,
            hop_limit: 64,
        };
        let mut buf = vec![0u8; 14 + 20 + tcp_len];
        eth(EthernetProtocol::Ipv4).emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..]), &caps);
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut buf[34..]),
            &IpAddress::Ipv4(src4),
            &IpAddress::Ipv4(dst4),
            &caps,
        );
        let seg = one(LinkType::Ethernet, &buf);
        assert_eq!(seg.src, SocketAddr::new(src4.into(), 2181));
        assert_eq!(seg.dst, SocketAddr::new(dst4.into(), 51234));
        assert_eq!(seg.seq, (-7i32).cast_unsigned());
        assert_eq!(seg.ack, 123_456);
        assert_eq!(seg.window, 512);
        assert!(seg.flags.psh && seg.flags.ack && !seg.flags.syn);
        assert_eq!(seg.payload, payload);
        assert_eq!(seg.wire_len, payload.len());

        let (src6, dst6) = (Ipv6Addr::from(C6), Ipv6Addr::from(S6));
        let ip = Ipv6Repr {
            src_addr: src6,
            dst_addr: dst6,
            next_header: IpProtocol::Tcp,
            payload_len: tcp_len,
            hop_limit: 64,
        };
        let mut buf = vec![0u8; 14 + 40 + tcp_len];
        eth(EthernetProtocol::Ipv6).emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut buf[14..]));
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut buf[54..]),
            &IpAddress::Ipv6(src6),
            &IpAddress::Ipv6(dst6),
            &caps,
        );
        let seg = one(LinkType::Ethernet, &buf);
        assert_eq!(seg.src, SocketAddr::new(src6.into(), 2181));
        assert_eq!(seg.payload, payload);
    }

    // ---- robustness ------------------------------------------------------------

    /// Valid frames of every shape, with the offset of their TCP payload.
    fn corpus() -> Vec<(LinkType, Vec<u8>, usize)> {
        let t = tcp(PING);
        let t_opts = tcp_with(F_PSH | F_ACK, &[1; 12], PING);
        let v4 = ipv4(&t);
        let v4_opts = ipv4_with(PROTO_TCP, &[1; 8], 0x2000, &t_opts);
        let v6 = ipv6(&t);
        let v6_ext = ipv6_with(
            NH_HOP,
            &cat(&[
                &ext(NH_ROUTE, 1),
                &ext(NH_FRAG, 0),
                &frag(NH_DSTOPTS, 0, true),
                &ext(PROTO_TCP, 0),
                &t_opts,
            ]),
        );
        let hdr = |link_len: usize, ip: &[u8]| link_len + ip.len() - PING.len();
        vec![
            (LinkType::Ethernet, ethernet(0x0800, &v4), hdr(14, &v4)),
            (
                LinkType::Ethernet,
                ethernet(0x86dd, &v6_ext),
                hdr(14, &v6_ext),
            ),
            (
                LinkType::Ethernet,
                ethernet_tagged(&[0x88a8, 0x8100], 0x0800, &v4_opts),
                hdr(22, &v4_opts),
            ),
            (LinkType::LinuxSll, sll(0x0800, &v4_opts), hdr(16, &v4_opts)),
            (LinkType::LinuxSll2, sll2(0x86dd, &v6), hdr(20, &v6)),
            (LinkType::Null, null_le(2, &v4), hdr(4, &v4)),
            (LinkType::Null, null_be(30, &v6_ext), hdr(4, &v6_ext)),
            (LinkType::Loop, null_be(24, &v6), hdr(4, &v6)),
            (LinkType::RawIp, v4.clone(), hdr(0, &v4)),
            (LinkType::RawIp, v6_ext.clone(), hdr(0, &v6_ext)),
            (LinkType::Ipv4, v4_opts.clone(), hdr(0, &v4_opts)),
            (LinkType::Ipv6, v6.clone(), hdr(0, &v6)),
        ]
    }

    /// What every successful parse must satisfy.
    fn check_invariants(frame: &[u8], seg: &TcpSegment<'_>) {
        assert!(seg.payload.len() <= seg.wire_len);
        let range = frame.as_ptr_range();
        let start = seg.payload.as_ptr();
        assert!(range.start <= start && start.wrapping_add(seg.payload.len()) <= range.end);
    }

    #[test]
    fn every_truncation_of_a_valid_frame_is_truncated_or_a_cut_segment() {
        for (link, frame, payload_at) in corpus() {
            // The whole frame parses to the ping.
            let seg = one(link, &frame);
            assert_eq!(seg.payload, PING, "{link:?}");
            for len in 0..frame.len() {
                let cut = &frame[..len];
                match parse(link, cut) {
                    Err(Error::Truncated) if len < payload_at => {}
                    Ok(Some(seg)) if len >= payload_at => {
                        assert_eq!(seg.payload, &PING[..len - payload_at]);
                        assert_eq!(seg.wire_len, PING.len());
                        check_invariants(cut, &seg);
                    }
                    other => panic!("{link:?} cut at {len}/{}: {other:?}", frame.len()),
                }
            }
        }
    }

    #[test]
    fn every_single_byte_corruption_never_panics() {
        let mut parsed = 0usize;
        for (link, frame, _) in corpus() {
            let mut buf = frame.clone();
            for i in 0..buf.len() {
                let orig = buf[i];
                for v in 0..=255u8 {
                    buf[i] = v;
                    if let Ok(Some(seg)) = parse(link, &buf) {
                        check_invariants(&buf, &seg);
                        parsed += 1;
                    }
                }
                buf[i] = orig;
            }
            // Every link type against every frame, too.
            for other in LinkType::ALL {
                if let Ok(Some(seg)) = parse(other, &frame) {
                    check_invariants(&frame, &seg);
                }
            }
        }
        assert!(parsed > 0);
    }

    #[test]
    fn random_bytes_never_panic() {
        // xorshift64*: deterministic, no dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let mut buf = [0u8; 160];
        for _ in 0..20_000 {
            let len = (next() % buf.len() as u64) as usize;
            for b in buf.iter_mut().take(len) {
                *b = next() as u8;
            }
            // Bias towards plausible headers so deeper paths are reached.
            if len > 0 && next() % 2 == 0 {
                buf[0] = if next() % 2 == 0 { 0x45 } else { 0x60 };
            }
            for link in LinkType::ALL {
                if let Ok(Some(seg)) = parse(link, &buf[..len]) {
                    check_invariants(&buf[..len], &seg);
                }
            }
        }
    }

    // ---- real captures (read with crate::pcapfile) ----------------------------------

    /// A classic pcap file's header fields and its records.
    struct Pcap<'a> {
        big_endian: bool,
        nanos: bool,
        linktype: u32,
        records: crate::pcapfile::Records<'a>,
    }

    impl<'a> Pcap<'a> {
        fn open(bytes: &'a [u8]) -> Pcap<'a> {
            let file = crate::pcapfile::PcapFile::parse(bytes).expect("classic pcap file");
            let h = file.header();
            Pcap {
                big_endian: h.big_endian,
                nanos: h.nanos,
                linktype: h.linktype,
                records: file.records(),
            }
        }
    }

    impl<'a> Iterator for Pcap<'a> {
        type Item = crate::pcapfile::Record<'a>;

        fn next(&mut self) -> Option<Self::Item> {
            self.records.next().map(|r| r.expect("whole pcap record"))
        }
    }

    #[test]
    fn pcap_reader_handles_both_byte_orders_and_nanosecond_magic() {
        let frame = ethernet(0x0800, &ipv4(&tcp(PING)));
        for (magic, big, nanos) in [
            (0xa1b2_c3d4_u32, false, false),
            (0xa1b2_3c4d, false, true),
            (0xa1b2_c3d4, true, false),
            (0xa1b2_3c4d, true, true),
        ] {
            let w = |v: u32| {
                if big {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                }
            };
            let mut file = Vec::new();
            file.extend(w(magic));
            file.extend(if big { [0, 2, 0, 4] } else { [2, 0, 4, 0] });
            file.extend([0; 8]);
            file.extend(w(65535));
            file.extend(w(1));
            for i in 0..3u32 {
                file.extend(w(1_700_000_000 + i));
                file.extend(w(999_999_999));
                file.extend(w(frame.len() as u32));
                file.extend(w(frame.len() as u32 + 10));
                file.extend(&frame);
            }
            let pcap = Pcap::open(&file);
            assert_eq!(
                (pcap.big_endian, pcap.nanos, pcap.linktype),
                (big, nanos, 1)
            );
            let records: Vec<_> = pcap.collect();
            assert_eq!(records.len(), 3);
            for (i, r) in records.iter().enumerate() {
                assert_eq!(r.ts_sec, 1_700_000_000 + i as u32);
                assert_eq!(r.ts_frac, 999_999_999);
                assert_eq!(r.orig_len as usize, frame.len() + 10);
                assert_ping_v4(&one(LinkType::Ethernet, r.data));
            }
        }
    }

    fn captures_dir() -> PathBuf {
        std::env::var_os("ZK_TRAFFIC_CAPTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../shared/captures/zktraffic"
                ))
            })
    }

    /// Every frame of a capture, as segments; asserts each one is TCP.
    fn segments_of(file: &str, bytes: &[u8]) -> (usize, usize) {
        let pcap = Pcap::open(bytes);
        let link = LinkType::from_linktype(pcap.linktype).expect("known link type");
        let (mut frames, mut payload) = (0, 0);
        for (i, r) in pcap.enumerate() {
            let seg = match parse(link, r.data) {
                Ok(Some(seg)) => seg,
                other => panic!("{file} frame {}: {other:?}", i + 1),
            };
            check_invariants(r.data, &seg);
            if r.orig_len as usize == r.data.len() {
                assert_eq!(seg.payload.len(), seg.wire_len, "{file} frame {}", i + 1);
            }
            frames += 1;
            payload += seg.wire_len;
        }
        (frames, payload)
    }

    #[test]
    fn dump_pcap_is_all_tcp_between_the_client_and_port_2181() {
        let path = captures_dir().join("dump.pcap");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let pcap = Pcap::open(&bytes);
        assert_eq!(
            LinkType::from_linktype(pcap.linktype),
            Some(LinkType::Ethernet)
        );
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (mut frames, mut to_server, mut payload) = (0, 0, 0);
        for r in pcap {
            let seg = one(LinkType::Ethernet, r.data);
            assert_eq!((seg.src.ip(), seg.dst.ip()), (localhost, localhost));
            let ports = (seg.src.port(), seg.dst.port());
            assert!(
                ports == (60446, 2181) || ports == (2181, 60446),
                "{ports:?}"
            );
            frames += 1;
            to_server += usize::from(seg.dst.port() == 2181);
            payload += seg.payload.len();
        }
        // Counted independently with tcpdump.
        assert_eq!((frames, to_server, payload), (40, 26, 1025));
    }

    #[test]
    fn every_zktraffic_capture_is_all_tcp_with_the_expected_ports_and_bytes() {
        // (file, frames, TCP payload bytes on the wire, server ports): frame
        // and byte counts from `tcpdump -nr FILE` ("length N" summed).
        const CLIENT: &[u16] = &[2181];
        const ZAB: &[u16] = &[20022];
        const OMNI: &[u16] = &[2181, 2781, 2783, 2784, 2785];
        const CAPTURES: &[(&str, usize, usize, &[u16])] = &[
            ("auth.pcap", 3, 61, CLIENT),
            ("connect_replies.pcap", 30, 270, CLIENT),
            ("connects.pcap", 21, 183, CLIENT),
            ("create-pyzookeeper.pcap", 9, 182, CLIENT),
            ("create.pcap", 99, 15865, CLIENT),
            ("dump.pcap", 40, 1025, CLIENT),
            ("fire_watches.pcap", 6, 289, CLIENT),
            ("get_children_with_four_letter.pcap", 37, 927, CLIENT),
            ("getdata_watches.pcap", 10, 137, CLIENT),
            ("multi.pcap", 6, 255, CLIENT),
            ("omni.pcap", 380, 6800, OMNI),
            ("reconfig.pcap", 6, 137, CLIENT),
            ("set_data.pcap", 74, 14301, CLIENT),
            ("setwatches.pcap", 18, 236, CLIENT),
            ("zab_commitandactivate.pcap", 84, 2271, ZAB),
            ("zab_followerinfo.pcap", 43, 868, ZAB),
            ("zab_informandactivate.pcap", 47, 2016, ZAB),
            ("zab_request.pcap", 118, 2172, ZAB),
            ("zab_revalidate.pcap", 59, 805, ZAB),
        ];
        let dir = captures_dir();
        let mut failures: Vec<String> = Vec::new();
        for &(file, want_frames, want_bytes, ports) in CAPTURES {
            let path = dir.join(file);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (frames, payload) = segments_of(file, &bytes);
            if (frames, payload) != (want_frames, want_bytes) {
                failures.push(std::format!(
                    "{file}: {frames} frames / {payload} bytes, want {want_frames} / {want_bytes}"
                ));
            }
            for r in Pcap::open(&bytes) {
                let seg = one(LinkType::Ethernet, r.data);
                assert!(
                    ports.contains(&seg.src.port()) || ports.contains(&seg.dst.port()),
                    "{file}: {} -> {}",
                    seg.src,
                    seg.dst
                );
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
