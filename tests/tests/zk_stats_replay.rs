//! Live capture under load: a real ZooKeeper workload's capture replayed
//! with `tcpreplay --topspeed` (many loops) into one end of a veth pair in
//! a namespace this test creates, `zk-stats --iface` on the other end.
//! Every packet must reach zk-stats (no kernel drops), and the counts must
//! be the loops times what one pass of the capture holds.
//!
//! Uses the release binary (a debug build is ~10x slower and would
//! measure the compiler, not the design): `cargo build --release -p
//! zk-traffic --bin zk-stats` first, or set ZK_STATS_RELEASE_BIN. Needs
//! root, tcpdump, tcpreplay, iproute2, Debian's zookeeper.

mod zk_stats_support;

use std::process::Command;
use std::time::{Duration, Instant};

use zk_stats_support::{Daemon, Tally, flat, http_get_in, json_out, workload};
use zk_traffic_tests::pcap::PcapFile;
use zk_traffic_tests::{Netns, Scenario, workspace_root};

const LOOPS: u32 = 200;

fn release_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("ZK_STATS_RELEASE_BIN") {
        return p.into();
    }
    let p = workspace_root().join("target/release/zk-stats");
    assert!(
        p.is_file(),
        "{} is missing: cargo build --release -p zk-traffic --bin zk-stats",
        p.display()
    );
    p
}

fn run(cmd: &mut Command) {
    let o = cmd.output().expect("run");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_top_speed_replay_reaches_zk_stats_without_kernel_drops() {
    // One pass: the usual workload, captured from a real server.
    let mut s = Scenario::start("zk_stats_replay_source");
    let mut t = Tally::default();
    workload(&s, &mut t);
    s.stop_capture();
    let port = s.port().to_string();
    let one = PcapFile::read(&s.pcap).unwrap().records.len() as u64;
    let (offline, _) = json_out(&s.pcap, &["--port", &port, "--max-results", "0"]);

    // A namespace with a veth pair: tcpreplay writes into va, zk-stats
    // listens on vb.
    let ns = Netns::new().expect("namespace");
    run(ns
        .command("ip")
        .args(["link", "add", "va", "type", "veth", "peer", "name", "vb"]));
    for dev in ["va", "vb"] {
        run(ns
            .command("ip")
            .args(["link", "set", dev, "mtu", "9000", "up"]));
    }
    let mut cmd = ns.command(release_bin());
    cmd.args([
        "--iface",
        "vb",
        "--port",
        &port,
        "--http-port",
        "0",
        "--refresh",
        "0.2",
    ]);
    let d = Daemon::start(cmd, Some("listening on"));
    let get = |url: &str| http_get_in(&ns, d.addr, url);

    let t0 = Instant::now();
    let out = ns
        .command("tcpreplay")
        .args(["--topspeed", "--loop", &LOOPS.to_string(), "-i", "va"])
        .arg(&s.pcap)
        .output()
        .expect("tcpreplay");
    let replay_secs = t0.elapsed().as_secs_f64();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tcpreplay: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Wait (bounded) for zk-stats to have counted every packet.
    let want = one * u64::from(LOOPS);
    let deadline = Instant::now() + Duration::from_secs(60);
    let info = loop {
        let (_, body) = get("/json/info");
        let info: serde_json::Value = serde_json::from_str(&body).unwrap();
        if info["capture"]["packets"].as_u64() >= Some(want) {
            break info;
        }
        assert!(
            Instant::now() < deadline,
            "zk-stats stopped short: {info}\ntcpreplay: {report}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "replayed {want} packets in {replay_secs:.2} s ({:.0} packets/s); tcpreplay: {}",
        want as f64 / replay_secs,
        report
            .lines()
            .filter(|l| l.contains("Rated") || l.contains("Actual"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert_eq!(info["capture"]["packets"], want, "{info}");
    assert_eq!(info["capture"]["kernel_drops"], 0, "{info}");
    assert_eq!(info["capture"]["interface_drops"], 0, "{info}");

    // Every loop counted as the offline run counts one pass.
    let (_, body) = get("/json/paths?window=cumulative&top=0");
    let live = flat(&serde_json::from_str(&body).unwrap());
    for key in [
        "total/reads",
        "total/writes",
        "total/readBytes",
        "total/writeBytes",
    ] {
        assert_eq!(
            live[key],
            offline[key] * u64::from(LOOPS),
            "{key}: live {} vs {} x {LOOPS}",
            live[key],
            offline[key]
        );
    }
    let lines = d.stop();
    assert!(lines.join("\n").contains("kernel_drops=0"), "{lines:?}");
}
