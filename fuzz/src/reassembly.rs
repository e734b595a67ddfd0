//! Target `reassembly`: one `HalfStream` fed a byte stream cut into
//! segments chosen by the input: any sizes and offsets, so overlaps,
//! retransmits, reorders, gaps and snaplen cuts, with or without a SYN,
//! over a small pool (including an empty one) and small chunks.
//!
//! Input layout (all integers little-endian):
//!
//! ```text
//! byte 0      bit 0: SYN first; bit 1: raw mode (push_raw, as for a
//!             four-letter-word reply); bits 2-3: chunk size (64, 100, 256,
//!             2048); bits 4-5: pool chunks (0, 1, 2, 3); bits 6-7: frame
//!             length limit (64, 300, 5000, 1 MiB)
//! bytes 1-4   sequence number of stream byte 0
//! byte 5      ISN shift (i8): the SYN's ISN is seq0 - 1 + shift
//! bytes 6-7   stream length L
//! L bytes     the stream
//! then 5-byte ops: offset (u16, mod L+1), length (u8), extra (u8), flags (u8)
//!             one segment = stream[offset..offset+length] at seq0+offset;
//!             flags bit 0: close after it; bit 1: the capture cut it, the
//!             next `extra` stream bytes were on the wire but are missing;
//!             bit 2: a SYN (new ISN seq0 - 1 + offset) before it
//! no op at all: the whole stream in one segment
//! ```
//!
//! The framer is the client protocol's (4-byte length prefix) with a toy
//! plausibility rule: a body starts with a byte 0xA0..=0xAF.
//!
//! Checks: no panic; every whole frame handed out is a valid frame of the
//! stream, and frames and partial prefixes come out in stream order; no
//! more bytes are handed out than distinct stream bytes were fed; the
//! frame and partial counters match what was handed out; a direction never
//! holds more than one chunk or more than a chunk's worth of bytes; after
//! `close` every chunk is back in the pool; and when nothing was lost (SYN
//! at byte 0, every byte fed, no hole, no resync, no pool shortage) the
//! items are those of the whole stream pushed in one piece, whatever the
//! segmentation, overlaps and order (differential check).

use zk_wire::stream::{
    ChunkPool, FrameStatus, Framer, HalfStream, Item, LengthPrefixed, StreamCounters,
};

use crate::{Input, find_from};
use zk_wire::ErrorCounts;

const CHUNKS: [usize; 4] = [64, 100, 256, 2048];
const MAX_LENS: [u32; 4] = [64, 300, 5000, 1 << 20];

/// The toy framer.
pub fn framer(max_len: u32) -> LengthPrefixed {
    LengthPrefixed {
        min_len: 1,
        max_len,
        header_len: 1,
        plausible_body: |b| b.first().is_some_and(|&x| x & 0xf0 == 0xa0),
    }
}

/// One segment of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// Offset in the stream.
    pub offset: u16,
    /// Captured bytes.
    pub len: u8,
    /// Bytes on the wire after the captured ones (with `cut`).
    pub extra: u8,
    /// Close the direction after this segment.
    pub close: bool,
    /// The capture cut the segment.
    pub cut: bool,
    /// A SYN before the segment.
    pub syn: bool,
}

/// A decoded input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case<'a> {
    /// Config byte (see the module docs).
    pub config: u8,
    /// Sequence number of stream byte 0.
    pub seq0: u32,
    /// ISN shift for the initial SYN.
    pub isn_shift: i8,
    /// The stream.
    pub stream: &'a [u8],
    /// The segments.
    pub ops: Vec<Op>,
}

impl<'a> Case<'a> {
    /// Decodes an input.
    pub fn decode(data: &'a [u8]) -> Self {
        let mut i = Input::new(data);
        let config = i.u8();
        let seq0 = i.u32();
        let isn_shift = i.u8() as i8;
        let l = usize::from(i.u16());
        let stream = i.take(l);
        let mut ops = Vec::new();
        while i.len() >= 5 {
            let offset = (u32::from(i.u16()) % (stream.len() as u32 + 1)) as u16;
            let (len, extra, flags) = (i.u8(), i.u8(), i.u8());
            ops.push(Op {
                offset,
                len,
                extra,
                close: flags & 1 != 0,
                cut: flags & 2 != 0,
                syn: flags & 4 != 0,
            });
        }
        Case {
            config,
            seq0,
            isn_shift,
            stream,
            ops,
        }
    }

