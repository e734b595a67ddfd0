//! Classic pcap files (the libpcap savefile format), read whole and written
//! as a stream.
//!
//! Format: a 24-byte file header (magic `0xa1b2c3d4` for microsecond
//! timestamps or `0xa1b23c4d` for nanoseconds, in the writer's byte order;
//! version; snaplen; link type) followed by records, each a 16-byte header
//! (seconds, sub-second units, captured length, original length) and the
//! captured bytes. Described in tcpdump.org's `pcap-savefile(5)` and
//! draft-ietf-opsawg-pcap. pcapng is not read here: the captures this crate
//! works on are classic pcap (what `tcpdump -w` writes by default).

use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};

/// Microsecond-resolution magic, as written by the capturing host.
const MAGIC_US: u32 = 0xa1b2_c3d4;
#[cfg(test)]
const MAGIC_NS: u32 = 0xa1b2_3c4d;
/// Nanosecond-resolution magic.
/// File header length.
pub const FILE_HEADER_LEN: usize = 24;
/// Record header length.
pub const RECORD_HEADER_LEN: usize = 16;

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Capture time in microseconds since the Unix epoch.
    pub ts_us: i64,
    /// Length of the frame on the wire (may exceed `data.len()` when the
    /// snaplen cut it).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

/// A whole capture file in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// `LINKTYPE_*` value from the file header (FCS bits included).
    pub link_type: u32,
    /// Snapshot length from the file header.
    pub snaplen: u32,
    /// Every record, in file order.
    pub records: Vec<Record>,
}

impl Capture {
    /// Reads a classic pcap file.
    pub fn read(path: &Path) -> Result<Capture> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Capture::parse(&bytes).with_context(|| format!("decoding {}", path.display()))
    }

    /// Decodes a classic pcap file held in memory (either byte order, µs or
    /// ns timestamps). A record cut short by the end of the file ends the
    /// capture, as libpcap does.
    pub fn parse(bytes: &[u8]) -> Result<Capture> {
        let file = zk_wire::pcapfile::PcapFile::parse(bytes).map_err(|e| {
            anyhow::anyhow!("not a classic pcap file ({e}; pcapng is not supported here)")
        })?;
        let h = file.header();
        let records = file
            .records()
            .map_while(Result::ok)
            .map(|r| Record {
                ts_us: r.ts(h.nanos).total_micros(),
                orig_len: r.orig_len.max(r.data.len() as u32),
                data: r.data.to_vec(),
            })
            .collect();
        Ok(Capture {
            link_type: h.linktype,
            snaplen: h.snaplen,
            records,
        })
    }
}

/// Writes a classic pcap stream: little-endian, microsecond timestamps.
pub struct Writer<W: Write> {
    out: W,
    /// Records written.
    pub records: u64,
    /// Bytes written, headers included.
    pub bytes: u64,
}

impl<W: Write> Writer<W> {
    /// Writes the file header.
    pub fn new(mut out: W, link_type: u32, snaplen: u32) -> io::Result<Self> {
        let mut h = [0u8; FILE_HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC_US.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&link_type.to_le_bytes());
        out.write_all(&h)?;
        Ok(Writer {
            out,
            records: 0,
            bytes: FILE_HEADER_LEN as u64,
        })
    }

    /// Appends one record.
    pub fn write(&mut self, ts_us: i64, orig_len: u32, data: &[u8]) -> io::Result<()> {
        let ts = ts_us.max(0);
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)?;
        self.records += 1;
        self.bytes += (RECORD_HEADER_LEN + data.len()) as u64;
        Ok(())
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// One record borrowed from a file in memory: timestamp (µs), original
/// length, captured bytes.
pub type RecordRef<'a> = (i64, u32, &'a [u8]);

/// The link type and records of a pcap file held in memory (as [`Writer`]
/// writes it), for the benches: no copy of the frames.
pub fn records(bytes: &[u8]) -> Result<(u32, Vec<RecordRef<'_>>)> {
    let file = zk_wire::pcapfile::PcapFile::parse(bytes)
        .map_err(|e| anyhow::anyhow!("not a classic pcap file: {e}"))?;
    let h = file.header();
    let out = file
        .records()
        .map_while(Result::ok)
        .map(|r| (r.ts(h.nanos).total_micros(), r.orig_len, r.data))
        .collect();
    Ok((h.linktype, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_output_reads_back_in_both_readers() {
        let mut w = Writer::new(Vec::new(), 1, 65535).unwrap();
        w.write(1_500_000, 60, b"abc").unwrap();
        w.write(2_000_001, 3, b"xyz").unwrap();
        let bytes = w.finish().unwrap();
        let cap = Capture::parse(&bytes).unwrap();
        assert_eq!(cap.link_type, 1);
        assert_eq!(cap.records.len(), 2);
        assert_eq!(cap.records[0].ts_us, 1_500_000);
        assert_eq!(cap.records[0].orig_len, 60);
        assert_eq!(cap.records[1].data, b"xyz");
        let (lt, recs) = records(&bytes).unwrap();
        assert_eq!(lt, 1);
        assert_eq!(recs[1], (2_000_001, 3, &b"xyz"[..]));
    }

    #[test]
    fn big_endian_nanosecond_files_are_read() {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC_NS.to_be_bytes());
        b.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&1500u32.to_be_bytes());
        b.extend_from_slice(&101u32.to_be_bytes());
        for v in [7u32, 123_456_789, 2, 2] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&[0x45, 0]);
        let cap = Capture::parse(&b).unwrap();
        assert_eq!(cap.link_type, 101);
        assert_eq!(cap.records[0].ts_us, 7_123_456);
        assert_eq!(cap.records[0].data, [0x45, 0]);
    }
}
