//! zk-tap: ZooKeeper traffic statistics on a mirror-port appliance.
//!
//! A box on a switch's mirror (SPAN) port sees copies of every ZooKeeper
//! packet. This crate is its core: `#![no_std]`, no allocation, no
//! `unsafe`, generic over any [`smoltcp::phy::Device`], so that the same
//! code runs on a microcontroller with one Ethernet port and on a Linux
//! box (the `zk-tap` binary, behind the default `std` feature).
//!
//! ```text
//! Device --every frame--> Decoder (zk-wire: packet -> flow -> stats tables)
//!    \--frames for us--> smoltcp Interface (ARP, ICMP, TCP) --> HttpServer
//!                                                   GET /metrics, /json/paths, /json/info
//! ```
//!
//! - [`decoder`]: frames in, zk-wire's flow tracker and stats tables.
//! - [`promisc`]: a `Device` wrapper that shows every received frame to the
//!   decoder before the interface (which drops frames not addressed to it).
//! - [`http`]: a bounded HTTP/1.1 server on smoltcp TCP sockets.
//! - [`render`]: the endpoints' bodies, written into a fixed buffer.
//! - [`appliance`]: the whole box, one `poll` at a time.
//! - [`memory`]: every buffer in one statically sized struct.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

#[macro_use]
mod log;

pub mod appliance;
pub mod decoder;
pub mod http;
pub mod memory;
pub mod promisc;
pub mod render;

pub use appliance::{Appliance, Settings};
pub use decoder::Decoder;
pub use memory::{Memory, Parts};
