//! Decoding allocates nothing: frames -> `packet::parse` -> `Tracker::process`
//! -> events, over a large capture, with a counting global allocator
//! watching.
//!
//! The capture is built in memory first (the shared real-traffic captures,
//! every client connection replayed many times on distinct client ports,
//! each copy long after the previous one so its flows have expired), the
//! tracker's storage is allocated up front, and only then is counting
//! switched on for the decoding loop. The same run checks that decoding is
//! copy-independent: every event kind is seen exactly N times as often as
//! in a run over one copy.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zk_wire::Instant;
use zk_wire::flow::{Config, Counters, Event, Flow, Message, Tracker};
use zk_wire::packet::{self, LinkType};

/// Wraps the system allocator and counts the allocations made by a thread
/// while its flag is up (a per-thread flag: the test harness's own threads
/// allocate whenever they like).
struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations `f` makes on this thread.
fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCATIONS.load(Ordering::Relaxed) - before)
}

/// A classic pcap file: link type and (timestamp µs, frame) records, read
/// with `zk_wire::pcapfile` (copied out, before counting starts).
fn read_pcap(path: &Path) -> (u32, Vec<(i64, Vec<u8>)>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = zk_wire::pcapfile::PcapFile::parse(&b)
        .unwrap_or_else(|e| panic!("{}: not a classic pcap file: {e}", path.display()));
    let nanos = file.header().nanos;
    let records = file
        .records()
        .map_while(Result::ok)
        .map(|r| (r.ts(nanos).total_micros(), r.data.to_vec()))
        .collect();
    (file.header().linktype, records)
}

fn shared_captures() -> Vec<PathBuf> {
    let dir = std::env::var_os("ZKT_CAPTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/captures/zktraffic")
        });
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (set ZKT_CAPTURES)", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no capture in {}", dir.display());
    v
}

/// One frame of the template: its time offset, bytes, and where the client
/// port sits (Ethernet/IPv4 offset of the non-2181 TCP port), if it has one.
struct Frame {
    ts: i64,
    data: Vec<u8>,
    client_port_at: Option<usize>,
    /// Index of the client connection (for its per-copy port).
    client: u16,
}

/// The shared captures end to end, each file 1000 s after the previous one.
fn template() -> (Vec<Frame>, i64, usize) {
    let mut frames = Vec::new();
    let mut clients: HashMap<(usize, u16), u16> = HashMap::new();
    let mut offset = 0i64;
    for (file, path) in shared_captures().iter().enumerate() {
        let (link, records) = read_pcap(path);
        assert_eq!(
            link,
            1,
            "{}: the shared captures are Ethernet",
            path.display()
        );
        let t0 = records.first().map_or(0, |r| r.0);
        let mut last = 0;
        for (ts, data) in records {
            last = (ts - t0).max(last);
            let mut f = Frame {
                ts: offset + last,
                data,
                client_port_at: None,
                client: 0,
            };
            let d = &f.data;
            if d.len() >= 34 && d[12..14] == [0x08, 0x00] && d[14] >> 4 == 4 && d[23] == 6 {
                let tcp = 14 + usize::from(d[14] & 0x0f) * 4;
                if d.len() >= tcp + 4 {
                    let port = |at: usize| u16::from_be_bytes([d[at], d[at + 1]]);
                    let at = match (port(tcp), port(tcp + 2)) {
                        (_, 2181) => Some(tcp),
                        (2181, _) => Some(tcp + 2),
                        _ => None,
                    };
                    if let Some(at) = at {
                        let n = clients.len() as u16;
                        f.client = *clients.entry((file, port(at))).or_insert(n);
                        f.client_port_at = Some(at);
                    }
                }
            }
            frames.push(f);
        }
        offset += last + 1_000_000_000;
    }
    (frames, offset, clients.len())
}

/// Copies of the template, copy `k` starting `k × span` later, each client
/// connection on its own port (TCP checksums are not checked by zk-wire).
fn replicate(t: &[Frame], span: i64, n_clients: usize, copies: usize) -> Vec<(i64, Vec<u8>)> {
    assert!(copies * n_clients < 64_000, "client ports would repeat");
    let mut out = Vec::with_capacity(t.len() * copies);
    for k in 0..copies {
        for f in t {
            let mut data = f.data.clone();
            if let Some(at) = f.client_port_at {
                let port = 1024 + (k * n_clients + usize::from(f.client)) as u16;
                data[at..at + 2].copy_from_slice(&port.to_be_bytes());
            }
            out.push((k as i64 * span + f.ts, data));
        }
    }
    out
}

