//! Fixed memory: `zk-stats --offline` over a generated capture with
//! 1,000,000 distinct paths from 100,000 client addresses keeps its peak
//! RSS under 64 MiB, and the top-N still names the planted heavy hitters
//! with counts within the tables' error bound.
//!
//! The capture (about 1.3 million packets) is written to a temp dir:
//! 100,000 clients (10.0.0.0/8 addresses), each opening a connection,
//! sending 10 getData requests on paths no one else uses and resetting;
//! 64 clients at a time, interleaved. Between them, three long-lived
//! "heavy" clients send one request in eight to four hot paths with a
//! skewed split. Needs the zk-stats binary.

mod zk_stats_support;

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddrV4};

use zk_stats_support::zk_stats_bin;
use zk_traffic_tests::pcap::build_tcp_frame;

const CLIENTS: u32 = 100_000;
const PER_CLIENT: u32 = 10;
const CONCURRENT: u32 = 64;
const HOT: [(&str, u32); 4] = [
    ("/hot/h0", 4),
    ("/hot/h1", 3),
    ("/hot/h2", 2),
    ("/hot/h3", 1),
];
const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 1), 2181);

struct Writer<W: Write> {
    out: W,
    ts: u64,
    packets: u64,
}

impl<W: Write> Writer<W> {
    fn new(mut out: W) -> Self {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&65535u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
        out.write_all(&h).unwrap();
        Writer {
            out,
            ts: 1_700_000_000_000_000,
            packets: 0,
        }
    }

    fn packet(&mut self, src: SocketAddrV4, seq: u32, flags: u8, payload: &[u8]) {
        let frame = build_tcp_frame(src, SERVER, seq, 1, flags, payload);
        self.ts += 1;
        let o = &mut self.out;
        o.write_all(&((self.ts / 1_000_000) as u32).to_le_bytes())
            .unwrap();
        o.write_all(&((self.ts % 1_000_000) as u32).to_le_bytes())
            .unwrap();
        o.write_all(&(frame.len() as u32).to_le_bytes()).unwrap();
        o.write_all(&(frame.len() as u32).to_le_bytes()).unwrap();
        o.write_all(&frame).unwrap();
        self.packets += 1;
    }
}

fn get_data(xid: i32, path: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(17 + path.len());
    let body_len = 4 + 4 + 4 + path.len() + 1;
    b.extend_from_slice(&(body_len as u32).to_be_bytes());
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&4i32.to_be_bytes());
    b.extend_from_slice(&(path.len() as u32).to_be_bytes());
    b.extend_from_slice(path.as_bytes());
    b.push(0);
    b
}

/// A long-lived connection's state.
struct Conn {
    addr: SocketAddrV4,
    seq: u32,
    xid: i32,
}

impl Conn {
    fn send<W: Write>(&mut self, w: &mut Writer<W>, path: &str) {
        self.xid += 1;
        let f = get_data(self.xid, path);
        w.packet(self.addr, self.seq, 0x18, &f);
        self.seq = self.seq.wrapping_add(f.len() as u32);
    }
}

fn client_addr(c: u32) -> SocketAddrV4 {
    let ip = Ipv4Addr::from(0x0a00_0000 + 1 + c);
    SocketAddrV4::new(ip, 40_000 + (c % 20_000) as u16)
}

