//! Shared by the zk-stats tests: running the binary, a tiny HTTP client,
//! and the workload tally that says what zk-stats must report.
//!
//! The tally classifies every request frame the raw client sends by the
//! rules zk-stats documents (`zk_wire::stats::tables`): kind (ephemeral
//! creates apart), path (a multi's first sub-op path, `/<scheme>` for
//! SetAuth, "" without a path), read or write, watch, body size. Replies,
//! events and connects come from the harness `Recorder`, which reads them
//! off the socket independently of any decoder.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zk_traffic_tests::client::Frame;
use zk_traffic_tests::proc::{kill_and_reap, signal, spawn_tied, wait_timeout};
use zk_traffic_tests::{CreateMode, Expected, MultiOp, RawZk, Scenario, workspace_root};

/// `$ZK_STATS_BIN`, else `<target>/debug/zk-stats`.
pub fn zk_stats_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ZK_STATS_BIN") {
        return PathBuf::from(p);
    }
    let mut c = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let t = PathBuf::from(t);
        let t = if t.is_relative() {
            workspace_root().join(t)
        } else {
            t
        };
        c.push(t.join("debug/zk-stats"));
    }
    c.push(workspace_root().join("target/debug/zk-stats"));
    for p in &c {
        if p.is_file() {
            return p.clone();
        }
    }
    panic!(
        "zk-stats binary not found ({c:?}); build it first: cargo build --workspace --bins, or set ZK_STATS_BIN"
    );
}

