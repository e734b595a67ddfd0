//! `zk-stats`: the capture-and-stats daemon.
//!
//! Wiring: a capture thread ([`engine`]) reads frames from libpcap and
//! feeds zk-wire's flow tracker and stats tables; it publishes copies of
//! the tables ([`snapshot`]) that the HTTP server ([`http`], axum on a
//! one-thread tokio runtime) formats ([`render`]) as the old zktraffic
//! daemon's JSON, latency percentiles and Prometheus text. What counts as
//! a read or a write, path aggregation, keys and latency all live in
//! `zk_wire::stats::tables`; this module only moves data and formats it.
//!
//! `--offline FILE --json-out OUT` skips the server: it reads the capture
//! on the main thread, writes the final totals and exits.

pub mod args;
pub mod dashboard;
pub mod engine;
pub mod history;
pub mod http;
pub mod render;
pub mod snapshot;
pub mod top;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use zk_wire::stats::tables::Scope;

use crate::capture::{Capturer, End, Source, Stop};
pub use args::Args;
use engine::{Engine, wall_us};
use render::{InstanceInfo, RenderOpts};
use snapshot::{CaptureState, Published, Shared, View};

/// Breaks a live capture's blocking read every `refresh`, so that the
/// figures are published (and windows roll) even when libpcap has nothing
/// to return: with TPACKET_V3 a quiet interface blocks in `poll` forever.
/// Each wake-up uses a fresh [`Stop`] (a stop request cannot be undone).
pub struct Waker {
    current: Mutex<Stop>,
}

impl Waker {
    /// A waker armed on `cap`, and its thread (ends with `stop`).
    pub fn start(cap: &mut Capturer, stop: &Stop, refresh: Duration) -> Arc<Waker> {
        let w = Arc::new(Waker {
            current: Mutex::new(Stop::default()),
        });
        w.rearm(cap);
        let (w2, stop) = (w.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.is_set() {
                std::thread::sleep(refresh);
                if let Ok(s) = w2.current.lock() {
                    s.request();
                }
            }
        });
        w
    }

    /// True when the last return from `Capturer::run` was a wake-up.
    fn fired(&self) -> bool {
        self.current.lock().is_ok_and(|s| s.is_set())
    }

    fn rearm(&self, cap: &mut Capturer) {
        let fresh = Stop::default();
        fresh.watch(cap);
        if let Ok(mut s) = self.current.lock() {
            *s = fresh;
        }
    }
}

/// Reads frames until the end of the input or a stop request, publishing
/// about once a second, then closes the last window.
pub fn capture_loop(
    cap: &mut Capturer,
    stop: &Stop,
    engine: &mut Engine,
    waker: Option<&Waker>,
) -> Result<End> {
    loop {
        match cap.run(stop, engine) {
            Ok(end) => {
                if let Some(w) = waker
                    && w.fired()
                {
                    w.rearm(cap);
                    engine.wake(wall_us(), cap.stats);
                    if !stop.is_set() {
                        continue;
                    }
                } else if engine.paused {
                    engine.paused = false;
                    engine.publish(Some(cap.stats));
                    if !stop.is_set() {
                        continue;
                    }
                }
                engine.finish(cap.stats, CaptureState::Finished);
                return Ok(end);
            }
            Err(e) => {
                engine.finish(cap.stats, CaptureState::Failed(format!("{e:#}")));
                return Err(e);
            }
        }
    }
}

/// Peak resident memory of this process in KiB (`VmHWM`), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Counters at exit, on stderr.
fn report(engine: &Engine, end: &End) {
    let h = engine.health();
    let c = &h.tracker;
    let s = &c.stream;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "zk-stats: packets={} bytes={} kernel_drops={} tcp_segments={} non_tcp={} other_ports={}",
        h.capture.frames, h.capture.bytes, h.capture.kernel_drops, c.segments, h.non_tcp, c.foreign
    );
    let _ = writeln!(
        err,
        "zk-stats: requests={} replies={} events={} unpaired_replies={} pending_overflow={} flows_created={} flows_evicted={} gaps={} bytes_lost={}",
        c.requests,
        c.replies,
        c.events,
        c.unpaired_replies,
        c.pending_overflow,
        c.flows_created,
        c.flows_evicted,
        s.gaps,
        s.bytes_lost
    );
    let bound = |s: Scope| engine.cumulative().table_info(s).error_bound;
    let _ = writeln!(
        err,
        "zk-stats: table_evictions paths={} ips={} auths={} error_bound paths={} ips={} auths={} peak_rss_kib={}",
        h.table_evictions[0],
        h.table_evictions[1],
        h.table_evictions[2],
        bound(Scope::Paths),
        bound(Scope::Ips),
        bound(Scope::Auths),
        peak_rss_kib().unwrap_or(0)
    );
    if let End::Truncated(msg) = end {
        let _ = writeln!(
            err,
            "zk-stats: warning: the capture file ends in a damaged record ({msg}); everything before it was counted"
        );
    }
}

/// Counts frames and their bytes, nothing else.
struct Floor {
    frames: u64,
    bytes: u64,
}

