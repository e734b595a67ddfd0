//! Where the IP and TCP headers sit inside a captured frame, and in-place
//! rewrites of a TCP endpoint with incremental checksum updates.
//!
//! zk-wire's `packet::parse` answers with borrowed views; the amplifier needs
//! byte offsets to rewrite addresses, so it locates the headers itself:
//! Ethernet II with VLAN tags, Linux cooked v1/v2, BSD loopback, raw IP;
//! IPv4 (RFC 791) and IPv6 (RFC 8200, with hop-by-hop, routing and
//! destination-options headers); TCP (RFC 9293). Checksums are patched with
//! RFC 1624's incremental update, so a correct checksum stays correct and
//! an offloaded (garbage) one stays as it was.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use zk_wire::packet::LinkType;

/// Byte offsets of the layers of one TCP/IP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    /// Start of the IP header.
    pub ip: usize,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Start of the TCP header.
    pub tcp: usize,
    /// Start of the TCP payload.
    pub payload: usize,
}

/// One end of a TCP connection, as written in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// IP address.
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
}

const ETH_LEN: usize = 14;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Finds the IP and TCP headers of `frame`; `None` for anything that is not
/// a first-fragment TCP segment with a whole TCP header.
pub fn locate(link: LinkType, frame: &[u8]) -> Option<Layers> {
    let (ip, ethertype) = match link {
        LinkType::Ethernet => {
            let mut at = 12;
            let mut et = be16(frame, at)?;
            for _ in 0..8 {
                if !matches!(et, 0x8100 | 0x88a8 | 0x9100) {
                    break;
                }
                at += 4;
                et = be16(frame, at)?;
            }
            (at + 2, Some(et))
        }
        LinkType::LinuxSll => (16, Some(be16(frame, 14)?)),
        LinkType::LinuxSll2 => (20, Some(be16(frame, 0)?)),
        LinkType::Null | LinkType::Loop => (4, None),
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => (0, None),
    };
    let version = frame.get(ip)? >> 4;
    match (ethertype, version) {
        (Some(0x0800) | None, 4) => ipv4(frame, ip),
        (Some(0x86dd) | None, 6) => ipv6(frame, ip),
        _ => None,
    }
}

fn ipv4(frame: &[u8], ip: usize) -> Option<Layers> {
    let h = frame.get(ip..ip + 20)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let frag = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
    if ihl < 20 || h[9] != 6 || frag != 0 {
        return None;
    }
    tcp(frame, ip, false, ip + ihl)
}

fn ipv6(frame: &[u8], ip: usize) -> Option<Layers> {
    let mut next = *frame.get(ip + 6)?;
    let mut at = ip + 40;
    for _ in 0..8 {
        match next {
            6 => return tcp(frame, ip, true, at),
            0 | 43 | 60 => {
                next = *frame.get(at)?;
                at += (usize::from(*frame.get(at + 1)?) + 1) * 8;
            }
            _ => return None,
        }
    }
    None
}

fn tcp(frame: &[u8], ip: usize, v6: bool, tcp: usize) -> Option<Layers> {
    let off = usize::from(frame.get(tcp + 12)? >> 4) * 4;
    if off < 20 || frame.len() < tcp + off {
        return None;
    }
    Some(Layers {
        ip,
        v6,
        tcp,
        payload: tcp + off,
    })
}

impl Layers {
    /// Source and destination endpoints.
    pub fn endpoints(&self, frame: &[u8]) -> (Endpoint, Endpoint) {
        let addr = |at: usize| -> IpAddr {
            if self.v6 {
                let b: [u8; 16] = frame[at..at + 16].try_into().unwrap();
                IpAddr::V6(Ipv6Addr::from(b))
            } else {
                let b: [u8; 4] = frame[at..at + 4].try_into().unwrap();
                IpAddr::V4(Ipv4Addr::from(b))
            }
        };
        let (s, d) = if self.v6 {
            (self.ip + 8, self.ip + 24)
        } else {
            (self.ip + 12, self.ip + 16)
        };
        let port = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
        (
            Endpoint {
                ip: addr(s),
                port: port(self.tcp),
            },
            Endpoint {
                ip: addr(d),
                port: port(self.tcp + 2),
            },
        )
    }

    /// TCP flags byte (CWR..FIN).
    pub fn tcp_flags(&self, frame: &[u8]) -> u8 {
        frame[self.tcp + 13]
    }

    /// Replaces the low 32 bits of the source (`src`) or destination IP
    /// address with `id`, patching the IPv4 header and TCP checksums.
    pub fn rewrite_addr(&self, frame: &mut [u8], src: bool, id: u32) {
        let at = match (self.v6, src) {
            (false, true) => self.ip + 12,
            (false, false) => self.ip + 16,
            (true, true) => self.ip + 8 + 12,
            (true, false) => self.ip + 24 + 12,
        };
        let new = id.to_be_bytes();
        for w in 0..2 {
            let i = at + 2 * w;
            let old = u16::from_be_bytes([frame[i], frame[i + 1]]);
            let neww = u16::from_be_bytes([new[2 * w], new[2 * w + 1]]);
            frame[i..i + 2].copy_from_slice(&new[2 * w..2 * w + 2]);
            if !self.v6 {
                patch(frame, self.ip + 10, old, neww);
            }
            patch(frame, self.tcp + 16, old, neww);
        }
    }
}

/// RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`.
fn patch(frame: &mut [u8], at: usize, old: u16, new: u16) {
    let hc = u16::from_be_bytes([frame[at], frame[at + 1]]);
    let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    frame[at..at + 2].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// Rewrites a frame of any supported link type as Ethernet II (the link
/// header replaced by one with locally administered MACs); returns the new
/// frame and its original length. Ethernet frames are returned unchanged.
pub fn to_ethernet(link: LinkType, frame: &[u8], orig_len: u32, l: &Layers) -> (Vec<u8>, u32) {
    if link == LinkType::Ethernet {
        return (frame.to_vec(), orig_len);
    }
    let mut out = Vec::with_capacity(ETH_LEN + frame.len() - l.ip);
    out.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]);
    out.extend_from_slice(if l.v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    out.extend_from_slice(&frame[l.ip..]);
    let orig = (orig_len as usize).saturating_sub(l.ip) + ETH_LEN;
    (out, orig as u32)
}

/// Shifts a [`Layers`] found in a non-Ethernet frame to where
/// [`to_ethernet`] put the headers.
pub fn shifted(link: LinkType, l: Layers) -> Layers {
    if link == LinkType::Ethernet {
        return l;
    }
    let d = l.ip as isize - ETH_LEN as isize;
    let s = |v: usize| (v as isize - d) as usize;
    Layers {
        ip: ETH_LEN,
        v6: l.v6,
        tcp: s(l.tcp),
        payload: s(l.payload),
    }
}

/// One's-complement sum of the IPv4 header and the TCP segment with its
/// pseudo-header: both fold to 0xffff when the checksums are right.
#[cfg(test)]
pub fn checksums_ok(frame: &[u8], l: &Layers) -> (bool, bool) {
    fn sum(b: &[u8], mut acc: u32) -> u32 {
        for c in b.chunks(2) {
            acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        acc
    }
    fn fold(mut s: u32) -> u16 {
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }
    let ihl = (frame[l.ip] & 0x0f) as usize * 4;
    let ip_ok = fold(sum(&frame[l.ip..l.ip + ihl], 0)) == 0xffff;
    let total = u16::from_be_bytes([frame[l.ip + 2], frame[l.ip + 3]]) as usize;
    let seg = &frame[l.tcp..l.ip + total];
    let mut pseudo = sum(&frame[l.ip + 12..l.ip + 20], 0);
    pseudo += 6 + seg.len() as u32;
    (ip_ok, fold(sum(seg, pseudo)) == 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP frame with correct checksums.
    fn frame() -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let payload = b"\x00\x00\x00\x08hello!!!";
        let total = 20 + 20 + payload.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ];
        ip.extend_from_slice(&[192, 168, 1, 7, 10, 0, 0, 1]);
        let mut tcp = vec![
            0xc3, 0x50, 0x08, 0x85, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 1, 0, 0, 0, 0, 0,
        ];
        tcp.extend_from_slice(payload);
        let fold = |mut s: u32| {
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            !(s as u16)
        };
        let sum = |b: &[u8]| -> u32 {
            b.chunks(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
                .sum()
        };
        let c = fold(sum(&ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let c = fold(sum(&ip[12..20]) + 6 + tcp.len() as u32 + sum(&tcp));
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        f.extend(ip);
        f.extend(tcp);
        f
    }

    #[test]
    fn rewriting_an_address_keeps_both_checksums_right() {
        let mut f = frame();
        let l = locate(LinkType::Ethernet, &f).unwrap();
        assert_eq!(checksums_ok(&f, &l), (true, true));
        l.rewrite_addr(&mut f, true, 0x0a01_0203);
        assert_eq!(checksums_ok(&f, &l), (true, true));
        let (src, dst) = l.endpoints(&f);
        assert_eq!(src.ip, IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!((src.port, dst.port), (50000, 2181));
    }

    #[test]
    fn cooked_frames_become_ethernet_with_the_same_ip_packet() {
        let eth = frame();
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&eth[14..]);
        let l = locate(LinkType::LinuxSll, &sll).unwrap();
        let (conv, orig) = to_ethernet(LinkType::LinuxSll, &sll, sll.len() as u32, &l);
        assert_eq!(&conv[14..], &eth[14..]);
        assert_eq!(orig as usize, eth.len());
        assert_eq!(
            shifted(LinkType::LinuxSll, l),
            locate(LinkType::Ethernet, &conv).unwrap()
        );
    }
}
