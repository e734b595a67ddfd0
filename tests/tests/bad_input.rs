//! Bad input: truncated capture files, garbage packets injected into a
//! capture, garbage and lying length prefixes sent to a real server, and a
//! capture that starts in the middle of a connection. zk-dump must never
//! crash, must decode every good frame, and must not let one bad flow
//! poison the others.
//!
//! Needs root, tcpdump, iproute2, Debian's zookeeper, and the zk-dump
//! binary (`cargo build --workspace --bins` first).

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;
use zk_traffic_tests::pcap::{PcapFile, Record, Rng, build_tcp_frame, tcp_flags, tcp_segment};
use zk_traffic_tests::{
    CreateMode, RawZk, Recorder, Scenario, assert_counts_eq, decoded_counts, decoded_counts_where,
    field, shared_captures_dir, zk_dump, zk_dump_checked,
};

const SERVER: &str = "127.0.0.1:2181";

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("zkt-bad-")
        .tempdir()
        .unwrap()
}

fn client_is(addr: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| field(e, "client") == Some(addr)
}

/// Cut a real capture in the middle of a record (inside its data, and
/// inside its 16-byte record header): zk-dump prints every message of the
/// complete records before the cut, exactly as for a cleanly shortened
/// file, reports the truncation on stderr, and does not crash.
#[test]
fn truncated_capture_keeps_every_frame_before_the_cut() {
    let src = shared_captures_dir().join("set_data.pcap");
    let bytes = std::fs::read(&src).unwrap();
    let file = PcapFile::parse(&bytes).unwrap();
    // a record with payload about two thirds in
    let n = file.records.len();
    let idx = (n * 2 / 3..n)
        .find(|i| tcp_segment(&file.records[*i].data).is_some_and(|s| s.payload.len() > 100))
        .expect("a data-carrying record");
    let rec = &file.records[idx];
    let dir = tmp();
    let clean = dir.path().join("clean-prefix.pcap");
    std::fs::write(&clean, &bytes[..rec.offset]).unwrap();
    let base = zk_dump_checked(&clean, &["--port", "2181"]);
    let sets = base
        .events
        .iter()
        .filter(|e| field(e, "type") == Some("SetDataRequest"))
        .count();
    assert!(
        (10..25).contains(&sets),
        "the prefix should hold part of the SetData traffic, has {sets}"
    );

    for (label, cut) in [
        ("mid-data", rec.offset + 16 + rec.data.len() / 2),
        ("mid-record-header", rec.offset + 8),
    ] {
        let p = dir.path().join(format!("cut-{label}.pcap"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let run = zk_dump(&p, &["--port", "2181"]);
        assert!(
            !run.crashed(),
            "{label}: zk-dump crashed ({}): {}",
            run.status,
            run.stderr
        );
        assert_eq!(
            run.events, base.events,
            "{label}: messages before the cut differ from the clean prefix's"
        );
        assert!(
            run.stderr.to_lowercase().contains("truncat"),
            "{label}: stderr does not report the truncation: {}",
            run.stderr
        );
    }

    // Not even a whole global header: an error, not a crash.
    let p = dir.path().join("cut-header.pcap");
    std::fs::write(&p, &bytes[..10]).unwrap();
    let run = zk_dump(&p, &["--port", "2181"]);
    assert!(
        !run.crashed(),
        "10-byte file: zk-dump crashed ({}): {}",
        run.status,
        run.stderr
    );
    assert!(run.events.is_empty());
    assert!(
        !run.stderr.trim().is_empty(),
        "10-byte file: nothing on stderr"
    );
}

/// Packets of every malformed kind injected between the records of a real
/// capture (non-IP frames, runts, truncated IPv4 headers, UDP to the
/// client port, and a TCP flow to port 2181 carrying random bytes): the
/// real flow decodes exactly as without them.
#[test]
fn injected_garbage_packets_leave_real_flows_intact() {
    let src = shared_captures_dir().join("dump.pcap");
    let base = zk_dump_checked(&src, &["--port", "2181"]);
    assert!(!base.events.is_empty());
    let file = PcapFile::read(&src).unwrap();
    let mut rng = Rng::new(0x5eed_2181);
    let fake = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40999);
    let server = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 2181);
    let mut fake_seq = 1000u32;
    let mut out = file.clone();
    out.records.clear();
    for (i, r) in file.records.iter().enumerate() {
        out.records.push(r.clone());
        let mk = |data: Vec<u8>| Record {
            ts_sec: r.ts_sec,
            ts_frac: r.ts_frac,
            orig_len: data.len() as u32,
            data,
            offset: 0,
        };
        match i % 5 {
            0 => {
                // random TCP payload on a flow of its own, first bytes a
                // plausible small length
                let mut payload = vec![0, 0, 0, 24];
                payload.extend(rng.bytes(40));
                let f = build_tcp_frame(
                    fake,
                    server,
                    fake_seq,
                    1,
                    tcp_flags::ACK | tcp_flags::PSH,
                    &payload,
                );
                fake_seq = fake_seq.wrapping_add(payload.len() as u32);
                out.records.push(mk(f));
            }
            1 => {
                // ARP ethertype with junk
                let mut f = vec![0xff; 12];
                f.extend([0x08, 0x06]);
                f.extend(rng.bytes(28));
                out.records.push(mk(f));
            }
            2 => out.records.push(mk(rng.bytes(5))), // runt
            3 => {
                // IPv4 with a header length pointing past the frame
                let mut f = vec![0; 12];
                f.extend([0x08, 0x00, 0x4f, 0, 0, 60]);
                f.extend(rng.bytes(10));
                out.records.push(mk(f));
            }
            _ => {
                // UDP to 2181
                let mut f = build_tcp_frame(fake, server, 0, 0, 0, &rng.bytes(30));
                f[14 + 9] = 17;
                out.records.push(mk(f));
            }
        }
    }
    let dir = tmp();
    let p = dir.path().join("injected.pcap");
    out.write(&p).unwrap();
    let run = zk_dump(&p, &["--port", "2181"]);
    assert!(
        !run.crashed(),
        "zk-dump crashed ({}): {}",
        run.status,
        run.stderr
    );
    assert!(
        run.status.success(),
        "zk-dump failed ({}): {}",
        run.status,
        run.stderr
    );
    let fake_s = fake.to_string();
    let real: Vec<Value> = run
        .events
        .iter()
        .filter(|e| field(e, "client") != Some(fake_s.as_str()))
        .cloned()
        .collect();
    assert_eq!(
        real, base.events,
        "the real flow decodes differently with garbage around it"
    );
}

