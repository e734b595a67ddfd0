//! zk-stats' HTTP server over real sockets, on a fresh capture of a real
//! ZooKeeper 3.8 server (offline) and live on a namespace's loopback:
//! every endpoint's counts equal the workload's, latency percentiles sit
//! within the histogram's bound of the exact values the capture timestamps
//! give, secrets stay redacted unless asked for, bad query strings get 400
//! with a message, a flood of concurrent requests is served (or refused
//! with 503) without losing a packet, and /metrics counters only grow.
//!
//! Needs root, tcpdump, iproute2, Debian's zookeeper, and the binaries
//! (`cargo build --workspace --bins` first).

mod zk_stats_support;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use zk_stats_support::{
    Daemon, Tally, assert_maps_eq, capture_latencies, flat, get_json, http_get, http_get_in,
    nearest_rank, prometheus_samples, workload, zk_stats_bin,
};
use zk_traffic_tests::Scenario;
use zk_traffic_tests::pcap::PcapFile;

fn offline_daemon(pcap: &std::path::Path, port: u16, extra: &[&str]) -> Daemon {
    let mut cmd = Command::new(zk_stats_bin());
    cmd.arg("--offline")
        .arg(pcap)
        .args(["--port", &port.to_string(), "--http-port", "0"])
        .args(extra);
    let d = Daemon::start(cmd, None);
    d.wait_finished();
    d
}

