//! The checks behind zk-wire's fuzz targets, and the seed-corpus builder.
//!
//! Each module is one target: `run(data)` decodes the fuzz input into calls
//! on zk-wire and asserts what must hold for every input (no panic, and the
//! invariants listed in the module). The libFuzzer targets in
//! `fuzz_targets/` only call `run`; the same functions run over the seeds
//! and the regression inputs in `cargo test`, without libFuzzer.
//!
//! Targets and their inputs:
//! - [`packet`]: one captured frame, tried as every link type;
//! - [`frame`]: one frame body, given to every client-protocol decoder;
//! - [`reassembly`]: a byte stream and a list of segments cut from it
//!   (arbitrary sizes, overlaps, reorders, gaps, snaplen cuts), fed to one
//!   `HalfStream`;
//! - [`tracker`]: synthetic TCP segments between two clients and a server
//!   on port 2181, fed to a `Tracker`.

pub mod frame;
pub mod packet;
pub mod pcap;
pub mod reassembly;
pub mod seeds;
pub mod tracker;

/// A cursor over fuzz input that answers zeros once the input runs out, so
/// every input decodes to something.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Bytes left.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Nothing left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// Next little-endian u16 (missing bytes read as 0).
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Next little-endian u32 (missing bytes read as 0).
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` next bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }
}

/// Where `needle` occurs in `hay` at or after `from`.
pub fn find_from(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(from.min(hay.len()));
    }
    let hay = hay.get(from..)?;
    hay.windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}
