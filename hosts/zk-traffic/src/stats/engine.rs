//! The capture thread's side of zk-stats: frames in, tables updated,
//! windows rolled, snapshots published.
//!
//! Thin wiring: libpcap frames -> `zk_wire::packet::parse` ->
//! `zk_wire::flow::Tracker` -> `zk_wire::stats::Tables` (the window in
//! progress) and `AuthLog`. Every `--window` seconds of capture time the
//! window is copied out as "the last complete window", folded into the
//! totals-since-start tables and cleared. About once a second (wall clock)
//! the window in progress is copied out too, so the totals and `/metrics`
//! stay fresh. Nothing here waits for a reader.

use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant, SystemTime, UNIX_EPOCH};

use zk_wire::Instant;
use zk_wire::flow::{Config, Flow, Tracker};
use zk_wire::packet::{self, LinkType};
use zk_wire::quorum::{Config as QuorumConfig, Link, QuorumTracker};
use zk_wire::quorum_analysis::{AnalysisConfig, QuorumAnalysis};
use zk_wire::stats::tables::Scope;
use zk_wire::stats::{AuthLog, Options, Slot, Tables};

use super::args::{Args, TableSizes};
use super::history::{History, Second};
use super::snapshot::{AuthRow, CaptureState, Health, Published, Shared, Snapshot};
use crate::capture::{CaptureStats, FrameSink};

/// SetAuth connections remembered for `/json/auths-dump`.
pub const AUTH_LOG: usize = 1024;

type Storage = Vec<Slot>;

/// Microseconds since the Unix epoch, by the wall clock.
pub fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// What an [`Engine`] is sized and set up by (zk-stats' flags, or
/// zk-top's).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// ZooKeeper client ports.
    pub ports: Vec<u16>,
    /// Largest frame accepted.
    pub max_frame: u32,
    /// Path aggregation depth of the tables.
    pub aggregation_depth: usize,
    /// Counters of the per-path, per-client and per-identity tables, and
    /// connection slots.
    pub sizes: TableSizes,
    /// Reassembly chunk size and count.
    pub chunk_size: usize,
    /// See `chunk_size`.
    pub chunks: usize,
    /// Window length in seconds.
    pub window: u64,
    /// Seconds between publications.
    pub refresh: f64,
    /// A live capture (windows also roll on the wall clock).
    pub live: bool,
    /// Election ports followed (empty with `quorum_ports`: none).
    pub election_ports: Vec<u16>,
    /// Quorum (ZAB) ports followed.
    pub quorum_ports: Vec<u16>,
}

impl From<&Args> for EngineConfig {
    fn from(a: &Args) -> Self {
        EngineConfig {
            ports: a.capture.ports.clone(),
            max_frame: a.max_frame,
            aggregation_depth: a.aggregation_depth,
            sizes: a.sizes,
            chunk_size: a.chunk_size,
            chunks: a.chunks,
            window: a.window,
            refresh: a.refresh,
            live: a.capture.from.iface.is_some(),
            election_ports: if a.no_quorum {
                Vec::new()
            } else {
                a.election_ports.clone()
            },
            quorum_ports: if a.no_quorum {
                Vec::new()
            } else {
                a.quorum_ports.clone()
            },
        }
    }
}

/// Replaying a file at its recorded pace (zk-top): frames wait until
/// `speed` times the wall clock has caught up with their timestamp.
#[derive(Clone)]
pub struct Pace {
    /// Capture seconds per wall second.
    pub speed: f64,
    /// Held while set (and the wait does not count).
    pub paused: Arc<std::sync::atomic::AtomicBool>,
    /// Waiting ends when this is set.
    pub stop: crate::capture::Stop,
    origin: Option<(i64, WallInstant)>,
}

impl Pace {
    /// A pace of `speed`, held by `paused`, ended by `stop`.
    pub fn new(
        speed: f64,
        paused: Arc<std::sync::atomic::AtomicBool>,
        stop: crate::capture::Stop,
    ) -> Pace {
        Pace {
            speed: speed.clamp(0.001, 1e9),
            paused,
            stop,
            origin: None,
        }
    }
}

