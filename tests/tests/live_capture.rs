//! zk-dump capturing live with libpcap (`--iface`), not from a file: a real
//! server in a namespace, zk-dump on that namespace's loopback, a known
//! workload, then SIGINT; the NDJSON it printed must match the workload
//! exactly, and the counters must show no kernel drops.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use zk_traffic_tests::proc::{signal, spawn_tied, wait_timeout};
use zk_traffic_tests::zkdump::parse_ndjson;
use zk_traffic_tests::{CreateMode, Scenario, assert_counts_eq, decoded_counts, zk_dump_bin};

#[test]
fn live_capture_on_an_interface_decodes_the_workload() {
    let s = Scenario::new("live_capture");
    let port = s.port().to_string();
    let mut cmd = s.ns.command(zk_dump_bin());
    cmd.args([
        "--iface",
        "lo",
        "--json",
        "--include-pings",
        "--port",
        &port,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = spawn_tied(&mut cmd).expect("start zk-dump --iface");

    // Wait (bounded) for zk-dump to say it is listening.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("zk-dump did not start listening within 20 s");

    let mut a = s.connect();
    let mut b = s.connect();
    a.create("/live", b"x", CreateMode::Persistent)
        .unwrap()
        .ok();
    for i in 0..50 {
        a.create(&format!("/live/n{i}"), b"v", CreateMode::Persistent)
            .unwrap()
            .ok();
    }
    b.get_data("/live", true).unwrap().ok();
    a.set_data("/live", b"y", -1).unwrap().ok();
    b.wait_event(Duration::from_secs(10)).unwrap();
    b.get_children("/live", false).unwrap().ok();
    a.exists("/nope", false).unwrap().expect_err("NoNode");
    a.ping().unwrap().ok();
    a.close().unwrap();
    b.close().unwrap();

    // Let the last packets reach libpcap, then stop zk-dump as a user would.
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGINT).expect("SIGINT");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(10))
        .expect("wait")
        .expect("zk-dump exits after SIGINT");
    let err_lines = reader.join().unwrap();
    assert!(status.success(), "zk-dump failed: {err_lines:?}");
    let counters = err_lines.join("\n");
    assert!(
        counters.contains("kernel_drops=0"),
        "kernel drops or no counters: {counters}"
    );

    let events = parse_ndjson(&out);
    assert_counts_eq(&s.name, &decoded_counts(&events), &s.rec.expected());
}
