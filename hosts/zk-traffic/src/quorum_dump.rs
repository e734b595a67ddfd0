//! The capture loop shared by `fle-dump` and `zab-dump`.
//!
//! Thin wiring: libpcap frames -> `zk_wire::packet::parse` ->
//! `zk_wire::quorum::QuorumTracker` -> [`QuorumRecord`] printed, and
//! `zk_wire::quorum_analysis::QuorumAnalysis` -> [`QuorumSummary`] for
//! `--summary`. The two tools differ only in their default ports, which
//! protocol they decode and what their summary shows.

use std::io::{self, BufWriter, Write};
use zk_wire::ErrorCounts;

use anyhow::{Result, bail};
use zk_wire::Instant;
use zk_wire::packet::{self, LinkType};
use zk_wire::quorum::{Config, Link, QuorumTracker};
use zk_wire::quorum_analysis::{AnalysisConfig, Duration, QuorumAnalysis};

use crate::capture::{Capturer, End, FrameSink, SourceArgs, Stop};
use crate::quorum_record::QuorumRecord;
use crate::quorum_summary::{QuorumSummary, elections_text, quorum_records, quorum_text};

/// Which tool is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `fle-dump`: leader election.
    Fle,
    /// `zab-dump`: quorum traffic.
    Zab,
}

impl Tool {
    /// The binary's name.
    pub const fn name(self) -> &'static str {
        match self {
            Tool::Fle => "fle-dump",
            Tool::Zab => "zab-dump",
        }
    }
}

/// Flags both tools share (flattened into each tool's `Args`).
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Live or offline.
    #[command(flatten)]
    pub from: SourceArgs,

    /// Extra BPF expression, and-ed with the port filter.
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,

    /// Print NDJSON, one object per message (with --summary: per summary row).
    #[arg(long)]
    pub json: bool,

    /// Show PINGs (hidden by default).
    #[arg(long)]
    pub include_pings: bool,

    /// Color the output by message kind.
    #[arg(long)]
    pub colors: bool,

    /// Print a summary at the end instead of the messages.
    #[arg(long)]
    pub summary: bool,

    /// An election is over once it has been quiet this long after a quorum agreed (ms).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub settle_ms: u64,

    /// A server that first looks this long after a quorum agreed is joining
    /// the elected leader, not voting (ms; ZooKeeper's finalize wait is 200).
    #[arg(long, value_name = "MS", default_value_t = 400)]
    pub join_after_ms: u64,

    /// Connections tracked at once (rounded down to a multiple of 8).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_links: usize,

    /// Reassembly chunk size in bytes: packets larger than this are decoded from their first bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 128 * 1024)]
    pub chunk_size: usize,

    /// Reassembly chunks (memory = chunks x chunk size, touched only when used).
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub chunks: usize,

    /// Largest packet data accepted, in bytes (jute.maxbuffer plus slack).
    #[arg(long, value_name = "BYTES", default_value_t = zk_wire::stream::LengthPrefixed::DEFAULT_MAX_LEN)]
    pub max_packet: u32,

    /// Stop after this many packets.
    #[arg(short = 'c', long, value_name = "N")]
    pub count: Option<u64>,
}

struct Output<W: Write> {
    common: CommonArgs,
    out: W,
    failed: Option<io::Error>,
}

impl<W: Write> Output<W> {
    fn record(&mut self, r: &QuorumRecord) {
        if self.common.summary || (r.is_ping() && !self.common.include_pings) {
            return;
        }
        let res = if self.common.json {
            serde_json::to_writer(&mut self.out, r)
                .map_err(io::Error::from)
                .and_then(|()| self.out.write_all(b"\n"))
        } else {
            writeln!(self.out, "{}", r.human(self.common.colors))
        };
        if let Err(e) = res {
            self.failed.get_or_insert(e);
        }
    }
}

struct Dump<W: Write> {
    link: LinkType,
    tracker: QuorumTracker<Vec<Link>, Vec<u8>>,
    analysis: Box<QuorumAnalysis>,
    summary: QuorumSummary,
    output: Output<W>,
    l2_errors: ErrorCounts,
    packets: u64,
    non_tcp: u64,
    last_ts: Instant,
    limit: Option<u64>,
}

