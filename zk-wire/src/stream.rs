//! Per-direction TCP reassembly into protocol frames.
//!
//! TCP delivers a byte stream; ZooKeeper's protocols cut it into frames (the
//! client protocol and FLE with a 4-byte big-endian length prefix, ZAB with
//! jute's `QuorumPacket` record). A [`HalfStream`] follows one direction of
//! one connection and hands each complete frame to a callback, in the spirit
//! of httparse: it asks a [`Framer`] "is there a whole frame at the front of
//! these bytes?" and gets [`FrameStatus::Partial`] or
//! [`FrameStatus::Complete`].
//!
//! Memory is bounded: a direction only holds bytes while a frame straddles
//! segments, in one fixed-size chunk borrowed from a shared [`ChunkPool`].
//! Segments that hold whole frames are decoded in place, without a copy.
//!
//! What it copes with, and how:
//! - several frames in one segment, one frame over many segments, a length
//!   prefix split across segments: the chunk collects the pieces;
//! - retransmitted and overlapping segments: the bytes already seen are
//!   trimmed by sequence number;
//! - out-of-order segments: kept in the chunk (up to [`MAX_OOO_RANGES`]
//!   ranges within the chunk's free space) until the hole is filled;
//! - a capture that starts mid-connection, or bytes that cannot be a frame:
//!   the direction *hunts*, scanning for the next plausible frame start
//!   (the [`Framer`] decides what is plausible);
//! - lost segments (a hole that is never filled, or a frame cut by the
//!   capture's snaplen): if the frame's length is known the stream skips to
//!   its end and stays in step, handing out the damaged frame's prefix so
//!   its header still counts; otherwise it hunts;
//! - frames larger than the chunk: the prefix that fits is handed out as
//!   [`Item::Partial`] (enough for every header field), the rest skipped;
//! - a length over the configured limit: an [`Error::OverLimit`], counted,
//!   and the direction hunts, never buffering without bound.

use crate::Error;
use crate::ErrorCounts;

/// What a [`Framer`] says about the bytes at the front of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// At least this many bytes (counted from the frame start) are needed
    /// before the frame is complete; when the count is the frame's full
    /// length the framer says so with `exact`.
    Partial {
        /// Bytes needed from the frame start.
        need: usize,
        /// `need` is the frame's full length, not just a lower bound.
        exact: bool,
    },
    /// A whole frame of this many bytes (including any length prefix).
    Complete(usize),
}

/// Finds frame boundaries for one protocol and one direction.
pub trait Framer {
    /// Looks at bytes that start at a frame boundary.
    ///
    /// Returns an error when they cannot start a frame (the stream then
    /// hunts for the next plausible start).
    fn check(&self, data: &[u8]) -> Result<FrameStatus, Error>;

    /// Could a frame start at the front of `data`? Used to resynchronise.
    /// `data` may end early; answer `false` when in doubt.
    fn plausible(&self, data: &[u8]) -> bool;

    /// Bytes of a frame start that [`Framer::plausible`] needs to decide.
    fn header_len(&self) -> usize;
}

/// One thing a [`HalfStream`] hands to its callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// A whole frame, including its length prefix.
    Frame(&'a [u8]),
    /// The first bytes of a frame that is larger than a chunk or was damaged
    /// by lost segments: enough for its header fields.
    Partial {
        /// The bytes seen from the frame start.
        prefix: &'a [u8],
        /// The frame's full length (including its length prefix).
        total_len: usize,
    },
}

/// Counters a [`HalfStream`] keeps, shared by every flow of a tracker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StreamCounters {
    /// Whole frames handed out.
    pub frames: u64,
    /// Frames handed out as [`Item::Partial`] because they exceed a chunk.
    pub oversize: u64,
    /// Frames handed out as [`Item::Partial`] because segments were lost.
    pub damaged: u64,
    /// Segments whose bytes had all been seen before.
    pub retransmits: u64,
    /// Segments partly seen before (their new tail was kept).
    pub overlaps: u64,
    /// Segments that arrived ahead of a hole and were kept.
    pub out_of_order: u64,
    /// Holes declared lost (segment never came, or cut by snaplen).
    pub gaps: u64,
    /// Bytes never seen (inside holes).
    pub bytes_lost: u64,
    /// Bytes seen but thrown away (hunting, skipping damaged frames).
    pub bytes_skipped: u64,
    /// Times hunting found a plausible frame start.
    pub resyncs: u64,
    /// Times a chunk was needed but the pool had none free.
    pub pool_exhausted: u64,
    /// Partial frames left when a direction closed.
    pub truncated_at_close: u64,
}

/// "No chunk" marker for chunk indices.
const NONE: u32 = u32::MAX;

/// Out-of-order ranges a direction keeps at most.
pub const MAX_OOO_RANGES: usize = 4;

/// A pool of equal, fixed-size byte chunks carved from caller-owned storage.
///
/// A direction borrows a chunk only while it holds a partial frame. Free
/// chunks form an intrusive list (the next index lives in the chunk's first
/// four bytes); chunks never used are handed out by bumping a counter, so a
/// large pool costs no memory until it is needed.
#[derive(Debug)]
pub struct ChunkPool<B: AsMut<[u8]>> {
    bytes: B,
    chunk: usize,
    count: u32,
    fresh: u32,
    free_head: u32,
    in_use: u32,
}