/// The capture loop's state.
pub struct Engine {
    link: LinkType,
    live: bool,
    tracker: Tracker<Vec<Flow>, Vec<u8>>,
    window: Box<Tables<Storage>>,
    cumulative: Box<Tables<Storage>>,
    auths: Box<AuthLog<AUTH_LOG>>,
    window_us: i64,
    /// Start of the window in progress (None before the first packet).
    start_us: Option<i64>,
    end_us: i64,
    last_ts_us: i64,
    health: Health,
    /// Evictions of completed windows, by scope.
    evictions_done: [u64; 3],
    latency_evictions_done: u64,
    windows_completed: u64,
    last_window: Option<Arc<Snapshot>>,
    base: Arc<Snapshot>,
    shared: Arc<Shared>,
    generation: u64,
    refresh: Duration,
    last_publish: WallInstant,
    /// Set when the sink asked `Capturer::run` to return so that libpcap's
    /// figures can be read.
    pub paused: bool,
    /// False when nobody reads before the end (`--json-out`): windows still
    /// roll into the totals, but are not copied out for readers.
    readers: bool,
    state: CaptureState,
    history: History,
    history_copy: Arc<Vec<Second>>,
    history_copied: u64,
    pace: Option<Pace>,
    /// Election and quorum traffic, when followed.
    quorum: Option<Quorum>,
}

/// The election and quorum side: zk-wire's tracker and analysis, and the
/// metrics text rendered from them at each publication.
struct Quorum {
    tracker: QuorumTracker<Vec<Link>, Vec<u8>>,
    analysis: Box<QuorumAnalysis>,
    metrics: Arc<String>,
    rendered_packets: u64,
}

impl Quorum {
    fn new(cfg: &EngineConfig) -> anyhow::Result<Option<Quorum>> {
        if cfg.election_ports.is_empty() && cfg.quorum_ports.is_empty() {
            return Ok(None);
        }
        let mut qc = QuorumConfig::without_ports();
        for &p in &cfg.quorum_ports {
            if !qc.add_zab_port(p) {
                anyhow::bail!("at most {} quorum ports", zk_wire::quorum::MAX_PORTS);
            }
        }
        for &p in &cfg.election_ports {
            if !qc.add_fle_port(p) {
                anyhow::bail!("at most {} election ports", zk_wire::quorum::MAX_PORTS);
            }
        }
        // A learner's SNAP streams the whole data tree; 64 KiB chunks
        // decode each packet's header, the rest is skipped (zk-wire).
        let chunk = 64 * 1024;
        Ok(Some(Quorum {
            tracker: QuorumTracker::new(vec![Link::EMPTY; 256], vec![0u8; chunk * 32], chunk, qc),
            analysis: Box::new(QuorumAnalysis::new(AnalysisConfig::default())),
            metrics: Arc::new(String::new()),
            rendered_packets: 0,
        }))
    }

    /// Traffic seen on the election and quorum ports.
    fn seen(&self) -> u64 {
        let c = &self.tracker.counters;
        c.segments - c.foreign
    }

    /// The metrics text, re-rendered when traffic was seen since.
    fn metrics(&mut self) -> Arc<String> {
        let seen = self.seen();
        if seen > 0 && seen != self.rendered_packets {
            let mut out = String::with_capacity(16 * 1024);
            crate::quorum_metrics::prometheus(&self.analysis, &self.tracker.counters, &mut out);
            self.metrics = Arc::new(out);
            self.rendered_packets = seen;
        }
        self.metrics.clone()
    }
}