/// Parses a flat JSON object of numbers.
pub fn flat(v: &serde_json::Value) -> BTreeMap<String, u64> {
    v.as_object()
        .expect("a JSON object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or_else(|| panic!("{k}: {v}"))))
        .collect()
}

/// `zk-stats --offline PCAP --json-out OUT [args]`: the object and stderr.
pub fn json_out(pcap: &Path, args: &[&str]) -> (BTreeMap<String, u64>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let o = Command::new(zk_stats_bin())
        .arg("--offline")
        .arg(pcap)
        .arg("--json-out")
        .arg(&out)
        .args(args)
        .output()
        .expect("run zk-stats");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "zk-stats failed: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    (flat(&v), stderr)
}

/// Panics with the differences unless the maps are equal.
#[track_caller]
pub fn assert_maps_eq(label: &str, got: &BTreeMap<String, u64>, want: &BTreeMap<String, u64>) {
    let mut diffs = Vec::new();
    for (k, w) in want {
        match got.get(k) {
            Some(g) if g == w => {}
            Some(g) => diffs.push(format!("{k}: got {g}, want {w}")),
            None => diffs.push(format!("{k}: missing, want {w}")),
        }
    }
    for (k, g) in got {
        if !want.contains_key(k) {
            diffs.push(format!("{k}: got {g}, want nothing"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{label}: {} differences:\n  {}",
        diffs.len(),
        diffs.join("\n  ")
    );
}

/// The old daemon's `parent_path`.
pub fn aggregate(path: &str, depth: usize) -> String {
    if depth == 0 || path.is_empty() {
        return path.to_string();
    }
    path.split('/')
        .take(depth + 1)
        .collect::<Vec<_>>()
        .join("/")
}

/// One request as zk-stats must count it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub kind: String,
    pub path: String,
    pub body: u64,
    pub write: bool,
    pub watch: bool,
    pub ip: String,
    pub auth: String,
}

const WRITE_OPS: [i32; 8] = [1, 2, 5, 7, 15, 16, 19, 21];

/// What a workload sent, classified.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub sent: Vec<Sent>,
}

impl Tally {
    /// Classifies one request frame (as the raw client built it).
    pub fn frame(&mut self, f: &Frame, ip: &str, auth: &str) {
        let op = f.opcode;
        let b = &f.bytes;
        let mut kind = request_kind(op).to_string();
        let mut write = WRITE_OPS.contains(&op);
        let mut watch = false;
        let mut path = f.path.clone().unwrap_or_default();
        match op {
            // create, create2: flags are the last int.
            1 | 15 => {
                let flags = i32::from_be_bytes(b[b.len() - 4..].try_into().unwrap());
                if flags == 1 || flags == 3 {
                    kind = "CreateEphemeralRequest".into();
                }
            }
            // exists, getData, getChildren, getChildren2: the watch flag ends the record.
            3 | 4 | 8 | 12 => watch = b[b.len() - 1] == 1,
            14 => {
                path = f.multi_ops.first().map(|o| o.1.clone()).unwrap_or_default();
                write = f.multi_ops.iter().any(|(t, _)| {
                    matches!(
                        t.as_str(),
                        "CreateRequest" | "SetDataRequest" | "DeleteRequest"
                    )
                });
            }
            // setAuth: "/<scheme>"; the scheme is the ustring after the type int.
            100 => {
                let n = i32::from_be_bytes(b[16..20].try_into().unwrap()) as usize;
                path = format!("/{}", String::from_utf8_lossy(&b[20..20 + n]));
            }
            101 | 105 => watch = true,
            _ => {}
        }
        self.sent.push(Sent {
            kind,
            path,
            body: (b.len() - 4) as u64,
            write,
            watch,
            ip: ip.to_string(),
            auth: auth.to_string(),
        });
    }

    /// Connect requests (the raw client's handshake frame: 45-byte body).
    pub fn connect(&mut self, reconnect: bool, ip: &str) {
        self.sent.push(Sent {
            kind: if reconnect {
                "ReconnectRequest"
            } else {
                "ConnectRequest"
            }
            .into(),
            path: String::new(),
            body: 45,
            write: false,
            watch: false,
            ip: ip.to_string(),
            auth: "noauth".into(),
        });
    }

    /// The object `/json/{paths,ips,auths}` must serve with every row kept
    /// (`--max-results 0`), replies and events taken from `rec`.
    pub fn expected(&self, scope: &str, depth: usize, rec: &Expected) -> BTreeMap<String, u64> {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        let prefix = match scope {
            "paths" => "",
            "ips" => "per_ip/",
            "auths" => "per_auth/",
            _ => panic!("scope {scope}"),
        };
        let suffix = |s: &Sent| match scope {
            "ips" => format!(":{}", s.ip),
            "auths" => format!(":{}", s.auth),
            _ => String::new(),
        };
        let mut add = |k: String, v: u64| *m.entry(k).or_insert(0) += v;
        let (mut reads, mut writes, mut rb, mut wb) = (0, 0, 0, 0);
        for s in &self.sent {
            let p = aggregate(&s.path, depth);
            let sfx = suffix(s);
            add(format!("{prefix}{}{p}{sfx}", s.kind), 1);
            add(format!("{prefix}{}Bytes{p}{sfx}", s.kind), s.body);
            let rw = if s.write { "writes" } else { "reads" };
            add(format!("{prefix}{rw}{p}{sfx}"), 1);
            add(format!("{prefix}{rw}Bytes{p}{sfx}"), s.body);
            if s.watch {
                add(format!("{prefix}watches{p}{sfx}"), 1);
            }
            if s.write {
                writes += 1;
                wb += s.body;
            } else {
                reads += 1;
                rb += s.body;
            }
        }
        m.insert(format!("{prefix}total/reads"), reads);
        m.insert(format!("{prefix}total/writes"), writes);
        m.insert(format!("{prefix}total/readBytes"), rb);
        m.insert(format!("{prefix}total/writeBytes"), wb);
        for k in ["reads/", "writes/", "readsBytes/", "writesBytes/"] {
            m.entry(format!("{prefix}{k}")).or_insert(0);
        }
        if scope == "paths" {
            let mut replies: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            for ((ty, _path), n) in &rec.messages {
                if ty.ends_with("Reply") || ty == "ConnectResponse" {
                    let name = if ty == "ConnectResponse" {
                        "ConnectReply"
                    } else {
                        ty.as_str()
                    };
                    replies.entry(name.to_string()).or_default().0 += n;
                }
            }
            for ((ty, _err, _path), n) in &rec.errors {
                replies.entry(ty.to_string()).or_default().1 += n;
            }
            for (name, (all, failed)) in replies {
                if all > failed {
                    m.insert(name.clone(), all - failed);
                }
                if failed > 0 {
                    m.insert(format!("Failed{name}"), failed);
                }
            }
            for ((ty, path), n) in &rec.events {
                *m.entry(format!("{ty}{}", aggregate(path, depth)))
                    .or_insert(0) += n;
            }
        }
        m
    }
}

/// The zk-stats name of a request opcode.
pub fn request_kind(op: i32) -> &'static str {
    match op {
        1 => "CreateRequest",
        2 => "DeleteRequest",
        3 => "ExistsRequest",
        4 => "GetDataRequest",
        5 => "SetDataRequest",
        8 => "GetChildrenRequest",
        9 => "SyncRequest",
        11 => "PingRequest",
        12 => "GetChildren2Request",
        14 => "MultiRequest",
        15 => "Create2Request",
        100 => "SetAuthRequest",
        101 => "SetWatchesRequest",
        -11 => "CloseRequest",
        _ => panic!("opcode {op} not used by the workload"),
    }
}

/// A raw client whose every request is tallied.
pub struct Client {
    pub zk: RawZk,
    pub ip: String,
    pub auth: String,
}

/// Where a workload's clients connect from and to.
pub trait Connect {
    /// A new session, recorded.
    fn connect(&self) -> RawZk;
}

impl Connect for Scenario {
    fn connect(&self) -> RawZk {
        Scenario::connect(self)
    }
}

impl Client {
    pub fn connect(s: &impl Connect, t: &mut Tally) -> Client {
        let zk = s.connect();
        let ip = zk.client_addr().rsplit_once(':').unwrap().0.to_string();
        t.connect(false, &ip);
        Client {
            zk,
            ip,
            auth: "noauth".into(),
        }
    }

    /// Sends, tallies, waits for the reply; returns its error name.
    pub fn call(&mut self, t: &mut Tally, f: Frame) -> String {
        t.frame(&f, &self.ip, &self.auth);
        self.zk.call(f).expect("call").err_name()
    }

    /// All frames in one write(), then their replies; the error names.
    pub fn pipelined(&mut self, t: &mut Tally, frames: Vec<Frame>) -> Vec<String> {
        for f in &frames {
            t.frame(f, &self.ip, &self.auth);
        }
        self.zk.send_pipelined(&frames).expect("send pipelined");
        self.zk
            .recv_replies(&frames)
            .expect("replies")
            .iter()
            .map(|r| r.err_name())
            .collect()
    }

    pub fn set_auth(&mut self, t: &mut Tally, user: &str, password: &str) -> String {
        self.auth = format!("digest:{user}");
        let f = self
            .zk
            .set_auth_frame("digest", format!("{user}:{password}").as_bytes());
        self.call(t, f)
    }

    /// CloseRequest, its reply, then reads until the server closes.
    pub fn close(mut self, t: &mut Tally) {
        let f = self.zk.close_frame();
        t.frame(&f, &self.ip, &self.auth);
        self.zk.send(&f).expect("send close");
        assert_eq!(
            self.zk.recv_reply(f.xid).expect("close reply").err_name(),
            "Ok"
        );
        // The server closes the connection after the close reply.
        self.zk.drain(Duration::from_millis(300)).expect("drain");
    }
}

const EVENT_WAIT: Duration = Duration::from_secs(10);

/// The known workload: three plain clients and one authenticated one;
/// CRUD with errors, ephemeral and sequential creates, watches that fire,
/// a multi, 200 pipelined reads over 30 paths with skewed counts, a
/// 1,000,000-byte znode written and read back, SetAuth, pings, closes.
pub fn workload(s: &impl Connect, t: &mut Tally) {
    let mut a = Client::connect(s, t);
    let mut b = Client::connect(s, t);
    let mut c = Client::connect(s, t);
    let mut d = Client::connect(s, t);

    let f = a.zk.create_frame("/app", b"root", CreateMode::Persistent);
    assert_eq!(a.call(t, f), "Ok");
    let f =
        a.zk.create_frame("/app/config", b"v1", CreateMode::Persistent);
    assert_eq!(a.call(t, f), "Ok");
    let f = a.zk.create_frame("/app/eph", b"", CreateMode::Ephemeral);
    assert_eq!(a.call(t, f), "Ok");
    let f =
        a.zk.create2_frame("/app/seq-", b"s", CreateMode::PersistentSequential);
    assert_eq!(a.call(t, f), "Ok");
    let f = a.zk.get_data_frame("/app/config", false);
    assert_eq!(a.call(t, f), "Ok");
    let f = a.zk.exists_frame("/app/config", false);
    assert_eq!(a.call(t, f), "Ok");
    let f = a.zk.set_data_frame("/app/config", b"v2", -1);
    assert_eq!(a.call(t, f), "Ok");
    let f = a.zk.set_data_frame("/app/config", b"v3", 0);
    assert_eq!(a.call(t, f), "BadVersion");
    let f = a.zk.get_children_frame("/app", false);
    assert_eq!(a.call(t, f), "Ok");
    let f = a.zk.get_children2_frame("/app", false);
    assert_eq!(a.call(t, f), "Ok");
    let f = a.zk.sync_frame("/app");
    assert_eq!(a.call(t, f), "Ok");
    let f = a.zk.get_data_frame("/app/missing", false);
    assert_eq!(a.call(t, f), "NoNode");
    let f =
        a.zk.create_frame("/app/config", b"", CreateMode::Persistent);
    assert_eq!(a.call(t, f), "NodeExists");
    let f = a.zk.delete_frame("/app", -1);
    assert_eq!(a.call(t, f), "NotEmpty");
    let f = a.zk.ping_frame();
    assert_eq!(a.call(t, f), "Ok");

    // Watches: a watches, b writes.
    let f = a.zk.get_data_frame("/app/config", true);
    assert_eq!(a.call(t, f), "Ok");
    let f = b.zk.set_data_frame("/app/config", b"v4", -1);
    assert_eq!(b.call(t, f), "Ok");
    a.zk.wait_event(EVENT_WAIT).expect("NodeDataChanged");
    let f = a.zk.get_children_frame("/app", true);
    assert_eq!(a.call(t, f), "Ok");
    let f = b.zk.create_frame("/app/kids", b"", CreateMode::Persistent);
    assert_eq!(b.call(t, f), "Ok");
    a.zk.wait_event(EVENT_WAIT).expect("NodeChildrenChanged");
    let f = a.zk.exists_frame("/app/later", true);
    assert_eq!(a.call(t, f), "NoNode");
    let f = b.zk.create_frame("/app/later", b"", CreateMode::Persistent);
    assert_eq!(b.call(t, f), "Ok");
    a.zk.wait_event(EVENT_WAIT).expect("NodeCreated");

    // Multi: create + setData + delete, committed.
    let f = b.zk.multi_frame(&[
        MultiOp::create("/app/m1", b"x"),
        MultiOp::set_data("/app/m1", b"y"),
        MultiOp::delete("/app/later"),
    ]);
    assert_eq!(b.call(t, f), "Ok");

    // 30 children, then 200 pipelined reads skewed over them (k0 most).
    let kids: Vec<Frame> = (0..30)
        .map(|i| {
            c.zk.create_frame(&format!("/app/kids/k{i}"), b"k", CreateMode::Persistent)
        })
        .collect();
    for e in c.pipelined(t, kids) {
        assert_eq!(e, "Ok");
    }
    let mut reads = Vec::new();
    for n in 0..200u32 {
        // Every child twice, then k0..k6 about 20 times more each.
        let i = if n < 60 { n % 30 } else { n % 7 };
        reads.push(c.zk.get_data_frame(&format!("/app/kids/k{i}"), false));
    }
    for chunk in reads.chunks(50) {
        for e in c.pipelined(t, chunk.to_vec()) {
            assert_eq!(e, "Ok");
        }
    }

    // A large znode: the request and the reply span many segments.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let f = b.zk.create_frame("/app/big", &big, CreateMode::Persistent);
    assert_eq!(b.call(t, f), "Ok");
    let f = c.zk.get_data_frame("/app/big", false);
    assert_eq!(c.call(t, f), "Ok");

    // Digest auth, then authenticated requests.
    assert_eq!(d.set_auth(t, "alice", "s3cret-pw"), "Ok");
    let f = d.zk.get_data_frame("/app/config", true);
    assert_eq!(d.call(t, f), "Ok");
    let f =
        d.zk.create_frame("/app/by-alice", b"a", CreateMode::Ephemeral);
    assert_eq!(d.call(t, f), "Ok");
    let f = d.zk.ping_frame();
    assert_eq!(d.call(t, f), "Ok");
    let f = b.zk.set_data_frame("/app/config", b"v5", -1);
    assert_eq!(b.call(t, f), "Ok");
    d.zk.wait_event(EVENT_WAIT).expect("NodeDataChanged for d");

    for cl in [a, b, c, d] {
        cl.close(t);
    }
}

/// A tiny HTTP/1.1 GET over a real socket: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// GET returning parsed JSON (status 200 asserted).
pub fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = http_get(addr, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// A running zk-stats with its HTTP address.
pub struct Daemon {
    pub child: Option<Child>,
    pub addr: SocketAddr,
    stderr: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Daemon {
    /// Starts `cmd` (a zk-stats command with `--http-port 0`) and waits
    /// for it to print its address, plus `wait_for` on stderr when given.
    pub fn start(mut cmd: Command, wait_for: Option<&str>) -> Daemon {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = spawn_tied(&mut cmd).expect("start zk-stats");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let wait_for = wait_for.map(str::to_string);
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut addr = None;
            let mut waited = wait_for.is_none();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("zk-stats: serving http://") {
                    addr = a.trim().parse::<SocketAddr>().ok();
                }
                if let Some(w) = &wait_for
                    && line.contains(w.as_str())
                {
                    waited = true;
                }
                if waited && let Some(a) = addr.take() {
                    let _ = tx.send(a);
                }
                lines.push(line);
            }
            lines
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                kill_and_reap(child);
                let lines = reader.join().unwrap_or_default();
                panic!("zk-stats did not start serving: {lines:?}");
            }
        };
        Daemon {
            child: Some(child),
            addr,
            stderr: Some(reader),
        }
    }

    /// Waits until `/json/info` says the capture finished (offline input).
    pub fn wait_finished(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = get_json(self.addr, "/json/info");
            if v["state"] == "finished" {
                return;
            }
            assert!(Instant::now() < deadline, "capture did not finish: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGINT, wait, and the stderr lines.
    pub fn stop(mut self) -> Vec<String> {
        let mut child = self.child.take().unwrap();
        signal(&child, libc::SIGINT).expect("SIGINT");
        let st = wait_timeout(&mut child, Duration::from_secs(20)).expect("wait");
        let lines = self.stderr.take().unwrap().join().unwrap_or_default();
        match st {
            Some(st) => assert!(st.success(), "zk-stats exited with {st}: {lines:?}"),
            None => {
                kill_and_reap(child);
                panic!("zk-stats did not stop after SIGINT: {lines:?}");
            }
        }
        lines
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            kill_and_reap(c);
        }
    }
}

/// GET from inside a network namespace (the daemon listens there).
pub fn http_get_in(ns: &zk_traffic_tests::Netns, addr: SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_string();
    ns.run(move || http_get(addr, &path))
        .expect("enter namespace")
}

/// The latencies the capture timestamps allow, by request type: for each
/// paired request, (lowest, highest) in µs. A frame spanning segments
/// happened somewhere between its first and last segment, so a latency is
/// at least (reply's first segment - request's last segment) and at most
/// (reply's last segment - request's first segment); for one-segment frames
/// both are the same. Computed by a separate, simple reassembly (no
/// zk-wire): replies pair with requests by (connection, xid); the first
/// frame each way is the handshake.
pub fn capture_latencies(pcap: &Path, port: u16) -> BTreeMap<String, Vec<(u64, u64)>> {
    use std::collections::{HashMap, VecDeque};
    use std::net::SocketAddrV4;
    use zk_traffic_tests::pcap::{PcapFile, tcp_segment};
    #[derive(Default)]
    struct Dir {
        next: Option<u32>,
        /// Segments captured ahead of `next` (loopback captures reorder).
        ahead: HashMap<u32, (i64, Vec<u8>)>,
        buf: Vec<u8>,
        /// (end offset in `buf`, capture time) of the segments in `buf`.
        segs: VecDeque<(usize, i64)>,
        frames: u64,
    }
    let f = PcapFile::read(pcap).expect("read capture");
    let mut dirs: HashMap<(SocketAddrV4, bool), Dir> = HashMap::new();
    let mut pending: HashMap<(SocketAddrV4, i32), (i64, i64, i32)> = HashMap::new();
    let mut out: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for r in &f.records {
        let Some(seg) = tcp_segment(&r.data) else {
            continue;
        };
        let ts = i64::from(r.ts_sec) * 1_000_000 + i64::from(r.ts_frac);
        let from_client = seg.dst.port() == port;
        let client = if from_client { seg.src } else { seg.dst };
        let d = dirs.entry((client, from_client)).or_default();
        if seg.flags & zk_traffic_tests::pcap::tcp_flags::SYN != 0 {
            *d = Dir {
                next: Some(seg.seq.wrapping_add(1)),
                ..Dir::default()
            };
            continue;
        }
        let Some(next) = d.next else {
            continue;
        };
        if seg.payload.is_empty() || (seg.seq.wrapping_sub(next) as i32) < 0 {
            continue; // no data, or already delivered (a retransmission)
        }
        d.ahead.entry(seg.seq).or_insert((ts, seg.payload));
        // Deliver whatever is now contiguous.
        while let Some((t, p)) = d.next.and_then(|n| d.ahead.remove(&n)) {
            d.next = Some(d.next.unwrap().wrapping_add(p.len() as u32));
            d.buf.extend_from_slice(&p);
            d.segs.push_back((d.buf.len(), t));
        }
        while d.buf.len() >= 4 {
            let n = 4 + u32::from_be_bytes(d.buf[..4].try_into().unwrap()) as usize;
            if d.buf.len() < n {
                break;
            }
            let frame: Vec<u8> = d.buf.drain(..n).collect();
            // The frame's segments: those starting before its end.
            let mut start = 0;
            let (mut first, mut last) = (i64::MAX, i64::MIN);
            for &(end, t) in &d.segs {
                if start >= n {
                    break;
                }
                first = first.min(t);
                last = last.max(t);
                start = end;
            }
            while d.segs.front().is_some_and(|&(end, _)| end <= n) {
                d.segs.pop_front();
            }
            for s in d.segs.iter_mut() {
                s.0 -= n;
            }
            d.frames += 1;
            if d.frames == 1 {
                continue; // connect request / response
            }
            let xid = i32::from_be_bytes(frame[4..8].try_into().unwrap());
            if from_client {
                let op = i32::from_be_bytes(frame[8..12].try_into().unwrap());
                pending.insert((client, xid), (first, last, op));
            } else if xid != -1
                && let Some((q_first, q_last, op)) = pending.remove(&(client, xid))
            {
                let lo = (first - q_last).max(0) as u64;
                let hi = (last - q_first).max(0) as u64;
                out.entry(request_kind(op).to_string())
                    .or_default()
                    .push((lo, hi));
            }
        }
    }
    out
}

/// Nearest-rank quantile of sorted values.
pub fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Parses Prometheus text into (sample with labels) -> value.
pub fn prometheus_samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("sample line");
            (k.to_string(), v.parse::<f64>().expect("sample value"))
        })
        .collect()
}

/// Requests per path from zk-stats' full flat object: the sum of its
/// `<Kind>Request<path>` keys (what zk-top and the dashboard rank by).
pub fn requests_per_path(full: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (k, v) in full {
        let Some(i) = k.find("Request") else { continue };
        let (kind, rest) = k.split_at(i + "Request".len());
        if !kind.chars().all(|c| c.is_ascii_alphanumeric()) || rest.starts_with("Bytes") {
            continue;
        }
        if rest.is_empty() || rest.starts_with('/') {
            *m.entry(rest.to_string()).or_insert(0) += v;
        }
    }
    m
}
