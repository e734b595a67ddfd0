//! zk-wire: the decoder core of zk-traffic.
//!
//! `#![no_std]`, no `alloc`, no `unsafe`. Frames come in with their
//! timestamps; decoded messages borrow from the input. Data flows one way:
//!
//! ```text
//! frame -> packet (L2-L4) -> stream (TCP reassembly into ZooKeeper frames)
//!       -> client / fle / zab decoders -> flow (pairing, latency) -> events
//! ```
//!
//! Every table has a fixed capacity chosen by the caller; when full it counts
//! the overflow. Every decoder returns [`Result`] with a precise [`Error`].
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod conntable;
pub mod error;
pub mod fle;
pub mod flow;
pub mod packet;
pub mod pcapfile;
pub mod quorum;
pub mod quorum_analysis;
#[cfg(test)]
mod quorum_captures;
pub mod stats;
pub mod stream;
pub mod zab;

pub use error::{Error, ErrorCounts, Result};
pub use smoltcp::time::Instant;