impl Engine {
    /// Tables and tracker sized by the flags; publishes into `shared`.
    pub fn new(
        args: &EngineConfig,
        link: LinkType,
        shared: Arc<Shared>,
        readers: bool,
    ) -> anyhow::Result<Engine> {
        let mut config = Config::without_ports();
        for &p in &args.ports {
            if !config.add_port(p) {
                anyhow::bail!("at most {} ports", zk_wire::flow::MAX_PORTS);
            }
        }
        config.max_frame_len = args.max_frame;
        let opts = Options {
            aggregation_depth: args.aggregation_depth,
        };
        let tables = || {
            Box::new(Tables::new(
                vec![Slot::EMPTY; args.sizes.max_paths],
                vec![Slot::EMPTY; args.sizes.max_clients],
                vec![Slot::EMPTY; args.sizes.max_auths],
                opts,
            ))
        };
        let now = wall_us();
        Ok(Engine {
            link,
            live: args.live,
            tracker: Tracker::new(
                vec![Flow::EMPTY; args.sizes.max_flows.max(8)],
                vec![0u8; args.chunk_size.saturating_mul(args.chunks)],
                args.chunk_size,
                config,
            ),
            window: tables(),
            cumulative: tables(),
            auths: Box::new(AuthLog::new()),
            window_us: (args.window as i64).saturating_mul(1_000_000),
            start_us: None,
            end_us: 0,
            last_ts_us: 0,
            health: Health::default(),
            evictions_done: [0; 3],
            latency_evictions_done: 0,
            windows_completed: 0,
            last_window: None,
            base: Arc::new(Snapshot::empty(now, now)),
            shared,
            generation: 0,
            refresh: Duration::from_secs_f64(args.refresh.clamp(0.01, 3600.0)),
            last_publish: WallInstant::now(),
            paused: false,
            readers,
            state: CaptureState::Running,
            history: History::default(),
            history_copy: Arc::new(Vec::new()),
            history_copied: 0,
            pace: None,
            quorum: Quorum::new(args)?,
        })
    }

    /// Starts the first window at `now` (capture clock) if none is open.
    fn open_window(&mut self, now: i64) {
        if self.start_us.is_none() {
            self.start_us = Some(now);
            self.end_us = now.saturating_add(self.window_us);
            self.base = Arc::new(Snapshot::empty(now, now));
        }
    }

    /// Ends the window in progress at `end` (capture clock): copies it out
    /// as the last complete window, folds it into the totals, clears it.
    fn rollover(&mut self, end: i64) {
        let start = self.start_us.unwrap_or(end);
        self.window.flush();
        let snap = self.readers.then(|| Snapshot::of(&self.window, start, end));
        for s in Scope::ALL {
            self.evictions_done[s.index()] += self.window.table_info(s).evictions;
        }
        self.latency_evictions_done += self.window.latency_path_evictions();
        self.cumulative.absorb(&mut self.window);
        self.window.clear();
        self.windows_completed += 1;
        if let Some(snap) = snap {
            self.last_window = Some(Arc::new(snap));
            let first = self.base.start_us;
            self.base = Arc::new(Snapshot::of(&self.cumulative, first, end));
        }
        self.start_us = Some(end);
        self.end_us = end.saturating_add(self.window_us);
    }

    /// Rolls windows that ended by `now` (capture clock).
    fn tick(&mut self, now: i64) {
        let Some(start) = self.start_us else {
            return;
        };
        if now < self.end_us || now < start {
            return;
        }
        let end = self.end_us;
        self.rollover(end);
        if now >= self.end_us {
            // Whole windows passed without traffic: the last one is empty.
            let start = self.start_us.unwrap_or(end);
            let k = (now - start) / self.window_us;
            let skip_to = start + (k - 1) * self.window_us;
            self.start_us = Some(skip_to);
            self.rollover(skip_to + self.window_us);
        }
    }

    /// Replays at a recorded pace from now on (offline input).
    pub fn set_pace(&mut self, pace: Pace) {
        self.pace = Some(pace);
    }

    /// Waits until the frame stamped `ts_us` is due (see [`Pace`]),
    /// publishing while it waits.
    fn wait_pace(&mut self, ts_us: i64) {
        let Some(mut p) = self.pace.take() else {
            return;
        };
        let (t0, w0) = *p.origin.get_or_insert((ts_us, WallInstant::now()));
        let mut origin_wall = w0;
        loop {
            if p.stop.is_set() {
                break;
            }
            if p.paused.load(std::sync::atomic::Ordering::Relaxed) {
                let t = WallInstant::now();
                std::thread::sleep(Duration::from_millis(20));
                origin_wall += t.elapsed();
                self.publish_if_due();
                continue;
            }
            let due = Duration::from_secs_f64(((ts_us - t0).max(0) as f64 / 1e6) / p.speed);
            let elapsed = origin_wall.elapsed();
            if elapsed >= due {
                break;
            }
            std::thread::sleep((due - elapsed).min(Duration::from_millis(50)));
            self.publish_if_due();
        }
        p.origin = Some((t0, origin_wall));
        self.pace = Some(p);
    }

