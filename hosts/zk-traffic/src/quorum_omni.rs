//! `zk-omni-dump`: client, election and quorum traffic decoded together
//! from one capture, for ensembles on any ports.
//!
//! Thin wiring over two zk-wire trackers: `flow::Tracker` for the client
//! protocol and `quorum::QuorumTracker` (with port learning on) for FLE and
//! ZAB. Ports are learnt from the traffic itself:
//! - election and quorum ports from the dynamic config in version-2
//!   notifications and `NEWLEADER`, and from connections that open like an
//!   election connection (a versioned initial message) or a learner
//!   (`FOLLOWERINFO` / `OBSERVERINFO`) — done in zk-wire;
//! - client ports from the same configs (`;host:port` of each server) and
//!   from connections that open with a `ConnectRequest`.
//!
//! Client messages print as `zk-dump` prints them (with `"proto":"client"`
//! in JSON), election and quorum messages as `fle-dump` / `zab-dump` do.

use std::io::{self, BufWriter, Write};
use zk_wire::ErrorCounts;

use anyhow::{Result, bail};
use clap::Parser;
use zk_wire::Instant;
use zk_wire::client::{self, OpCode};
use zk_wire::flow::{self, Flow, Tracker};
use zk_wire::packet::{self, LinkType, TcpSegment};
use zk_wire::quorum::{self, Link, QuorumEvent, QuorumMessage, QuorumTracker};
use zk_wire::quorum_analysis::{AnalysisConfig, Duration, QuorumAnalysis};
use zk_wire::zab::Payload;

use crate::capture::{Capturer, End, FrameSink, Source, SourceArgs, Stop};
use crate::quorum_record::{ConfigRecord, QuorumRecord};
use crate::quorum_summary::{QuorumSummary, elections_text, quorum_records, quorum_text};
use crate::record::{PathMap, Record, RecordOptions};

/// Decode ZooKeeper client, leader-election and quorum traffic together, live or from a pcap/pcapng file.
///
/// Election and quorum ports are learnt from the dynamic configs the
/// servers exchange and from how connections open; client ports from the
/// same configs and from connections that open with a ConnectRequest. Give
/// ports explicitly when the capture starts after the connections opened.
/// With --summary, prints the election and quorum summaries of fle-dump and
/// zab-dump. Counters go to stderr at exit.
#[derive(Debug, Parser)]
#[command(name = "zk-omni-dump", version, about, long_about = None)]
pub struct Args {
    /// Live or offline.
    #[command(flatten)]
    pub from: SourceArgs,

    /// A client port (repeat for several).
    #[arg(long, value_name = "PORT", default_values_t = [2181u16])]
    pub client_port: Vec<u16>,

    /// A quorum (leader) port (repeat for several).
    #[arg(long, value_name = "PORT", default_values_t = [2888u16])]
    pub zab_port: Vec<u16>,

    /// An election port (repeat for several).
    #[arg(long, value_name = "PORT", default_values_t = [3888u16])]
    pub fle_port: Vec<u16>,

    /// Only the ports given: learn none from the traffic.
    #[arg(long)]
    pub no_learn: bool,

    /// Extra BPF expression (the capture is otherwise all TCP).
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,

    /// Print NDJSON, one object per message (with --summary: per summary row).
    #[arg(long)]
    pub json: bool,

    /// Show client and quorum pings (hidden by default).
    #[arg(long)]
    pub include_pings: bool,

    /// Color the output by message kind.
    #[arg(long)]
    pub colors: bool,

    /// Print the election and quorum summaries at the end instead of the messages.
    #[arg(long)]
    pub summary: bool,

    /// Stop after this many packets.
    #[arg(short = 'c', long, value_name = "N")]
    pub count: Option<u64>,
}

struct Omni<W: Write> {
    link: LinkType,
    client: Tracker<Vec<Flow>, Vec<u8>>,
    quorum: QuorumTracker<Vec<Link>, Vec<u8>>,
    analysis: Box<QuorumAnalysis>,
    summary: QuorumSummary,
    paths: PathMap,
    learn: bool,
    client_ports_learnt: u64,
    json: bool,
    colors: bool,
    pings: bool,
    quiet: bool,
    out: W,
    failed: Option<io::Error>,
    l2_errors: ErrorCounts,
    packets: u64,
    limit: Option<u64>,
}

/// Client ports named in a quorum event's config, if it carries one.
fn client_ports(ev: &QuorumEvent<'_>) -> Vec<u16> {
    let text = match &ev.message {
        QuorumMessage::Notification(n) => n.config,
        QuorumMessage::Packet(p) => match p.payload {
            Ok(Payload::NewLeader { config }) if !p.truncated => Some(config),
            _ => None,
        },
        _ => None,
    };
    text.map(ConfigRecord::from_text)
        .map(|c| c.servers.iter().filter_map(|s| s.client_port).collect())
        .unwrap_or_default()
}

