//! Writes the seed corpora for every fuzz target from real captures.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus -- OUT_DIR CAPTURE...
//!
//! `scripts/fuzz.sh` runs it with `fuzz/corpus` and the shared captures
//! (plus `demo/demo.pcap` when present).

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let Some(out) = args.next() else {
        eprintln!("usage: seed_corpus OUT_DIR CAPTURE...");
        std::process::exit(2);
    };
    let captures: Vec<PathBuf> = args.collect();
    match zk_wire_fuzz::seeds::write_all(&captures, &out) {
        Ok(n) => eprintln!(
            "seed_corpus: {} captures -> new seeds: packet {}, frame {}, reassembly {}, tracker {}",
            captures.len(),
            n.packet,
            n.frame,
            n.reassembly,
            n.tracker
        ),
        Err(e) => {
            eprintln!("seed_corpus: {e}");
            std::process::exit(1);
        }
    }
}
