//! `zk-stats --offline FILE --json-out OUT` on a fresh capture of a real
//! ZooKeeper 3.8 server: every count in the output equals what the
//! workload put on the wire (requests by type and path with bytes, reads,
//! writes, watches, totals, replies by type and outcome, watch events),
//! with full paths and aggregated, and the top-N cut keeps the heaviest
//! rows of each opname.
//!
//! Needs root, tcpdump, iproute2, Debian's zookeeper, and the binaries
//! (`cargo build --workspace --bins` first).

mod zk_stats_support;

use std::collections::BTreeMap;

use zk_stats_support::{Tally, assert_maps_eq, json_out, workload};
use zk_traffic_tests::Scenario;

const DEFAULTS: [&str; 4] = ["reads/", "writes/", "readsBytes/", "writesBytes/"];

/// The opname of a key: everything before the path.
fn opname(key: &str) -> &str {
    key.split_once('/').map_or(key, |(o, _)| o)
}

/// Every opname of `top` holds `n` rows (or all of them when fewer), and
/// those are the heaviest rows of the full output.
fn assert_top_n(top: &BTreeMap<String, u64>, full: &BTreeMap<String, u64>, n: usize) {
    let mut groups: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (k, v) in full {
        if !DEFAULTS.contains(&k.as_str()) && opname(k) != "total" {
            groups.entry(opname(k)).or_default().push(*v);
        }
    }
    let mut cut_somewhere = false;
    for (op, mut values) in groups {
        values.sort_unstable_by(|a, b| b.cmp(a));
        let mut got: Vec<u64> = top
            .iter()
            .filter(|(k, _)| opname(k) == op && !DEFAULTS.contains(&k.as_str()))
            .map(|(k, v)| {
                assert_eq!(
                    full.get(k),
                    Some(v),
                    "top row {k} not as in the full output"
                );
                *v
            })
            .collect();
        got.sort_unstable_by(|a, b| b.cmp(a));
        let want = &values[..values.len().min(n)];
        assert_eq!(got, want, "top {n} of {op}");
        cut_somewhere |= values.len() > n;
    }
    assert!(
        cut_somewhere,
        "the workload should overflow some opname's top {n}"
    );
}

#[test]
fn json_out_counts_equal_the_workload_on_a_real_server() {
    let mut s = Scenario::start("zk_stats_json_out");
    let mut t = Tally::default();
    workload(&s, &mut t);
    s.stop_capture();
    let rec = s.rec.expected();
    let port = s.port().to_string();

    // The tally and the recorder agree on how many requests were sent.
    let recorded: u64 = rec
        .messages
        .iter()
        .filter(|((ty, _), _)| ty.ends_with("Request"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(t.sent.len() as u64, recorded, "tally vs recorder");

    // Every row (--max-results 0), full paths.
    let (full, stderr) = json_out(&s.pcap, &["--port", &port, "--max-results", "0"]);
    assert!(stderr.contains("gaps=0"), "{stderr}");
    assert!(stderr.contains("unpaired_replies=0"), "{stderr}");
    assert_maps_eq("--max-results 0", &full, &t.expected("paths", 0, &rec));
    assert_eq!(full["SetDataRequest/app/config"], 4);
    assert_eq!(full["CreateEphemeralRequest/app/eph"], 1);
    assert_eq!(full["watches/app/config"], 2);
    assert_eq!(full["FailedSetDataReply"], 1);
    assert!(full["CreateRequestBytes/app/big"] > 1_000_000);
    assert!(
        !full.keys().any(|k| k.contains("s3cret")),
        "a secret leaked into the output"
    );

    // Aggregated paths.
    for depth in [1, 2] {
        let d = depth.to_string();
        let (got, _) = json_out(
            &s.pcap,
            &[
                "--port",
                &port,
                "--max-results",
                "0",
                "--aggregation-depth",
                &d,
            ],
        );
        assert_maps_eq(
            &format!("--aggregation-depth {depth}"),
            &got,
            &t.expected("paths", depth, &rec),
        );
    }

    // The default cut: the top 10 rows of each opname.
    let (top, _) = json_out(&s.pcap, &["--port", &port]);
    assert_top_n(&top, &full, 10);
    let (top3, _) = json_out(&s.pcap, &["--port", &port, "--max-results", "3"]);
    assert_top_n(&top3, &full, 3);

    // --exclude-bytes drops exactly the *Bytes keys.
    let (nob, _) = json_out(
        &s.pcap,
        &["--port", &port, "--max-results", "0", "--exclude-bytes"],
    );
    let want: BTreeMap<String, u64> = full
        .iter()
        .filter(|(k, _)| !k.contains("Bytes"))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_maps_eq("--exclude-bytes", &nob, &want);
}

#[test]
fn json_out_on_the_zktraffic_set_data_fixture() {
    // The old daemon's own test capture (its test expects 20 SetData: it
    // misreads each connection's first request; 25 are on the wire).
    let pcap = zk_traffic_tests::shared_captures_dir().join("set_data.pcap");
    let (got, _) = json_out(&pcap, &["--aggregation-depth", "1"]);
    assert_eq!(got["ExistsRequest/load-testing"], 5);
    assert_eq!(got["ExistsRequestBytes/load-testing"], 5 * 28);
    assert_eq!(got["SetDataRequest/load-testing"], 25);
    assert_eq!(got["writes/load-testing"], 25);
    assert_eq!(got["ConnectRequest"], 6);
    assert_eq!(got["total/writes"], 25);
    assert_eq!(got["total/reads"], 11);
    assert_eq!(
        got["total/writeBytes"],
        got["SetDataRequestBytes/load-testing"]
    );
}
