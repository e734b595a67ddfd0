//! Classic pcap files, read in place.
//!
//! The libpcap savefile format ("tcpdump format", see pcap-savefile(5) and
//! draft-ietf-opsawg-pcap): a 24-byte global header whose magic number gives
//! the byte order and the timestamp resolution (0xa1b2c3d4 microseconds,
//! 0xa1b23c4d nanoseconds), then records of a 16-byte header (seconds,
//! fraction, captured length, original length) and the captured bytes.
//!
//! Hosts read captures through libpcap (which also reads pcapng); this
//! reader is for the places that hold a whole capture in memory and must not
//! allocate: benches, the no-allocation proof, fuzz seeds, tests, and an
//! appliance replaying a capture from flash.

use crate::{Error, Instant, Result};

/// Length of the global header.
pub const HEADER_LEN: usize = 24;
/// Length of a record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// What the global header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Multi-byte fields are big-endian.
    pub big_endian: bool,
    /// Record timestamps carry nanoseconds (else microseconds).
    pub nanos: bool,
    /// Largest captured length per record.
    pub snaplen: u32,
    /// LINKTYPE_ of every record (the low 16 bits; the rest carry FCS
    /// information), see [`crate::packet::LinkType::from_linktype`].
    pub linktype: u32,
}

/// One record, borrowed from the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Seconds since the epoch.
    pub ts_sec: u32,
    /// Microseconds or nanoseconds within the second (see [`Header::nanos`]).
    pub ts_frac: u32,
    /// Length of the frame on the wire.
    pub orig_len: u32,
    /// The captured bytes (`orig_len` or fewer).
    pub data: &'a [u8],
    /// Offset of the record header in the file.
    pub offset: usize,
}

impl Record<'_> {
    /// The timestamp, to the microsecond.
    pub fn ts(&self, nanos: bool) -> Instant {
        let frac = if nanos {
            self.ts_frac / 1000
        } else {
            self.ts_frac
        };
        Instant::from_micros(i64::from(self.ts_sec) * 1_000_000 + i64::from(frac))
    }
}

/// A classic pcap file held in memory.
#[derive(Debug, Clone, Copy)]
pub struct PcapFile<'a> {
    bytes: &'a [u8],
    header: Header,
}

impl<'a> PcapFile<'a> {
    /// Checks the global header. Errors: `Truncated` (shorter than a
    /// header), `UnknownOpcode` (not a classic pcap magic number: a pcapng
    /// file, for example).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let h = bytes.get(..HEADER_LEN).ok_or(Error::Truncated)?;
        let (big_endian, nanos) = match [h[0], h[1], h[2], h[3]] {
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            _ => return Err(Error::UnknownOpcode),
        };
        let u32_at = |at: usize| read_u32(&h[at..at + 4], big_endian);
        Ok(PcapFile {
            bytes,
            header: Header {
                big_endian,
                nanos,
                snaplen: u32_at(16),
                linktype: u32_at(20) & 0xffff,
            },
        })
    }

    /// The global header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The records in file order. A record cut by the end of the file ends
    /// the iteration with `Err(Truncated)`; a captured length larger than
    /// the snap length and 256 KiB gives `Err(BadLength)`.
    pub fn records(&self) -> Records<'a> {
        Records {
            bytes: self.bytes,
            at: HEADER_LEN,
            header: self.header,
            done: false,
        }
    }
}

fn read_u32(b: &[u8], big_endian: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big_endian {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

/// Iterator over the records of a [`PcapFile`].
#[derive(Debug, Clone)]
pub struct Records<'a> {
    bytes: &'a [u8],
    at: usize,
    header: Header,
    done: bool,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.at >= self.bytes.len() {
            return None;
        }
        let offset = self.at;
        let Some(h) = self.bytes.get(offset..offset + RECORD_HEADER_LEN) else {
            self.done = true;
            return Some(Err(Error::Truncated));
        };
        let be = self.header.big_endian;
        let caplen = read_u32(&h[8..12], be) as usize;
        if caplen > (self.header.snaplen as usize).max(262_144) {
            self.done = true;
            return Some(Err(Error::BadLength));
        }
        let start = offset + RECORD_HEADER_LEN;
        let Some(data) = self.bytes.get(start..start + caplen) else {
            self.done = true;
            return Some(Err(Error::Truncated));
        };
        self.at = start + caplen;
        Some(Ok(Record {
            ts_sec: read_u32(&h[0..4], be),
            ts_frac: read_u32(&h[4..8], be),
            orig_len: read_u32(&h[12..16], be),
            data,
            offset,
        }))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn file(big_endian: bool, nanos: bool, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let magic = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut f = Vec::new();
        f.extend(w(magic));
        f.extend(if big_endian {
            2u16.to_be_bytes()
        } else {
            2u16.to_le_bytes()
        });
        f.extend(if big_endian {
            4u16.to_be_bytes()
        } else {
            4u16.to_le_bytes()
        });
        f.extend([0u8; 8]);
        f.extend(w(65535));
        f.extend(w(1 | 0x1000_0000));
        for (s, frac, data) in records {
            f.extend(w(*s));
            f.extend(w(*frac));
            f.extend(w(data.len() as u32));
            f.extend(w(data.len() as u32 + 4));
            f.extend_from_slice(data);
        }
        f
    }

    #[test]
    fn both_byte_orders_and_resolutions_read_the_same_records() {
        for (be, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
            let frac = if nanos { 5_000 } else { 5 };
            let f = file(be, nanos, &[(10, frac, b"abc"), (11, 0, b"")]);
            let p = PcapFile::parse(&f).unwrap();
            assert_eq!(p.header().linktype, 1);
            assert_eq!(p.header().nanos, nanos);
            let r: Vec<_> = p.records().map(|r| r.unwrap()).collect();
            assert_eq!(r.len(), 2);
            assert_eq!(r[0].data, b"abc");
            assert_eq!(r[0].orig_len, 7);
            assert_eq!(r[0].ts(nanos).total_micros(), 10_000_005);
            assert_eq!(r[1].offset, HEADER_LEN + RECORD_HEADER_LEN + 3);
        }
    }

    #[test]
    fn a_file_cut_anywhere_ends_with_truncated_after_the_whole_records() {
        let f = file(false, false, &[(1, 0, b"first"), (2, 0, b"second")]);
        let whole_first = HEADER_LEN + RECORD_HEADER_LEN + 5;
        for cut in HEADER_LEN..f.len() {
            let p = PcapFile::parse(&f[..cut]).unwrap();
            let got: Vec<_> = p.records().collect();
            let ok = got.iter().filter(|r| r.is_ok()).count();
            assert_eq!(ok, usize::from(cut >= whole_first), "cut {cut}");
            if cut != whole_first && cut != HEADER_LEN {
                assert_eq!(got.last(), Some(&Err(Error::Truncated)), "cut {cut}");
            }
        }
        assert_eq!(PcapFile::parse(&f[..10]).err(), Some(Error::Truncated));
        assert_eq!(
            PcapFile::parse(&[0u8; 24]).err(),
            Some(Error::UnknownOpcode)
        );
    }
}