    fn publish_if_due(&mut self) {
        if self.readers && self.last_publish.elapsed() >= self.refresh {
            self.publish(None);
        }
    }

    /// Closes the seconds of the history that ended by `now` (capture clock).
    fn tick_history(&mut self, now: i64) {
        if let Some(q) = &mut self.quorum {
            q.analysis.tick(Instant::from_micros(now), &mut |_| {});
        }
        let (c, w) = (&self.cumulative, &self.window);
        self.history.tick(
            now,
            &[&c.totals, &w.totals],
            &[c.latency_all(), w.latency_all()],
        );
    }

    /// Copies the window in progress and the health figures out for readers.
    pub fn publish(&mut self, capture: Option<CaptureStats>) {
        if let Some(c) = capture {
            self.health.capture = c;
        }
        self.window.flush();
        let h = &mut self.health;
        h.tracker = self.tracker.counters;
        h.active_flows = self.tracker.active_flows();
        h.flow_capacity = self.tracker.flow_capacity();
        h.chunks = self.tracker.chunks_in_use();
        for s in Scope::ALL {
            h.table_evictions[s.index()] =
                self.evictions_done[s.index()] + self.window.table_info(s).evictions;
        }
        h.latency_path_evictions =
            self.latency_evictions_done + self.window.latency_path_evictions();
        h.auths_replaced = self.auths.replaced();
        h.last_ts_us = self.last_ts_us;
        let start = self.start_us.unwrap_or(self.last_ts_us);
        let current = Snapshot::of(&self.window, start, self.last_ts_us.max(start));
        let auths = self
            .auths
            .iter()
            .map(|a| AuthRow {
                client: a.client.to_string(),
                scheme: String::from_utf8_lossy(a.scheme).into_owned(),
                credential: a.credential.to_vec(),
                count: a.count,
                ts_us: a.ts.total_micros(),
            })
            .collect();
        if self.history.generation != self.history_copied {
            self.history_copied = self.history.generation;
            self.history_copy = Arc::new(self.history.seconds().copied().collect());
        }
        self.generation += 1;
        self.shared.set(Published {
            generation: self.generation,
            last_window: self.last_window.clone(),
            base: self.base.clone(),
            current: Arc::new(current),
            windows_completed: self.windows_completed,
            health: self.health.clone(),
            auths: Arc::new(auths),
            state: self.state.clone(),
            history: self.history_copy.clone(),
            quorum_metrics: self
                .quorum
                .as_mut()
                .map(Quorum::metrics)
                .unwrap_or_default(),
        });
        self.last_publish = WallInstant::now();
    }

    /// A live capture's periodic wake-up at wall-clock `now`: rolls the
    /// windows that ended and publishes.
    pub fn wake(&mut self, now: i64, capture: CaptureStats) {
        if self.live {
            self.open_window(now);
            self.tick(now);
            self.tick_history(now);
        }
        self.publish(Some(capture));
    }

    /// End of input: drains the tracker, closes the window in progress as
    /// the last complete one and publishes with `state`.
    pub fn finish(&mut self, capture: CaptureStats, state: CaptureState) {
        let last = Instant::from_micros(self.last_ts_us);
        let (w, a) = (&mut self.window, &mut self.auths);
        self.tracker.finish(last, &mut |ev| {
            w.record(ev);
            a.record(ev);
        });
        if let Some(q) = &mut self.quorum
            && !self.live
        {
            q.tracker.finish();
            q.analysis.finish(&mut |_| {});
        }
        if let Some(due) = self.history.due_us() {
            // The second in progress ends with the input.
            self.tick_history(due);
        }
        if self.start_us.is_some() {
            let end = self.last_ts_us;
            self.readers = true;
            self.rollover(end);
        }
        self.state = state;
        self.publish(Some(capture));
    }

    /// The health figures as last published.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The totals since start (valid after [`Engine::finish`]).
    pub fn cumulative(&self) -> &Tables<Storage> {
        &self.cumulative
    }
}

