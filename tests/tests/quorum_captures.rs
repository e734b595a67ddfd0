//! `zab-dump` and `fle-dump` on the zktraffic fixtures
//! (`<workspace>/../shared/captures/zktraffic`: `zab_*.pcap`, `omni.pcap`)
//! must show what the fixtures' README says is on the wire; on bad input
//! (garbage mid-stream, lying lengths, unknown types, a lost segment, a cut
//! capture file) they must count errors, never crash, and resume decoding.
//!
//! Needs the fle-dump and zab-dump binaries (`cargo build -p zk-traffic`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use zk_traffic_tests::pcap::{PcapFile, Record, build_tcp_frame, tcp_flags};
use zk_traffic_tests::proc::wait_timeout;
use zk_traffic_tests::shared_captures_dir;
use zk_traffic_tests::zkdump::{parse_ndjson, workspace_root};

/// fle-dump or zab-dump: `$FLE_DUMP_BIN` / `$ZAB_DUMP_BIN`, else
/// `<target>/debug/<name>`.
fn tool(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&var) {
        return PathBuf::from(p);
    }
    let mut dirs = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let t = PathBuf::from(t);
        dirs.push(if t.is_relative() {
            workspace_root().join(t)
        } else {
            t
        });
    }
    dirs.push(workspace_root().join("target"));
    for d in &dirs {
        let p = d.join("debug").join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found: build it first with `cargo build -p zk-traffic` (or set {var})");
}

struct Run {
    events: Vec<Value>,
    stderr: String,
}

/// `TOOL --offline FILE --json ARGS...`; asserts a clean exit (no panic).
fn run(name: &str, pcap: &Path, args: &[&str]) -> Run {
    let bin = tool(name);
    let mut child = Command::new(&bin)
        .arg("--offline")
        .arg(pcap)
        .arg("--json")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let te = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let status = wait_timeout(&mut child, Duration::from_secs(60))
        .expect("wait")
        .unwrap_or_else(|| panic!("{name} ran longer than 60 s"));
    let (stdout, stderr) = (to.join().unwrap(), te.join().unwrap());
    assert!(
        status.success(),
        "{name} {} {args:?} failed ({status}):\n{stderr}",
        pcap.display()
    );
    Run {
        events: parse_ndjson(&stdout),
        stderr,
    }
}

fn fixture(name: &str) -> PathBuf {
    let p = shared_captures_dir().join(name);
    assert!(p.is_file(), "fixture {} missing", p.display());
    p
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn i(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

fn counts(events: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in events {
        *m.entry(s(e, "type").unwrap_or("?").to_owned()).or_default() += 1;
    }
    m
}

fn of<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| s(e, "type") == Some(ty)).collect()
}

#[track_caller]
fn assert_no_errors(r: &Run) {
    assert!(
        r.stderr.contains("errors: link_layer[] framing[] decode[]"),
        "errors reported:\n{}",
        r.stderr
    );
}

fn zab_fixture(name: &str) -> Run {
    run(
        "zab-dump",
        &fixture(name),
        &["--port", "20022", "--include-pings"],
    )
}