#[test]
fn offline_endpoints_serve_the_workload_exactly() {
    let mut s = Scenario::start("zk_stats_http_offline");
    let mut t = Tally::default();
    workload(&s, &mut t);
    s.stop_capture();
    let rec = s.rec.expected();
    let port = s.port();
    let d = offline_daemon(&s.pcap, port, &[]);
    let a = d.addr;

    // Counts: the whole file is one window, so both views agree.
    for (scope, url) in [
        ("paths", "/json/paths"),
        ("ips", "/json/ips"),
        ("auths", "/json/auths"),
    ] {
        let want = t.expected(scope, 0, &rec);
        for window in ["last", "cumulative"] {
            let got = flat(&get_json(a, &format!("{url}?window={window}&top=0")));
            assert_maps_eq(&format!("{url} {window}"), &got, &want);
        }
    }
    let auths = flat(&get_json(a, "/json/auths?top=0"));
    assert!(auths.contains_key("per_auth/GetDataRequest/app/config:digest:alice"));
    assert!(auths.contains_key("per_auth/SetAuthRequest/digest:digest:alice"));

    // The default cut keeps --max-results (10) rows per opname.
    let top = flat(&get_json(a, "/json/paths"));
    let gets = top
        .keys()
        .filter(|k| k.starts_with("GetDataRequest/"))
        .count();
    assert_eq!(gets, 10, "{top:?}");

    // Secrets: redacted in the dump, absent everywhere else.
    let (status, dump) = http_get(a, "/json/auths-dump");
    assert_eq!(status, 200);
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let creds: Vec<&str> = dump
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(creds, ["alice:<redacted>"]);
    for url in [
        "/json/paths?top=0",
        "/json/ips?top=0",
        "/json/auths?top=0",
        "/json/info",
        "/metrics",
        "/json/latencies",
    ] {
        let (_, body) = http_get(a, url);
        assert!(!body.contains("s3cret"), "{url} leaks the password");
    }

    // Latency: per type, the count is exact, and every percentile (and
    // the maximum) lies between the same percentile of the lowest and of
    // the highest latencies the capture timestamps allow, the high side
    // widened by one histogram bucket (6.25%).
    let bounds = capture_latencies(&s.pcap, port);
    let lat = get_json(a, "/json/latencies?window=cumulative");
    let types = lat["types"].as_object().unwrap();
    assert_eq!(
        types.keys().collect::<Vec<_>>(),
        bounds.keys().collect::<Vec<_>>()
    );
    for (ty, b) in &bounds {
        let mut lo: Vec<u64> = b.iter().map(|x| x.0).collect();
        let mut hi: Vec<u64> = b.iter().map(|x| x.1).collect();
        lo.sort_unstable();
        hi.sort_unstable();
        let got = &types[ty];
        assert_eq!(got["count"], b.len() as u64, "{ty}");
        for (q, field) in [
            (0.5, "p50_us"),
            (0.9, "p90_us"),
            (0.99, "p99_us"),
            (0.999, "p999_us"),
            (1.0, "max_us"),
        ] {
            let (l, h) = (nearest_rank(&lo, q), nearest_rank(&hi, q));
            let g = got[field].as_u64().unwrap();
            assert!(
                g >= l && g <= h + h / 16 + 1,
                "{ty} {field}: got {g}, the capture allows {l}..={h}"
            );
        }
    }
    // Per (type, path) for a busy path: no more samples than the path had.
    let k0 = &lat["paths"]["GetDataRequest/app/kids/k0"];
    let n = k0["count"].as_u64().expect("k0 has a latency row");
    assert!(n > 0 && n <= 22, "{k0}");

    // Prometheus: counters equal the exact totals; histogram counts too.
    let (status, text) = http_get(a, "/metrics");
    assert_eq!(status, 200);
    let m = prometheus_samples(&text);
    let paths = t.expected("paths", 0, &rec);
    assert_eq!(m["zk_reads_total"], paths["total/reads"] as f64);
    assert_eq!(m["zk_writes_total"], paths["total/writes"] as f64);
    assert_eq!(m["zk_write_bytes_total"], paths["total/writeBytes"] as f64);
    assert_eq!(
        m["zk_requests_total{type=\"GetDataRequest\"}"],
        paths
            .iter()
            .filter(|(k, _)| k.starts_with("GetDataRequest/"))
            .map(|(_, v)| *v as f64)
            .sum::<f64>()
    );
    assert_eq!(
        m["zk_replies_total{type=\"SetDataReply\",err=\"BadVersion\"}"],
        1.0
    );
    assert_eq!(
        m["zk_request_latency_seconds_count{type=\"GetDataRequest\"}"],
        bounds["GetDataRequest"].len() as f64
    );
    assert_eq!(
        m["zk_request_latency_seconds_bucket{type=\"GetDataRequest\",le=\"+Inf\"}"],
        bounds["GetDataRequest"].len() as f64
    );
    assert_eq!(m["zk_watch_events_total{type=\"NodeDataChanged\"}"], 2.0);
    assert_eq!(m["zk_sessions_total{event=\"connect\"}"], 4.0);
    assert_eq!(m["zk_sessions_total{event=\"close\"}"], 4.0);
    let packets = PcapFile::read(&s.pcap).unwrap().records.len() as f64;
    assert_eq!(m["zk_capture_packets_total"], packets);
    for (k, v) in &m {
        if k.starts_with("zk_decode_errors_total") {
            assert_eq!(*v, 0.0, "{k}");
        }
    }
    assert_eq!(m["zk_capture_running"], 0.0);

    // Info and health.
    let info = get_json(a, "/json/info");
    assert_eq!(info["state"], "finished");
    assert_eq!(info["capture"]["packets"], packets as u64);
    assert_eq!(info["windows_completed"], 1);
    assert!(info["uptime"].is_u64());
    let (status, body) = http_get(a, "/healthz");
    assert_eq!((status, body.starts_with("ok")), (200, true));

    // Bad query strings: 400 with a message saying what is allowed.
    for url in [
        "/json/paths?window=yesterday",
        "/json/paths?top=ten",
        "/json/ips?color=blue",
        "/json/auths?window=",
        "/json/latencies?top=3",
        "/json/info?x=1",
        "/json/auths-dump?show=1",
        "/metrics?debug",
    ] {
        let (status, body) = http_get(a, url);
        assert_eq!(status, 400, "{url}: {body}");
        assert!(
            body.contains("allowed") || body.contains("no parameters"),
            "{url}: {body}"
        );
    }
    let (status, body) = http_get(a, "/nope");
    assert_eq!(status, 404);
    assert!(body.contains("/json/paths"));
    d.stop();

    // --show-secrets shows the credential in full.
    let d = offline_daemon(&s.pcap, port, &["--show-secrets"]);
    let dump = get_json(d.addr, "/json/auths-dump");
    let creds: Vec<&str> = dump
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(creds, ["alice:s3cret-pw"]);
    d.stop();
}

