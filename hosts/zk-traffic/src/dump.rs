//! `zk-dump`: print the ZooKeeper client protocol, live or from a capture.
//!
//! Thin wiring: libpcap frames -> `zk_wire::packet::parse` ->
//! `zk_wire::flow::Tracker` -> [`Record`] -> a printer or a summary.

use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use zk_wire::ErrorCounts;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use zk_wire::Instant;
use zk_wire::client::OpCode;
use zk_wire::flow::{Config, Event, Flow, Tracker};
use zk_wire::packet::{self, LinkType};

use crate::capture::{CaptureArgs, Capturer, End, FrameSink, Source, Stop};
use crate::record::{PathMap, Record, RecordOptions};
use crate::summary::{GroupBy, SortBy, Summary, aggregate_path};

/// Decode ZooKeeper client traffic, live from an interface or from a pcap/pcapng file.
///
/// Prints one line per message; replies are paired with their request by xid
/// and show the latency. Counters (packets, frames, decode errors by kind,
/// flows evicted, bytes skipped) go to stderr at exit.
#[derive(Debug, Parser)]
#[command(name = "zk-dump", version)]
pub struct Args {
    /// What to capture.
    #[command(flatten)]
    pub capture: CaptureArgs,

    /// Only show traffic to or from this host (repeatable).
    #[arg(long, value_name = "IP")]
    pub include_host: Vec<IpAddr>,

    /// Hide traffic to or from this host (repeatable).
    #[arg(long, value_name = "IP")]
    pub exclude_host: Vec<IpAddr>,

    /// Only show this client (IP, or IP:PORT).
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_client)]
    pub client: Option<ClientFilter>,

    /// Show pings and their replies (hidden by default).
    #[arg(long)]
    pub include_pings: bool,

    /// Only show writes (create, delete, setData, setACL, multi with a write, reconfig) and their replies.
    #[arg(long)]
    pub writes_only: bool,

    /// Also show replies whose request was not seen (the capture started after it).
    #[arg(long)]
    pub unpaired: bool,

    /// Color the output by message kind.
    #[arg(long)]
    pub colors: bool,

    /// Print NDJSON, one object per message.
    #[arg(long)]
    pub json: bool,

    /// Show SetAuth credentials in full (redacted to user:<redacted> by default).
    #[arg(long)]
    pub show_secrets: bool,

    /// Print a table of request counts every N requests (and at the end) instead of messages.
    #[arg(long, value_name = "N", conflicts_with = "measure_latency")]
    pub count_requests: Option<u64>,

    /// Print a latency table every N paired replies (and at the end) instead of messages.
    #[arg(long, value_name = "N")]
    pub measure_latency: Option<u64>,

    /// What the summary tables group by.
    #[arg(long, value_enum, default_value_t = GroupBy::Path)]
    pub group_by: GroupBy,

    /// How the latency table is sorted.
    #[arg(long, value_enum, default_value_t = SortBy::Avg)]
    pub sort_by: SortBy,

    /// Keep the first D path components when grouping by path (0 keeps full paths).
    #[arg(long, value_name = "D", default_value_t = 0)]
    pub aggregation_depth: usize,

    /// Rows per summary table.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,

    /// Connections tracked at once (rounded down to a multiple of 8).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_flows: usize,

    /// Reassembly chunk size in bytes: frames larger than this are decoded from their first bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 128 * 1024)]
    pub chunk_size: usize,

    /// Reassembly chunks (memory = chunks x chunk size, touched only when used).
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub chunks: usize,

    /// Largest frame accepted, in bytes (ZooKeeper's jute.maxbuffer plus slack).
    #[arg(long, value_name = "BYTES", default_value_t = zk_wire::stream::LengthPrefixed::DEFAULT_MAX_LEN)]
    pub max_frame: u32,

    /// Stop after this many packets.
    #[arg(short = 'c', long, value_name = "N")]
    pub count: Option<u64>,
}

/// A `--client` filter.
#[derive(Debug, Clone, Copy)]
pub struct ClientFilter {
    ip: IpAddr,
    port: Option<u16>,
}

impl ClientFilter {
    fn matches(&self, a: &SocketAddr) -> bool {
        a.ip() == self.ip && self.port.is_none_or(|p| p == a.port())
    }
}

fn parse_client(s: &str) -> Result<ClientFilter, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(ClientFilter { ip, port: None });
    }
    s.parse::<SocketAddr>()
        .map(|a| ClientFilter {
            ip: a.ip(),
            port: Some(a.port()),
        })
        .map_err(|_| format!("{s:?} is not IP or IP:PORT (IPv6 with a port: [::1]:5000)"))
}