impl crate::capture::FrameSink for Floor {
    #[inline]
    fn frame(&mut self, _ts: zk_wire::Instant, data: &[u8], _wire_len: u32) -> bool {
        self.frames += 1;
        self.bytes += data.len() as u64;
        true
    }
}

/// `--io-floor`: the same reader with a sink that does nothing.
fn io_floor(cap: &mut Capturer, stop: &Stop) -> Result<i32> {
    let mut floor = Floor {
        frames: 0,
        bytes: 0,
    };
    let t0 = std::time::Instant::now();
    cap.run(stop, &mut floor)?;
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "zk-stats: io-floor packets={} bytes={} seconds={secs:.3} packets_per_s={:.0}",
        floor.frames,
        floor.bytes,
        floor.frames as f64 / secs
    );
    Ok(0)
}

/// Runs zk-stats; returns the process exit code.
pub fn run(args: Args) -> Result<i32> {
    let source = args.capture.source(args.buffer_mb)?;
    // A live capture also takes the election and quorum ports it follows.
    let mut all_ports = args.capture.ports.clone();
    if !args.no_quorum {
        all_ports.extend(args.election_ports.iter().chain(&args.quorum_ports));
    }
    let filter = args.capture.bpf(&source, &all_ports);
    let mut cap = Capturer::open(&source, filter.as_deref())?;
    let stop = Stop::on_signals();
    stop.watch(&mut cap);
    if args.io_floor {
        return io_floor(&mut cap, &stop);
    }
    if !args.no_read_ahead {
        cap.read_ahead();
    }
    let shared = Arc::new(Shared::new(Published::initial(wall_us())));
    let mut engine = Engine::new(
        &engine::EngineConfig::from(&args),
        cap.link_type(),
        shared.clone(),
        args.json_out.is_none(),
    )?;
    let opts = RenderOpts {
        max_results: args.max_results,
        exclude_bytes: args.exclude_bytes,
        show_secrets: args.show_secrets,
    };

    if let Some(out) = &args.json_out {
        let t0 = std::time::Instant::now();
        let end = capture_loop(&mut cap, &stop, &mut engine, None)?;
        let secs = t0.elapsed().as_secs_f64();
        let p = shared.get();
        let parts = p.parts(View::Cumulative);
        for (scope, file) in [
            (Scope::Paths, Some(out)),
            (Scope::Ips, args.json_out_ips.as_ref()),
            (Scope::Auths, args.json_out_auths.as_ref()),
        ] {
            let Some(file) = file else { continue };
            let obj = render::keyed_json(&parts, scope, &opts);
            let mut text = serde_json::to_string_pretty(&obj)?;
            text.push('\n');
            std::fs::write(file, text)
                .with_context(|| format!("cannot write {}", file.display()))?;
        }
        report(&engine, &end);
        let packets = engine.health().capture.frames;
        eprintln!(
            "zk-stats: seconds={secs:.3} packets_per_s={:.0}",
            packets as f64 / secs
        );
        return Ok(0);
    }

    let listener =
        std::net::TcpListener::bind((args.http_address, args.http_port)).with_context(|| {
            format!(
                "cannot listen on {}:{} (--http-address/--http-port)",
                args.http_address, args.http_port
            )
        })?;
    let local = listener.local_addr()?;
    let info = InstanceInfo {
        source: match &source {
            Source::Live { iface, .. } => format!("live:{iface}"),
            Source::Offline(p) => format!("offline:{}", p.display()),
        },
        ports: args.capture.ports.clone(),
        window_seconds: args.window,
        aggregation_depth: args.aggregation_depth,
        max_results: args.max_results,
        started: std::time::Instant::now(),
    };
    if let Source::Live { iface, .. } = &source {
        eprintln!(
            "zk-stats: listening on {iface} ({}), filter: {}",
            cap.link_type().name(),
            filter.as_deref().unwrap_or("")
        );
    }
    eprintln!("zk-stats: serving http://{local}");

    let waker = match source {
        Source::Live { .. } => Some(Waker::start(
            &mut cap,
            &stop,
            Duration::from_secs_f64(args.refresh.clamp(0.01, 3600.0)),
        )),
        Source::Offline(_) => None,
    };
    let cap_stop = stop.clone();
    let capture = std::thread::Builder::new()
        .name("zk-stats-capture".into())
        .spawn(move || {
            let t0 = std::time::Instant::now();
            let r = capture_loop(&mut cap, &cap_stop, &mut engine, waker.as_deref());
            let secs = t0.elapsed().as_secs_f64();
            match &r {
                Ok(end) => {
                    report(&engine, end);
                    let packets = engine.health().capture.frames;
                    eprintln!(
                        "zk-stats: capture_seconds={secs:.3} packets_per_s={:.0}",
                        packets as f64 / secs
                    );
                }
                Err(e) => eprintln!("zk-stats: capture failed: {e:#}"),
            }
            r.map(|_| ())
        })?;

    let state = Arc::new(http::HttpState::new(
        shared,
        opts,
        info,
        args.max_http_requests,
    ));
    let served = http::serve(listener, state, stop.clone());
    stop.request();
    let captured = capture
        .join()
        .map_err(|_| anyhow::anyhow!("the capture thread panicked"))?;
    served?;
    captured?;
    Ok(0)
}
