//! The zktraffic fixture captures (`<workspace>/../shared/captures/zktraffic`):
//! zk-dump must decode exactly what is on the wire, as the fixtures' README
//! table states it (per-path breakdowns where the README gives totals were
//! read off the wire independently). The ZAB/FLE files (zab_*, omni) are
//! not covered here.
//!
//! Needs the zk-dump binary (`cargo build --workspace --bins` first).

use serde_json::Value;
use zk_traffic_tests::checks::parse_session;
use zk_traffic_tests::{
    Counts, assert_counts_eq, decoded_counts, field, of_type, shared_captures_dir, zk_dump_json,
};

fn decode(file: &str) -> Vec<Value> {
    decode_with(file, &[])
}

fn decode_with(file: &str, extra: &[&str]) -> Vec<Value> {
    let p = shared_captures_dir().join(file);
    assert!(p.is_file(), "fixture {} missing", p.display());
    let mut args = vec!["--port", "2181"];
    args.extend_from_slice(extra);
    zk_dump_json(&p, &args)
}

/// Exact equality of the decoded counts (sizes not compared).
#[track_caller]
fn assert_exact(file: &str, events: &[Value], expected: &Counts) {
    assert_counts_eq(file, &decoded_counts(events).without_bytes(), expected);
}

fn int(e: &Value, k: &str) -> Option<i64> {
    e.get(k).and_then(Value::as_i64)
}

fn boolean(e: &Value, k: &str) -> Option<bool> {
    e.get(k).and_then(Value::as_bool)
}

fn load_testing(c: &mut Counts, ty: &str, each: u64) {
    for i in 0..5 {
        c.add(ty, &format!("/load-testing/{i}"), each);
    }
}

#[test]
fn auth() {
    // SetAuth (xid -4), scheme digest, and its reply (no handshake in the file).
    let ev = decode("auth.pcap");
    let mut e = Counts::new();
    e.add("SetAuthRequest", "", 1).add("SetAuthReply", "", 1);
    assert_exact("auth.pcap", &ev, &e);
    for t in ["SetAuthRequest", "SetAuthReply"] {
        assert_eq!(int(of_type(&ev, t)[0], "xid"), Some(-4), "{t} xid");
    }
    assert_eq!(field(of_type(&ev, "SetAuthReply")[0], "err"), Some("Ok"));
    assert_eq!(int(of_type(&ev, "SetAuthRequest")[0], "opcode"), Some(100));
}

#[test]
fn connect_replies() {
    // 3 ConnectRequest + 3 ConnectResponse (timeout 10000: not in the JSON).
    let ev = decode("connect_replies.pcap");
    let mut e = Counts::new();
    e.add("ConnectRequest", "", 3).add("ConnectResponse", "", 3);
    assert_exact("connect_replies.pcap", &ev, &e);
    for c in of_type(&ev, "ConnectRequest") {
        assert_eq!(boolean(c, "reconnect"), Some(false), "{c}");
    }
    let mut sessions: Vec<u64> = of_type(&ev, "ConnectResponse")
        .iter()
        .filter_map(|r| field(r, "session").and_then(parse_session))
        .collect();
    sessions.sort();
    assert_eq!(
        sessions,
        [0x1001113200f0001, 0x1001113200f0002, 0x1001113200f0003]
    );
}

#[test]
fn connects() {
    // 3 x (ConnectRequest readonly=true, then CloseRequest xid 1); client to server only.
    let ev = decode("connects.pcap");
    let mut e = Counts::new();
    e.add("ConnectRequest", "", 3).add("CloseRequest", "", 3);
    assert_exact("connects.pcap", &ev, &e);
    for c in of_type(&ev, "ConnectRequest") {
        assert_eq!(boolean(c, "readonly"), Some(true), "{c}");
    }
    for c in of_type(&ev, "CloseRequest") {
        assert_eq!(int(c, "xid"), Some(1), "{c}");
    }
}

#[test]
fn create_pyzookeeper() {
    // The length prefix in its own segment before the body; one Create,
    // xid 0x51ee1879, /git/twitter-config_sha. The file also holds the
    // connection's ConnectRequest (the old 44-byte form without readOnly).
    let ev = decode("create-pyzookeeper.pcap");
    let mut e = Counts::new();
    e.add("ConnectRequest", "", 1)
        .add("CreateRequest", "/git/twitter-config_sha", 1);
    assert_exact("create-pyzookeeper.pcap", &ev, &e);
    let c = of_type(&ev, "CreateRequest")[0];
    assert_eq!(int(c, "xid"), Some(0x51ee1879));
    assert_eq!(int(c, "opcode"), Some(1));
}