/// Counter-like samples of a scrape (monotonic by contract).
fn counters(m: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    m.iter()
        .filter(|(k, _)| {
            let name = k.split('{').next().unwrap();
            name.ends_with("_total")
                || name.ends_with("_count")
                || name.ends_with("_sum")
                || name.ends_with("_bucket")
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

#[test]
fn live_capture_serves_exact_counts_through_a_request_flood() {
    let s = Scenario::new("zk_stats_http_live");
    let port = s.port().to_string();
    let mut cmd = s.ns.command(zk_stats_bin());
    cmd.args([
        "--iface",
        "lo",
        "--port",
        &port,
        "--http-port",
        "0",
        "--window",
        "2",
        "--refresh",
        "0.2",
        "--max-http-requests",
        "16",
    ]);
    let d = Daemon::start(cmd, Some("listening on"));
    let addr = d.addr;
    let ns = s.ns.clone();
    let get = move |url: &str| http_get_in(&ns, addr, url);
    assert_eq!(get("/healthz").0, 200);

    // A flood of concurrent requests (bounded: 24 threads in a loop)
    // while the workload runs; scrapes of /metrics must only grow.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut flood = Vec::new();
    for i in 0..24 {
        let (stop, served, refused) = (stop.clone(), served.clone(), refused.clone());
        let ns = s.ns.clone();
        flood.push(std::thread::spawn(move || {
            ns.enter_current_thread().expect("enter namespace");
            let urls = [
                "/json/paths?window=cumulative",
                "/json/paths",
                "/json/ips?window=cumulative&top=0",
                "/metrics",
                "/json/latencies?window=cumulative",
                "/json/info",
                "/healthz",
            ];
            let mut last: Option<BTreeMap<String, f64>> = None;
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                let url = urls[(i + n) % urls.len()];
                n += 1;
                let (status, body) = http_get(addr, url);
                match status {
                    200 => {
                        served.fetch_add(1, Ordering::Relaxed);
                        if url == "/metrics" {
                            let now = counters(&prometheus_samples(&body));
                            if let Some(prev) = &last {
                                for (k, v) in prev {
                                    let cur = now.get(k).copied().unwrap_or(0.0);
                                    assert!(cur >= *v, "{k} went from {v} to {cur}");
                                }
                            }
                            last = Some(now);
                        }
                    }
                    503 => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("{url}: status {other}: {body}"),
                }
            }
        }));
    }

    let mut t = Tally::default();
    workload(&s, &mut t);
    let rec = s.rec.expected();
    let want = t.expected("paths", 0, &rec);

    // The capture catches up within a few refreshes.
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let (status, body) = get("/json/paths?window=cumulative&top=0");
        assert_eq!(status, 200);
        let got = flat(&serde_json::from_str(&body).unwrap());
        if got == want {
            break got;
        }
        if Instant::now() > deadline {
            eprintln!("info: {}", get("/json/info").1);
            assert_maps_eq("live counts never matched", &got, &want);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_maps_eq("live cumulative", &got, &want);
    stop.store(true, Ordering::Relaxed);
    for h in flood {
        h.join().expect("a flood thread failed");
    }
    assert!(
        served.load(Ordering::Relaxed) > 100,
        "flood served too little"
    );

    // Windows roll every 2 s of capture time.
    std::thread::sleep(Duration::from_millis(2500));
    let (_, info) = get("/json/info");
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert!(info["windows_completed"].as_u64().unwrap() >= 1, "{info}");
    assert_eq!(info["capture"]["kernel_drops"], 0, "{info}");
    assert_eq!(info["state"], "running");
    let (status, body) = get("/json/paths?window=last");
    assert_eq!(status, 200, "{body}");

    let lines = d.stop();
    let all = lines.join("\n");
    assert!(all.contains("kernel_drops=0"), "{all}");
    eprintln!(
        "flood: {} served, {} refused with 503",
        served.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
}