impl<B: AsMut<[u8]>> ChunkPool<B> {
    /// Carves `bytes` into chunks of `chunk_size` bytes (at least 64).
    pub fn new(mut bytes: B, chunk_size: usize) -> Self {
        let chunk = chunk_size.max(64);
        let count = (bytes.as_mut().len() / chunk).min(u32::MAX as usize - 1) as u32;
        ChunkPool {
            bytes,
            chunk,
            count,
            fresh: 0,
            free_head: NONE,
            in_use: 0,
        }
    }

    /// Size of one chunk in bytes.
    pub fn chunk_size(&self) -> usize {
        self.chunk
    }

    /// Number of chunks in the pool.
    pub fn capacity(&self) -> usize {
        self.count as usize
    }

    /// Chunks currently lent out.
    pub fn in_use(&self) -> usize {
        self.in_use as usize
    }

    fn alloc(&mut self) -> Option<u32> {
        let idx = if self.free_head != NONE {
            let idx = self.free_head;
            let c = self.get(idx);
            self.free_head = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            idx
        } else if self.fresh < self.count {
            self.fresh += 1;
            self.fresh - 1
        } else {
            return None;
        };
        self.in_use += 1;
        Some(idx)
    }

    fn free(&mut self, idx: u32) {
        let head = self.free_head;
        self.get(idx)[..4].copy_from_slice(&head.to_le_bytes());
        self.free_head = idx;
        self.in_use -= 1;
    }

    fn get(&mut self, idx: u32) -> &mut [u8] {
        let start = idx as usize * self.chunk;
        &mut self.bytes.as_mut()[start..start + self.chunk]
    }
}

/// Where a direction stands with respect to frame boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Sync {
    /// No segment seen yet.
    Fresh,
    /// The next byte starts a frame.
    Synced,
    /// Boundaries unknown: scanning for a plausible frame start.
    Hunting,
    /// Inside a frame that is being thrown away; this many bytes remain.
    Skipping(u32),
}

/// One direction of one TCP connection, reassembled into frames.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HalfStream {
    /// Sequence number of the next in-order byte.
    next_seq: u32,
    sync: Sync,
    /// Chunk holding buffered bytes, or [`NONE`].
    chunk: u32,
    /// In-order bytes buffered at the chunk's start.
    len: u32,
    /// Out-of-order ranges, relative to `next_seq`, sorted, disjoint.
    ooo: [(u32, u32); MAX_OOO_RANGES],
    n_ooo: u8,
}

impl Default for HalfStream {
    fn default() -> Self {
        Self::new()
    }
}

impl HalfStream {
    /// A direction that has seen nothing yet.
    pub const fn new() -> Self {
        HalfStream {
            next_seq: 0,
            sync: Sync::Fresh,
            chunk: NONE,
            len: 0,
            ooo: [(0, 0); MAX_OOO_RANGES],
            n_ooo: 0,
        }
    }

    /// True once any segment (or SYN) has been seen in this direction.
    pub fn started(&self) -> bool {
        self.sync != Sync::Fresh
    }

    /// True while the next byte is known to start a frame.
    pub fn is_synced(&self) -> bool {
        self.sync == Sync::Synced
    }

    /// Bytes this direction holds in its chunk (in order and out of order).
    pub fn buffered(&self) -> usize {
        self.len as usize + self.ooo_extent()
    }