/// Does this segment open a client connection (a length-prefixed ConnectRequest)?
fn opens_client(seg: &TcpSegment<'_>) -> bool {
    let p = seg.payload;
    p.len() >= 4 + 28
        && i32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize == p.len() - 4
        && client::looks_like_connect_request(&p[4..])
}

impl<W: Write> Omni<W> {
    fn write_line(&mut self, res: io::Result<()>) {
        if let Err(e) = res {
            self.failed.get_or_insert(e);
        }
    }

    fn segment(&mut self, ts: Instant, seg: &TcpSegment<'_>) {
        let cfg = self.client.config();
        let is_client = cfg.is_server_port(seg.dst.port()) || cfg.is_server_port(seg.src.port());
        if !is_client {
            let foreign = self.quorum.counters.foreign;
            let mut learnt = Vec::new();
            let (analysis, summary, out) = (&mut self.analysis, &mut self.summary, &mut Vec::new());
            self.quorum.process(ts, seg, &mut |ev| {
                analysis.observe(ev, &mut |f| summary.add(&f));
                learnt.extend(client_ports(ev));
                out.push(QuorumRecord::from_event(ev));
            });
            for r in out.drain(..) {
                self.print_quorum(&r);
            }
            if self.learn {
                for p in learnt {
                    if !self.client.config().is_server_port(p) && self.client.add_port(p) {
                        self.client_ports_learnt += 1;
                    }
                }
            }
            if self.quorum.counters.foreign == foreign {
                return;
            }
            // No quorum port: a client connection opening on an unknown port?
            if !(self.learn && opens_client(seg) && self.client.add_port(seg.dst.port())) {
                return;
            }
            self.client_ports_learnt += 1;
        }
        let mut records = Vec::new();
        let paths = &mut self.paths;
        self.client.process(ts, seg, &mut |ev| {
            records.push(Record::from_event(ev, paths, RecordOptions::default()));
        });
        for r in records {
            self.print_client(&r);
        }
    }

    fn print_client(&mut self, r: &Record) {
        if self.quiet || (!self.pings && r.op == Some(OpCode::Ping)) {
            return;
        }
        let res = if self.json {
            match serde_json::to_value(r) {
                Ok(serde_json::Value::Object(mut m)) => {
                    m.insert("proto".into(), "client".into());
                    serde_json::to_writer(&mut self.out, &m)
                        .map_err(io::Error::from)
                        .and_then(|()| self.out.write_all(b"\n"))
                }
                Ok(_) => Ok(()),
                Err(e) => Err(io::Error::from(e)),
            }
        } else {
            writeln!(self.out, "{}", r.human(self.colors))
        };
        self.write_line(res);
    }

    fn print_quorum(&mut self, r: &QuorumRecord) {
        if self.quiet || (!self.pings && r.is_ping()) {
            return;
        }
        let res = if self.json {
            serde_json::to_writer(&mut self.out, r)
                .map_err(io::Error::from)
                .and_then(|()| self.out.write_all(b"\n"))
        } else {
            writeln!(self.out, "{}", r.human(self.colors))
        };
        self.write_line(res);
    }
}

impl<W: Write> FrameSink for Omni<W> {
    fn frame(&mut self, ts: Instant, data: &[u8], _wire_len: u32) -> bool {
        self.packets += 1;
        match packet::parse(self.link, data) {
            Ok(Some(seg)) => self.segment(ts, &seg),
            Ok(None) => {}
            Err(e) => self.l2_errors.add(e),
        }
        self.failed.is_none() && self.limit.is_none_or(|c| self.packets < c)
    }

    fn idle(&mut self) {
        let r = self.out.flush();
        self.write_line(r);
    }
}