impl<W: Write> FrameSink for Dump<W> {
    fn frame(&mut self, ts: Instant, data: &[u8], _wire_len: u32) -> bool {
        self.packets += 1;
        self.last_ts = ts;
        match packet::parse(self.link, data) {
            Ok(Some(seg)) => {
                let (out, analysis, summary) =
                    (&mut self.output, &mut self.analysis, &mut self.summary);
                self.tracker.process(ts, &seg, &mut |ev| {
                    analysis.observe(ev, &mut |f| summary.add(&f));
                    out.record(&QuorumRecord::from_event(ev));
                });
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

/// Runs one of the tools; returns the process exit code.
pub fn run(tool: Tool, ports: &[u16], common: CommonArgs) -> Result<i32> {
    let source = common.from.source(64)?;
    if ports.is_empty() {
        bail!("give at least one --port");
    }
    let mut config = Config::without_ports();
    for &p in ports {
        let ok = match tool {
            Tool::Fle => config.add_fle_port(p),
            Tool::Zab => config.add_zab_port(p),
        };
        if !ok {
            bail!("at most {} ports", zk_wire::quorum::MAX_PORTS);
        }
    }
    config.max_packet_len = common.max_packet;
    let filter = source.filter(ports, common.filter.as_deref());
    let mut cap = Capturer::open(&source, filter.as_deref())?;
    let stop = Stop::on_signals();
    stop.watch(&mut cap);
    let chunk = common.chunk_size.max(64);
    let tracker = QuorumTracker::new(
        vec![Link::EMPTY; common.max_links.max(8)],
        vec![0u8; chunk.saturating_mul(common.chunks)],
        chunk,
        config,
    );
    let analysis = Box::new(QuorumAnalysis::new(AnalysisConfig {
        settle: Duration::from_millis(common.settle_ms),
        join_after: Duration::from_millis(common.join_after_ms),
        ..AnalysisConfig::default()
    }));
    let limit = common.count;
    let stdout = io::stdout().lock();
    let mut dump = Dump {
        link: cap.link_type(),
        tracker,
        analysis,
        summary: QuorumSummary::default(),
        output: Output {
            common,
            out: BufWriter::with_capacity(1 << 16, stdout),
            failed: None,
        },
        l2_errors: ErrorCounts::ZERO,
        packets: 0,
        non_tcp: 0,
        last_ts: Instant::ZERO,
        limit,
    };
    let end = cap.run(&stop, &mut dump)?;
    dump.tracker.finish();
    let (analysis, summary) = (&mut dump.analysis, &mut dump.summary);
    analysis.finish(&mut |f| summary.add(&f));
    if dump.output.common.summary {
        write_summary(tool, &mut dump);
    }
    if let Err(e) = dump.output.out.flush() {
        dump.output.failed.get_or_insert(e);
    }
    report(tool, &dump, &cap, &end);
    match &dump.output.failed {
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Some(e) => bail!("cannot write output: {e}"),
        None => Ok(0),
    }
}

fn write_summary<W: Write>(tool: Tool, d: &mut Dump<W>) {
    let packets = d.tracker.counters.packets;
    let json = d.output.common.json;
    let res = match (tool, json) {
        (Tool::Fle, false) => d
            .output
            .out
            .write_all(elections_text(&d.summary, &d.analysis).as_bytes()),
        (Tool::Zab, false) => d
            .output
            .out
            .write_all(quorum_text(&d.summary, &d.analysis, &packets).as_bytes()),
        (Tool::Fle, true) => d.summary.elections.iter().try_for_each(|e| {
            serde_json::to_writer(&mut d.output.out, e)
                .map_err(io::Error::from)
                .and_then(|()| d.output.out.write_all(b"\n"))
        }),
        (Tool::Zab, true) => quorum_records(&d.summary, &d.analysis, &packets)
            .iter()
            .try_for_each(|v| {
                serde_json::to_writer(&mut d.output.out, v)
                    .map_err(io::Error::from)
                    .and_then(|()| d.output.out.write_all(b"\n"))
            }),
    };
    if let Err(e) = res {
        d.output.failed.get_or_insert(e);
    }
}

/// Counters at exit, on stderr.
fn report<W: Write>(tool: Tool, d: &Dump<W>, cap: &Capturer, end: &End) {
    let c = &d.tracker.counters;
    let s = &c.stream;
    let a = &d.analysis.counters;
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
    match tool {
        Tool::Fle => {
            let _ = writeln!(
                err,
                "initial_messages={} notifications={} elections={} joins={} peers={}",
                c.initial_messages,
                c.notifications,
                a.elections,
                a.joins,
                d.tracker.peers.len()
            );
        }
        Tool::Zab => {
            let _ = writeln!(
                err,
                "quorum_packets={} truncated_packets={} snapshots={} snapshot_bytes={} proposals={} commits={} acks={} syncs={}",
                c.packets_total(),
                c.truncated_packets,
                c.snapshots,
                c.snapshot_bytes,
                a.proposals,
                a.commits,
                a.acks,
                a.syncs
            );
        }
    }
    let _ = writeln!(
        err,
        "links_created={} links_closed={} links_expired={} links_evicted={}",
        c.links_created, c.links_closed, c.links_expired, c.links_evicted
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
