//! zk-tap on a software mirror port, end to end.
//!
//! Three network namespaces this test creates:
//!
//! ```text
//!  cli: c0 198.18.0.2 ==veth== srv: s0 198.18.0.1 (ZooKeeper 3.8 on :2181)
//!                                   tc mirred: s0 ingress+egress -> m0
//!                                   m0 198.18.1.1 ==veth== tap: t0 (no kernel IP)
//!                                                               zk-tap --iface t0 --ip 198.18.1.2/24
//! ```
//!
//! A known workload runs from `cli`; its packets cross `s0`, whose copies
//! reach `t0` through `m0`. An HTTP client in `srv` fetches `/metrics` and
//! `/json/paths` from 198.18.1.2, an address only smoltcp (inside zk-tap)
//! answers for. Then: the counts equal the workload's; the same frames,
//! captured on `t0`, give identical tables through `zk-stats --offline`
//! and `zk-tap --offline`; and zk-tap keeps serving while fed garbage
//! frames and a flood of spoofed SYNs (bounded in count and time).
//!
//! Needs root, iproute2 (`ip`, `tc`), tcpdump and Debian's zookeeper.

mod zk_stats_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zk_stats_support::{Connect, Tally, assert_maps_eq, flat, json_out, workload};
use zk_traffic_tests::capture::Capture;
use zk_traffic_tests::client::Endpoint;
use zk_traffic_tests::pcap::{PcapFile, Rng, build_tcp_frame, tcp_flags};
use zk_traffic_tests::proc::{kill_and_reap, signal, spawn_tied, wait_timeout};
use zk_traffic_tests::server::{ZkServer, ZkServerConfig};
use zk_traffic_tests::{Netns, RawZk, Recorder, workspace_root};

const SERVER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 2181));
const TAP_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const TAP_HTTP: SocketAddr = SocketAddr::V4(SocketAddrV4::new(TAP_IP, 80));

fn zk_tap_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ZK_TAP_BIN") {
        return p.into();
    }
    let p = workspace_root().join("target/debug/zk-tap");
    assert!(
        p.is_file(),
        "{} is missing: cargo build --workspace --bins",
        p.display()
    );
    p
}

#[track_caller]
fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("run");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The three namespaces, the mirror, the server.
struct Lab {
    srv: Netns,
    cli: Netns,
    tap: Netns,
    rec: Recorder,
    _server: ZkServer,
}

impl Connect for Lab {
    fn connect(&self) -> RawZk {
        let ep = Endpoint {
            addr: SERVER,
            netns: Some(self.cli.clone()),
        };
        RawZk::connect(&ep, &self.rec).expect("connect from cli")
    }
}