/// Output mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Lines,
    Json,
    Count,
    Latency,
}

/// Turns events into output.
struct Output<W: Write> {
    args: Args,
    mode: Mode,
    paths: PathMap,
    out: W,
    summary: Summary,
    failed: Option<io::Error>,
}

/// The capture loop's state.
struct Dump<W: Write> {
    link: LinkType,
    tracker: Tracker<Vec<Flow>, Vec<u8>>,
    output: Output<W>,
    l2_errors: ErrorCounts,
    packets: u64,
    non_tcp: u64,
    last_ts: Instant,
    limit: Option<u64>,
    /// Live capture: flush output after every frame that printed something.
    live: bool,
}

impl<W: Write> Output<W> {
    fn wanted(&self, r: &Record) -> bool {
        let a = &self.args;
        if !a.include_pings && r.op == Some(OpCode::Ping) {
            return false;
        }
        if a.writes_only && !r.is_write {
            return false;
        }
        if !a.unpaired && r.kind == "reply" && r.op.is_none() && r.kind_name == "Reply" {
            return false;
        }
        true
    }

    fn on_event(&mut self, ev: &Event<'_>) {
        let a = &self.args;
        let hosts = [ev.client.ip(), ev.server.ip()];
        if !a.include_host.is_empty() && !hosts.iter().any(|h| a.include_host.contains(h)) {
            return;
        }
        if hosts.iter().any(|h| a.exclude_host.contains(h)) {
            return;
        }
        if a.client.is_some_and(|c| !c.matches(&ev.client)) {
            return;
        }
        let opts = RecordOptions {
            show_secrets: a.show_secrets,
        };
        let r = Record::from_event(ev, &mut self.paths, opts);
        if !self.wanted(&r) {
            return;
        }
        let res = match self.mode {
            Mode::Json => serde_json::to_writer(&mut self.out, &r)
                .map_err(io::Error::from)
                .and_then(|()| self.out.write_all(b"\n")),
            Mode::Lines => writeln!(self.out, "{}", r.human(a.colors)),
            Mode::Count | Mode::Latency => {
                let depth = a.aggregation_depth;
                let key = |r: &Record| match a.group_by {
                    GroupBy::Path => r.path.as_deref().map(|p| aggregate_path(p, depth)),
                    GroupBy::Type => Some(r.kind_name.to_owned()),
                    GroupBy::Client => Some(r.client.clone()),
                };
                let every = a.count_requests.or(a.measure_latency).unwrap_or(u64::MAX);
                let full = if self.mode == Mode::Count && r.kind == "request" {
                    self.summary
                        .count(key(&r).unwrap_or_else(|| "(no path)".to_owned()));
                    self.summary.requests >= every
                } else if self.mode == Mode::Latency && r.kind == "reply" {
                    if let (Some(k), Some(l)) = (key(&r), r.latency_us) {
                        let k = match a.group_by {
                            GroupBy::Type => r.kind_name.replace("Reply", "Request"),
                            _ => k,
                        };
                        self.summary.latency(k, l);
                    }
                    self.summary.replies >= every
                } else {
                    false
                };
                if full {
                    let table = self
                        .summary
                        .table(self.mode == Mode::Latency, a.sort_by, a.top);
                    self.summary = Summary::default();
                    self.out.write_all(table.as_bytes())
                } else {
                    Ok(())
                }
            }
        };
        if let Err(e) = res {
            self.failed.get_or_insert(e);
        }
    }
}

impl<W: Write> FrameSink for Dump<W> {
    fn frame(&mut self, ts: Instant, data: &[u8], _wire_len: u32) -> bool {
        self.packets += 1;
        self.last_ts = ts;
        match packet::parse(self.link, data) {
            Ok(Some(seg)) => {
                let out = &mut self.output;
                let mut printed = false;
                self.tracker.process(ts, &seg, &mut |ev| {
                    out.on_event(ev);
                    printed = true;
                });
                if printed && self.live {
                    self.idle();
                }
            }
            Ok(None) => self.non_tcp += 1,
            Err(e) => self.l2_errors.add(e),
        }
        self.output.failed.is_none() && self.limit.is_none_or(|c| self.packets < c)
    }

    fn idle(&mut self) {
        if let Err(e) = self.output.out.flush() {
            self.output.failed.get_or_insert(e);
        }
    }
}