#[test]
fn a_million_paths_from_100k_clients_fit_in_64_mib_and_keep_the_heavy_hitters() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("flood.pcap");
    let mut w = Writer::new(BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&pcap).unwrap(),
    ));
    let mut heavy: Vec<Conn> = (0..3)
        .map(|i| Conn {
            addr: SocketAddrV4::new(Ipv4Addr::new(172, 16, 0, 1 + i), 50_000),
            seq: 1,
            xid: 0,
        })
        .collect();
    let mut hot_truth: BTreeMap<&str, u64> = BTreeMap::new();
    let mut heavy_truth = [0u64; 3];
    let weights: u32 = HOT.iter().map(|h| h.1).sum();
    let mut n = 0u64;
    let mut noise = 0u64;
    for block in (0..CLIENTS).step_by(CONCURRENT as usize) {
        let mut conns: Vec<Conn> = (block..(block + CONCURRENT).min(CLIENTS))
            .map(|c| Conn {
                addr: client_addr(c),
                seq: 1000,
                xid: 0,
            })
            .collect();
        for j in 0..PER_CLIENT {
            for c in conns.iter_mut() {
                let id = (c.addr.ip().to_bits() - 0x0a00_0001) * PER_CLIENT + j;
                c.send(&mut w, &format!("/noise/{id}"));
                noise += 1;
                n += 1;
                if n.is_multiple_of(8) {
                    // A hot request: path by weight, client round-robin.
                    let mut k = (n / 8 % u64::from(weights)) as u32;
                    let mut path = HOT[0].0;
                    for (p, wgt) in HOT {
                        if k < wgt {
                            path = p;
                            break;
                        }
                        k -= wgt;
                    }
                    let h = (n / 8 % 3) as usize;
                    heavy[h].send(&mut w, path);
                    *hot_truth.entry(path).or_insert(0) += 1;
                    heavy_truth[h] += 1;
                }
            }
        }
        for c in &conns {
            w.packet(c.addr, c.seq, 0x04, &[]); // RST: the connection ends
        }
    }
    w.out.flush().unwrap();
    let packets = w.packets;
    drop(w);
    assert_eq!(noise, u64::from(CLIENTS * PER_CLIENT));

    let out = dir.path().join("out.json");
    let o = std::process::Command::new(zk_stats_bin())
        .arg("--offline")
        .arg(&pcap)
        .arg("--json-out")
        .arg(&out)
        .arg("--json-out-ips")
        .arg(dir.path().join("ips.json"))
        .output()
        .expect("run zk-stats");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    let field = |name: &str| -> u64 {
        stderr
            .split_whitespace()
            .find_map(|t| t.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {stderr}"))
    };
    let rss_kib = field("peak_rss_kib");
    eprintln!("{packets} packets, peak RSS {} KiB\n{stderr}", rss_kib);
    assert_eq!(field("packets"), packets);
    assert_eq!(field("requests"), noise + hot_truth.values().sum::<u64>());
    assert!(
        rss_kib < 64 * 1024,
        "peak RSS {rss_kib} KiB is over 64 MiB\n{stderr}"
    );
    assert!(field("flows_evicted") + field("flows_created") > 100_000);

    // The hot paths top GetDataRequest, in order, within the error bound.
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let got = zk_stats_support::flat(&v);
    let bound = stderr
        .split("error_bound ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|t| t.strip_prefix("paths="))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("error bound");
    assert!(bound > 0, "a million keys must overflow the table");
    let mut rows: Vec<(&str, u64)> = got
        .iter()
        .filter(|(k, _)| k.starts_with("GetDataRequest/"))
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    assert_eq!(rows.len(), 10, "top 10 rows");
    for (i, (path, truth)) in HOT.iter().map(|h| (h.0, hot_truth[h.0])).enumerate() {
        let key = format!("GetDataRequest{path}");
        assert_eq!(rows[i].0, key, "rank {i}: {rows:?}");
        let c = rows[i].1;
        assert!(
            c >= truth && c - truth <= bound,
            "{key}: {c}, truth {truth}, bound {bound}"
        );
    }
    // Exact totals do not depend on the tables.
    assert_eq!(got["total/reads"], noise + hot_truth.values().sum::<u64>());
    // Noise rows that made the cut are within the bound of their truth (1).
    for (k, c) in &rows[4..] {
        assert!(*c <= 1 + bound, "{k}: {c}");
    }

    // The three heavy clients top per_ip reads, within the ips bound.
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("ips.json")).unwrap()).unwrap();
    let ips = zk_stats_support::flat(&v);
    let ip_bound = stderr
        .split("error_bound ")
        .nth(1)
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|t| t.strip_prefix("ips="))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("ips error bound");
    // Heavy client h sends paths by weight; count its reads of /hot/h0.
    for (h, conn) in heavy.iter().enumerate() {
        let key = format!("per_ip/reads/hot/h0:{}", conn.addr.ip());
        let c = *ips.get(&key).unwrap_or_else(|| panic!("{key} missing"));
        assert!(c > 0 && c <= heavy_truth[h] + ip_bound, "{key}: {c}");
    }
    let mut reads: Vec<(&String, &u64)> = ips
        .iter()
        .filter(|(k, _)| k.starts_with("per_ip/reads/"))
        .collect();
    reads.sort_by_key(|r| std::cmp::Reverse(*r.1));
    for (k, _) in &reads[..3] {
        assert!(k.contains(":172.16.0."), "heavy clients first: {reads:?}");
    }
}