impl Lab {
    fn new() -> Lab {
        let (srv, cli, tap) = (
            Netns::new().expect("namespace (needs root)"),
            Netns::new().unwrap(),
            Netns::new().unwrap(),
        );
        let ip = |ns: &Netns, args: &[&str]| run(ns.command("ip").args(args));
        ip(
            &srv,
            &[
                "link",
                "add",
                "s0",
                "type",
                "veth",
                "peer",
                "name",
                "c0",
                "netns",
                cli.name(),
            ],
        );
        ip(
            &srv,
            &[
                "link",
                "add",
                "m0",
                "type",
                "veth",
                "peer",
                "name",
                "t0",
                "netns",
                tap.name(),
            ],
        );
        // Ethernet-sized frames on the wire, as a real NIC would carry
        // (veths otherwise pass 64 KB GSO super-frames).
        for (ns, dev, addr) in [
            (&srv, "s0", Some("198.18.0.1/24")),
            (&cli, "c0", Some("198.18.0.2/24")),
            (&srv, "m0", Some("198.18.1.1/24")),
            (&tap, "t0", None),
        ] {
            if let Some(a) = addr {
                ip(ns, &["addr", "add", a, "dev", dev]);
            } else {
                // The appliance's interface has no kernel address at all.
                run(ns
                    .command("sysctl")
                    .args(["-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=1")]));
            }
            ip(
                ns,
                &[
                    "link",
                    "set",
                    dev,
                    "mtu",
                    "1500",
                    "gso_max_size",
                    "1500",
                    "gso_max_segs",
                    "1",
                    "up",
                ],
            );
        }
        // The software mirror port: everything s0 sends and receives, out of m0.
        run(srv
            .command("tc")
            .args(["qdisc", "add", "dev", "s0", "clsact"]));
        for dir in ["ingress", "egress"] {
            run(srv.command("tc").args([
                "filter", "add", "dev", "s0", dir, "protocol", "all", "u32", "match", "u32", "0",
                "0", "action", "mirred", "egress", "mirror", "dev", "m0",
            ]));
        }
        let server = ZkServer::start_with(ZkServerConfig {
            netns: Some(srv.clone()),
            address: Ipv4Addr::new(198, 18, 0, 1),
            ..Default::default()
        })
        .expect("ZooKeeper in srv");
        Lab {
            srv,
            cli,
            tap,
            rec: Recorder::new(),
            _server: server,
        }
    }

    fn tap_mac(&self) -> [u8; 6] {
        let s = run(self.tap.command("cat").arg("/sys/class/net/t0/address"));
        let mut mac = [0u8; 6];
        for (m, h) in mac.iter_mut().zip(s.trim().split(':')) {
            *m = u8::from_str_radix(h, 16).unwrap();
        }
        mac
    }
}

/// One HTTP GET from `ns` that reports failure instead of panicking.
fn try_get(
    ns: &Netns,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let path = path.to_string();
    ns.run(move || -> Result<(u16, String), String> {
        let mut s =
            TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(timeout)).unwrap();
        s.set_write_timeout(Some(timeout)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP head")?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or("no status")?;
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .ok_or("no content-length")?;
        if body.len() != len {
            return Err(format!(
                "body of {} bytes, content-length {len}",
                body.len()
            ));
        }
        Ok((status, body.to_string()))
    })
    .map_err(|e| e.to_string())?
}

#[track_caller]
fn get(lab: &Lab, path: &str) -> String {
    let mut last = String::new();
    for _ in 0..3 {
        match try_get(&lab.srv, TAP_HTTP, path, Duration::from_secs(5)) {
            Ok((200, body)) => return body,
            Ok((code, body)) => panic!("{path}: {code} {body}"),
            Err(e) => last = e,
        }
    }
    panic!("{path}: {last}")
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("bad JSON ({e}): {body}"))
}

