//! Benchmarks and capture tooling for zk-traffic.
//!
//! - [`pcap`]: classic pcap files, read whole and written as a stream;
//! - [`net`]: header offsets in a frame, endpoint rewrites with checksum
//!   patching;
//! - [`amplify`]: replays real captures many times with distinct clients
//!   (the `zk-pcap-amplify` binary, the pipeline bench, `scripts/bench-e2e.sh`);
//! - [`frames`]: client-protocol frames cut out of captures and paired (the
//!   decode benches).
//!
//! The criterion benches live in `benches/decode.rs`; run them with
//! `cargo bench -p zk-traffic-benches`.

pub mod amplify;
pub mod frames;
pub mod net;
pub mod pcap;

use std::path::{Path, PathBuf};

/// The shared real-traffic captures (`/work/shared/captures/zktraffic` from
/// a checkout at `/work/main`), sorted; empty if the directory is missing.
pub fn shared_captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/captures/zktraffic");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `demo/demo.pcap` (a capture of a real ZooKeeper 3.8 server) if present.
pub fn demo_capture() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/demo.pcap");
    p.is_file().then_some(p)
}