impl FrameSink for Engine {
    #[inline]
    fn frame(&mut self, ts: Instant, data: &[u8], _wire_len: u32) -> bool {
        if self.pace.is_some() {
            self.wait_pace(ts.total_micros());
        }
        self.health.packets += 1;
        let now = ts.total_micros();
        self.last_ts_us = now;
        if self.start_us.is_none() {
            self.open_window(now);
        }
        match packet::parse(self.link, data) {
            Ok(Some(seg)) => {
                let (w, a) = (&mut self.window, &mut self.auths);
                self.tracker.process(ts, &seg, &mut |ev| {
                    w.record(ev);
                    a.record(ev);
                });
                if let Some(q) = &mut self.quorum {
                    let an = &mut q.analysis;
                    q.tracker
                        .process(ts, &seg, &mut |ev| an.observe(ev, &mut |_| {}));
                }
            }
            Ok(None) => self.health.non_tcp += 1,
            Err(e) => self.health.link_errors.add(e),
        }
        if now >= self.end_us {
            self.tick(now);
        }
        if self.history.due_us().is_none_or(|due| now >= due) {
            self.tick_history(now);
        }
        if self.readers
            && self.health.packets & 0xfff == 0
            && self.last_publish.elapsed() >= self.refresh
        {
            // Let Capturer::run return so its libpcap figures can be read;
            // the caller publishes and resumes.
            self.paused = true;
            return false;
        }
        true
    }

    fn idle(&mut self) {
        if self.live {
            let now = wall_us();
            self.open_window(now);
            self.tick(now);
            self.tick_history(now);
        }
        if self.last_publish.elapsed() >= self.refresh {
            self.publish(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn engine(window: &str) -> (Engine, Arc<Shared>) {
        let args = Args::parse_from(["zk-stats", "--offline", "x.pcap", "--window", window]);
        let args = EngineConfig::from(&args);
        let shared = Arc::new(Shared::new(Published::initial(0)));
        let e = Engine::new(&args, LinkType::Ethernet, shared.clone(), true).unwrap();
        (e, shared)
    }

    /// A frame that is not TCP: it only moves the capture clock.
    fn tick(e: &mut Engine, secs: i64) {
        e.frame(Instant::from_micros(secs * 1_000_000), &[0u8; 20], 20);
    }

    #[test]
    fn windows_roll_on_capture_time_and_gaps_leave_an_empty_last_window() {
        let (mut e, shared) = engine("60");
        tick(&mut e, 1000);
        tick(&mut e, 1030);
        e.publish(None);
        let p = shared.get();
        assert_eq!(p.windows_completed, 0);
        assert!(p.last_window.is_none());

        tick(&mut e, 1061); // the first window [1000, 1060) ends
        e.publish(None);
        let p = shared.get();
        assert_eq!(p.windows_completed, 1);
        let w = p.last_window.as_ref().unwrap();
        assert_eq!((w.start_us, w.end_us), (1_000_000_000, 1_060_000_000));

        tick(&mut e, 1400); // [1060, 1120) ends, then whole quiet windows
        e.publish(None);
        let p = shared.get();
        let w = p.last_window.as_ref().unwrap();
        assert_eq!(w.end_us - w.start_us, 60_000_000);
        assert!(w.start_us <= 1_400_000_000 - 60_000_000 && w.end_us <= 1_400_000_000);
        assert_eq!(w.end_us, 1_360_000_000);
        assert_eq!(p.windows_completed, 3);
        assert_eq!(p.current.start_us, 1_360_000_000);
        assert_eq!(p.health.non_tcp, 4);
    }

    #[test]
    fn finish_closes_the_partial_window_as_the_last_one() {
        let (mut e, shared) = engine("60");
        tick(&mut e, 10);
        tick(&mut e, 20);
        e.finish(CaptureStats::default(), CaptureState::Finished);
        let p = shared.get();
        assert_eq!(p.state, CaptureState::Finished);
        let w = p.last_window.as_ref().unwrap();
        assert_eq!((w.start_us, w.end_us), (10_000_000, 20_000_000));
        assert_eq!(p.base.end_us, 20_000_000);
    }
}
