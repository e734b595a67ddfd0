//! A minimal classic-pcap reader for the seeder (24-byte file header,
//! 16-byte record headers, either byte order, µs or ns timestamps).

/// A record: timestamp (µs) and captured bytes.
pub type Record<'a> = (i64, &'a [u8]);

/// Link type and records of a classic pcap file; `None` if it is not one.
pub fn read(bytes: &[u8]) -> Option<(u32, Vec<Record<'_>>)> {
    let magic = bytes.get(..4)?;
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return None,
    };
    let word = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let link = word(20)?;
    let mut out = Vec::new();
    let mut off = 24;
    while let (Some(s), Some(f), Some(incl)) = (word(off), word(off + 4), word(off + 8)) {
        let start = off + 16;
        let Some(data) = bytes.get(start..start + incl as usize) else {
            break;
        };
        let frac = if nanos { f / 1000 } else { f };
        out.push((i64::from(s) * 1_000_000 + i64::from(frac), data));
        off = start + incl as usize;
    }
    Some((link, out))
}
