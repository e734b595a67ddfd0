//! Where frames come from: libpcap, live on an interface or from a file.
//!
//! This is the only place that touches libpcap. It hands each captured frame
//! (timestamp, link type, bytes, original length) to a callback and keeps
//! the capture's health figures (frames, kernel drops, link-layer errors).
//! Everything after the frame bytes is zk-wire's job.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use pcap::{Active, BreakLoop, Capture, Offline};
use zk_wire::Instant;
use zk_wire::packet::LinkType;

/// `--iface` / `--offline`, shared by every capturing tool (flattened into
/// each; the command requires one of them).
#[derive(Debug, Clone, clap::Args)]
#[group(id = "source", required = true, multiple = false)]
pub struct SourceArgs {
    /// Capture live on this interface (needs root or CAP_NET_RAW).
    #[arg(short = 'i', long, value_name = "IFACE")]
    pub iface: Option<String>,

    /// Read a pcap or pcapng file ("-" for standard input).
    #[arg(short = 'r', long, value_name = "FILE")]
    pub offline: Option<PathBuf>,
}

impl SourceArgs {
    /// The source the flags name (see [`Source::from_flags`]).
    pub fn source(&self, buffer_mb: u32) -> Result<Source> {
        Source::from_flags(self.iface.as_deref(), self.offline.as_deref(), buffer_mb)
    }
}

/// The source, client ports and extra filter of the client-protocol tools
/// (zk-dump, zk-stats, zk-top).
#[derive(Debug, Clone, clap::Args)]
pub struct CaptureArgs {
    /// Live or offline.
    #[command(flatten)]
    pub from: SourceArgs,

    /// ZooKeeper client port (repeat for several).
    #[arg(short = 'p', long = "port", visible_alias = "zookeeper-port", value_name = "PORT", default_values_t = [2181u16])]
    pub ports: Vec<u16>,

    /// Extra BPF expression, and-ed with the port filter.
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,
}

impl CaptureArgs {
    /// The source the flags name (see [`Source::from_flags`]).
    pub fn source(&self, buffer_mb: u32) -> Result<Source> {
        self.from.source(buffer_mb)
    }

    /// The BPF filter for `source` on `ports` and the extra `--filter`.
    pub fn bpf(&self, source: &Source, ports: &[u16]) -> Option<String> {
        source.filter(ports, self.filter.as_deref())
    }
}

/// What to capture from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Live capture on a network interface.
    Live {
        /// Interface name (e.g. `eth0`, `lo`, `any`).
        iface: String,
        /// Kernel buffer size in bytes.
        buffer_size: i32,
    },
    /// A pcap or pcapng file (`-` for standard input).
    Offline(PathBuf),
}

impl Source {
    /// The source the flags name: live on `iface` (with a kernel buffer
    /// of `buffer_mb` MiB) or the file `offline`; an error without either.
    pub fn from_flags(
        iface: Option<&str>,
        offline: Option<&std::path::Path>,
        buffer_mb: u32,
    ) -> Result<Source> {
        match (iface, offline) {
            (Some(iface), _) => Ok(Source::Live {
                iface: iface.to_string(),
                buffer_size: i32::try_from(u64::from(buffer_mb) << 20).unwrap_or(i32::MAX),
            }),
            (None, Some(path)) => Ok(Source::Offline(path.to_path_buf())),
            (None, None) => Err(anyhow!("give --iface IFACE or --offline FILE")),
        }
    }

    /// The BPF filter for the client `ports` and an `extra` expression: a
    /// live capture always filters by port; a file only when asked.
    pub fn filter(&self, ports: &[u16], extra: Option<&str>) -> Option<String> {
        match (self, extra) {
            (Source::Live { .. }, extra) => Some(bpf_for_ports(ports, extra)),
            (Source::Offline(_), Some(extra)) => Some(bpf_for_ports(ports, Some(extra))),
            (Source::Offline(_), None) => None,
        }
    }
}

/// Health of a capture, readable at any time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames read from libpcap.
    pub frames: u64,
    /// Bytes of those frames as captured.
    pub bytes: u64,
    /// Frames the kernel dropped (live only; from `pcap_stats`).
    pub kernel_drops: u64,
    /// Frames dropped by the interface (live only).
    pub iface_drops: u64,
}

/// How a capture ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// End of file, or stopped on request.
    Done,
    /// The file ends in a damaged or cut record; everything before it was read.
    Truncated(String),
}