#[test]
fn zab_request_requests_proposals_commits_acks_and_pings() {
    let r = zab_fixture("zab_request.pcap");
    assert_no_errors(&r);
    let c = counts(&r.events);
    let expect: BTreeMap<String, usize> = [
        ("REQUEST", 3),
        ("PROPOSAL", 6),
        ("COMMIT", 6),
        ("ACK", 6),
        ("PING", 57),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(c, expect);
    let p = of(&r.events, "PROPOSAL");
    assert_eq!(i(p[0], "zxid"), Some(0x1_0000_0001));
    assert_eq!(s(p[0], "txn_type"), Some("createSession"));
    assert_eq!(s(p[0], "session"), Some("0x1001df405af0000"));
    assert_eq!(i(p[2], "zxid"), Some(0x1_0000_0002));
    assert_eq!(s(p[2], "txn_type"), Some("create"));
    assert_eq!(s(p[2], "path"), Some("/foo"));
    let req = of(&r.events, "REQUEST");
    assert_eq!(s(req[0], "request"), Some("ConnectRequest"));
    assert_eq!(s(req[1], "request"), Some("CreateRequest"));
    // Without --include-pings the PINGs are hidden.
    let quiet = run("zab-dump", &fixture("zab_request.pcap"), &["-p", "20022"]);
    assert_eq!(of(&quiet.events, "PING").len(), 0);
    assert_eq!(quiet.events.len(), 21);
}

#[test]
fn zab_revalidate_session_and_timeout() {
    let r = zab_fixture("zab_revalidate.pcap");
    assert_no_errors(&r);
    let rv = of(&r.events, "REVALIDATE");
    assert_eq!(rv.len(), 2);
    for e in &rv {
        assert_eq!(s(e, "session"), Some("0x3001df405ba0000"), "{e}");
    }
    assert_eq!(i(rv[0], "timeout"), Some(10000));
    assert_eq!(rv[1].get("valid").and_then(Value::as_bool), Some(true));
}

#[test]
fn zab_commitandactivate_leader_3() {
    let r = zab_fixture("zab_commitandactivate.pcap");
    assert_no_errors(&r);
    let ca = of(&r.events, "COMMITANDACTIVATE");
    assert_eq!(ca.len(), 4);
    assert!(ca.iter().all(|e| i(e, "leader") == Some(3)));
    // The README's zxid is the first reconfig's; the second one follows.
    let zxids: Vec<i64> = ca.iter().filter_map(|e| i(e, "zxid")).collect();
    assert_eq!(
        zxids,
        [0x1_0000_000d, 0x1_0000_000d, 0x1_0000_000e, 0x1_0000_000e]
    );
    let p = of(&r.events, "PROPOSAL");
    assert_eq!(s(p[0], "txn_type"), Some("reconfig"));
}

#[test]
fn zab_followerinfo_and_a_newleader_sharing_a_segment_with_a_diff() {
    let r = zab_fixture("zab_followerinfo.pcap");
    assert_no_errors(&r);
    let fi = of(&r.events, "FOLLOWERINFO");
    assert_eq!(fi.len(), 2);
    for e in &fi {
        assert_eq!(i(e, "protocol_version"), Some(65536), "{e}");
        assert_eq!(i(e, "config_version"), Some(0), "{e}");
    }
    // The README names sid 2; the other follower on the wire is sid 1.
    assert_eq!(i(fi[0], "sid"), Some(2));
    assert_eq!(i(fi[1], "sid"), Some(1));
    let diffs: Vec<f64> = of(&r.events, "DIFF")
        .iter()
        .filter_map(|e| e["ts"].as_f64())
        .collect();
    assert!(
        of(&r.events, "NEWLEADER")
            .iter()
            .any(|e| diffs.contains(&e["ts"].as_f64().unwrap())),
        "a NEWLEADER in the segment of a DIFF"
    );
    let nl = of(&r.events, "NEWLEADER");
    assert_eq!(nl[0]["config"]["servers"].as_array().map(Vec::len), Some(3));
}

#[test]
fn zab_informandactivate_reconfig_txn() {
    let r = zab_fixture("zab_informandactivate.pcap");
    assert_no_errors(&r);
    let ia = of(&r.events, "INFORMANDACTIVATE");
    assert_eq!(ia.len(), 2);
    for e in &ia {
        assert_eq!(i(e, "leader"), Some(3));
        assert_eq!(s(e, "session"), Some("0x34e8105a7540000"));
        assert_eq!(s(e, "txn_type"), Some("reconfig"));
        assert_eq!(i(e, "zxid"), Some(0x1_0000_0006));
        assert_eq!(s(e, "path"), Some("/zookeeper/config"));
    }
}

#[test]
fn omni_election_and_quorum_sides() {
    let f = run(
        "fle-dump",
        &fixture("omni.pcap"),
        &["-p", "2783", "-p", "2784", "-p", "2785"],
    );
    assert_no_errors(&f);
    let c = counts(&f.events);
    assert_eq!((c["Initial"], c["Notification"]), (3, 9), "{c:?}");
    let n = of(&f.events, "Notification");
    assert_eq!(s(n[0], "state"), Some("LOOKING"));
    assert_eq!(i(n[0], "version"), Some(2));
    let servers = n[0]["config"]["servers"].as_array().unwrap();
    let ports: Vec<(i64, i64)> = servers
        .iter()
        .map(|sv| {
            (
                i(sv, "quorum_port").unwrap(),
                i(sv, "election_port").unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, [(2780, 2783), (2781, 2784), (2782, 2785)]);

    let summary = run(
        "fle-dump",
        &fixture("omni.pcap"),
        &["-p", "2783", "-p", "2784", "-p", "2785", "--summary"],
    );
    let kinds: Vec<(&str, Option<i64>)> = summary
        .events
        .iter()
        .map(|e| (s(e, "type").unwrap(), i(e, "winner")))
        .collect();
    assert_eq!(kinds, [("Election", Some(2)), ("Join", Some(2))]);

    let z = run("zab-dump", &fixture("omni.pcap"), &["-p", "2781"]);
    assert_no_errors(&z);
    let c = counts(&z.events);
    assert_eq!(c.get("SNAPSHOT"), Some(&1), "{c:?}");
    assert_eq!(c.get("PROPOSAL"), Some(&4), "{c:?}");
    let zs = run(
        "zab-dump",
        &fixture("omni.pcap"),
        &["-p", "2781", "--summary"],
    );
    let syncs: Vec<(Option<i64>, Option<&str>)> = of(&zs.events, "Sync")
        .iter()
        .map(|e| (i(e, "learner_sid"), s(e, "sync")))
        .collect();
    assert_eq!(syncs, [(Some(1), Some("DIFF")), (Some(3), Some("SNAP"))]);
    let lat = of(&zs.events, "CommitLatency");
    assert_eq!(i(lat[0], "count"), Some(2));
}

// ---- bad input -----------------------------------------------------------

fn jute_packet(t: i32, zxid: i64, data: Option<&[u8]>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&t.to_be_bytes());
    b.extend_from_slice(&zxid.to_be_bytes());
    match data {
        Some(d) => {
            b.extend_from_slice(&(d.len() as i32).to_be_bytes());
            b.extend_from_slice(d);
        }
        None => b.extend_from_slice(&(-1i32).to_be_bytes()),
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

fn proposal(zxid: i64) -> Vec<u8> {
    let mut txn = Vec::new();
    txn.extend_from_slice(&0x100i64.to_be_bytes()); // session
    txn.extend_from_slice(&1i32.to_be_bytes()); // cxid
    txn.extend_from_slice(&zxid.to_be_bytes());
    txn.extend_from_slice(&0i64.to_be_bytes()); // time
    txn.extend_from_slice(&2i32.to_be_bytes()); // delete
    txn.extend_from_slice(&2i32.to_be_bytes());
    txn.extend_from_slice(b"/d");
    jute_packet(2, zxid, Some(&txn))
}

/// A synthetic connection written to a pcap file: each `send` is one
/// segment; `skip` advances the sequence number without a segment (a lost
/// one), and the next segment from the other side acknowledges it.
struct Synth {
    a: SocketAddrV4,
    b: SocketAddrV4,
    aseq: u32,
    bseq: u32,
    records: Vec<Record>,
    t: u32,
}

impl Synth {
    fn new(a: SocketAddrV4, b: SocketAddrV4) -> Synth {
        let mut s = Synth {
            a,
            b,
            aseq: 1000,
            bseq: 9000,
            records: Vec::new(),
            t: 0,
        };
        s.frame(true, tcp_flags::SYN, &[]);
        s.frame(false, tcp_flags::SYN | tcp_flags::ACK, &[]);
        s.aseq += 1;
        s.bseq += 1;
        s
    }

    fn frame(&mut self, from_a: bool, flags: u8, payload: &[u8]) {
        let (src, dst, seq, ack) = if from_a {
            (self.a, self.b, self.aseq, self.bseq)
        } else {
            (self.b, self.a, self.bseq, self.aseq)
        };
        let data = build_tcp_frame(src, dst, seq, ack, flags, payload);
        self.t += 1;
        self.records.push(Record {
            ts_sec: 1_700_000_000,
            ts_frac: self.t * 1000,
            orig_len: data.len() as u32,
            data,
            offset: 0,
        });
    }

    fn send(&mut self, from_a: bool, payload: &[u8]) {
        self.frame(from_a, tcp_flags::ACK | tcp_flags::PSH, payload);
        if from_a {
            self.aseq = self.aseq.wrapping_add(payload.len() as u32);
        } else {
            self.bseq = self.bseq.wrapping_add(payload.len() as u32);
        }
    }

    fn skip(&mut self, from_a: bool, n: usize) {
        if from_a {
            self.aseq = self.aseq.wrapping_add(n as u32);
        } else {
            self.bseq = self.bseq.wrapping_add(n as u32);
        }
    }

    fn write(&self, path: &Path) {
        let mut header = [0u8; 24];
        header[..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        header[16..20].copy_from_slice(&65535u32.to_le_bytes());
        header[20..24].copy_from_slice(&1u32.to_le_bytes());
        PcapFile {
            header,
            big_endian: false,
            linktype: 1,
            records: self.records.clone(),
        }
        .write(path)
        .unwrap();
    }
}

fn errors_of(stderr: &str, what: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("errors:"))
        .unwrap_or("");
    let start = line.find(&format!("{what}[")).map(|i| i + what.len() + 1);
    start
        .and_then(|s0| line[s0..].find(']').map(|e| line[s0..s0 + e].to_owned()))
        .unwrap_or_default()
}

#[test]
fn zab_garbage_lying_lengths_unknown_types_and_a_lost_segment_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let learner = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);
    let leader = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 3), 2888);
    let mut c = Synth::new(learner, leader);
    let z = |n: i64| 0x2_0000_0000 | n;
    c.send(false, &proposal(z(1)));
    c.send(true, &jute_packet(3, z(1), None));
    c.send(false, &jute_packet(4, z(1), None));
    // Garbage between two packets.
    c.send(false, &[0xEE; 37]);
    c.send(false, &proposal(z(2)));
    // A PROPOSAL whose data length lies (past any limit), then junk.
    let mut liar = jute_packet(2, z(3), None);
    liar[12..16].copy_from_slice(&0x7fff_0000i32.to_be_bytes());
    liar.extend_from_slice(&[0x11; 50]);
    c.send(false, &liar);
    c.send(false, &jute_packet(4, z(2), None));
    // An unknown packet type in step.
    c.send(false, &jute_packet(77, 0, None));
    c.send(false, &proposal(z(3)));
    // A lost segment (the learner's ACK of z(3)); its next packets decode.
    c.skip(true, jute_packet(3, z(3), None).len());
    c.send(true, &jute_packet(3, z(4), None));
    c.send(false, &jute_packet(4, z(3), None));
    // A REVALIDATE whose data fits no form: the packet shows, its data is an error.
    c.send(true, &jute_packet(6, -1, Some(&[0; 10])));
    c.send(false, &proposal(z(4)));
    c.send(false, &jute_packet(4, z(4), None));
    let path = dir.path().join("bad-zab.pcap");
    c.write(&path);

    let r = run("zab-dump", &path, &[]);
    let seen: Vec<(String, i64)> = r
        .events
        .iter()
        .map(|e| (s(e, "type").unwrap().to_owned(), i(e, "zxid").unwrap_or(0)))
        .collect();
    let want: Vec<(String, i64)> = [
        ("PROPOSAL", z(1)),
        ("ACK", z(1)),
        ("COMMIT", z(1)),
        ("PROPOSAL", z(2)),
        ("COMMIT", z(2)),
        ("PROPOSAL", z(3)),
        ("ACK", z(4)),
        ("COMMIT", z(3)),
        ("REVALIDATE", -1),
        ("PROPOSAL", z(4)),
        ("COMMIT", z(4)),
    ]
    .into_iter()
    .map(|(t, z)| (t.to_owned(), z))
    .collect();
    assert_eq!(seen, want, "stderr:\n{}", r.stderr);
    let framing = errors_of(&r.stderr, "framing");
    assert!(framing.contains("over_limit"), "{}", r.stderr);
    assert!(framing.contains("unknown_opcode"), "{}", r.stderr);
    assert!(
        errors_of(&r.stderr, "decode").contains("bad_length"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("gaps=1"), "{}", r.stderr);
    let rv = of(&r.events, "REVALIDATE");
    assert_eq!(s(rv[0], "error"), Some("bad_length"));
}

fn notification(state: i32, leader: i64, epoch: i64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&state.to_be_bytes());
    b.extend_from_slice(&leader.to_be_bytes());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    let mut f = (b.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&b);
    f
}