#[test]
fn create() {
    // 6 connections: 6 ConnectRequest, 25 Create + 25 Delete on
    // /load-testing/0..4 (5 each), 5 Exists (one each), 1 Ping.
    let ev = decode("create.pcap");
    let mut e = Counts::new();
    e.add("ConnectRequest", "", 6).add("PingRequest", "", 1);
    load_testing(&mut e, "CreateRequest", 5);
    load_testing(&mut e, "DeleteRequest", 5);
    load_testing(&mut e, "ExistsRequest", 1);
    assert_exact("create.pcap", &ev, &e);
}

#[test]
fn dump() {
    // client 127.0.0.1:60446: 13 requests (5 Exists, 3 Ping, 2 GetChildren,
    // 1 GetData, 1 Create, 1 SetData), 13 replies, 1 NodeDataChanged on
    // /dknightly. Three of the Exists answer NoNode.
    let ev = decode("dump.pcap");
    let mut e = Counts::new();
    for ty in ["Request", "Reply"] {
        e.add(&format!("Exists{ty}"), "/dknightly", 3)
            .add(&format!("Exists{ty}"), "/dkni", 1)
            .add(&format!("Exists{ty}"), "/dknigh", 1)
            .add(&format!("Ping{ty}"), "", 3)
            .add(&format!("GetChildren{ty}"), "/", 2)
            .add(&format!("GetData{ty}"), "/dknightly", 1)
            .add(&format!("Create{ty}"), "/dknightly", 1)
            .add(&format!("SetData{ty}"), "/dknightly", 1);
    }
    e.add_error("ExistsReply", "NoNode", "/dknightly", 1)
        .add_error("ExistsReply", "NoNode", "/dkni", 1)
        .add_error("ExistsReply", "NoNode", "/dknigh", 1)
        .add_event("NodeDataChanged", "/dknightly", 1);
    assert_exact("dump.pcap", &ev, &e);
    assert_eq!(
        ev.iter()
            .filter(|x| field(x, "kind") == Some("request"))
            .count(),
        13
    );
    assert_eq!(
        ev.iter()
            .filter(|x| field(x, "kind") == Some("reply"))
            .count(),
        13
    );
    for x in &ev {
        assert_eq!(field(x, "client"), Some("127.0.0.1:60446"), "{x}");
        assert_eq!(field(x, "server"), Some("127.0.0.1:2181"), "{x}");
    }
}

#[test]
fn fire_watches() {
    // Server to client only (decoded with --unpaired, since no request is
    // in the file): 6 replies (2 of them pings) and one watch
    // event; the last segment holds the event and a reply (xid 30, zxid
    // 0x71c) together. On the wire the NodeChildrenChanged path is
    // /in/portland/they/eat/tacos (the README says /in/portland).
    // Without the requests, the replies' types other than PingReply are
    // not determined, so only the event is compared exactly.
    let ev = decode_with("fire_watches.pcap", &["--unpaired"]);
    let c = decoded_counts(&ev);
    let mut want_events = std::collections::BTreeMap::new();
    want_events.insert(
        (
            "NodeChildrenChanged".to_string(),
            "/in/portland/they/eat/tacos".to_string(),
        ),
        1u64,
    );
    assert_eq!(c.events, want_events);
    assert_eq!(c.get("WatchEvent", "/in/portland/they/eat/tacos"), 1);
    let replies: Vec<&Value> = ev
        .iter()
        .filter(|x| field(x, "kind") == Some("reply"))
        .collect();
    assert_eq!(replies.len(), 6, "{replies:?}");
    assert_eq!(of_type(&ev, "PingReply").len(), 2);
    assert_eq!(
        ev.iter()
            .filter(|x| field(x, "kind") == Some("request"))
            .count(),
        0
    );
    let last = replies
        .iter()
        .find(|r| int(r, "xid") == Some(30))
        .expect("reply xid 30 sharing the last segment with the event");
    assert_eq!(int(last, "zxid"), Some(0x71c));
    assert_eq!(field(last, "err"), Some("Ok"));
    let nonode: Vec<_> = replies
        .iter()
        .filter(|r| int(r, "xid") == Some(29))
        .collect();
    assert_eq!(nonode.len(), 1);
    assert_eq!(field(nonode[0], "err"), Some("NoNode"));
}

#[test]
fn get_children_with_four_letter() {
    // "stat" four-letter word, ConnectRequest, GetChildren /, pings (two on
    // the wire: one before and one after "conf"), "conf" four-letter word.
    let ev = decode("get_children_with_four_letter.pcap");
    let mut e = Counts::new();
    e.add_four_letter("stat")
        .add_four_letter("conf")
        .add("ConnectRequest", "", 1)
        .add("ConnectResponse", "", 1)
        .add("GetChildrenRequest", "/", 1)
        .add("GetChildrenReply", "/", 1)
        .add("PingRequest", "", 2)
        .add("PingReply", "", 2);
    assert_exact("get_children_with_four_letter.pcap", &ev, &e);
    let words: Vec<&str> = of_type(&ev, "FourLetterWord")
        .iter()
        .filter_map(|x| field(x, "word"))
        .collect();
    assert_eq!(words, ["stat", "conf"], "in capture order");
}