/// Runs zk-omni-dump; returns the process exit code.
pub fn run(args: Args) -> Result<i32> {
    let source = args.from.source(64)?;
    let mut ccfg = flow::Config::without_ports();
    for &p in &args.client_port {
        if !ccfg.add_port(p) {
            bail!("at most {} client ports", flow::MAX_PORTS);
        }
    }
    let mut qcfg = quorum::Config::without_ports();
    qcfg.learn_ports = !args.no_learn;
    for &p in &args.zab_port {
        if !qcfg.add_zab_port(p) {
            bail!("at most {} quorum ports", quorum::MAX_PORTS);
        }
    }
    for &p in &args.fle_port {
        if !qcfg.add_fle_port(p) {
            bail!("at most {} election ports", quorum::MAX_PORTS);
        }
    }
    let base = "tcp or (vlan and tcp)";
    let filter = match &args.filter {
        Some(f) if !f.trim().is_empty() => Some(format!("({base}) and ({f})")),
        _ if matches!(source, Source::Live { .. }) => Some(base.to_owned()),
        _ => None,
    };
    let mut cap = Capturer::open(&source, filter.as_deref())?;
    let stop = Stop::on_signals();
    stop.watch(&mut cap);
    let chunk = 128 * 1024;
    let stdout = io::stdout().lock();
    let mut omni = Omni {
        link: cap.link_type(),
        client: Tracker::new(vec![Flow::EMPTY; 4096], vec![0u8; chunk * 256], chunk, ccfg),
        quorum: QuorumTracker::new(vec![Link::EMPTY; 256], vec![0u8; chunk * 64], chunk, qcfg),
        analysis: Box::new(QuorumAnalysis::new(AnalysisConfig {
            settle: Duration::from_millis(1000),
            ..AnalysisConfig::default()
        })),
        summary: QuorumSummary::default(),
        paths: PathMap::new(1 << 20),
        learn: !args.no_learn,
        client_ports_learnt: 0,
        json: args.json,
        colors: args.colors,
        pings: args.include_pings,
        quiet: args.summary,
        out: BufWriter::with_capacity(1 << 16, stdout),
        failed: None,
        l2_errors: ErrorCounts::ZERO,
        packets: 0,
        limit: args.count,
    };
    let end = cap.run(&stop, &mut omni)?;
    let mut records = Vec::new();
    let paths = &mut omni.paths;
    omni.client.finish(Instant::ZERO, &mut |ev| {
        records.push(Record::from_event(ev, paths, RecordOptions::default()))
    });
    for r in records {
        omni.print_client(&r);
    }
    omni.quorum.finish();
    let (analysis, summary) = (&mut omni.analysis, &mut omni.summary);
    analysis.finish(&mut |f| summary.add(&f));
    if args.summary {
        let packets = omni.quorum.counters.packets;
        let res = if args.json {
            let mut rows: Vec<serde_json::Value> = omni
                .summary
                .elections
                .iter()
                .filter_map(|e| serde_json::to_value(e).ok())
                .collect();
            rows.extend(quorum_records(&omni.summary, &omni.analysis, &packets));
            rows.iter().try_for_each(|v| {
                serde_json::to_writer(&mut omni.out, v)
                    .map_err(io::Error::from)
                    .and_then(|()| omni.out.write_all(b"\n"))
            })
        } else {
            let text = format!(
                "{}{}",
                elections_text(&omni.summary, &omni.analysis),
                quorum_text(&omni.summary, &omni.analysis, &packets)
            );
            omni.out.write_all(text.as_bytes())
        };
        omni.write_line(res);
    }
    let r = omni.out.flush();
    omni.write_line(r);
    report(&omni, &cap, &end);
    match &omni.failed {
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Some(e) => bail!("cannot write output: {e}"),
        None => Ok(0),
    }
}

fn report<W: Write>(o: &Omni<W>, cap: &Capturer, end: &End) {
    let c = &o.client.counters;
    let q = &o.quorum.counters;
    let errors = |arr: &ErrorCounts| {
        arr.nonzero()
            .map(|(e, n)| format!("{}={n}", e.name()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ports = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "packets={} bytes={} kernel_drops={} client_ports={} zab_ports={} fle_ports={} (learnt: {} client, {} quorum)",
        cap.stats.frames,
        cap.stats.bytes,
        cap.stats.kernel_drops,
        ports(o.client.config().ports()),
        ports(o.quorum.config().zab_ports()),
        ports(o.quorum.config().fle_ports()),
        o.client_ports_learnt,
        q.ports_learnt
    );
    let _ = writeln!(
        err,
        "client: requests={} replies={} events={} | election: initial_messages={} notifications={} | quorum: packets={} snapshots={}",
        c.requests,
        c.replies,
        c.events,
        q.initial_messages,
        q.notifications,
        q.packets_total(),
        q.snapshots
    );
    let _ = writeln!(
        err,
        "errors: link_layer[{}] client[{} {}] quorum[{} {}]",
        errors(&o.l2_errors),
        errors(&c.frame_errors),
        errors(&c.decode_errors),
        errors(&q.frame_errors),
        errors(&q.decode_errors)
    );
    if let End::Truncated(msg) = end {
        let _ = writeln!(
            err,
            "warning: the capture file ends in a damaged record ({msg}); everything before it was decoded"
        );
    }
}