/// Runs zk-dump; returns the process exit code.
pub fn run(args: Args) -> Result<i32> {
    let source = args.capture.source(64)?;
    let mut config = Config::without_ports();
    for &p in &args.capture.ports {
        if !config.add_port(p) {
            bail!("at most {} ports", zk_wire::flow::MAX_PORTS);
        }
    }
    config.max_frame_len = args.max_frame;
    // Live captures filter in the kernel; files are filtered by port in
    // zk-wire (cheaper than BPF per frame) unless --filter asks for more.
    let filter = args.capture.bpf(&source, &args.capture.ports);
    let mut cap = Capturer::open(&source, filter.as_deref())?;
    let stop = Stop::on_signals();
    stop.watch(&mut cap);
    // Reading the file on a thread of its own: decoding and printing keep this one.
    cap.read_ahead();
    if let Source::Live { iface, .. } = &source {
        eprintln!(
            "zk-dump: listening on {iface} ({}), filter: {}",
            cap.link_type().name(),
            filter.as_deref().unwrap_or("")
        );
    }
    let mode = if args.json {
        Mode::Json
    } else if args.count_requests.is_some() {
        Mode::Count
    } else if args.measure_latency.is_some() {
        Mode::Latency
    } else {
        Mode::Lines
    };
    let tracker = Tracker::new(
        vec![Flow::EMPTY; args.max_flows.max(8)],
        vec![0u8; args.chunk_size.saturating_mul(args.chunks)],
        args.chunk_size,
        config,
    );
    let stdout = io::stdout().lock();
    let limit = args.count;
    let mut dump = Dump {
        link: cap.link_type(),
        tracker,
        output: Output {
            args,
            mode,
            paths: PathMap::new(1 << 20),
            out: BufWriter::with_capacity(1 << 16, stdout),
            summary: Summary::default(),
            failed: None,
        },
        l2_errors: ErrorCounts::ZERO,
        packets: 0,
        non_tcp: 0,
        last_ts: Instant::ZERO,
        limit,
        live: matches!(source, Source::Live { .. }),
    };
    let end = cap.run(&stop, &mut dump)?;
    let last = dump.last_ts;
    let out = &mut dump.output;
    dump.tracker.finish(last, &mut |ev| out.on_event(ev));
    if matches!(out.mode, Mode::Count | Mode::Latency) && out.failed.is_none() {
        let a = &out.args;
        let table = out
            .summary
            .table(out.mode == Mode::Latency, a.sort_by, a.top);
        if let Err(e) = out.out.write_all(table.as_bytes()) {
            out.failed.get_or_insert(e);
        }
    }
    if let Err(e) = out.out.flush() {
        out.failed.get_or_insert(e);
    }
    report(&dump, &cap, &end);
    match &dump.output.failed {
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Some(e) => bail!("cannot write output: {e}"),
        None => Ok(0),
    }
}

/// Counters at exit, on stderr.
fn report<W: Write>(d: &Dump<W>, cap: &Capturer, end: &End) {
    let c = &d.tracker.counters;
    let s = &c.stream;
    let mut err = io::stderr().lock();
    let errors = |arr: &ErrorCounts| {
        arr.nonzero()
            .map(|(e, n)| format!("{}={n}", e.name()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(
        err,
        "packets={} bytes={} kernel_drops={} tcp_segments={} non_tcp={} other_ports={}",
        cap.stats.frames, cap.stats.bytes, cap.stats.kernel_drops, c.segments, d.non_tcp, c.foreign
    );
    let _ = writeln!(
        err,
        "frames={} requests={} replies={} events={} unpaired_replies={} pending_overflow={}",
        s.frames + s.oversize + s.damaged,
        c.requests,
        c.replies,
        c.events,
        c.unpaired_replies,
        c.pending_overflow
    );
    let _ = writeln!(
        err,
        "flows_created={} flows_closed={} flows_expired={} flows_evicted={}",
        c.flows_created, c.flows_closed, c.flows_expired, c.flows_evicted
    );
    let _ = writeln!(
        err,
        "retransmits={} out_of_order={} gaps={} bytes_lost={} bytes_skipped={} resyncs={} oversize_frames={} damaged_frames={} truncated_at_close={} pool_exhausted={}",
        s.retransmits,
        s.out_of_order,
        s.gaps,
        s.bytes_lost,
        s.bytes_skipped,
        s.resyncs,
        s.oversize,
        s.damaged,
        s.truncated_at_close,
        s.pool_exhausted
    );
    let _ = writeln!(
        err,
        "errors: link_layer[{}] framing[{}] decode[{}]",
        errors(&d.l2_errors),
        errors(&c.frame_errors),
        errors(&c.decode_errors)
    );
    if let End::Truncated(msg) = end {
        let _ = writeln!(
            err,
            "warning: the capture file ends in a damaged record ({msg}); everything before it was decoded"
        );
    }
}