    /// Sequence number of the next byte expected.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    fn ooo_extent(&self) -> usize {
        if self.n_ooo == 0 {
            0
        } else {
            self.ooo[self.n_ooo as usize - 1].1 as usize
        }
    }

    /// A SYN was seen with this initial sequence number: the first data
    /// byte (ISN + 1) starts a frame.
    pub fn syn<B: AsMut<[u8]>>(&mut self, pool: &mut ChunkPool<B>, isn: u32) {
        self.release(pool);
        self.next_seq = isn.wrapping_add(1);
        self.sync = Sync::Synced;
    }

    /// Returns this direction's chunk to the pool; a partial frame in it is
    /// counted as truncated. Called on FIN, RST and eviction.
    pub fn close<B: AsMut<[u8]>>(&mut self, pool: &mut ChunkPool<B>, c: &mut StreamCounters) {
        if self.len > 0 && self.sync == Sync::Synced {
            c.truncated_at_close += 1;
        }
        c.bytes_skipped += self.buffered() as u64;
        self.release(pool);
    }

    /// Bytes held for a frame the direction is still collecting, without
    /// consuming them (e.g. the text of a four-letter-word reply).
    pub fn peek<'p, B: AsMut<[u8]>>(&self, pool: &'p mut ChunkPool<B>) -> &'p [u8] {
        if self.chunk == NONE {
            return &[];
        }
        let len = self.len as usize;
        &pool.get(self.chunk)[..len]
    }

    /// Keeps in-order bytes without framing them (the plain-text answer to
    /// a four-letter word): up to one chunk is kept for [`HalfStream::peek`],
    /// the rest is only counted by the caller. Holes are skipped over.
    pub fn push_raw<B: AsMut<[u8]>>(&mut self, pool: &mut ChunkPool<B>, seq: u32, payload: &[u8]) {
        if self.sync == Sync::Fresh {
            self.next_seq = seq;
            self.sync = Sync::Synced;
        }
        let rel = seq.wrapping_sub(self.next_seq) as i32;
        let payload = if rel < 0 {
            payload.get(rel.unsigned_abs() as usize..).unwrap_or(&[])
        } else {
            payload
        };
        if rel > 0 {
            self.next_seq = seq;
        }
        self.next_seq = self.next_seq.wrapping_add(payload.len() as u32);
        if payload.is_empty() {
            return;
        }
        if self.chunk == NONE {
            match pool.alloc() {
                Some(idx) => self.chunk = idx,
                None => return,
            }
        }
        let len = self.len as usize;
        let take = payload.len().min(pool.chunk_size() - len);
        pool.get(self.chunk)[len..len + take].copy_from_slice(&payload[..take]);
        self.len += take as u32;
    }

    /// Returns this direction's chunk to the pool without counting what it
    /// held (for bytes kept by [`HalfStream::push_raw`]).
    pub fn discard<B: AsMut<[u8]>>(&mut self, pool: &mut ChunkPool<B>) {
        self.release(pool);
    }

    fn release<B: AsMut<[u8]>>(&mut self, pool: &mut ChunkPool<B>) {
        if self.chunk != NONE {
            pool.free(self.chunk);
            self.chunk = NONE;
        }
        self.len = 0;
        self.n_ooo = 0;
    }

    /// Feeds one segment of this direction.
    ///
    /// `wire_len` is the payload length the IP header announced; when the
    /// capture cut the segment (`wire_len > payload.len()`) the missing tail
    /// is treated as lost. Complete frames go to `emit`; frames that fail
    /// [`Framer::check`] are counted in `errors` by kind.
    #[allow(clippy::too_many_arguments)]
    pub fn push<B, F, E>(
        &mut self,
        pool: &mut ChunkPool<B>,
        framer: &F,
        seq: u32,
        payload: &[u8],
        wire_len: usize,
        c: &mut StreamCounters,
        errors: &mut ErrorCounts,
        emit: &mut E,
    ) where
        B: AsMut<[u8]>,
        F: Framer,
        E: FnMut(Item<'_>),
    {
        if self.sync == Sync::Fresh {
            self.next_seq = seq;
            self.sync = Sync::Hunting;
        }
        let missing = wire_len.saturating_sub(payload.len());
        let mut seq = seq;
        let mut payload = payload;
        let rel = seq.wrapping_sub(self.next_seq) as i32;
        if rel < 0 {
            let trim = rel.unsigned_abs() as usize;
            if trim >= payload.len() + missing {
                if !payload.is_empty() {
                    c.retransmits += 1;
                }
                return;
            }
            c.overlaps += 1;
            if trim >= payload.len() {
                // Only the lost tail is new.
                let lost = payload.len() + missing - trim;
                self.lose(pool, framer, lost, c, emit);
                return;
            }
            payload = &payload[trim..];
            seq = self.next_seq;
        }
        if payload.is_empty() && missing == 0 {
            return;
        }
        let rel = seq.wrapping_sub(self.next_seq) as usize;
        if rel > 0 {
            if missing == 0 && self.store_out_of_order(pool, rel, payload, c) {
                return;
            }
            // The hole will not be filled within our window: declare it lost.
            self.discard_out_of_order(c);
            self.lose(pool, framer, rel, c, emit);
        }
        self.feed_in_order(pool, framer, payload, c, errors, emit);
        if missing > 0 {
            self.lose(pool, framer, missing, c, emit);
        }
    }

    /// The other direction acknowledged everything before `ack`. If that
    /// covers the hole in front of the bytes held out of order, the hole
    /// reached the peer but not the capture: it is declared lost (the frame
    /// it cuts is handled as for any loss) and the bytes held after it are
    /// decoded now instead of waiting for a segment that will never come.
    /// Nothing happens when no bytes are held out of order.
    #[allow(clippy::too_many_arguments)]
    pub fn acked<B, F, E>(
        &mut self,
        pool: &mut ChunkPool<B>,
        framer: &F,
        ack: u32,
        c: &mut StreamCounters,
        errors: &mut ErrorCounts,
        emit: &mut E,
    ) where
        B: AsMut<[u8]>,
        F: Framer,
        E: FnMut(Item<'_>),
    {
        if self.n_ooo == 0 || self.chunk == NONE || self.sync == Sync::Fresh {
            return;
        }
        let hole = self.ooo[0].0;
        let covered = ack.wrapping_sub(self.next_seq) as i32;
        if hole == 0 || covered < hole as i32 {
            return;
        }
        c.gaps += 1;
        c.bytes_lost += u64::from(hole);
        let len = self.len as usize;
        let extent = len + self.ooo_extent();
        match self.sync {
            Sync::Skipping(r) if hole <= r => {
                self.sync = if hole == r {
                    Sync::Synced
                } else {
                    Sync::Skipping(r - hole)
                };
            }
            _ => {
                let chunk = self.chunk;
                self.abandon(&pool.get(chunk)[..len], hole as usize, framer, c, emit);
            }
        }
        // The held bytes move to the front of the chunk, now in order.
        pool.get(self.chunk)
            .copy_within(len + hole as usize..extent, 0);
        for r in &mut self.ooo[..self.n_ooo as usize] {
            *r = (r.0 - hole, r.1 - hole);
        }
        self.len = 0;
        self.next_seq = self.next_seq.wrapping_add(hole);
        self.advance(0);
        let cap = pool.chunk_size();
        let len = self.len as usize;
        let chunk = pool.get(self.chunk);
        let used = self.drain(&chunk[..len], cap, true, framer, c, errors, emit);
        if used > 0 {
            let extent = len + self.ooo_extent();
            chunk.copy_within(used..extent, 0);
            self.len -= used as u32;
        }
        if self.len == 0 && self.n_ooo == 0 {
            self.release(pool);
        }
    }

    /// Keeps a segment that arrived ahead of a hole. False if it cannot.
    fn store_out_of_order<B: AsMut<[u8]>>(
        &mut self,
        pool: &mut ChunkPool<B>,
        rel: usize,
        payload: &[u8],
        c: &mut StreamCounters,
    ) -> bool {
        let start = self.len as usize + rel;
        let end = start + payload.len();
        if end > pool.chunk_size() {
            return false;
        }
        let (s, e) = (rel as u32, (rel + payload.len()) as u32);
        // Where does the new range go, and does it merge with neighbours?
        let n = self.n_ooo as usize;
        let mut merged = (s, e);
        let mut keep = [(0u32, 0u32); MAX_OOO_RANGES + 1];
        let mut k = 0;
        let mut placed = false;
        for &(a, b) in &self.ooo[..n] {
            if b < merged.0 {
                keep[k] = (a, b);
                k += 1;
            } else if a > merged.1 {
                if !placed {
                    keep[k] = merged;
                    k += 1;
                    placed = true;
                }
                keep[k] = (a, b);
                k += 1;
            } else {
                merged = (merged.0.min(a), merged.1.max(b));
            }
        }
        if !placed {
            keep[k] = merged;
            k += 1;
        }
        if k > MAX_OOO_RANGES {
            return false;
        }
        if self.chunk == NONE {
            match pool.alloc() {
                Some(idx) => self.chunk = idx,
                None => {
                    c.pool_exhausted += 1;
                    return false;
                }
            }
        }
        pool.get(self.chunk)[start..end].copy_from_slice(payload);
        self.ooo[..k].copy_from_slice(&keep[..k]);
        self.n_ooo = k as u8;
        c.out_of_order += 1;
        true
    }

    fn discard_out_of_order(&mut self, c: &mut StreamCounters) {
        for &(a, b) in &self.ooo[..self.n_ooo as usize] {
            c.bytes_skipped += u64::from(b - a);
        }
        self.n_ooo = 0;
    }

    /// `n` bytes at `next_seq` will never be seen.
    fn lose<B, F, E>(
        &mut self,
        pool: &mut ChunkPool<B>,
        framer: &F,
        n: usize,
        c: &mut StreamCounters,
        emit: &mut E,
    ) where
        B: AsMut<[u8]>,
        F: Framer,
        E: FnMut(Item<'_>),
    {
        c.gaps += 1;
        c.bytes_lost += n as u64;
        self.next_seq = self.next_seq.wrapping_add(n as u32);
        self.discard_out_of_order(c);
        if let Sync::Skipping(r) = self.sync {
            let r = r as usize;
            if n <= r {
                self.sync = if n == r {
                    Sync::Synced
                } else {
                    Sync::Skipping((r - n) as u32)
                };
                return;
            }
        }
        let len = self.len as usize;
        if self.chunk == NONE {
            self.abandon(&[], n, framer, c, emit);
        } else {
            let chunk = self.chunk;
            self.abandon(&pool.get(chunk)[..len], n, framer, c, emit);
        }
        self.release(pool);
    }

    /// The frame whose first bytes are `held` (buffered, or about to be)
    /// cannot be completed because `lost` bytes after them will never be
    /// seen. If its length is known and it ends after the hole, hand out the
    /// prefix and skip to its end, staying in step; otherwise hunt.
    fn abandon<F, E>(
        &mut self,
        held: &[u8],
        lost: usize,
        framer: &F,
        c: &mut StreamCounters,
        emit: &mut E,
    ) where
        F: Framer,
        E: FnMut(Item<'_>),
    {
        self.len = 0;
        if self.sync == Sync::Synced {
            if held.is_empty() && lost == 0 {
                return;
            }
            if let Ok(FrameStatus::Partial { need, exact: true }) = framer.check(held) {
                let rest = need - held.len();
                if lost <= rest {
                    c.damaged += 1;
                    emit(Item::Partial {
                        prefix: held,
                        total_len: need,
                    });
                    self.sync = if lost == rest {
                        Sync::Synced
                    } else {
                        Sync::Skipping((rest - lost) as u32)
                    };
                    return;
                }
            }
        }
        c.bytes_skipped += held.len() as u64;
        self.sync = Sync::Hunting;
    }

    /// Takes in-order bytes: decodes in place when nothing is buffered,
    /// else appends to the chunk and decodes from there.
    fn feed_in_order<B, F, E>(
        &mut self,
        pool: &mut ChunkPool<B>,
        framer: &F,
        payload: &[u8],
        c: &mut StreamCounters,
        errors: &mut ErrorCounts,
        emit: &mut E,
    ) where
        B: AsMut<[u8]>,
        F: Framer,
        E: FnMut(Item<'_>),
    {
        let mut rest = payload;
        while !rest.is_empty() {
            if self.chunk == NONE {
                // Fast path: decode straight from the segment.
                let used = self.drain(rest, pool.chunk_size(), false, framer, c, errors, emit);
                self.next_seq = self.next_seq.wrapping_add(used as u32);
                rest = &rest[used..];
                if rest.is_empty() {
                    return;
                }
                match pool.alloc() {
                    Some(idx) => self.chunk = idx,
                    None => {
                        // Cannot keep the partial frame: hand out what we
                        // have and skip its rest.
                        c.pool_exhausted += 1;
                        self.next_seq = self.next_seq.wrapping_add(rest.len() as u32);
                        self.abandon(rest, 0, framer, c, emit);
                        return;
                    }
                }
            }
            // Slow path: append what fits, then decode from the chunk.
            let cap = pool.chunk_size();
            let len = self.len as usize;
            let take = rest.len().min(cap - len);
            pool.get(self.chunk)[len..len + take].copy_from_slice(&rest[..take]);
            rest = &rest[take..];
            self.advance(take);
            let len = self.len as usize;
            let chunk = pool.get(self.chunk);
            let used = self.drain(&chunk[..len], cap, true, framer, c, errors, emit);
            if used > 0 {
                let extent = len + self.ooo_extent();
                chunk.copy_within(used..extent, 0);
                self.len -= used as u32;
            }
            if self.len == 0 && self.n_ooo == 0 {
                self.release(pool);
            }
        }
    }

    /// `n` in-order bytes were appended: move `next_seq` and pull in any
    /// out-of-order range that now touches the in-order data.
    fn advance(&mut self, n: usize) {
        self.len += n as u32;
        self.next_seq = self.next_seq.wrapping_add(n as u32);
        let n = n as u32;
        let mut k = 0;
        for i in 0..self.n_ooo as usize {
            let (a, b) = self.ooo[i];
            if b <= n {
                continue; // fully overwritten by in-order bytes (same data)
            }
            self.ooo[k] = (a.saturating_sub(n), b - n);
            k += 1;
        }
        self.n_ooo = k as u8;
        if self.n_ooo > 0 && self.ooo[0].0 == 0 {
            let joined = self.ooo[0].1;
            self.len += joined;
            self.next_seq = self.next_seq.wrapping_add(joined);
            for i in 1..self.n_ooo as usize {
                let (a, b) = self.ooo[i];
                self.ooo[i - 1] = (a - joined, b - joined);
            }
            self.n_ooo -= 1;
        }
    }

    /// Hands out the frames at the front of `data`; returns bytes consumed.
    /// `in_chunk` says `data` is the whole buffered chunk content (so a frame
    /// larger than `cap` can be handed out as a prefix now).
    #[allow(clippy::too_many_arguments)]
    fn drain<F, E>(
        &mut self,
        data: &[u8],
        cap: usize,
        in_chunk: bool,
        framer: &F,
        c: &mut StreamCounters,
        errors: &mut ErrorCounts,
        emit: &mut E,
    ) -> usize
    where
        F: Framer,
        E: FnMut(Item<'_>),
    {
        let mut off = 0;
        while off < data.len() {
            let avail = &data[off..];
            match self.sync {
                Sync::Fresh => self.sync = Sync::Hunting,
                Sync::Skipping(r) => {
                    let n = (r as usize).min(avail.len());
                    off += n;
                    c.bytes_skipped += n as u64;
                    self.sync = if n as u32 == r {
                        Sync::Synced
                    } else {
                        Sync::Skipping(r - n as u32)
                    };
                }
                Sync::Hunting => match find_start(framer, avail) {
                    Some(k) => {
                        off += k;
                        c.bytes_skipped += k as u64;
                        c.resyncs += 1;
                        self.sync = Sync::Synced;
                    }
                    None => {
                        // Keep a tail that may hold the start of a header.
                        let keep = avail.len().min(framer.header_len().saturating_sub(1));
                        let drop = avail.len() - keep;
                        c.bytes_skipped += drop as u64;
                        return off + drop;
                    }
                },
                Sync::Synced => match framer.check(avail) {
                    Ok(FrameStatus::Complete(n)) if n > 0 && n <= avail.len() => {
                        c.frames += 1;
                        emit(Item::Frame(&avail[..n]));
                        off += n;
                    }
                    Ok(FrameStatus::Partial { need, exact }) if need > cap => {
                        if !(in_chunk && avail.len() == cap) {
                            return off; // collect up to a full chunk first
                        }
                        if !exact {
                            // Too large to find its end: give up on it.
                            errors.add(Error::OverLimit);
                            self.sync = Sync::Hunting;
                            off += 1;
                            continue;
                        }
                        c.oversize += 1;
                        emit(Item::Partial {
                            prefix: avail,
                            total_len: need,
                        });
                        off += avail.len();
                        self.sync = Sync::Skipping((need - avail.len()) as u32);
                    }
                    Ok(_) => return off,
                    Err(e) => {
                        errors.add(e);
                        self.sync = Sync::Hunting;
                        off += 1;
                        c.bytes_skipped += 1;
                    }
                },
            }
        }
        off
    }
}

/// First offset in `data` where a frame plausibly starts, checking the frame
/// after it too when it ends inside `data`.
fn find_start<F: Framer>(framer: &F, data: &[u8]) -> Option<usize> {
    let h = framer.header_len();
    let last = data.len().checked_sub(h)?;
    (0..=last).find(|&k| {
        let at = &data[k..];
        if !framer.plausible(at) {
            return false;
        }
        match framer.check(at) {
            Ok(FrameStatus::Complete(n)) => {
                let next = &at[n..];
                next.is_empty() || next.len() < h || framer.plausible(next)
            }
            Ok(FrameStatus::Partial { .. }) => true,
            Err(_) => false,
        }
    })
}

/// Framer for 4-byte big-endian length-prefixed frames (client protocol, FLE).
///
/// `plausible` is supplied by the protocol (requests and replies look
/// different); `min_len` and `max_len` bound the length prefix.
#[derive(Debug, Clone, Copy)]
pub struct LengthPrefixed {
    /// Smallest acceptable body length.
    pub min_len: u32,
    /// Largest acceptable body length (jute.maxbuffer plus slack).
    pub max_len: u32,
    /// Header bytes (after the prefix) that `plausible_body` looks at.
    pub header_len: usize,
    /// Does a body starting with these bytes look like this protocol?
    pub plausible_body: fn(&[u8]) -> bool,
}

impl LengthPrefixed {
    /// Default largest frame: ZooKeeper's jute.maxbuffer (0xfffff) plus the
    /// 1 KiB slack the server allows on top of it.
    pub const DEFAULT_MAX_LEN: u32 = 0xfffff + 1024;

    fn body_len(&self, data: &[u8]) -> Result<Option<usize>, Error> {
        if data.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        if len < 0 || (len as u32) < self.min_len {
            return Err(Error::BadLength);
        }
        if len as u32 > self.max_len {
            return Err(Error::OverLimit);
        }
        Ok(Some(len as usize))
    }
}

impl Framer for LengthPrefixed {
    fn check(&self, data: &[u8]) -> Result<FrameStatus, Error> {
        match self.body_len(data)? {
            None => Ok(FrameStatus::Partial {
                need: 4,
                exact: false,
            }),
            Some(n) if data.len() >= 4 + n => Ok(FrameStatus::Complete(4 + n)),
            Some(n) => Ok(FrameStatus::Partial {
                need: 4 + n,
                exact: true,
            }),
        }
    }

    fn plausible(&self, data: &[u8]) -> bool {
        matches!(self.body_len(data), Ok(Some(_)))
            && data.len() >= 4 + self.header_len
            && (self.plausible_body)(&data[4..])
    }

    fn header_len(&self) -> usize {
        4 + self.header_len
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Test protocol: body starts with the magic byte 0xAB.
    fn framer() -> LengthPrefixed {
        LengthPrefixed {
            min_len: 1,
            max_len: 10_000,
            header_len: 1,
            plausible_body: |b| b.first() == Some(&0xAB),
        }
    }

    fn frame(body_len: usize, fill: u8) -> Vec<u8> {
        let mut f = (body_len as u32).to_be_bytes().to_vec();
        f.push(0xAB);
        f.extend(core::iter::repeat_n(fill, body_len - 1));
        f
    }

    #[derive(Debug, PartialEq)]
    enum Got {
        Frame(Vec<u8>),
        Partial(Vec<u8>, usize),
    }

    struct Rig {
        pool: ChunkPool<Vec<u8>>,
        hs: HalfStream,
        c: StreamCounters,
        errors: ErrorCounts,
        got: Vec<Got>,
    }

    impl Rig {
        fn new(chunk: usize, chunks: usize) -> Self {
            Rig {
                pool: ChunkPool::new(vec![0u8; chunk * chunks], chunk),
                hs: HalfStream::new(),
                c: StreamCounters::default(),
                errors: ErrorCounts::ZERO,
                got: Vec::new(),
            }
        }
        fn synced(chunk: usize, isn: u32) -> Self {
            let mut r = Self::new(chunk, 4);
            r.hs.syn(&mut r.pool, isn);
            r
        }
        fn push(&mut self, seq: u32, data: &[u8]) {
            self.push_wire(seq, data, data.len());
        }
        fn push_wire(&mut self, seq: u32, data: &[u8], wire: usize) {
            let got = &mut self.got;
            self.hs.push(
                &mut self.pool,
                &framer(),
                seq,
                data,
                wire,
                &mut self.c,
                &mut self.errors,
                &mut |item| match item {
                    Item::Frame(f) => got.push(Got::Frame(f.to_vec())),
                    Item::Partial { prefix, total_len } => {
                        got.push(Got::Partial(prefix.to_vec(), total_len))
                    }
                },
            );
        }
        fn acked(&mut self, ack: u32) {
            let got = &mut self.got;
            self.hs.acked(
                &mut self.pool,
                &framer(),
                ack,
                &mut self.c,
                &mut self.errors,
                &mut |item| match item {
                    Item::Frame(f) => got.push(Got::Frame(f.to_vec())),
                    Item::Partial { prefix, total_len } => {
                        got.push(Got::Partial(prefix.to_vec(), total_len))
                    }
                },
            );
        }
        fn frames(&self) -> Vec<Vec<u8>> {
            self.got
                .iter()
                .filter_map(|g| match g {
                    Got::Frame(f) => Some(f.clone()),
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn several_frames_in_one_segment_decode_in_place() {
        let mut r = Rig::synced(256, 99);
        let (a, b, c) = (frame(5, 1), frame(7, 2), frame(3, 3));
        let seg = [a.clone(), b.clone(), c.clone()].concat();
        r.push(100, &seg);
        assert_eq!(r.frames(), vec![a, b, c]);
        assert_eq!(r.pool.in_use(), 0, "no chunk needed for whole frames");
    }

    #[test]
    fn one_frame_split_at_every_byte_boundary() {
        let f = frame(20, 7);
        for cut in 1..f.len() {
            let mut r = Rig::synced(256, 0);
            r.push(1, &f[..cut]);
            assert!(r.got.is_empty());
            r.push(1 + cut as u32, &f[cut..]);
            assert_eq!(r.frames(), vec![f.clone()], "cut at {cut}");
            assert_eq!(r.pool.in_use(), 0);
        }
    }

    #[test]
    fn frame_over_many_segments_and_byte_by_byte() {
        let f = frame(300, 9);
        let mut r = Rig::synced(1024, 0);
        for (i, b) in f.iter().enumerate() {
            r.push(1 + i as u32, &[*b]);
        }
        assert_eq!(r.frames(), vec![f]);
    }

    #[test]
    fn retransmits_and_overlaps_are_trimmed() {
        let (a, b) = (frame(10, 1), frame(10, 2));
        let all = [a.clone(), b.clone()].concat();
        let mut r = Rig::synced(256, 0);
        r.push(1, &all[..8]);
        r.push(1, &all[..8]); // exact retransmit
        r.push(5, &all[4..20]); // overlap
        r.push(1, &all); // full retransmit, overlapping the rest
        assert_eq!(r.frames(), vec![a, b]);
        assert_eq!(r.c.retransmits, 1);
        assert_eq!(r.c.overlaps, 2);
    }

    #[test]
    fn out_of_order_segments_are_put_back_in_order() {
        let (a, b, c) = (frame(10, 1), frame(12, 2), frame(8, 3));
        let all = [a.clone(), b.clone(), c.clone()].concat();
        let mut r = Rig::synced(256, 0);
        // Deliver pieces 3, 2, 1 (reverse), then an old duplicate.
        r.push(1 + 30, &all[30..]);
        r.push(1 + 12, &all[12..30]);
        assert!(r.got.is_empty());
        r.push(1, &all[..12]);
        assert_eq!(r.frames(), vec![a, b, c]);
        assert_eq!(r.c.out_of_order, 2);
        assert_eq!(r.pool.in_use(), 0);
    }

    #[test]
    fn out_of_order_with_gaps_between_held_ranges() {
        let frames: Vec<Vec<u8>> = (0..6).map(|i| frame(9, i)).collect();
        let all = frames.concat(); // 6 frames of 13 bytes
        let mut r = Rig::synced(512, 0);
        r.push(1 + 13 * 4, &all[13 * 4..13 * 5]);
        r.push(1 + 13 * 2, &all[13 * 2..13 * 3]);
        r.push(1 + 13 * 5, &all[13 * 5..]);
        r.push(1, &all[..13]);
        assert_eq!(r.frames().len(), 1);
        r.push(1 + 13, &all[13..26]);
        assert_eq!(r.frames().len(), 3);
        r.push(1 + 39, &all[39..52]);
        assert_eq!(r.frames(), frames);
    }

    #[test]
    fn lost_segment_inside_a_frame_keeps_the_stream_in_step() {
        let (a, b) = (frame(100, 1), frame(10, 2));
        let all = [a.clone(), b.clone()].concat();
        let mut r = Rig::synced(64, 0);
        r.push(1, &all[..20]);
        // bytes 20..60 are lost; the window (64) cannot hold bytes 60..
        r.push(1 + 60, &all[60..]);
        assert_eq!(r.got[0], Got::Partial(a[..20].to_vec(), 104));
        assert_eq!(r.frames(), vec![b]);
        assert_eq!(r.c.gaps, 1);
        assert_eq!(r.c.bytes_lost, 40);
        assert_eq!(r.c.damaged, 1);
    }

    #[test]
    fn lost_segment_at_a_boundary_resynchronises_on_the_next_frame() {
        let frames: Vec<Vec<u8>> = (0..4).map(|i| frame(40, i)).collect();
        let all = frames.concat(); // 44 bytes each
        let mut r = Rig::synced(64, 0);
        r.push(1, &all[..44]);
        // frame 1 lost entirely, and the segment holding frame 2 and 3 lies
        // beyond the 64-byte window.
        r.push(1 + 88, &all[88..]);
        assert_eq!(
            r.frames(),
            vec![frames[0].clone(), frames[2].clone(), frames[3].clone()]
        );
        assert_eq!(r.c.resyncs, 1);
    }

    #[test]
    fn acknowledged_hole_at_a_boundary_is_lost_and_held_frames_decode() {
        let frames: Vec<Vec<u8>> = (0..4).map(|i| frame(10, i)).collect();
        let all = frames.concat(); // 14 bytes each
        let mut r = Rig::synced(256, 0);
        r.push(1, &all[..14]);
        // Frame 1 was never captured; frames 2 and 3 are held.
        r.push(1 + 28, &all[28..]);
        assert_eq!(r.frames(), vec![frames[0].clone()]);
        r.acked(1 + 20); // the peer has not received the whole hole yet
        assert_eq!(r.frames().len(), 1);
        r.acked(1 + 56);
        assert_eq!(
            r.frames(),
            vec![frames[0].clone(), frames[2].clone(), frames[3].clone()]
        );
        assert_eq!((r.c.gaps, r.c.bytes_lost, r.c.resyncs), (1, 14, 1));
        assert_eq!(r.pool.in_use(), 0);
        r.acked(1 + 56); // nothing held: no effect
        assert_eq!(r.c.gaps, 1);
    }

    #[test]
    fn acknowledged_hole_inside_a_frame_keeps_the_stream_in_step() {
        let frames: Vec<Vec<u8>> = (0..4).map(|i| frame(10, i)).collect();
        let all = frames.concat();
        let mut r = Rig::synced(256, 0);
        r.push(1, &all[..20]);
        // Bytes 20..24 (inside frame 1) were never captured.
        r.push(1 + 24, &all[24..]);
        r.acked(1 + 30);
        assert_eq!(r.got[1], Got::Partial(frames[1][..6].to_vec(), 14));
        assert_eq!(
            r.frames(),
            vec![frames[0].clone(), frames[2].clone(), frames[3].clone()]
        );
        assert_eq!((r.c.damaged, r.c.resyncs, r.c.bytes_lost), (1, 0, 4));
        assert_eq!(r.pool.in_use(), 0);
    }

    #[test]
    fn snaplen_cut_segment_counts_the_tail_as_lost() {
        let (a, b) = (frame(50, 1), frame(10, 2));
        let all = [a.clone(), b.clone()].concat();
        let mut r = Rig::synced(256, 0);
        r.push_wire(1, &all[..30], 54); // capture kept 30 of 54 bytes
        r.push(1 + 54, &all[54..]);
        assert_eq!(r.got[0], Got::Partial(a[..30].to_vec(), 54));
        assert_eq!(r.frames(), vec![b]);
    }

    #[test]
    fn capture_starting_mid_stream_finds_the_next_frame() {
        let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(30, i)).collect();
        let all = frames.concat();
        let mut r = Rig::new(256, 4);
        // First segment starts 7 bytes into frame 0.
        r.push(1000, &all[7..]);
        assert_eq!(r.frames(), vec![frames[1].clone(), frames[2].clone()]);
        assert_eq!(r.c.resyncs, 1);
    }

    #[test]
    fn garbage_between_frames_is_skipped_and_counted() {
        let (a, b) = (frame(10, 1), frame(10, 2));
        let junk = [0xFFu8; 9];
        let seg = [a.clone(), junk.to_vec(), b.clone()].concat();
        let mut r = Rig::synced(256, 0);
        r.push(1, &seg);
        assert_eq!(r.frames(), vec![a, b]);
        assert!(r.errors.total() >= 1);
        assert!(r.c.bytes_skipped >= 9);
    }

    #[test]
    fn lying_length_over_the_limit_is_an_error_not_a_buffer() {
        let b = frame(10, 2);
        let mut seg = 0x7fff_ffffu32.to_be_bytes().to_vec();
        seg.extend_from_slice(&[0xAB; 20]);
        seg.extend_from_slice(&b);
        let mut r = Rig::synced(64, 0);
        r.push(1, &seg);
        assert_eq!(
            r.errors.get(Error::OverLimit),
            1,
            "{:?} {:?}",
            r.errors,
            r.c
        );
        assert_eq!(r.frames(), vec![b]);
        assert_eq!(r.pool.in_use(), 0);
    }

    #[test]
    fn frame_larger_than_a_chunk_yields_its_prefix_then_stays_in_step() {
        let big = frame(1000, 5);
        let after = frame(10, 6);
        let all = [big.clone(), after.clone()].concat();
        let mut r = Rig::synced(128, 0);
        for (i, piece) in all.chunks(100).enumerate() {
            r.push(1 + 100 * i as u32, piece);
        }
        assert_eq!(r.got[0], Got::Partial(big[..128].to_vec(), 1004));
        assert_eq!(r.frames(), vec![after]);
        assert_eq!(r.c.oversize, 1);
        assert_eq!(r.pool.in_use(), 0);
    }

    #[test]
    fn pool_exhaustion_is_counted_and_the_stream_recovers() {
        let f = frame(40, 1);
        let mut r = Rig::synced(64, 0);
        r.pool = ChunkPool::new(Vec::new(), 64); // no chunks at all
        r.push(1, &f[..10]);
        r.push(11, &f[10..]);
        let g = frame(8, 2);
        r.push(1 + f.len() as u32, &g);
        assert_eq!(r.c.pool_exhausted, 1);
        assert_eq!(r.frames(), vec![g]);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let (a, b) = (frame(10, 1), frame(10, 2));
        let all = [a.clone(), b.clone()].concat();
        let mut r = Rig::synced(256, u32::MAX - 5);
        let s0 = u32::MAX - 4;
        r.push(s0, &all[..9]);
        r.push(s0.wrapping_add(9), &all[9..]);
        assert_eq!(r.frames(), vec![a, b]);
    }

    #[test]
    fn close_returns_the_chunk_and_counts_the_partial_frame() {
        let f = frame(40, 1);
        let mut r = Rig::synced(256, 0);
        r.push(1, &f[..10]);
        assert_eq!(r.pool.in_use(), 1);
        r.hs.close(&mut r.pool, &mut r.c);
        assert_eq!(r.pool.in_use(), 0);
        assert_eq!(r.c.truncated_at_close, 1);
    }

    #[test]
    fn pool_reuses_freed_chunks() {
        let mut p = ChunkPool::new(vec![0u8; 64 * 3], 64);
        let a = p.alloc().unwrap();
        let b = p.alloc().unwrap();
        let c = p.alloc().unwrap();
        assert!(p.alloc().is_none());
        p.free(b);
        p.free(a);
        assert_eq!(p.alloc(), Some(a));
        assert_eq!(p.alloc(), Some(b));
        p.free(c);
        assert_eq!(p.alloc(), Some(c));
    }

    /// Random segmentations, drops of duplicates, reorders within a window:
    /// every frame comes out once, in order.
    #[test]
    fn random_segmentation_and_reordering_round_trips() {
        let frames: Vec<Vec<u8>> = (0..40).map(|i| frame(1 + (i * 37) % 90, i as u8)).collect();
        let all = frames.concat();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..200 {
            let mut segs = Vec::new();
            let mut off = 0;
            while off < all.len() {
                let n = 1 + rnd(60).min(all.len() - off - 1);
                segs.push((off, n));
                off += n;
            }
            // swap some neighbours, duplicate some
            for i in 1..segs.len() {
                if rnd(4) == 0 {
                    segs.swap(i - 1, i);
                }
            }
            let dups: Vec<_> = segs.iter().filter(|_| rnd(5) == 0).cloned().collect();
            segs.extend(dups);
            let mut r = Rig::synced(512, 0);
            for (o, n) in segs {
                r.push(1 + o as u32, &all[o..o + n]);
            }
            assert_eq!(r.frames(), frames);
            assert_eq!(r.c.gaps, 0);
        }
    }
}
