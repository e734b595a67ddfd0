//! Decoder and pipeline throughput over real traffic.
//!
//! - `decode/*`: `Request::parse` and `Reply::parse` (with the paired
//!   request's op code) over every client-protocol frame of the captures,
//!   in bytes per second, next to a copy of the same bytes.
//! - `pipeline/*`: `packet::parse` + `Tracker::process` over an in-memory
//!   amplified capture (`ZKT_BENCH_MB`, default 64 MiB) in packets per
//!   second, next to `packet::parse` alone and a memcpy of the same frames
//!   (the floor: touching every byte once).
//!
//! Inputs: `demo/demo.pcap` when present, plus the shared zktraffic captures.
//!
//!     cargo bench -p zk-traffic-benches --bench decode
//!     cargo bench -p zk-traffic-benches --bench decode -- pipeline

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zk_traffic_benches::amplify::{self, Options, Template};
use zk_traffic_benches::frames::{Kind, client_frames};
use zk_traffic_benches::pcap::{self, Capture};
use zk_wire::Instant;
use zk_wire::client::{Reply, Request};
use zk_wire::flow::{Config, Flow, Tracker};
use zk_wire::packet::{self, LinkType};

fn captures() -> Vec<Capture> {
    let mut paths = Vec::new();
    paths.extend(zk_traffic_benches::demo_capture());
    paths.extend(zk_traffic_benches::shared_captures());
    assert!(
        !paths.is_empty(),
        "no capture found (demo/demo.pcap, shared captures)"
    );
    paths.iter().map(|p| Capture::read(p).unwrap()).collect()
}

fn decode(c: &mut Criterion) {
    let frames: Vec<_> = captures()
        .iter()
        .flat_map(|cap| client_frames(cap, &[2181]))
        .collect();
    let requests: Vec<&[u8]> = frames
        .iter()
        .filter(|f| f.kind == Kind::Request)
        .map(|f| f.body())
        .collect();
    let replies: Vec<_> = frames
        .iter()
        .filter_map(|f| match f.kind {
            Kind::Reply(Some(op)) => Some((f.body(), op)),
            _ => None,
        })
        .collect();
    let req_bytes: usize = requests.iter().map(|b| b.len()).sum();
    let rep_bytes: usize = replies.iter().map(|(b, _)| b.len()).sum();
    eprintln!(
        "decode: {} requests ({} B), {} paired replies ({} B)",
        requests.len(),
        req_bytes,
        replies.len(),
        rep_bytes
    );
    // Every frame must decode, or the bench measures error paths.
    for b in &requests {
        Request::parse(b).unwrap_or_else(|e| panic!("request {b:02x?}: {e}"));
    }

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(req_bytes as u64));
    g.bench_function("Request::parse", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for body in &requests {
                ok += Request::parse(black_box(body)).is_ok() as usize;
            }
            ok
        })
    });
    let mut dst = vec![0u8; req_bytes.max(rep_bytes)];
    g.bench_function("memcpy(requests)", |b| {
        b.iter(|| {
            let mut at = 0;
            for body in &requests {
                dst[at..at + body.len()].copy_from_slice(black_box(body));
                at += body.len();
            }
            black_box(&dst);
        })
    });
    g.throughput(Throughput::Bytes(rep_bytes as u64));
    g.bench_function("Reply::parse", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for (body, op) in &replies {
                ok += Reply::parse(black_box(body), *op).is_ok() as usize;
            }
            ok
        })
    });
    g.bench_function("memcpy(replies)", |b| {
        b.iter(|| {
            let mut at = 0;
            for (body, _) in &replies {
                dst[at..at + body.len()].copy_from_slice(black_box(body));
                at += body.len();
            }
            black_box(&dst);
        })
    });
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    let mb: u64 = std::env::var("ZKT_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let opts = Options::default();
    let template = Template::new(&captures(), &opts).unwrap();
    let mut file = Vec::with_capacity((mb << 20) as usize + (1 << 20));
    let n = template.replicas_for(mb << 20);
    amplify::amplify(&template, n, &opts, &mut file).unwrap();
    let (link, records) = pcap::records(&file).unwrap();
    let link = LinkType::from_linktype(link).unwrap();
    let bytes: usize = records.iter().map(|r| r.2.len()).sum();
    eprintln!(
        "pipeline: {} packets, {} MiB of frames, {} replicas",
        records.len(),
        bytes >> 20,
        n
    );

    // Storage as zk-dump sizes it by default; reused by every iteration
    // (finish() empties the table again).
    const CHUNK: usize = 128 * 1024;
    let mut flows = vec![Flow::EMPTY; 4096];
    let mut pool = vec![0u8; CHUNK * 512];
    let mut dst = vec![0u8; bytes];

    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            let mut at = 0;
            for (_, _, data) in &records {
                dst[at..at + data.len()].copy_from_slice(black_box(data));
                at += data.len();
            }
            black_box(&dst);
        })
    });
    g.bench_function("packet::parse", |b| {
        b.iter(|| {
            let mut payload = 0usize;
            for (_, _, data) in &records {
                if let Ok(Some(seg)) = packet::parse(link, black_box(data)) {
                    payload += seg.payload.len();
                }
            }
            payload
        })
    });
    g.bench_function("packet::parse+Tracker::process", |b| {
        b.iter(|| {
            let mut t = Tracker::new(&mut flows[..], &mut pool[..], CHUNK, Config::default());
            let mut events = 0u64;
            let mut sink = |ev: &zk_wire::flow::Event<'_>| {
                black_box(ev);
                events += 1;
            };
            let mut last = Instant::ZERO;
            for (ts, _, data) in &records {
                last = Instant::from_micros(*ts);
                if let Ok(Some(seg)) = packet::parse(link, data) {
                    t.process(last, &seg, &mut sink);
                }
            }
            t.finish(last, &mut sink);
            events
        })
    });
    g.finish();
}

criterion_group!(benches, decode, pipeline);
criterion_main!(benches);
