//! Every buffer of the appliance, in caller storage.
//!
//! The appliance borrows all its memory as slices ([`Parts`]), so that an
//! embedded build keeps it in one `static` ([`Memory`], sized by const
//! generics) and the Linux binary in heap slices sized by its flags.
//! Nothing else is allocated, ever.

use smoltcp::iface::SocketStorage;
use zk_wire::flow::Flow;
use zk_wire::stats::Slot;
use zk_wire::stats::export::{Group, OPNAMES_PER_ROW};

use crate::decoder::DecoderParts;
use crate::http::{MAX_CONNS, MAX_REQUEST, SocketBuffers};

/// Bytes of each HTTP socket's receive buffer.
pub const HTTP_RX: usize = MAX_REQUEST;
/// Bytes of each HTTP socket's transmit buffer.
pub const HTTP_TX: usize = 4096;

/// The slices an [`crate::Appliance`] runs on.
pub struct Parts<'a> {
    /// Decoder storage.
    pub decoder: DecoderParts<'a>,
    /// Scratch for rendering `/json/paths` ([`OPNAMES_PER_ROW`] per path
    /// counter).
    pub scratch: &'a mut [Group],
    /// smoltcp's socket slots (one per HTTP socket).
    pub sockets: &'a mut [SocketStorage<'a>],
    /// HTTP socket buffers, [`HTTP_RX`] + [`HTTP_TX`] bytes per socket.
    pub socket_bytes: &'a mut [u8],
    /// The shared response buffer (the largest response).
    pub response: &'a mut [u8],
}

impl<'a> Parts<'a> {
    /// Cuts `socket_bytes` into per-socket receive and transmit buffers
    /// (as many whole sockets as fit, and at most one per socket slot).
    pub fn socket_buffers(
        bytes: &'a mut [u8],
        sockets: usize,
    ) -> heapless::Vec<SocketBuffers<'a>, MAX_CONNS> {
        let mut out = heapless::Vec::new();
        let mut rest = bytes;
        while out.len() < sockets.min(MAX_CONNS) && rest.len() >= HTTP_RX + HTTP_TX {
            let (one, tail) = rest.split_at_mut(HTTP_RX + HTTP_TX);
            let (rx, tx) = one.split_at_mut(HTTP_RX);
            let _ = out.push(SocketBuffers { rx, tx });
            rest = tail;
        }
        out
    }
}

/// All of the appliance's memory in one statically sized struct.
///
/// - `FLOWS`: connection slots (a multiple of `zk_wire::flow::WAYS`);
/// - `CHUNKS`, `CHUNK`: reassembly chunks and their size in bytes (a
///   frame larger than a chunk is decoded from its first `CHUNK` bytes);
/// - `PATHS`, `IPS`, `AUTHS`: counters of the three top-N tables;
/// - `SCRATCH`: render scratch, at least [`OPNAMES_PER_ROW`] × `PATHS`;
/// - `HTTP`: HTTP sockets (at most [`MAX_CONNS`]);
/// - `RESPONSE`: bytes of the largest response.
pub struct Memory<
    'a,
    const FLOWS: usize,
    const CHUNKS: usize,
    const CHUNK: usize,
    const PATHS: usize,
    const IPS: usize,
    const AUTHS: usize,
    const SCRATCH: usize,
    const HTTP: usize,
    const RESPONSE: usize,
> {
    flows: [Flow; FLOWS],
    chunks: [[u8; CHUNK]; CHUNKS],
    paths: [Slot; PATHS],
    ips: [Slot; IPS],
    auths: [Slot; AUTHS],
    scratch: [Group; SCRATCH],
    sockets: [SocketStorage<'a>; HTTP],
    socket_bytes: [[u8; HTTP_RX + HTTP_TX]; HTTP],
    response: [u8; RESPONSE],
}

impl<
    'a,
    const FLOWS: usize,
    const CHUNKS: usize,
    const CHUNK: usize,
    const PATHS: usize,
    const IPS: usize,
    const AUTHS: usize,
    const SCRATCH: usize,
    const HTTP: usize,
    const RESPONSE: usize,
> Memory<'a, FLOWS, CHUNKS, CHUNK, PATHS, IPS, AUTHS, SCRATCH, HTTP, RESPONSE>
{
    /// Fresh memory (a `const fn`, so that it can initialise a `static`).
    pub const fn new() -> Self {
        assert!(SCRATCH >= OPNAMES_PER_ROW * PATHS, "SCRATCH < 3 x PATHS");
        assert!(
            HTTP >= 1 && HTTP <= MAX_CONNS,
            "HTTP sockets: 1..=MAX_CONNS"
        );
        Memory {
            flows: [Flow::EMPTY; FLOWS],
            chunks: [[0; CHUNK]; CHUNKS],
            paths: [Slot::EMPTY; PATHS],
            ips: [Slot::EMPTY; IPS],
            auths: [Slot::EMPTY; AUTHS],
            scratch: [Group::EMPTY; SCRATCH],
            sockets: [SocketStorage::EMPTY; HTTP],
            socket_bytes: [[0; HTTP_RX + HTTP_TX]; HTTP],
            response: [0; RESPONSE],
        }
    }

    /// The memory as the appliance's slices.
    pub fn parts(&'a mut self) -> Parts<'a> {
        Parts {
            decoder: DecoderParts {
                flows: &mut self.flows,
                chunks: self.chunks.as_flattened_mut(),
                chunk_size: CHUNK,
                paths: &mut self.paths,
                ips: &mut self.ips,
                auths: &mut self.auths,
            },
            scratch: &mut self.scratch,
            sockets: &mut self.sockets,
            socket_bytes: self.socket_bytes.as_flattened_mut(),
            response: &mut self.response,
        }
    }
}

impl<
    'a,
    const FLOWS: usize,
    const CHUNKS: usize,
    const CHUNK: usize,
    const PATHS: usize,
    const IPS: usize,
    const AUTHS: usize,
    const SCRATCH: usize,
    const HTTP: usize,
    const RESPONSE: usize,
> Default for Memory<'a, FLOWS, CHUNKS, CHUNK, PATHS, IPS, AUTHS, SCRATCH, HTTP, RESPONSE>
{
    fn default() -> Self {
        Self::new()
    }
}

/// The embedded build's memory: 32 connections, 16 chunks of 2 KiB,
/// 256 path counters, 64 client and 16 identity counters, 4 HTTP sockets
/// and a 48 KiB response buffer.
pub type EmbeddedMemory<'a> = Memory<'a, 32, 16, 2048, 256, 64, 16, 768, 4, 49152>;