/// `name{labels} value` lines of a Prometheus text body.
fn samples(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

struct TapDaemon {
    child: Option<Child>,
}

impl TapDaemon {
    fn start(lab: &Lab) -> TapDaemon {
        let mut cmd = lab.tap.command(zk_tap_bin());
        cmd.args([
            "--iface",
            "t0",
            "--ip",
            "198.18.1.2/24",
            "--http-port",
            "80",
            "--port",
            "2181",
            "--http-sockets",
            "4",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        let child = spawn_tied(&mut cmd).expect("start zk-tap");
        let t0 = Instant::now();
        loop {
            if let Ok((200, _)) =
                try_get(&lab.srv, TAP_HTTP, "/healthz", Duration::from_millis(500))
            {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "zk-tap did not answer HTTP"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        TapDaemon { child: Some(child) }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().unwrap().try_wait(), Ok(None))
    }

    fn stop(mut self) -> String {
        let mut c = self.child.take().unwrap();
        signal(&c, libc::SIGINT).unwrap();
        let st = wait_timeout(&mut c, Duration::from_secs(10)).unwrap();
        assert!(st.is_some_and(|s| s.success()), "zk-tap exit: {st:?}");
        String::new()
    }
}

impl Drop for TapDaemon {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            kill_and_reap(c);
        }
    }
}

/// Waits until zk-tap has decoded as many requests as the recorder
/// knows were sent, and its flows are closed.
fn settle(lab: &Lab, requests: u64) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let info = json(&get(lab, "/json/info"));
        let seen = info["decoder"]["requests"].as_u64().unwrap();
        let active = info["flows"]["active"].as_u64().unwrap();
        if seen >= requests && active == 0 {
            return info;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "zk-tap saw {seen} of {requests} requests, {active} flows open: {info}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Raw frames out of `dev` in `ns` (an AF_PACKET socket).
struct Injector {
    fd: i32,
    ifindex: i32,
}

impl Injector {
    fn open(ns: &Netns, dev: &'static str) -> Injector {
        let (fd, ifindex) = ns
            .run(move || {
                let name = std::ffi::CString::new(dev).unwrap();
                // SAFETY: plain syscalls with valid arguments.
                unsafe {
                    let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
                    assert!(fd >= 0, "AF_PACKET socket");
                    (fd, libc::if_nametoindex(name.as_ptr()) as i32)
                }
            })
            .unwrap();
        assert!(ifindex > 0, "no {dev}");
        Injector { fd, ifindex }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: a zeroed sockaddr_ll with the family and ifindex set.
        unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = self.ifindex;
            sll.sll_halen = 6;
            let n = libc::sendto(
                self.fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            let e = std::io::Error::last_os_error();
            assert!(
                n >= 0 || e.raw_os_error() == Some(libc::ENOBUFS),
                "sendto: {e}"
            );
        }
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        // SAFETY: our own fd.
        unsafe { libc::close(self.fd) };
    }
}

/// A hostile mix for the mirror port: spoofed SYNs to the appliance's
/// HTTP port, random bytes, cut IP headers, and fake ZooKeeper
/// connections with lying length prefixes and garbage bodies.
fn hostile_frame(rng: &mut Rng, tap_mac: [u8; 6], i: u64) -> Vec<u8> {
    let mac = |f: &mut Vec<u8>, dst: [u8; 6]| {
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0x66, (i & 0xff) as u8]);
    };
    match i % 10 {
        0..=5 => {
            let src = SocketAddrV4::new(
                Ipv4Addr::new(198, 18, 1, 100 + (rng.next_u64() % 100) as u8),
                1024 + (rng.next_u64() % 60000) as u16,
            );
            let mut f = build_tcp_frame(
                src,
                SocketAddrV4::new(TAP_IP, 80),
                rng.next_u64() as u32,
                0,
                tcp_flags::SYN,
                &[],
            );
            mac(&mut f, tap_mac);
            f
        }
        6 => {
            // Random bytes after an Ethernet header (the kernel will not
            // send less than a header).
            let n = (rng.next_u64() % 1400) as usize;
            let mut f = vec![0u8; 14];
            f.extend(rng.bytes(n));
            mac(&mut f, tap_mac);
            f[12] = (rng.next_u64() & 0xff) as u8;
            f
        }
        7 => {
            // An IPv4 header cut short, or lying about its length.
            let mut f = build_tcp_frame(
                SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 77), 40000),
                SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 2181),
                1,
                0,
                tcp_flags::ACK,
                b"garbage",
            );
            let cut = 14 + (rng.next_u64() % 30) as usize;
            f.truncate(cut.min(f.len()));
            mac(&mut f, [0x02, 0, 0, 0, 0x99, 0x01]);
            f
        }
        _ => {
            // A fake client of the ZooKeeper port: lying length prefixes
            // and random bodies.
            let mut payload = if i.is_multiple_of(2) {
                0x7fff_ffffu32.to_be_bytes().to_vec()
            } else {
                (rng.next_u64() as u32).to_be_bytes().to_vec()
            };
            let n = 40 + (rng.next_u64() % 200) as usize;
            payload.extend(rng.bytes(n));
            let mut f = build_tcp_frame(
                SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 77), 40000 + (i % 7) as u16),
                SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 2181),
                rng.next_u64() as u32,
                1,
                tcp_flags::ACK | tcp_flags::PSH,
                &payload,
            );
            mac(&mut f, [0x02, 0, 0, 0, 0x99, 0x01]);
            f
        }
    }
}

