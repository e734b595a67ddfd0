//! `zk-top`: a live, top-like view of a ZooKeeper ensemble's traffic.
//!
//! Wiring: the zk-stats capture engine runs on a thread of its own (live
//! from libpcap, or replaying a file at its recorded pace, `--speed N`,
//! or as fast as it goes, `--no-wait`) and publishes snapshots; this
//! thread redraws from the latest one at a steady rate (`--refresh`) and
//! handles keys. Drawing never touches the capture: it reads the same
//! `Arc` snapshots the HTTP server of zk-stats reads.

mod draw;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use crate::capture::{CaptureArgs, Capturer, Source, Stop};
use crate::stats::args::TableSizes;
use crate::stats::engine::{Engine, EngineConfig, Pace, wall_us};
use crate::stats::snapshot::{Published, Shared};
use crate::stats::top::SortBy;

/// A live, top-like view of ZooKeeper client traffic.
///
/// Panes: requests/s and bytes/s per request type (sparklines over the
/// last minutes), the top paths, clients and auth identities, latency
/// percentiles per request type, replies with errors, watch events and
/// sessions. Keys: s sort, / filter by path prefix, c pin a client, d/D
/// aggregation depth down/up, p pause, ? help, q quit.
///
/// Live (`--iface`, root or CAP_NET_RAW) or replaying a capture file
/// (`--offline FILE`) at its recorded pace (`--speed N`, `--no-wait`).
#[derive(Debug, Clone, Parser)]
#[command(name = "zk-top", version, about, long_about)]
pub struct TopArgs {
    /// What to capture (a file is replayed at its recorded pace).
    #[command(flatten)]
    pub capture: CaptureArgs,
    /// Replay speed: capture seconds per wall second.
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub speed: f64,
    /// Replay as fast as the file can be read.
    #[arg(long, conflicts_with = "speed")]
    pub no_wait: bool,
    /// Redraws per second.
    #[arg(long, value_name = "HZ", default_value_t = 4.0)]
    pub refresh: f64,
    /// Initial path aggregation depth (d/D change it).
    #[arg(long, value_name = "D", default_value_t = 0)]
    pub aggregation_depth: usize,
    /// Initial sort: requests, bytes, writes, reads, watches, events.
    #[arg(long, value_name = "KEY", default_value = "requests", value_parser = parse_sort)]
    pub sort: SortBy,
    /// Table and connection capacities.
    #[command(flatten)]
    pub sizes: TableSizes,
    /// Kernel capture buffer in MiB (live).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub buffer_mb: u32,
}

fn parse_sort(s: &str) -> Result<SortBy, String> {
    SortBy::parse(s)
        .ok_or_else(|| format!("{s:?}: one of requests, bytes, writes, reads, watches, events"))
}

/// What the user is typing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Nothing: keys are commands.
    None,
    /// A path prefix after `/`.
    Filter(String),
}

/// The view's state: what is shown and how.
#[derive(Debug, Clone)]
pub struct View {
    /// Ranking of the tables.
    pub sort: SortBy,
    /// Path prefix filter.
    pub prefix: Option<String>,
    /// Pinned client.
    pub client: Option<IpAddr>,
    /// Path aggregation depth (display).
    pub depth: usize,
    /// Frozen on this snapshot.
    pub frozen: Option<Arc<Published>>,
    /// The help overlay is up.
    pub help: bool,
    /// Line being typed.
    pub input: Input,
    /// What the source is (`live:eth0`, `offline:FILE`).
    pub source: String,
    /// Replay speed (None: live or as fast as possible).
    pub speed: Option<f64>,
}

/// The clients the `c` key cycles through (the top ones).
const PIN_CYCLE: usize = 10;

impl View {
    /// Handles one key; false to quit.
    fn key(
        &mut self,
        code: KeyCode,
        mods: KeyModifiers,
        p: &Published,
        paused: &AtomicBool,
    ) -> bool {
        if let Input::Filter(text) = &mut self.input {
            match code {
                KeyCode::Enter => {
                    let t = text.trim().to_string();
                    self.prefix = (!t.is_empty()).then_some(t);
                    self.input = Input::None;
                }
                KeyCode::Esc => self.input = Input::None,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(ch) if text.len() < 256 => text.push(ch),
                _ => {}
            }
            return true;
        }
        if self.help {
            // Any key closes the help, q still quits.
            self.help = false;
            return !matches!(code, KeyCode::Char('q'));
        }
        match code {
            KeyCode::Char('q') | KeyCode::Esc => return false,
            KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => return false,
            KeyCode::Char('s') => self.sort = self.sort.next(),
            KeyCode::Char('S') => {
                self.sort = SortBy::ALL[(SortBy::ALL
                    .iter()
                    .position(|&o| o == self.sort)
                    .unwrap_or(0)
                    + SortBy::ALL.len()
                    - 1)
                    % SortBy::ALL.len()]
            }
            KeyCode::Char('/') => {
                self.input = Input::Filter(self.prefix.clone().unwrap_or_default());
            }
            KeyCode::Char('c') => self.client = self.next_client(p),
            KeyCode::Char('d') => self.depth = self.depth.saturating_sub(1),
            KeyCode::Char('D') => self.depth = (self.depth + 1).min(16),
            KeyCode::Char('p') | KeyCode::Char(' ') => {
                if self.frozen.take().is_none() {
                    self.frozen = Some(Arc::new(p.clone()));
                }
                paused.store(self.frozen.is_some(), Ordering::Relaxed);
            }
            KeyCode::Char('?') | KeyCode::Char('h') => self.help = true,
            KeyCode::Char('x') => {
                self.prefix = None;
                self.client = None;
                self.depth = 0;
            }
            _ => {}
        }
        true
    }

