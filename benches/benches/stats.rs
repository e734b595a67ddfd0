//! zk-stats' update path: `zk_wire::stats::Tables` fed by flow events.
//!
//! - `stats/record(capture)`: every request and paired reply of the real
//!   captures (demo + shared), as events from 64 client addresses, fed
//!   again and again into one window's tables, in events per second;
//! - `stats/record(distinct paths)`: 200,000 getData requests on paths seen
//!   once each, from 20,000 clients: every table overflows (the eviction
//!   path);
//! - `stats/absorb`: folding a full window into the totals since start;
//! - `pipeline-stats/*`: `packet::parse` + `Tracker::process`, alone and
//!   with `Tables::record` + `AuthLog::record` on every event, over an
//!   in-memory amplified capture (`ZKT_BENCH_MB`, default 64 MiB): the
//!   stats tables' share of zk-stats' per-packet cost.
//!
//! ```text
//! cargo bench -p zk-traffic-benches --bench stats
//! cargo bench -p zk-traffic-benches --bench stats -- pipeline-stats
//! ```

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use zk_traffic_benches::amplify::{self, Options as AmpOptions, Template};
use zk_traffic_benches::frames::{Kind, client_frames};
use zk_traffic_benches::pcap::{self, Capture};
use zk_wire::Instant;
use zk_wire::client::{Reply, Request};
use zk_wire::flow::{Config, Event, Flow, Message, Pairing, Tracker};
use zk_wire::packet::{self, LinkType};
use zk_wire::stats::{AuthLog, Options, Slot, Tables};

/// zk-stats' default capacities.
fn tables() -> Box<Tables<Vec<Slot>>> {
    Box::new(Tables::new(
        vec![Slot::EMPTY; 8192],
        vec![Slot::EMPTY; 8192],
        vec![Slot::EMPTY; 2048],
        Options::default(),
    ))
}

fn captures() -> Vec<Capture> {
    let mut paths = Vec::new();
    paths.extend(zk_traffic_benches::demo_capture());
    paths.extend(zk_traffic_benches::shared_captures());
    assert!(!paths.is_empty(), "no capture found");
    paths.iter().map(|p| Capture::read(p).unwrap()).collect()
}

fn event<'a>(client: SocketAddr, size: usize, message: Message<'a>) -> Event<'a> {
    Event {
        ts: Instant::from_micros(1_700_000_000_000_000i64),
        client,
        server: "10.255.0.1:2181".parse().unwrap(),
        session: 0,
        size: size as u32,
        auth: b"",
        message,
    }
}