#[test]
fn fle_garbage_lying_lengths_and_unknown_states_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let a = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 40000);
    let b = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 3888);
    let mut c = Synth::new(a, b);
    let mut init = (-65536i64).to_be_bytes().to_vec();
    init.extend_from_slice(&2i64.to_be_bytes());
    init.extend_from_slice(&13i32.to_be_bytes());
    init.extend_from_slice(b"10.0.0.2:3888");
    c.send(true, &init);
    c.send(true, &notification(0, 2, 1));
    // A length that lies (over 512 KiB) followed by junk.
    let mut junk = 0x7000_0000i32.to_be_bytes().to_vec();
    junk.extend_from_slice(&[0x55; 60]);
    c.send(true, &junk);
    c.send(true, &notification(0, 2, 1));
    c.send(false, &notification(0, 1, 1));
    // A notification with an unknown state: a whole frame that does not decode.
    c.send(false, &notification(9, 1, 1));
    c.send(false, &notification(0, 2, 1));
    let path = dir.path().join("bad-fle.pcap");
    c.write(&path);
    let r = run("fle-dump", &path, &[]);
    let seen: Vec<(String, Option<i64>)> = r
        .events
        .iter()
        .map(|e| (s(e, "type").unwrap().to_owned(), i(e, "leader")))
        .collect();
    assert_eq!(
        seen,
        [
            ("Initial".to_owned(), None),
            ("Notification".to_owned(), Some(2)),
            ("Notification".to_owned(), Some(2)),
            ("Notification".to_owned(), Some(1)),
            ("Malformed".to_owned(), None),
            ("Notification".to_owned(), Some(2)),
        ],
        "{}",
        r.stderr
    );
    assert!(
        errors_of(&r.stderr, "framing").contains("over_limit"),
        "{}",
        r.stderr
    );
    assert!(
        errors_of(&r.stderr, "decode").contains("unknown_opcode"),
        "{}",
        r.stderr
    );
}