    /// Encodes a case (for the seed corpus); `decode(encode(c)) == c` when
    /// the stream is shorter than 64 KiB.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.config];
        out.extend_from_slice(&self.seq0.to_le_bytes());
        out.push(self.isn_shift as u8);
        out.extend_from_slice(&(self.stream.len() as u16).to_le_bytes());
        out.extend_from_slice(self.stream);
        for op in &self.ops {
            out.extend_from_slice(&op.offset.to_le_bytes());
            out.extend_from_slice(&[
                op.len,
                op.extra,
                op.close as u8 | (op.cut as u8) << 1 | (op.syn as u8) << 2,
            ]);
        }
        out
    }
}

/// Runs the checks over one input.
pub fn run(data: &[u8]) {
    check(&Case::decode(data));
}

/// What was handed out since the last SYN, for the invariants.
#[derive(Default)]
struct Seen {
    /// Stream bytes fed at least once, and how many.
    fed: Vec<bool>,
    n_fed: usize,
    handed: usize,
    /// Stream position after the last item found.
    pos: usize,
    frames: u64,
    partials: u64,
    /// Items handed out.
    items: Vec<Handed>,
}

/// An item handed out: whole frame?, its bytes, the frame's length.
type Handed = (bool, Vec<u8>, usize);

/// Items one push of the whole stream hands out after a SYN, with the
/// counters.
fn in_one_piece(
    case: &Case<'_>,
    chunk: usize,
    n_chunks: usize,
) -> (Vec<Handed>, StreamCounters, ErrorCounts) {
    let framer = framer(MAX_LENS[usize::from(case.config >> 6)]);
    let mut pool = ChunkPool::new(vec![0u8; chunk * n_chunks], chunk);
    let mut hs = HalfStream::new();
    let mut c = StreamCounters::default();
    let mut errors = ErrorCounts::ZERO;
    let mut items = Vec::new();
    hs.syn(&mut pool, case.seq0.wrapping_sub(1));
    hs.push(
        &mut pool,
        &framer,
        case.seq0,
        case.stream,
        case.stream.len(),
        &mut c,
        &mut errors,
        &mut |item| {
            items.push(match item {
                Item::Frame(f) => (true, f.to_vec(), f.len()),
                Item::Partial { prefix, total_len } => (false, prefix.to_vec(), total_len),
            })
        },
    );
    hs.close(&mut pool, &mut c);
    (items, c, errors)
}