enum Handle {
    Live(Capture<Active>),
    Offline(Capture<Offline>),
    /// An offline capture read on a thread of its own ([`Capturer::read_ahead`]).
    Ahead(ReadAhead),
    /// Between states (only while switching to read-ahead).
    Gone,
}

/// Frames of a batch: where each one is in `data`, and its header.
#[derive(Debug, Clone, Copy)]
struct Meta {
    ts_us: i64,
    off: u32,
    len: u32,
    wire_len: u32,
}

/// Frames read ahead, handed from the reader thread in one piece.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    frames: Vec<Meta>,
}

/// Bytes of frame data per batch.
const BATCH_BYTES: usize = 1 << 20;
/// Frames per batch at most.
const BATCH_FRAMES: usize = 8192;
/// Batches in existence at most (memory: about this many MiB).
const BATCHES: usize = 6;

enum Msg {
    Batch(Batch),
    End(Result<End>),
}

/// The consumer side of a read-ahead thread.
struct ReadAhead {
    rx: std::sync::mpsc::Receiver<Msg>,
    recycle: std::sync::mpsc::SyncSender<Batch>,
    current: Option<(Batch, usize)>,
    done: Option<End>,
}

/// The reader thread: libpcap records into batches, batches into `tx`,
/// spent batches back through `recycle`.
fn read_ahead_thread(
    mut cap: Capture<Offline>,
    tx: std::sync::mpsc::SyncSender<Msg>,
    recycle: std::sync::mpsc::Receiver<Batch>,
) {
    let mut made = 1;
    let mut b = Batch::default();
    let end = loop {
        match cap.next_packet() {
            Ok(p) => {
                let h = p.header;
                b.frames.push(Meta {
                    ts_us: h.ts.tv_sec * 1_000_000 + h.ts.tv_usec,
                    off: b.data.len() as u32,
                    len: p.data.len() as u32,
                    wire_len: h.len,
                });
                b.data.extend_from_slice(p.data);
                if b.data.len() >= BATCH_BYTES || b.frames.len() >= BATCH_FRAMES {
                    if tx.send(Msg::Batch(b)).is_err() {
                        return;
                    }
                    b = match recycle.try_recv() {
                        Ok(b) => b,
                        Err(_) if made < BATCHES => {
                            made += 1;
                            Batch::default()
                        }
                        Err(_) => match recycle.recv() {
                            Ok(b) => b,
                            Err(_) => return,
                        },
                    };
                    b.data.clear();
                    b.frames.clear();
                }
            }
            Err(pcap::Error::NoMorePackets) => break Ok(End::Done),
            Err(pcap::Error::PcapError(msg)) => break Ok(End::Truncated(msg)),
            Err(e) => break Err(anyhow::Error::from(e).context("capture failed")),
        }
    };
    if !b.frames.is_empty() && tx.send(Msg::Batch(b)).is_err() {
        return;
    }
    let _ = tx.send(Msg::End(end));
}

/// An open capture.
pub struct Capturer {
    handle: Handle,
    link: LinkType,
    /// Running figures.
    pub stats: CaptureStats,
}

/// Receives captured frames.
pub trait FrameSink {
    /// One frame: capture timestamp, the captured bytes, and the frame's
    /// original length on the wire. Return false to stop.
    fn frame(&mut self, ts: Instant, data: &[u8], wire_len: u32) -> bool;

    /// Called when a live capture has been quiet for its read timeout
    /// (about 100 ms): a chance to flush output.
    fn idle(&mut self) {}
}