/// Events by message kind, and the sum of their sizes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    kinds: [u64; 10],
    bytes: u64,
}

impl Tally {
    fn add(&mut self, ev: &Event<'_>) {
        let k = match ev.message {
            Message::ConnectRequest(_) => 0,
            Message::ConnectResponse(_) => 1,
            Message::Request(_) => 2,
            Message::RequestPrefix(_) => 3,
            Message::Reply(..) => 4,
            Message::ReplyHeader(..) => 5,
            Message::WatchEvent(_) => 6,
            Message::FourLetterWord(_) => 7,
            Message::FourLetterReply(..) => 8,
            Message::Malformed { .. } => 9,
        };
        self.kinds[k] += 1;
        self.bytes += u64::from(ev.size);
    }

    fn times(&self, n: u64) -> Tally {
        Tally {
            kinds: self.kinds.map(|k| k * n),
            bytes: self.bytes * n,
        }
    }
}

const CHUNK: usize = 128 * 1024;

fn new_tracker() -> Tracker<Vec<Flow>, Vec<u8>> {
    Tracker::new(
        vec![Flow::EMPTY; 1024],
        vec![0u8; CHUNK * 64],
        CHUNK,
        Config::default(),
    )
}

/// Decodes every frame; the caller owns every buffer.
fn decode(
    t: &mut Tracker<Vec<Flow>, Vec<u8>>,
    frames: &[(i64, Vec<u8>)],
    tally: &mut Tally,
) -> u64 {
    let mut parse_errors = 0;
    let mut last = Instant::ZERO;
    let mut sink = |ev: &Event<'_>| tally.add(ev);
    for (ts, data) in frames {
        last = Instant::from_micros(*ts);
        match packet::parse(LinkType::Ethernet, data) {
            Ok(Some(seg)) => t.process(last, &seg, &mut sink),
            Ok(None) => {}
            Err(_) => parse_errors += 1,
        }
    }
    t.finish(last, &mut sink);
    parse_errors
}

/// The counters that must scale exactly with the number of copies (the
/// expiry counters do not: a copy's open flows expire when the next one
/// starts, the last copy's are finished).
fn scaling(c: &Counters) -> [u64; 11] {
    [
        c.segments,
        c.foreign,
        c.flows_created,
        c.flows_closed,
        c.requests,
        c.replies,
        c.events,
        c.unpaired_replies,
        c.frame_errors.total(),
        c.decode_errors.total(),
        c.stream.frames,
    ]
}

#[test]
fn counting_allocator_sees_allocations() {
    let (b, n) = allocations_in(|| Box::new([7u8; 64]));
    assert!(n >= 1, "the counting allocator missed a Box");
    drop(b);
}

#[test]
fn decoding_a_large_capture_allocates_nothing() {
    let (template, span, n_clients) = template();
    let per_copy = template.len();
    let copies = 200_000usize.div_ceil(per_copy);

    // Reference: one copy on its own.
    let one = replicate(&template, span, n_clients, 1);
    let mut t = new_tracker();
    let mut single = Tally::default();
    let single_errors = decode(&mut t, &one, &mut single);
    let single_counters = t.counters;
    assert!(single.kinds[2] > 100 && single.kinds[4] > 20, "{single:?}");

    // Everything allocated before counting starts.
    let frames = replicate(&template, span, n_clients, copies);
    assert!(frames.len() >= 200_000);
    let mut t = new_tracker();
    let mut tally = Tally::default();
    let (errors, allocations) = allocations_in(|| decode(&mut t, &frames, &mut tally));

    assert_eq!(allocations, 0, "decoding {} frames allocated", frames.len());
    let n = copies as u64;
    assert_eq!(errors, n * single_errors);
    assert_eq!(
        tally,
        single.times(n),
        "events of {copies} copies vs one copy"
    );
    assert_eq!(
        scaling(&t.counters),
        scaling(&single_counters).map(|v| v * n),
        "counters of {copies} copies vs one copy"
    );
    assert_eq!(t.counters.flows_evicted, 0);
    assert_eq!(t.active_flows(), 0);
    assert_eq!(t.chunks_in_use().0, 0);
    eprintln!(
        "{} frames ({} copies of {}) decoded without allocating: {:?}",
        frames.len(),
        copies,
        per_copy,
        tally
    );
}
