//! zk-dump reads pcapng files and standard input (`--offline -`) exactly as
//! it reads classic pcap files: the demo capture (a real ZooKeeper 3.8
//! server) converted to pcapng, and piped in, decodes to the same NDJSON.

use std::io::Write;
use std::process::{Command, Stdio};

use zk_traffic_tests::pcap::PcapFile;
use zk_traffic_tests::{workspace_root, zk_dump_bin, zk_dump_json};

#[test]
fn pcapng_and_stdin_decode_like_the_classic_pcap() {
    let demo = workspace_root().join("demo/demo.pcap");
    let classic = zk_dump_json(&demo, &[]);
    assert!(
        classic.len() > 80,
        "demo decodes to {} messages",
        classic.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let ng = dir.path().join("demo.pcapng");
    let file = PcapFile::read(&demo).unwrap();
    std::fs::write(&ng, file.to_pcapng()).unwrap();
    let from_ng = zk_dump_json(&ng, &[]);
    assert_eq!(from_ng, classic, "pcapng decodes differently");

    let mut child = Command::new(zk_dump_bin())
        .args(["--offline", "-", "--json", "--include-pings"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&ng).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    let from_stdin =
        zk_traffic_tests::zkdump::parse_ndjson(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(from_stdin, classic, "stdin decodes differently");
}