/// Builds the BPF program for the given server ports plus an optional extra
/// expression (`--filter`), covering VLAN-tagged frames too.
pub fn bpf_for_ports(ports: &[u16], extra: Option<&str>) -> String {
    let ports = ports
        .iter()
        .map(|p| format!("port {p}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let base = format!("(tcp and ({ports})) or (vlan and tcp and ({ports}))");
    match extra {
        Some(e) if !e.trim().is_empty() => format!("({base}) and ({e})"),
        _ => base,
    }
}

impl Capturer {
    /// Opens the source; `filter` is a BPF expression (applied to files too
    /// when given).
    pub fn open(source: &Source, filter: Option<&str>) -> Result<Capturer> {
        let handle = match source {
            Source::Live { iface, buffer_size } => {
                let mut cap = Capture::from_device(iface.as_str())
                    .with_context(|| format!("no capture device {iface:?}"))?
                    .promisc(true)
                    .snaplen(262_144)
                    .buffer_size(*buffer_size)
                    // Not immediate mode: with it libpcap ignores the read
                    // timeout and a quiet interface would block a stop
                    // request forever. Packets arrive within 100 ms.
                    .timeout(100)
                    .open()
                    .with_context(|| {
                        format!(
                            "cannot capture on {iface:?} (live capture needs root or CAP_NET_RAW)"
                        )
                    })?;
                if let Some(f) = filter {
                    cap.filter(f, true)
                        .with_context(|| format!("bad BPF filter {f:?}"))?;
                }
                Handle::Live(cap)
            }
            Source::Offline(path) => {
                let mut cap = Capture::from_file(path)
                    .with_context(|| format!("cannot read capture file {}", path.display()))?;
                if let Some(f) = filter {
                    cap.filter(f, true)
                        .with_context(|| format!("bad BPF filter {f:?}"))?;
                }
                Handle::Offline(cap)
            }
        };
        let dlt = match &handle {
            Handle::Live(c) => c.get_datalink().0,
            Handle::Offline(c) => c.get_datalink().0,
            Handle::Ahead(_) | Handle::Gone => unreachable!("just opened"),
        };
        let link = LinkType::from_linktype(dlt as u32)
            .ok_or_else(|| anyhow!("unsupported link type {dlt} (supported: Ethernet, Linux cooked SLL/SLL2, BSD loopback, raw IP)"))?;
        Ok(Capturer {
            handle,
            link,
            stats: CaptureStats::default(),
        })
    }

    /// The capture's link type.
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Reads frames until the end of the file, until `stop` is set, or
    /// until the sink says stop.
    /// Reads an offline capture on a thread of its own from now on, in
    /// batches of about 1 MiB (at most 6 in flight), so that reading the
    /// file (libpcap's copies and checks) and decoding run on two cores.
    /// False (and nothing changes) for a live capture.
    pub fn read_ahead(&mut self) -> bool {
        if !matches!(self.handle, Handle::Offline(_)) {
            return false;
        }
        let Handle::Offline(cap) = std::mem::replace(&mut self.handle, Handle::Gone) else {
            return false;
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(BATCHES - 2);
        let (recycle, recycled) = std::sync::mpsc::sync_channel(BATCHES);
        let spawned = std::thread::Builder::new()
            .name("capture-reader".into())
            .spawn(move || read_ahead_thread(cap, tx, recycled));
        if spawned.is_err() {
            return false;
        }
        self.handle = Handle::Ahead(ReadAhead {
            rx,
            recycle,
            current: None,
            done: None,
        });
        true
    }

    fn run_ahead(
        stats: &mut CaptureStats,
        r: &mut ReadAhead,
        stop: &Stop,
        sink: &mut impl FrameSink,
    ) -> Result<End> {
        loop {
            if stop.is_set() {
                return Ok(End::Done);
            }
            if let Some(end) = &r.done {
                return Ok(end.clone());
            }
            if let Some((b, i)) = &mut r.current {
                while *i < b.frames.len() {
                    let m = b.frames[*i];
                    *i += 1;
                    stats.frames += 1;
                    stats.bytes += u64::from(m.len);
                    let data = &b.data[m.off as usize..(m.off + m.len) as usize];
                    if !sink.frame(Instant::from_micros(m.ts_us), data, m.wire_len) {
                        return Ok(End::Done);
                    }
                }
                if let Some((b, _)) = r.current.take() {
                    let _ = r.recycle.try_send(b);
                }
                continue;
            }
            match r.rx.recv() {
                Ok(Msg::Batch(b)) => r.current = Some((b, 0)),
                Ok(Msg::End(Ok(end))) => r.done = Some(end),
                Ok(Msg::End(Err(e))) => return Err(e),
                Err(_) => return Err(anyhow!("the capture reader thread ended")),
            }
        }
    }

    pub fn run(&mut self, stop: &Stop, sink: &mut impl FrameSink) -> Result<End> {
        if let Handle::Ahead(r) = &mut self.handle {
            return Self::run_ahead(&mut self.stats, r, stop, sink);
        }
        let mut since_stats = 0u32;
        let offline = matches!(self.handle, Handle::Offline(_));
        loop {
            if stop.is_set() {
                self.refresh_stats();
                return Ok(End::Done);
            }
            let next = match &mut self.handle {
                Handle::Live(c) => c.next_packet(),
                Handle::Offline(c) => c.next_packet(),
                Handle::Ahead(_) | Handle::Gone => return Err(anyhow!("capture closed")),
            };
            match next {
                Ok(p) => {
                    let h = p.header;
                    let ts = Instant::from_micros(h.ts.tv_sec * 1_000_000 + h.ts.tv_usec);
                    self.stats.frames += 1;
                    self.stats.bytes += u64::from(h.caplen);
                    if !sink.frame(ts, p.data, h.len) {
                        self.refresh_stats();
                        return Ok(End::Done);
                    }
                    since_stats += 1;
                    if since_stats >= 65_536 {
                        since_stats = 0;
                        self.refresh_stats();
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {
                    self.refresh_stats();
                    sink.idle();
                    continue;
                }
                Err(pcap::Error::NoMorePackets) => {
                    self.refresh_stats();
                    return Ok(End::Done);
                }
                Err(pcap::Error::PcapError(msg)) if offline => {
                    return Ok(End::Truncated(msg));
                }
                Err(e) => return Err(e).context("capture failed"),
            }
        }
    }

    fn refresh_stats(&mut self) {
        if let Handle::Live(c) = &mut self.handle
            && let Ok(s) = c.stats()
        {
            self.stats.kernel_drops = u64::from(s.dropped);
            self.stats.iface_drops = u64::from(s.if_dropped);
        }
    }
}

/// A stop request: set by SIGINT/SIGTERM (or [`Stop::request`]); it also
/// breaks libpcap out of a blocking read, so a quiet interface stops at once.
#[derive(Clone, Default)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    breakers: Arc<Mutex<Vec<BreakLoop>>>,
}

impl Stop {
    /// A stop request wired to SIGINT/SIGTERM. (If a handler is already
    /// installed, e.g. by a second call, Ctrl-C ends the process the hard
    /// way instead.)
    pub fn on_signals() -> Stop {
        let stop = Stop::default();
        let s = stop.clone();
        // ctrlc runs this on its own thread, not in the signal handler, so
        // taking the lock and calling pcap_breakloop is safe here.
        let _ = ctrlc::set_handler(move || s.request());
        stop
    }

    /// Asks every capture watching this request to stop.
    pub fn request(&self) {
        self.flag.store(true, Ordering::Relaxed);
        if let Ok(b) = self.breakers.lock() {
            for h in b.iter() {
                h.breakloop();
            }
        }
    }

    /// True once a stop was requested.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Lets a stop request interrupt this capture's blocking reads.
    pub fn watch(&self, cap: &mut Capturer) {
        let h = match &mut cap.handle {
            Handle::Live(c) => c.breakloop_handle(),
            Handle::Offline(c) => c.breakloop_handle(),
            Handle::Ahead(_) | Handle::Gone => return,
        };
        if let Ok(mut b) = self.breakers.lock() {
            b.push(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames as (timestamp, bytes, wire length); pauses every `pause_every`.
    struct Collect {
        frames: Vec<(i64, Vec<u8>, u32)>,
        pause_every: usize,
    }

    impl FrameSink for Collect {
        fn frame(&mut self, ts: Instant, data: &[u8], wire_len: u32) -> bool {
            self.frames
                .push((ts.total_micros(), data.to_vec(), wire_len));
            !self.frames.len().is_multiple_of(self.pause_every)
        }
    }

    fn read(ahead: bool, pause_every: usize) -> Vec<(i64, Vec<u8>, u32)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/demo.pcap");
        let mut cap = Capturer::open(&Source::Offline(path), None).unwrap();
        if ahead {
            assert!(cap.read_ahead());
            assert!(!cap.read_ahead(), "only once");
        }
        let mut sink = Collect {
            frames: Vec::new(),
            pause_every,
        };
        let stop = Stop::default();
        let mut runs = 0;
        loop {
            let before = sink.frames.len();
            assert_eq!(cap.run(&stop, &mut sink).unwrap(), End::Done);
            runs += 1;
            if sink.frames.len() == before {
                break;
            }
        }
        assert!(runs > 1);
        assert_eq!(cap.stats.frames, sink.frames.len() as u64);
        sink.frames
    }

    #[test]
    fn read_ahead_hands_out_the_same_frames_and_resumes_after_a_pause() {
        let plain = read(false, usize::MAX);
        assert!(plain.len() > 100);
        assert_eq!(read(true, usize::MAX), plain);
        assert_eq!(read(true, 7), plain);
    }
}
