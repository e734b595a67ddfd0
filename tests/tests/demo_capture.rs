//! `demo/demo.pcap` (made by `scripts/capture-demo.sh` from a real
//! ZooKeeper 3.8 server) must decode to exactly `demo/expected.json`, sizes
//! included.
//!
//! Needs the zk-dump binary (`cargo build --workspace --bins` first).

use zk_traffic_tests::checks::assert_common_fields;
use zk_traffic_tests::{Counts, assert_counts_eq, decoded_counts, workspace_root, zk_dump_json};

#[test]
fn demo_capture_decodes_to_expected() {
    let dir = workspace_root().join("demo");
    let pcap = dir.join("demo.pcap");
    let exp = std::fs::read_to_string(dir.join("expected.json")).expect("demo/expected.json");
    let exp: serde_json::Value = serde_json::from_str(&exp).expect("expected.json is JSON");
    let exp = Counts::from_json(&exp).expect("expected.json has the Counts shape");
    assert!(
        std::fs::metadata(&pcap).expect("demo/demo.pcap").len() < 300 * 1024,
        "demo.pcap must stay under 300 KB"
    );
    let events = zk_dump_json(&pcap, &["--port", "2181"]);
    assert_counts_eq("demo/demo.pcap", &decoded_counts(&events), &exp);
    assert_common_fields(&events, "127.0.0.1:2181");
}