#[test]
fn zk_tap_on_a_software_mirror_port_counts_the_workload_and_survives_a_flood() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let pcap = match std::env::var_os("ZKT_ARTIFACTS") {
        Some(d) => PathBuf::from(d).join("zk_tap_mirror.pcap"),
        None => dir.path().join("mirror.pcap"),
    };
    // The frames zk-tap sees, as tcpdump sees them on the same interface.
    let capture = Capture::start_on(Some(&lab.tap), "t0", "tcp port 2181", &pcap).expect("tcpdump");
    let mut tap = TapDaemon::start(&lab);

    // ARP and ping are the appliance's own (smoltcp).
    run(lab
        .srv
        .command("ping")
        .args(["-c", "2", "-W", "2", "198.18.1.2"]));

    // The known workload, from cli to srv, mirrored to zk-tap.
    let mut t = Tally::default();
    workload(&lab, &mut t);
    let rec = lab.rec.expected();
    let info = settle(&lab, t.sent.len() as u64);
    assert_eq!(info["capture"]["kernel_drops"], 0, "{info}");
    assert_eq!(info["decoder"]["unpaired_replies"], 0, "{info}");

    // Its counts, served by smoltcp from 198.18.1.2.
    let paths = flat(&json(&get(&lab, "/json/paths?top=0")));
    let want = t.expected("paths", 0, &rec);
    assert_maps_eq("zk-tap /json/paths?top=0 vs the workload", &paths, &want);
    assert_eq!(paths["SetDataRequest/app/config"], 4);
    assert!(paths["CreateRequestBytes/app/big"] > 1_000_000);
    // The default cut keeps 10 rows per opname.
    let top = flat(&json(&get(&lab, "/json/paths")));
    assert!(top.len() < paths.len() && top.iter().all(|(k, v)| paths.get(k) == Some(v)));

    let metrics = samples(&get(&lab, "/metrics"));
    let by_type = |ty: &str| t.sent.iter().filter(|s| s.kind == ty).count() as f64;
    for ty in [
        "GetDataRequest",
        "CreateRequest",
        "SetDataRequest",
        "ConnectRequest",
        "MultiRequest",
    ] {
        assert_eq!(
            metrics[&format!("zk_requests_total{{type=\"{ty}\"}}")],
            by_type(ty),
            "{ty}"
        );
    }
    let writes = t.sent.iter().filter(|s| s.write).count() as f64;
    assert_eq!(metrics["zk_writes_total"], writes);
    assert_eq!(
        metrics["zk_replies_total{type=\"GetDataReply\",err=\"NoNode\"}"],
        1.0
    );
    assert_eq!(metrics["zk_capture_kernel_drops_total"], 0.0);
    assert!(metrics["zk_request_latency_seconds_count{type=\"GetDataRequest\"}"] > 200.0);

    // The same frames through zk-stats --offline and zk-tap --offline:
    // identical tables.
    let st = capture.stop().expect("stop tcpdump");
    assert!(st.captured > 1000, "{st:?}");
    let (stats_full, _) = json_out(&pcap, &["--port", "2181", "--max-results", "0"]);
    assert_maps_eq("zk-stats --offline vs zk-tap live", &stats_full, &paths);
    let o = Command::new(zk_tap_bin())
        .arg("--offline")
        .arg(&pcap)
        .args(["--print", "/json/paths?top=0"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let offline = flat(&json(&String::from_utf8_lossy(&o.stdout)));
    assert_maps_eq(
        "zk-tap --offline vs zk-stats --offline",
        &offline,
        &stats_full,
    );
    let (stats_top, _) = json_out(&pcap, &["--port", "2181"]);
    assert_maps_eq("default top-10 cut: zk-tap vs zk-stats", &top, &stats_top);
    assert!(PcapFile::read(&pcap).unwrap().records.len() > 1000);

    // Bad requests are answered and closed; the listener keeps serving.
    let (code, body) = try_get(&lab.srv, TAP_HTTP, "/nope", Duration::from_secs(5)).unwrap();
    assert_eq!(code, 404, "{body}");
    let (code, body) = try_get(
        &lab.srv,
        TAP_HTTP,
        "/json/paths?window=last",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("allowed:"), "{body}");
    let raw = |req: Vec<u8>| {
        lab.srv
            .run(move || {
                let mut s = TcpStream::connect_timeout(&TAP_HTTP, Duration::from_secs(5)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let t0 = Instant::now();
                let _ = s.write_all(&req);
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out);
                (String::from_utf8_lossy(&out).into_owned(), t0.elapsed())
            })
            .unwrap()
    };
    // Too large: 4 KB of headers.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 4096));
    big.extend_from_slice(b"\r\n\r\n");
    let (resp, _) = raw(big);
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
    // Too slow: half a request, then nothing.
    let (resp, took) = raw(b"GET /metrics HTTP/1.1\r\n".to_vec());
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    // Not HTTP at all.
    let (resp, _) = raw(b"\x16\x03\x01 hello\r\n\r\n".to_vec());
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(get(&lab, "/json/info").contains("\"http\""));

    // Hostile input: garbage frames and spoofed SYNs into the mirror port,
    // bounded (at most 12,000 frames, at most 4 s), while an HTTP client
    // keeps scraping.
    let inj = Injector::open(&lab.srv, "m0");
    let mac = lab.tap_mac();
    let flood = std::thread::spawn(move || {
        let mut rng = Rng::new(7);
        let t0 = Instant::now();
        let mut sent = 0u64;
        while sent < 12_000 && t0.elapsed() < Duration::from_secs(4) {
            for _ in 0..30 {
                inj.send(&hostile_frame(&mut rng, mac, sent));
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        sent
    });
    let (mut ok, mut failed) = (0, Vec::new());
    let t0 = Instant::now();
    while !flood.is_finished() && t0.elapsed() < Duration::from_secs(10) {
        match try_get(&lab.srv, TAP_HTTP, "/metrics", Duration::from_secs(2)) {
            Ok((200, body)) if body.contains("zk_requests_total") => ok += 1,
            other => failed.push(format!("{other:?}").chars().take(120).collect::<String>()),
        }
    }
    let sent = flood.join().unwrap();
    assert!(sent > 1000, "only {sent} hostile frames sent");
    assert!(tap.alive(), "zk-tap died under the flood");
    eprintln!(
        "during the flood of {sent} frames: {ok} scrapes answered, {} failed: {failed:?}",
        failed.len()
    );
    assert!(
        ok >= 5 && ok >= 4 * failed.len(),
        "{ok} answered, failed: {failed:?}"
    );

    // After it: answers at once, counted the damage, and decodes on.
    let metrics = samples(&get(&lab, "/metrics"));
    let conn = |ev: &str| metrics[&format!("zk_tap_http_connections_total{{event=\"{ev}\"}}")];
    assert!(
        conn("handshake_evicted") + conn("handshake_timeout") > 100.0,
        "the SYN flood did not reach the sockets: {metrics:?}"
    );
    let errors: f64 = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("zk_decode_errors_total"))
        .map(|(_, v)| v)
        .sum();
    assert!(errors > 100.0, "garbage was not counted: {errors}");
    let before = flat(&json(&get(&lab, "/json/paths?top=0")));
    let mut c = lab.connect();
    for _ in 0..5 {
        let f = c.get_data_frame("/app/config", false);
        c.call(f).expect("getData after the flood");
    }
    let f = c.close_frame();
    c.call(f).expect("close");
    let t0 = Instant::now();
    loop {
        let after = flat(&json(&get(&lab, "/json/paths?top=0")));
        if after["GetDataRequest/app/config"] == before["GetDataRequest/app/config"] + 5 {
            assert_eq!(after["ConnectRequest"], before["ConnectRequest"] + 1);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "decoding did not resume: {after:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    tap.stop();
}