#[test]
fn getdata_watches() {
    // ConnectRequest; GetChildren /test and GetData /test, each once with
    // watch=false and once with watch=true.
    let ev = decode("getdata_watches.pcap");
    let mut e = Counts::new();
    e.add("ConnectRequest", "", 1)
        .add("GetChildrenRequest", "/test", 2)
        .add("GetDataRequest", "/test", 2);
    assert_exact("getdata_watches.pcap", &ev, &e);
    for t in ["GetChildrenRequest", "GetDataRequest"] {
        let mut w: Vec<bool> = of_type(&ev, t)
            .iter()
            .map(|x| boolean(x, "watch").expect("watch field"))
            .collect();
        w.sort();
        assert_eq!(w, [false, true], "{t}");
    }
}

#[test]
fn multi() {
    // ping; Multi (create /foo + setData /foo) and its reply.
    let ev = decode("multi.pcap");
    let mut e = Counts::new();
    e.add("PingRequest", "", 1)
        .add("PingReply", "", 1)
        .add("MultiRequest", "", 1)
        .add("MultiReply", "", 1)
        .add_multi(&[("CreateRequest", "/foo"), ("SetDataRequest", "/foo")], 1);
    assert_exact("multi.pcap", &ev, &e);
    assert_eq!(field(of_type(&ev, "MultiReply")[0], "err"), Some("Ok"));
}

#[test]
fn reconfig() {
    // ping; Reconfig adding observer server.100; reply with error -6
    // (Unimplemented). Type names follow ZooKeeper's ReconfigRequest record.
    let ev = decode("reconfig.pcap");
    let mut e = Counts::new();
    e.add("PingRequest", "", 1)
        .add("PingReply", "", 1)
        .add("ReconfigRequest", "", 1)
        .add("ReconfigReply", "", 1)
        .add_error("ReconfigReply", "Unimplemented", "", 1);
    assert_exact("reconfig.pcap", &ev, &e);
    assert_eq!(int(of_type(&ev, "ReconfigRequest")[0], "opcode"), Some(16));
}

#[test]
fn set_data() {
    // 6 connections: 6 ConnectRequest, 5 Exists, 25 SetData (about 550
    // bytes each: frames of 553 or 554 bytes incl. the length prefix) on
    // /load-testing/0..4.
    let ev = decode("set_data.pcap");
    let mut e = Counts::new();
    e.add("ConnectRequest", "", 6);
    load_testing(&mut e, "ExistsRequest", 1);
    load_testing(&mut e, "SetDataRequest", 5);
    assert_exact("set_data.pcap", &ev, &e);
    let c = decoded_counts(&ev);
    for (i, want) in [2769u64, 2769, 2769, 2770, 2770].into_iter().enumerate() {
        let k = ("SetDataRequest".to_string(), format!("/load-testing/{i}"));
        assert_eq!(c.bytes.get(&k).copied(), Some(want), "bytes of {k:?}");
    }
    for s in of_type(&ev, "SetDataRequest") {
        let sz = s.get("size").and_then(Value::as_u64).expect("size");
        assert!((553..=554).contains(&sz), "{s}");
    }
}

#[test]
fn setwatches() {
    // A mid-stream connection with 2 pings (one answered), then a
    // reconnect (timeout 30000, lastZxid 0x730) of session
    // 0x10009b61d370014 and SetWatches (relZxid 0x730, child watches /foo,
    // /in, /zookeeper, /in/portland, / : not in the JSON) and its reply.
    let ev = decode("setwatches.pcap");
    let mut e = Counts::new();
    e.add("PingRequest", "", 2)
        .add("PingReply", "", 1)
        .add("ConnectRequest", "", 1)
        .add("ConnectResponse", "", 1)
        .add("SetWatchesRequest", "", 1)
        .add("SetWatchesReply", "", 1);
    assert_exact("setwatches.pcap", &ev, &e);
    let c = of_type(&ev, "ConnectRequest")[0];
    assert_eq!(boolean(c, "reconnect"), Some(true));
    assert_eq!(
        field(c, "session").and_then(parse_session),
        Some(0x10009b61d370014)
    );
    let sw = of_type(&ev, "SetWatchesRequest")[0];
    assert_eq!(int(sw, "opcode"), Some(101));
    assert_eq!(int(sw, "xid"), Some(13));
}
