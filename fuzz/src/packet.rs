//! Target `packet`: the input is one captured frame, parsed as every link
//! type `zk_wire::packet` knows.
//!
//! Checks: no panic; a segment's payload is a sub-slice of the frame and no
//! longer than the length the IP header announced; the link-type numbers
//! round-trip.

use zk_wire::packet::{self, LinkType};

/// Runs the checks over one input.
pub fn run(data: &[u8]) {
    for link in LinkType::ALL {
        let got = packet::parse(link, data);
        let Ok(Some(seg)) = got else { continue };
        let (p, d) = (seg.payload.as_ptr() as usize, data.as_ptr() as usize);
        assert!(
            p >= d && p + seg.payload.len() <= d + data.len(),
            "{link:?}: payload outside the frame"
        );
        assert!(
            seg.payload.len() <= seg.wire_len,
            "{link:?}: payload longer than wire_len"
        );
        assert_eq!(seg.seq_end(), seg.seq.wrapping_add(seg.seq_len() as u32));
        let _ = seg.is_cut();
        assert_eq!(LinkType::from_linktype(link.linktype()), Some(link));
    }
    if let Some(first) = data.first_chunk::<4>() {
        let _ = LinkType::from_linktype(u32::from_le_bytes(*first));
    }
}