#[test]
fn cut_capture_file_keeps_what_came_before_the_cut() {
    let src = fixture("zab_request.pcap");
    let full = run("zab-dump", &src, &["-p", "20022", "--include-pings"]);
    let bytes = std::fs::read(&src).unwrap();
    let file = PcapFile::parse(&bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut_at = file.records[80].offset + 16 + 10; // inside record 80's data
    let path = dir.path().join("cut.pcap");
    std::fs::write(&path, &bytes[..cut_at]).unwrap();
    let r = run("zab-dump", &path, &["-p", "20022", "--include-pings"]);
    assert!(
        r.stderr.contains("warning: the capture file ends"),
        "{}",
        r.stderr
    );
    assert!(!r.events.is_empty() && r.events.len() < full.events.len());
    assert_eq!(r.events[..], full.events[..r.events.len()]);
}

#[test]
fn omni_mode_learns_every_port_and_decodes_the_three_protocols() {
    // No port it could know: election ports come from the initial
    // messages, quorum and client ports from the configs they carry.
    let o = run(
        "zk-omni-dump",
        &fixture("omni.pcap"),
        &["--client-port", "1", "--zab-port", "1", "--fle-port", "1"],
    );
    assert!(
        o.stderr
            .contains("errors: link_layer[] client[ ] quorum[ ]"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("zab_ports=1,2780,2781,2782 fle_ports=1,2783,2784,2785"),
        "{}",
        o.stderr
    );
    let by_proto = |p: &str| -> Vec<Value> {
        o.events
            .iter()
            .filter(|e| s(e, "proto") == Some(p))
            .cloned()
            .collect()
    };
    let fle = run(
        "fle-dump",
        &fixture("omni.pcap"),
        &["-p", "2783", "-p", "2784", "-p", "2785"],
    );
    let zab = run("zab-dump", &fixture("omni.pcap"), &["-p", "2781"]);
    assert_eq!(counts(&by_proto("fle")), counts(&fle.events));
    assert_eq!(counts(&by_proto("zab")), counts(&zab.events));
    let client = counts(&by_proto("client"));
    for t in [
        "ConnectRequest",
        "ConnectResponse",
        "CreateRequest",
        "CreateReply",
        "SyncRequest",
    ] {
        assert_eq!(client.get(t), Some(&1), "{t}: {client:?}");
    }
    let summary = run(
        "zk-omni-dump",
        &fixture("omni.pcap"),
        &["--summary", "--zab-port", "1", "--fle-port", "1"],
    );
    let kinds: Vec<&str> = summary.events.iter().filter_map(|e| s(e, "type")).collect();
    assert_eq!(&kinds[..2], ["Election", "Join"]);
    assert!(
        kinds.contains(&"CommitLatency") && kinds.contains(&"Sync"),
        "{kinds:?}"
    );
}
