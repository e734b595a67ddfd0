//! Fresh captures from a real ZooKeeper 3.8 server: each test starts its
//! own server in its own network namespace (loopback MTU 1500), captures
//! the client port, runs a workload with the raw client, and checks that
//! zk-dump decodes exactly what the workload put on the wire.
//!
//! Needs root, tcpdump, iproute2, Debian's zookeeper, and the zk-dump
//! binary (`cargo build --workspace --bins` first).

use std::net::SocketAddrV4;
use std::time::Duration;
use zk_traffic_tests::checks::{assert_common_fields, count_watch, parse_session};
use zk_traffic_tests::pcap::{PcapFile, payload_lengths, retransmissions, stream_span};
use zk_traffic_tests::{
    CreateMode, MultiOp, RawZk, Scenario, assert_decodes_to_expected, field, of_type,
};

const EVENT_WAIT: Duration = Duration::from_secs(10);
const SERVER: &str = "127.0.0.1:2181";

fn addr(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

/// (a) CRUD on a small tree incl. errors, (e) watches firing, (f) multi,
/// (g) digest auth.
#[test]
fn crud_errors_watches_multi_auth() {
    let mut s = Scenario::start("crud_errors_watches_multi_auth");
    let mut a = s.connect();
    let mut b = s.connect();

    // (a) CRUD
    a.create("/app", b"root", CreateMode::Persistent)
        .unwrap()
        .ok();
    a.create("/app/config", b"v1", CreateMode::Persistent)
        .unwrap()
        .ok();
    let c2 = a
        .create2("/app/c2", b"x", CreateMode::Persistent)
        .unwrap()
        .ok();
    assert_eq!(c2.created_path(), "/app/c2");
    let seq = a
        .create("/app/seq-", b"", CreateMode::PersistentSequential)
        .unwrap()
        .ok();
    assert!(
        seq.created_path().starts_with("/app/seq-")
            && seq.created_path().len() == "/app/seq-".len() + 10,
        "sequential name {}",
        seq.created_path()
    );
    a.create("/app/eph", b"", CreateMode::Ephemeral)
        .unwrap()
        .ok();
    a.create("/app/container", b"", CreateMode::Container)
        .unwrap()
        .ok();
    assert_eq!(a.get_data("/app/config", false).unwrap().ok().data(), b"v1");
    a.exists("/app/config", false).unwrap().ok();
    a.set_data("/app/config", b"v2", -1).unwrap().ok();
    a.set_data("/app/config", b"v3", 0)
        .unwrap()
        .expect_err("BadVersion");
    let kids = a.get_children("/app", false).unwrap().ok().children();
    assert_eq!(kids.len(), 5, "{kids:?}");
    a.get_children2("/app", false).unwrap().ok();
    a.sync("/app").unwrap().ok();
    a.get_data("/app/missing", false)
        .unwrap()
        .expect_err("NoNode");
    a.create("/app/config", b"", CreateMode::Persistent)
        .unwrap()
        .expect_err("NodeExists");
    a.delete("/app/missing", -1).unwrap().expect_err("NoNode");
    a.delete("/app", -1).unwrap().expect_err("NotEmpty");
    a.exists("/app/missing", false)
        .unwrap()
        .expect_err("NoNode");
    a.create("/nope/child", b"", CreateMode::Persistent)
        .unwrap()
        .expect_err("NoNode");
    a.delete("/app/c2", -1).unwrap().ok();
    a.ping().unwrap().ok();

    // (e) watches: a watches, b writes.
    a.get_data("/app/config", true).unwrap().ok();
    b.set_data("/app/config", b"v4", -1).unwrap().ok();
    let ev = a.wait_event(EVENT_WAIT).unwrap();
    assert_eq!(
        (ev.type_name().as_str(), ev.path.as_str()),
        ("NodeDataChanged", "/app/config")
    );
    a.get_children("/app", true).unwrap().ok();
    b.create("/app/new-child", b"", CreateMode::Persistent)
        .unwrap()
        .ok();
    let ev = a.wait_event(EVENT_WAIT).unwrap();
    assert_eq!(
        (ev.type_name().as_str(), ev.path.as_str()),
        ("NodeChildrenChanged", "/app")
    );
    a.exists("/app/later", true).unwrap().expect_err("NoNode");
    b.create("/app/later", b"", CreateMode::Persistent)
        .unwrap()
        .ok();
    let ev = a.wait_event(EVENT_WAIT).unwrap();
    assert_eq!(
        (ev.type_name().as_str(), ev.path.as_str()),
        ("NodeCreated", "/app/later")
    );
    a.get_data("/app/later", true).unwrap().ok();
    b.delete("/app/later", -1).unwrap().ok();
    let ev = a.wait_event(EVENT_WAIT).unwrap();
    assert_eq!(
        (ev.type_name().as_str(), ev.path.as_str()),
        ("NodeDeleted", "/app/later")
    );

    // (f) multi: one that commits, one that fails on its second op.
    a.create("/app/m0", b"", CreateMode::Persistent)
        .unwrap()
        .ok();
    a.multi(&[
        MultiOp::create("/app/m1", b"x"),
        MultiOp::set_data("/app/m1", b"y"),
        MultiOp::delete("/app/m0"),
    ])
    .unwrap()
    .ok();
    assert_eq!(a.get_data("/app/m1", false).unwrap().ok().data(), b"y");
    a.exists("/app/m0", false).unwrap().expect_err("NoNode");
    // A failing multi: ZooKeeper answers with header err Ok and the errors
    // in the per-op results; the recorder keeps whatever the header says.
    a.multi(&[
        MultiOp::create("/app/m2", b""),
        MultiOp::delete("/app/missing"),
    ])
    .unwrap();
    a.exists("/app/m2", false).unwrap().expect_err("NoNode");

    // (g) digest auth; a node only the authenticated session may read.
    b.set_auth_digest("user:pass").unwrap().ok();
    let f = b.create_acl_frame(
        "/app/secret",
        b"s3cret",
        zk_traffic_tests::jute::PERMS_ALL,
        "auth",
        "",
    );
    b.call(f).unwrap().ok();
    assert_eq!(
        b.get_data("/app/secret", false).unwrap().ok().data(),
        b"s3cret"
    );
    a.get_data("/app/secret", false)
        .unwrap()
        .expect_err("NoAuth");

    let sessions = [a.session_id as u64, b.session_id as u64];
    assert!(a.close().unwrap().is_empty());
    assert!(b.close().unwrap().is_empty());
    s.stop_capture();

    let events = s.decode();
    assert_decodes_to_expected(&s, &events);
    assert_common_fields(&events, SERVER);
    // watch flags as sent
    assert_eq!(
        count_watch(&events, "GetDataRequest", "/app/config", true),
        1
    );
    assert_eq!(
        count_watch(&events, "GetDataRequest", "/app/config", false),
        1
    );
    assert_eq!(count_watch(&events, "GetChildrenRequest", "/app", true), 1);
    assert_eq!(count_watch(&events, "ExistsRequest", "/app/later", true), 1);
    assert_eq!(
        count_watch(&events, "GetDataRequest", "/app/later", true),
        1
    );
    // sessions of the two handshakes
    let mut got: Vec<u64> = of_type(&events, "ConnectResponse")
        .iter()
        .filter_map(|e| field(e, "session").and_then(parse_session))
        .collect();
    got.sort();
    let mut want = sessions.to_vec();
    want.sort();
    assert_eq!(got, want);
    // the multis' sub-ops are in the counts; both multis are replies Ok or not
    assert_eq!(of_type(&events, "MultiReply").len(), 2);
}

/// (b) 200 pipelined requests in a handful of write() calls; (c) one
/// getData frame split at every byte boundary.
#[test]
fn pipelined_and_split_frames() {
    let mut s = Scenario::start("pipelined_and_split_frames");
    let mut setup = s.connect();
    setup
        .create("/p", b"", CreateMode::Persistent)
        .unwrap()
        .ok();
    setup
        .create("/split-target", b"payload", CreateMode::Persistent)
        .unwrap()
        .ok();

    // (b) pipelined
    let mut p = s.connect();
    let mut frames = Vec::new();
    for i in 0..200 {
        let f = match i % 4 {
            0 => p.create_frame(&format!("/p/n{i}"), b"d", CreateMode::Persistent),
            1 => p.get_data_frame(&format!("/p/n{}", i - 1), false),
            2 => p.exists_frame(&format!("/p/n{}", i - 2), false),
            _ => p.get_data_frame("/p/missing", false),
        };
        frames.push(f);
    }
    for chunk in frames.chunks(40) {
        p.send_pipelined(chunk).unwrap();
    }
    let replies = p.recv_replies(&frames).unwrap();
    for (i, r) in replies.iter().enumerate() {
        let want = if i % 4 == 3 { "NoNode" } else { "Ok" };
        assert_eq!(r.err_name(), want, "pipelined #{i} {}", r.path);
    }
    let p_client = p.client_addr().to_string();
    p.close().unwrap();

    // (c) split at every byte boundary
    let mut q = s.connect();
    let q_client = q.client_addr().to_string();
    let probe = q.get_data_frame("/split-target", false);
    let len = probe.len();
    let mut split_frames = Vec::new();
    for k in 1..len {
        let f = q.get_data_frame("/split-target", false);
        assert_eq!(f.len(), len);
        q.send_split(&f, k, Duration::from_millis(25)).unwrap();
        assert_eq!(q.recv_reply(f.xid).unwrap().ok().data(), b"payload");
        split_frames.push(f);
    }
    q.close().unwrap();
    setup.close().unwrap();
    s.stop_capture();

    // The capture really has the shapes we meant.
    let pc = PcapFile::read(s.pcap_path()).unwrap();
    let to_server = payload_lengths(&pc, addr(&p_client), addr(SERVER));
    assert!(
        to_server.len() <= 2 + 10,
        "pipelined connection used {} segments: {to_server:?}",
        to_server.len()
    );
    let q_lens = payload_lengths(&pc, addr(&q_client), addr(SERVER));
    // connect, then (k, len-k) for every k, then close
    let mut want = vec![q_lens[0]];
    for k in 1..len {
        want.push(k);
        want.push(len - k);
    }
    want.push(12);
    assert_eq!(q_lens, want, "split segments as captured");

    let events = s.decode();
    assert_decodes_to_expected(&s, &events);
    assert_common_fields(&events, SERVER);
    // every split request decoded with its own xid
    let mut xids: Vec<i64> = events
        .iter()
        .filter(|e| {
            field(e, "type") == Some("GetDataRequest")
                && field(e, "path") == Some("/split-target")
                && field(e, "client") == Some(q_client.as_str())
        })
        .filter_map(|e| e.get("xid").and_then(|x| x.as_i64()))
        .collect();
    xids.sort();
    let want: Vec<i64> = split_frames.iter().map(|f| f.xid as i64).collect();
    assert_eq!(xids, want);
}

/// (d) a ~1,000,000-byte znode written and read back over a 1500-MTU
/// loopback: the GetDataReply spans hundreds of segments.
#[test]
fn large_znode_spanning_segments() {
    let mut s = Scenario::start("large_znode_spanning_segments");
    let mut c = s.connect();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    c.create("/big", &data, CreateMode::Persistent)
        .unwrap()
        .ok();
    let r = c.get_data("/big", false).unwrap().ok();
    assert_eq!(r.data(), data);
    let reply_size = r.size;
    assert_eq!(reply_size, 4 + 16 + 4 + data.len() + 68);
    let client = c.client_addr().to_string();
    c.close().unwrap();
    s.stop_capture();

    let pc = PcapFile::read(s.pcap_path()).unwrap();
    let down = payload_lengths(&pc, addr(SERVER), addr(&client));
    assert!(down.len() >= 600, "reply in only {} segments", down.len());
    assert!(
        down.iter().all(|l| *l <= 1448),
        "a segment above the MSS: {:?}",
        down.iter().max()
    );
    // every byte the server sent this client is in the capture (loopback
    // backlog overflows under load make TCP retransmit a few segments)
    let sent_down: u64 = s
        .rec
        .expected_for(&client)
        .bytes
        .iter()
        .filter(|((t, _), _)| !t.ends_with("Request"))
        .map(|(_, v)| *v)
        .sum();
    assert_eq!(stream_span(&pc, addr(SERVER), addr(&client)), sent_down);
    eprintln!(
        "large znode capture: {} segments down, {} retransmitted down, {} retransmitted up",
        down.len(),
        retransmissions(&pc, addr(SERVER), addr(&client)),
        retransmissions(&pc, addr(&client), addr(SERVER))
    );

    let events = s.decode();
    assert_decodes_to_expected(&s, &events);
    assert_common_fields(&events, SERVER);
    let got = of_type(&events, "GetDataReply");
    assert_eq!(got.len(), 1);
    assert_eq!(field(got[0], "path"), Some("/big"));
    assert_eq!(
        got[0].get("size").and_then(|v| v.as_u64()),
        Some(reply_size as u64)
    );
    let creq = of_type(&events, "CreateRequest");
    assert_eq!(creq.len(), 1);
    assert!(creq[0].get("size").and_then(|v| v.as_u64()).unwrap() > 1_000_000);
}

/// (h) four-letter words; (i) reconnect with an existing session.
#[test]
fn four_letter_words_and_reconnect() {
    let mut s = Scenario::start("four_letter_words_and_reconnect");
    let ep = s.endpoint();
    for (w, needle) in [
        ("ruok", "imok"),
        ("stat", "Zookeeper version"),
        ("conf", "clientPort"),
        ("mntr", "zk_version"),
    ] {
        let text = ep.four_letter(w, Some(&s.rec)).unwrap();
        assert!(text.contains(needle), "{w} answered {text:?}");
    }

    let mut a = s.connect();
    let mut b = s.connect();
    a.create("/r", b"1", CreateMode::Persistent).unwrap().ok();
    a.create("/r/eph", b"", CreateMode::Ephemeral).unwrap().ok();
    a.get_data("/r", true).unwrap().ok();
    let old = a.session_id;
    let old_client = a.client_addr().to_string();
    let mut a: RawZk = a.reconnect().unwrap();
    assert_eq!(a.session_id, old, "reconnect got another session");
    assert_ne!(a.client_addr(), old_client);
    let rel = a.last_zxid;
    a.set_watches(rel, &["/r"], &[], &[]).unwrap().ok();
    b.set_data("/r", b"2", -1).unwrap().ok();
    let ev = a.wait_event(EVENT_WAIT).unwrap();
    assert_eq!(
        (ev.type_name().as_str(), ev.path.as_str()),
        ("NodeDataChanged", "/r")
    );
    // the ephemeral node survived: same session
    a.exists("/r/eph", false).unwrap().ok();
    let new_client = a.client_addr().to_string();
    a.close().unwrap();
    b.close().unwrap();
    s.stop_capture();

    let events = s.decode();
    assert_decodes_to_expected(&s, &events);
    assert_common_fields(&events, SERVER);
    let connects = of_type(&events, "ConnectRequest");
    assert_eq!(connects.len(), 3);
    let reconnects: Vec<_> = connects
        .iter()
        .filter(|e| e.get("reconnect").and_then(|v| v.as_bool()) == Some(true))
        .collect();
    assert_eq!(reconnects.len(), 1, "exactly one reconnect");
    assert_eq!(
        field(reconnects[0], "session").and_then(parse_session),
        Some(old as u64)
    );
    assert_eq!(field(reconnects[0], "client"), Some(new_client.as_str()));
    let words: Vec<&str> = of_type(&events, "FourLetterWord")
        .iter()
        .filter_map(|e| field(e, "word"))
        .collect();
    let mut words = words;
    words.sort();
    assert_eq!(words, ["conf", "mntr", "ruok", "stat"]);
}