fn record(c: &mut Criterion) {
    let frames: Vec<_> = captures()
        .iter()
        .flat_map(|cap| client_frames(cap, &[2181]))
        .collect();
    let clients: Vec<SocketAddr> = (0..64)
        .map(|i| {
            format!("10.1.{}.{}:{}", i / 8, i % 8, 40_000 + i)
                .parse()
                .unwrap()
        })
        .collect();
    let mut events = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let client = clients[i % clients.len()];
        let msg = match f.kind {
            Kind::Request => Request::parse(f.body()).ok().map(Message::Request),
            Kind::Reply(Some(op)) => Reply::parse(f.body(), op).ok().map(|r| {
                Message::Reply(
                    r,
                    Pairing {
                        opcode: op,
                        path_hash: 0,
                        latency: Some(
                            Instant::from_micros(250 + (i as i64 % 1000)) - Instant::ZERO,
                        ),
                    },
                )
            }),
            _ => None,
        };
        if let Some(m) = msg {
            events.push(event(client, f.frame.len(), m));
        }
    }
    eprintln!("stats: {} events from the captures", events.len());

    // Distinct paths: built once, parsed once.
    let n = 200_000usize;
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let path = format!("/flood/{}/{i}", i % 97);
            let mut b = Vec::with_capacity(13 + path.len());
            b.extend_from_slice(&(i as i32).to_be_bytes());
            b.extend_from_slice(&4i32.to_be_bytes());
            b.extend_from_slice(&(path.len() as u32).to_be_bytes());
            b.extend_from_slice(path.as_bytes());
            b.push(0);
            b
        })
        .collect();
    let flood_clients: Vec<SocketAddr> = (0..20_000u32)
        .map(|i| SocketAddr::from(([10, 2, (i >> 8) as u8, i as u8], 40_000)))
        .collect();
    let flood: Vec<Event<'_>> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            event(
                flood_clients[i % flood_clients.len()],
                b.len() + 4,
                Message::Request(Request::parse(b).unwrap()),
            )
        })
        .collect();

    let mut g = c.benchmark_group("stats");
    g.throughput(Throughput::Elements(events.len() as u64));
    // The same keys over and over, as a busy server's traffic repeats
    // its paths: the tables stay warm and never overflow.
    let mut t = tables();
    g.bench_function("record(capture)", |b| {
        b.iter(|| {
            for ev in &events {
                t.record(black_box(ev));
            }
        })
    });
    t.flush();
    g.throughput(Throughput::Elements(flood.len() as u64));
    g.sample_size(10);
    g.bench_function("record(distinct paths)", |b| {
        b.iter(|| {
            t.clear();
            for ev in &flood {
                t.record(black_box(ev));
            }
            t.flush();
        })
    });
    let mut cumulative = tables();
    g.throughput(Throughput::Elements(1));
    g.bench_function("absorb(window of distinct paths)", |b| {
        b.iter_batched_ref(
            || {
                let mut w = tables();
                for ev in &flood[..20_000] {
                    w.record(ev);
                }
                w
            },
            |w| cumulative.absorb(w),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    let mb: u64 = std::env::var("ZKT_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let opts = AmpOptions::default();
    let template = Template::new(&captures(), &opts).unwrap();
    let mut file = Vec::with_capacity((mb << 20) as usize + (1 << 20));
    let n = template.replicas_for(mb << 20);
    amplify::amplify(&template, n, &opts, &mut file).unwrap();
    let (link, records) = pcap::records(&file).unwrap();
    let link = LinkType::from_linktype(link).unwrap();
    eprintln!("pipeline-stats: {} packets, {} replicas", records.len(), n);

    // zk-stats' default storage.
    const CHUNK: usize = 64 * 1024;
    let mut flows = vec![Flow::EMPTY; 2048];
    let mut pool = vec![0u8; CHUNK * 256];
    let mut t = tables();
    let mut auths = Box::new(AuthLog::<1024>::new());

    let mut g = c.benchmark_group("pipeline-stats");
    g.sample_size(10);
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("parse+track", |b| {
        b.iter(|| {
            let mut tr = Tracker::new(&mut flows[..], &mut pool[..], CHUNK, Config::default());
            let mut events = 0u64;
            let mut sink = |ev: &Event<'_>| {
                black_box(ev);
                events += 1;
            };
            let mut last = Instant::ZERO;
            for (ts, _, data) in &records {
                last = Instant::from_micros(*ts);
                if let Ok(Some(seg)) = packet::parse(link, data) {
                    tr.process(last, &seg, &mut sink);
                }
            }
            tr.finish(last, &mut sink);
            events
        })
    });
    g.bench_function("parse+track+stats", |b| {
        b.iter(|| {
            let mut tr = Tracker::new(&mut flows[..], &mut pool[..], CHUNK, Config::default());
            t.clear();
            let (t, auths) = (&mut t, &mut auths);
            let mut sink = |ev: &Event<'_>| {
                t.record(ev);
                auths.record(ev);
            };
            let mut last = Instant::ZERO;
            for (ts, _, data) in &records {
                last = Instant::from_micros(*ts);
                if let Ok(Some(seg)) = packet::parse(link, data) {
                    tr.process(last, &seg, &mut sink);
                }
            }
            tr.finish(last, &mut sink);
            t.flush();
            t.totals.reads
        })
    });
    g.finish();
}

criterion_group!(benches, record, pipeline);
criterion_main!(benches);
