//! Classic-pcap records for the seeder, read with `zk_wire::pcapfile`.

/// A record: timestamp (µs) and captured bytes.
pub type Record<'a> = (i64, &'a [u8]);

/// Link type and whole records of a classic pcap file; `None` if it is not
/// one. A record cut by the end of the file ends the list.
pub fn read(bytes: &[u8]) -> Option<(u32, Vec<Record<'_>>)> {
    let file = zk_wire::pcapfile::PcapFile::parse(bytes).ok()?;
    let nanos = file.header().nanos;
    let records = file
        .records()
        .map_while(Result::ok)
        .map(|r| (r.ts(nanos).total_micros(), r.data))
        .collect();
    Some((file.header().linktype, records))
}
