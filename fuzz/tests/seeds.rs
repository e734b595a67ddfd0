//! Every target's checks over the seeds cut from the shared captures and
//! over the regression inputs in `fuzz/regressions/<target>/`, on stable and
//! without libFuzzer: `cargo test --manifest-path fuzz/Cargo.toml`.

use std::fs;
use std::path::{Path, PathBuf};

fn captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/captures/zktraffic");
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|x| x == "pcap"));
    v.sort();
    v
}

fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .map(|p| {
                    let b = fs::read(&p).unwrap();
                    (p, b)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 4] = [
    ("packet", zk_wire_fuzz::packet::run),
    ("frame", zk_wire_fuzz::frame::run),
    ("reassembly", zk_wire_fuzz::reassembly::run),
    ("tracker", zk_wire_fuzz::tracker::run),
];

#[test]
fn every_seed_passes_every_check() {
    let caps = captures();
    assert!(!caps.is_empty(), "shared captures not found");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("seeds");
    let _ = fs::remove_dir_all(&out);
    let n = zk_wire_fuzz::seeds::write_all(&caps, &out).unwrap();
    assert!(
        n.packet > 100 && n.frame > 50 && n.reassembly > 20 && n.tracker > 10,
        "{n:?}"
    );
    for (name, run) in TARGETS {
        let seeds = inputs(&out.join(name));
        assert!(!seeds.is_empty(), "no {name} seed");
        for (path, data) in seeds {
            eprintln!("{name}: {}", path.display());
            run(&data);
        }
    }
}

/// The tracker seeds carry the captures' traffic faithfully: dump.pcap
/// (one client, see the captures' README) decodes to its 13 requests,
/// 13 replies and 1 watch event.
#[test]
fn tracker_seed_of_dump_pcap_decodes_like_the_capture() {
    let caps: Vec<_> = captures()
        .into_iter()
        .filter(|p| p.ends_with("dump.pcap"))
        .collect();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("seeds-dump");
    let _ = fs::remove_dir_all(&out);
    zk_wire_fuzz::seeds::write_all(&caps, &out).unwrap();
    let seeds = inputs(&out.join("tracker"));
    let roomy = seeds
        .iter()
        .find(|(_, d)| d[0] == 0x0f)
        .expect("roomy seed");
    let c = zk_wire_fuzz::tracker::check(&roomy.1);
    assert_eq!((c.requests, c.replies, c.events), (13, 13, 1), "{c:#?}");
    assert!(c.decode_errors.is_zero(), "{c:#?}");
}

#[test]
fn regressions_pass_every_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    for (name, run) in TARGETS {
        for (path, data) in inputs(&root.join(name)) {
            eprintln!("{name}: {}", path.display());
            run(&data);
        }
    }
}

#[test]
fn empty_and_tiny_inputs_pass_every_check() {
    for (_, run) in TARGETS {
        run(&[]);
        for b in 0..=255u8 {
            run(&[b]);
            run(&[b; 9]);
        }
    }
}

#[test]
fn reassembly_cases_round_trip_through_their_encoding() {
    let stream = b"\x00\x00\x00\x02\xa1\x00rest";
    let case = zk_wire_fuzz::reassembly::Case {
        config: 0x5d,
        seq0: 7,
        isn_shift: -3,
        stream,
        ops: vec![zk_wire_fuzz::reassembly::Op {
            offset: 4,
            len: 3,
            extra: 2,
            close: true,
            cut: true,
            syn: false,
        }],
    };
    let bytes = case.encode();
    assert_eq!(zk_wire_fuzz::reassembly::Case::decode(&bytes), case);
}