/// Live: garbage as a first frame, a lying length prefix (0x7fffffff)
/// after a valid handshake and as the very first bytes; the server drops
/// those connections. A NEW connection afterwards decodes exactly.
#[test]
fn garbage_and_lying_lengths_do_not_poison_later_connections() {
    let mut s = Scenario::start("garbage_and_lying_lengths");
    let ep = s.endpoint();
    let mut rng = Rng::new(42);

    // garbage ConnectRequest: a plausible length, random bytes
    let mut g = ep.connect_tcp().unwrap();
    let mut junk = vec![0, 0, 0, 60];
    junk.extend(rng.bytes(60));
    g.write_all(&junk).unwrap();
    let mut sink = Vec::new();
    let _ = g.read_to_end(&mut sink); // the server closes it
    drop(g);

    // a valid handshake, then a frame that claims 0x7fffffff bytes
    let mut l1 = s.connect();
    let l1_client = l1.client_addr().to_string();
    let mut lie = vec![0x7f, 0xff, 0xff, 0xff];
    lie.extend(rng.bytes(100));
    l1.send_raw_unrecorded(&lie).unwrap();
    let mut sink = Vec::new();
    let _ = l1.stream().read_to_end(&mut sink);
    drop(l1);

    // the lie as the very first bytes of a connection
    let mut l2 = ep.connect_tcp().unwrap();
    l2.write_all(&lie).unwrap();
    let mut sink = Vec::new();
    let _ = l2.read_to_end(&mut sink);
    drop(l2);

    // a new, well-behaved connection
    let later = Recorder::new();
    let mut v = RawZk::connect(&ep, &later).unwrap();
    let v_client = v.client_addr().to_string();
    v.create("/after", b"fine", CreateMode::Persistent)
        .unwrap()
        .ok();
    assert_eq!(v.get_data("/after", false).unwrap().ok().data(), b"fine");
    v.exists("/nothing", false).unwrap().expect_err("NoNode");
    v.ping().unwrap().ok();
    v.close().unwrap();
    s.stop_capture();

    let run = s.decode_run();
    let got = decoded_counts_where(&run.events, client_is(&v_client));
    assert_counts_eq(
        "connection after the bad ones",
        &got,
        &later.expected_for(&v_client),
    );
    // what L1 did before lying is still decoded
    let l1c = decoded_counts_where(&run.events, client_is(&l1_client));
    assert_eq!(l1c.get("ConnectRequest", ""), 1, "{l1c:?}");
    assert_eq!(l1c.get("ConnectResponse", ""), 1, "{l1c:?}");
}

/// Capture started after the workload began: a connection opened (with a
/// watch set) before tcpdump ran keeps going; its later requests, replies
/// and the watch event are decoded, as is a new connection.
#[test]
fn capture_starting_mid_stream() {
    let mut s = Scenario::new("capture_starting_mid_stream");
    let before = Recorder::new();
    let mut m = RawZk::connect(&s.endpoint(), &before).unwrap();
    m.create("/ms", b"0", CreateMode::Persistent).unwrap().ok();
    m.get_data("/ms", true).unwrap().ok();
    m.ping().unwrap().ok();

    s.start_capture();
    std::thread::sleep(Duration::from_millis(200));
    m.set_recorder(&s.rec);
    assert_eq!(m.get_data("/ms", false).unwrap().ok().data(), b"0");
    // fires m's own data watch: the event comes before the reply
    m.set_data("/ms", b"1", -1).unwrap().ok();
    let ev = m.wait_event(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (ev.type_name().as_str(), ev.path.as_str()),
        ("NodeDataChanged", "/ms")
    );
    m.create("/ms/child", b"", CreateMode::Persistent)
        .unwrap()
        .ok();
    m.get_children("/ms", false).unwrap().ok();
    m.ping().unwrap().ok();
    let mut n = s.connect();
    n.exists("/ms/child", false).unwrap().ok();
    n.close().unwrap();
    m.close().unwrap();
    s.stop_capture();

    let events = s.decode();
    assert_counts_eq(&s.name, &decoded_counts(&events), &s.rec.expected());
    zk_traffic_tests::checks::assert_common_fields(&events, SERVER);
}