    /// The next of the top clients after the pinned one (None after the last).
    fn next_client(&self, p: &Published) -> Option<IpAddr> {
        let o = crate::stats::top::TopOpts {
            limit: PIN_CYCLE,
            ..Default::default()
        };
        let parts = p.parts(crate::stats::snapshot::View::Cumulative);
        let clients: Vec<IpAddr> = crate::stats::top::top(&parts, &o)
            .clients
            .iter()
            .filter_map(|r| r.key.parse().ok())
            .collect();
        match self.client {
            None => clients.first().copied(),
            Some(c) => {
                let i = clients.iter().position(|&x| x == c);
                i.and_then(|i| clients.get(i + 1).copied())
            }
        }
    }
}

/// Restores the terminal even when drawing panics.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs zk-top; returns the exit code.
pub fn run(args: TopArgs) -> Result<i32> {
    let source = args.capture.source(args.buffer_mb)?;
    if !(args.refresh > 0.0 && args.refresh <= 100.0) {
        bail!("--refresh must be in (0, 100] redraws per second");
    }
    if args.speed.is_nan() || args.speed <= 0.0 {
        bail!("--speed must be positive");
    }
    let filter = args.capture.bpf(&source, &args.capture.ports);
    let mut cap = Capturer::open(&source, filter.as_deref())?;
    let stop = Stop::default();
    stop.watch(&mut cap);
    let live = matches!(source, Source::Live { .. });
    let redraw = Duration::from_secs_f64(1.0 / args.refresh);
    let cfg = EngineConfig {
        ports: args.capture.ports.clone(),
        max_frame: zk_wire::stream::LengthPrefixed::DEFAULT_MAX_LEN,
        aggregation_depth: 0,
        sizes: args.sizes,
        chunk_size: 64 * 1024,
        chunks: 256,
        window: 60,
        refresh: redraw.as_secs_f64().min(1.0),
        live,
        election_ports: Vec::new(),
        quorum_ports: Vec::new(),
    };
    let shared = Arc::new(Shared::new(Published::initial(wall_us())));
    let mut engine = Engine::new(&cfg, cap.link_type(), shared.clone(), true)?;
    let paused = Arc::new(AtomicBool::new(false));
    let speed = (!live && !args.no_wait).then_some(args.speed);
    if let Some(speed) = speed {
        engine.set_pace(Pace::new(speed, paused.clone(), stop.clone()));
    } else if !live {
        cap.read_ahead();
    }
    let waker =
        live.then(|| crate::stats::Waker::start(&mut cap, &stop, Duration::from_millis(250)));
    let cap_stop = stop.clone();
    let capture = std::thread::Builder::new()
        .name("zk-top-capture".into())
        .spawn(move || {
            crate::stats::capture_loop(&mut cap, &cap_stop, &mut engine, waker.as_deref())
                .map(|_| ())
        })
        .context("capture thread")?;

    let mut view = View {
        sort: args.sort,
        prefix: None,
        client: None,
        depth: args.aggregation_depth,
        frozen: None,
        help: false,
        input: Input::None,
        source: match &source {
            Source::Live { iface, .. } => format!("live:{iface}"),
            Source::Offline(p) => format!("offline:{}", p.display()),
        },
        speed,
    };
    let mut terminal =
        ratatui::try_init().context("cannot use the terminal (zk-top needs a TTY)")?;
    let guard = TerminalGuard;
    let result = (|| -> Result<()> {
        let mut next = Instant::now();
        loop {
            let latest = shared.get();
            let shown = view.frozen.clone().unwrap_or_else(|| latest.clone());
            terminal.draw(|f| draw::draw(f, &view, &shown))?;
            next += redraw;
            let now = Instant::now();
            if next < now {
                next = now + redraw;
            }
            // Keys until the next redraw.
            while let Some(wait) = next.checked_duration_since(Instant::now()) {
                if !event::poll(wait)? {
                    break;
                }
                match event::read()? {
                    Event::Key(k) if k.kind != KeyEventKind::Release => {
                        if !view.key(k.code, k.modifiers, &latest, &paused) {
                            return Ok(());
                        }
                        // Show what the key did at once.
                        break;
                    }
                    Event::Resize(..) => break,
                    _ => {}
                }
            }
        }
    })();
    drop(guard);
    stop.request();
    paused.store(false, Ordering::Relaxed);
    let captured = capture
        .join()
        .map_err(|_| anyhow::anyhow!("the capture thread panicked"))?;
    result?;
    captured?;
    Ok(0)
}