/// Runs one decoded case.
pub fn check(case: &Case<'_>) {
    let chunk = CHUNKS[usize::from(case.config >> 2 & 3)];
    let n_chunks = usize::from(case.config >> 4 & 3);
    let framer = framer(MAX_LENS[usize::from(case.config >> 6)]);
    let raw = case.config & 2 != 0;
    let stream = case.stream;
    let mut pool = ChunkPool::new(vec![0u8; chunk * n_chunks], chunk);
    let mut hs = HalfStream::new();
    let mut c = StreamCounters::default();
    let mut errors = ErrorCounts::ZERO;
    let fresh = || Seen {
        fed: vec![false; stream.len()],
        ..Seen::default()
    };
    let mut seen = fresh();
    // Counters at the last SYN (the per-epoch checks subtract them).
    let mut base = StreamCounters::default();

    if case.config & 1 != 0 {
        hs.syn(
            &mut pool,
            case.seq0
                .wrapping_sub(1)
                .wrapping_add(case.isn_shift as i32 as u32),
        );
    }
    let whole = [Op {
        offset: 0,
        len: 0,
        extra: 0,
        close: false,
        cut: false,
        syn: false,
    }];
    let ops: &[Op] = if case.ops.is_empty() {
        &whole
    } else {
        &case.ops
    };
    for (k, op) in ops.iter().enumerate() {
        let start = usize::from(op.offset).min(stream.len());
        let len = if case.ops.is_empty() {
            stream.len()
        } else {
            usize::from(op.len)
        };
        let end = (start + len).min(stream.len());
        let wire_end = if op.cut {
            (end + usize::from(op.extra)).min(stream.len())
        } else {
            end
        };
        let payload = &stream[start..end];
        let seq = case.seq0.wrapping_add(start as u32);
        if op.syn {
            hs.syn(&mut pool, seq.wrapping_sub(1));
            seen = fresh();
            base = c;
        }
        for f in &mut seen.fed[start..end] {
            seen.n_fed += usize::from(!*f);
            *f = true;
        }
        if raw {
            hs.push_raw(&mut pool, seq, payload);
            let held = hs.peek(&mut pool).len();
            assert!(
                held <= chunk,
                "op {k}: push_raw keeps {held} > chunk {chunk}"
            );
        } else {
            hs.push(
                &mut pool,
                &framer,
                seq,
                payload,
                wire_end - start,
                &mut c,
                &mut errors,
                &mut |item| {
                    seen.items.push(match item {
                        Item::Frame(f) => (true, f.to_vec(), f.len()),
                        Item::Partial { prefix, total_len } => (false, prefix.to_vec(), total_len),
                    });
                    let bytes = match item {
                        Item::Frame(f) => {
                            seen.frames += 1;
                            assert_eq!(
                                framer.check(f),
                                Ok(FrameStatus::Complete(f.len())),
                                "op {k}: handed out a frame that is not one"
                            );
                            f
                        }
                        Item::Partial { prefix, total_len } => {
                            seen.partials += 1;
                            assert!(
                                prefix.len() < total_len,
                                "op {k}: partial as long as its frame"
                            );
                            prefix
                        }
                    };
                    seen.handed += bytes.len();
                    let at = find_from(stream, bytes, seen.pos).unwrap_or_else(|| {
                        panic!(
                            "op {k}: handed out {} bytes not found in the stream after position {}",
                            bytes.len(),
                            seen.pos
                        )
                    });
                    seen.pos = at + bytes.len();
                },
            );
            assert!(
                seen.handed <= seen.n_fed,
                "op {k}: handed out {} bytes, only {} distinct bytes fed",
                seen.handed,
                seen.n_fed
            );
            assert_eq!(
                c.frames - base.frames,
                seen.frames,
                "op {k}: frames counter"
            );
            assert_eq!(
                c.oversize + c.damaged - base.oversize - base.damaged,
                seen.partials,
                "op {k}: oversize + damaged counters vs partial items"
            );
        }
        assert!(
            pool.in_use() <= 1,
            "op {k}: one direction holds {} chunks",
            pool.in_use()
        );
        assert!(
            hs.buffered() <= chunk,
            "op {k}: {} bytes buffered > chunk {chunk}",
            hs.buffered()
        );
        if op.close {
            hs.close(&mut pool, &mut c);
            assert_eq!(pool.in_use(), 0, "op {k}: chunk kept after close");
        }
    }
    hs.close(&mut pool, &mut c);
    assert_eq!(pool.in_use(), 0, "chunk kept after the final close");
    assert_eq!(hs.buffered(), 0);

    // Segmentation must not matter when nothing was lost: after a SYN at
    // stream byte 0, every byte fed, no hole declared, no chunk missing, no
    // resynchronisation (hunting depends on how much data is at hand), the
    // items equal those of the whole stream pushed in one piece.
    let plain = case.ops.iter().all(|op| !op.close && !op.syn && !op.cut);
    if !raw
        && case.config & 1 != 0
        && case.isn_shift == 0
        && plain
        && seen.n_fed == stream.len()
        && c.gaps == 0
        && c.pool_exhausted == 0
        && c.resyncs == 0
        && errors == ErrorCounts::ZERO
    {
        let (items, rc, rerrors) = in_one_piece(case, chunk, n_chunks);
        if rc.pool_exhausted == 0 && rc.resyncs == 0 && rerrors == ErrorCounts::ZERO {
            // A frame larger than a chunk comes out whole when one segment
            // holds it (decoded in place), else as its first chunk.
            let same = |a: &Handed, b: &Handed| {
                a == b
                    || (a.2 == b.2
                        && a.2 > chunk
                        && (a.1.starts_with(&b.1) || b.1.starts_with(&a.1)))
            };
            assert!(
                seen.items.len() == items.len()
                    && seen.items.iter().zip(&items).all(|(a, b)| same(a, b)),
                "segmented delivery handed out other items than one piece:\n{:?}\nvs\n{:?}",
                seen.items,
                items
            );
        }
    }
}
