//! Formatting snapshots: the old daemon's flat JSON objects, latency
//! percentiles, info, and the Prometheus text exposition.
//!
//! Key shapes (zktraffic's `stats_server.py`): `<opname><path>` for
//! `/json/paths` (`GetDataRequest/a/b`, `GetDataRequestBytes/a/b`,
//! `reads/a`, `readsBytes/a`, `watches/a`, `NodeDataChanged/a`,
//! `total/reads`, `total/readBytes`, `GetDataReply`, `FailedGetDataReply`),
//! `per_ip/<opname><path>:<ip>` for `/json/ips` and
//! `per_auth/<opname><path>:<identity>` for `/json/auths`; each opname
//! keeps its top `--max-results` rows (by count, or by bytes for the
//! `…Bytes` opnames).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use zk_wire::client::OpCode;
use zk_wire::stats::tables::{
    self, Category, ERROR_SLOTS, EVENT_KINDS, KeyView, REQUEST_KINDS, Scope, TableInfo,
};
use zk_wire::stats::{Histogram, Totals};

use super::snapshot::{CaptureState, Published, Snapshot, View};
use crate::record::redact;

/// How the JSON endpoints cut and show their rows.
#[derive(Debug, Clone, Copy)]
pub struct RenderOpts {
    /// Rows per opname (0: all).
    pub max_results: usize,
    /// Leave `…Bytes` keys out.
    pub exclude_bytes: bool,
    /// Show SetAuth credentials in full.
    pub show_secrets: bool,
}

/// The sum of the parts' exact counters.
pub fn totals(parts: &[Arc<Snapshot>]) -> Totals {
    let mut t = Totals::ZERO;
    for p in parts {
        t.add(&p.totals);
    }
    t
}

/// A row of the old daemon's output: path, client, identity.
type RowKey<'a> = (&'a [u8], Option<IpAddr>, Option<&'a [u8]>);

/// A path as text (keys may be cut inside a UTF-8 character).
fn path_text(p: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(p)
}

/// The flat object of `/json/paths`, `/json/ips` or `/json/auths`: the
/// stored rows of every part expanded into the old daemon's opnames
/// ([`zk_wire::stats::tables::RowKind::opnames`]) and summed, then each
/// opname cut to its top rows.
pub fn keyed_json(parts: &[Arc<Snapshot>], scope: Scope, o: &RenderOpts) -> BTreeMap<String, u64> {
    let prefix = match scope {
        Scope::Paths => "",
        Scope::Ips => "per_ip/",
        Scope::Auths => "per_auth/",
    };
    let mut groups: HashMap<Category, HashMap<RowKey<'_>, (u64, u64)>> = HashMap::new();
    for p in parts {
        for (key, r) in p.table(scope).iter() {
            let Some(k) = KeyView::decode(scope, key) else {
                continue;
            };
            for (cat, with_bytes) in k.kind.opnames() {
                let e = groups
                    .entry(cat)
                    .or_default()
                    .entry((k.path, k.client, k.auth))
                    .or_default();
                e.0 += r.count;
                if with_bytes {
                    e.1 += r.bytes;
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    let name_of = |cat: Category, k: &RowKey<'_>, bytes: bool| {
        let (path, client, auth) = k;
        let mut s = String::with_capacity(prefix.len() + 24 + path.len());
        s.push_str(prefix);
        s.push_str(cat.name());
        if bytes {
            s.push_str("Bytes");
        }
        s.push_str(&path_text(path));
        if let Some(ip) = client {
            let _ = write!(s, ":{ip}");
        }
        if let Some(a) = auth {
            s.push(':');
            s.push_str(&String::from_utf8_lossy(a));
        }
        s
    };
    let top = |n: usize| if o.max_results == 0 { n } else { o.max_results };
    for (cat, g) in groups {
        let mut g: Vec<(RowKey<'_>, (u64, u64))> = g.into_iter().collect();
        g.sort_unstable_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
        for (k, (count, _)) in g.iter().take(top(g.len())) {
            out.insert(name_of(cat, k, false), *count);
        }
        if cat.has_bytes() && !o.exclude_bytes {
            g.sort_unstable_by(|a, b| b.1.1.cmp(&a.1.1).then_with(|| a.0.cmp(&b.0)));
            for (k, (_, bytes)) in g.iter().take(top(g.len())) {
                out.insert(name_of(cat, k, true), *bytes);
            }
        }
    }
    let t = totals(parts);
    out.insert(format!("{prefix}total/reads"), t.reads);
    out.insert(format!("{prefix}total/writes"), t.writes);
    if !o.exclude_bytes {
        out.insert(format!("{prefix}total/readBytes"), t.read_bytes);
        out.insert(format!("{prefix}total/writeBytes"), t.write_bytes);
    }
    // The old daemon always had these (at 0 before any traffic).
    for k in ["reads/", "writes/"] {
        out.entry(format!("{prefix}{k}")).or_insert(0);
    }
    if !o.exclude_bytes {
        for k in ["readsBytes/", "writesBytes/"] {
            out.entry(format!("{prefix}{k}")).or_insert(0);
        }
    }
    if scope == Scope::Paths {
        for op in OpCode::ALL {
            let ok = t.replies[op.index()][0];
            let failed = t.failed_replies_of(op);
            if ok > 0 {
                out.insert(op.reply_name().to_owned(), ok);
            }
            if failed > 0 {
                out.insert(format!("Failed{}", op.reply_name()), failed);
            }
        }
        if t.sessions.established > 0 {
            out.insert("ConnectReply".to_owned(), t.sessions.established);
        }
        if t.sessions.expired > 0 {
            out.insert("SessionExpiration".to_owned(), t.sessions.expired);
        }
    }
    out
}

/// `/json/auths-dump`: `ip:port` -> credential (redacted unless asked).
pub fn auths_dump(p: &Published, show_secrets: bool) -> BTreeMap<String, String> {
    p.auths
        .iter()
        .map(|a| (a.client.clone(), redact(&a.credential, show_secrets)))
        .collect()
}

/// Percentiles of one histogram (microseconds).
pub fn histogram_json(h: &Histogram) -> Value {
    json!({
        "count": h.count(),
        "mean_us": (h.mean() * 10.0).round() / 10.0,
        "p50_us": h.quantile(0.5),
        "p90_us": h.quantile(0.9),
        "p99_us": h.quantile(0.99),
        "p999_us": h.quantile(0.999),
        "max_us": h.max(),
    })
}

fn view_name(v: View) -> &'static str {
    match v {
        View::Window => "window",
        View::Cumulative => "cumulative",
    }
}

fn span(parts: &[Arc<Snapshot>]) -> (i64, i64) {
    let start = parts.iter().map(|p| p.start_us).min().unwrap_or(0);
    let end = parts.iter().map(|p| p.end_us).max().unwrap_or(0);
    (start, end)
}

/// `/json/latencies`: percentiles per request type and per busy (type, path).
pub fn latencies_json(parts: &[Arc<Snapshot>], view: View) -> Value {
    let mut types = serde_json::Map::new();
    for op in OpCode::ALL {
        let mut h = Histogram::new();
        for p in parts {
            h.merge(&p.latency[op.index()]);
        }
        if h.count() > 0 {
            types.insert(op.request_name().to_owned(), histogram_json(&h));
        }
    }
    let mut paths: BTreeMap<String, Histogram> = BTreeMap::new();
    for p in parts {
        for l in &p.latency_paths {
            let key = format!("{}{}", l.opcode.request_name(), path_text(&l.path));
            paths.entry(key).or_default().merge(&l.histogram);
        }
    }
    let paths: serde_json::Map<String, Value> = paths
        .into_iter()
        .filter(|(_, h)| h.count() > 0)
        .map(|(k, h)| (k, histogram_json(&h)))
        .collect();
    let (start, end) = span(parts);
    json!({
        "window": view_name(view),
        "start_us": start,
        "end_us": end,
        "types": types,
        "paths": paths,
    })
}

fn table_info_json(i: &TableInfo) -> Value {
    json!({
        "capacity": i.capacity,
        "entries": i.len,
        "total": i.total,
        "evictions": i.evictions,
        "error_bound": i.error_bound,
    })
}

/// Static facts about this instance, for `/json/info`.
#[derive(Debug, Clone)]
pub struct InstanceInfo {
    /// What is captured (`live:eth0`, `offline:FILE`).
    pub source: String,
    /// Client ports.
    pub ports: Vec<u16>,
    /// Window length (s).
    pub window_seconds: u64,
    /// Path aggregation depth.
    pub aggregation_depth: usize,
    /// Rows per opname.
    pub max_results: usize,
    /// Process start (wall clock).
    pub started: std::time::Instant,
}

/// `/json/info`.
pub fn info_json(p: &Published, i: &InstanceInfo) -> Value {
    let h = &p.health;
    let c = &h.tracker;
    let state = match &p.state {
        CaptureState::Running => "running".to_owned(),
        CaptureState::Finished => "finished".to_owned(),
        CaptureState::Failed(m) => format!("failed: {m}"),
    };
    let mut tables_v = serde_json::Map::new();
    for s in Scope::ALL {
        // The totals-since-start table, plus what the window in progress
        // has counted and not yet folded in.
        let mut info = p.base.table(s).info;
        let cur = p.current.table(s).info;
        info.capacity = info.capacity.max(cur.capacity);
        info.total += cur.total;
        info.evictions = h.table_evictions[s.index()];
        tables_v.insert(s.name().to_owned(), table_info_json(&info));
    }
    let window = p
        .last_window
        .as_ref()
        .map(|w| json!({"start_us": w.start_us, "end_us": w.end_us}));
    json!({
        "uptime": i.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "source": i.source,
        "ports": i.ports,
        "state": state,
        "window_seconds": i.window_seconds,
        "windows_completed": p.windows_completed,
        "last_window": window,
        "aggregation_depth": i.aggregation_depth,
        "max_results": i.max_results,
        "capture": {
            "packets": h.capture.frames,
            "bytes": h.capture.bytes,
            "kernel_drops": h.capture.kernel_drops,
            "interface_drops": h.capture.iface_drops,
            "non_tcp": h.non_tcp,
            "tcp_segments": c.segments,
            "other_ports": c.foreign,
            "last_packet_us": h.last_ts_us,
        },
        "decoder": {
            "requests": c.requests,
            "replies": c.replies,
            "events": c.events,
            "unpaired_replies": c.unpaired_replies,
            "pending_overflow": c.pending_overflow,
            "link_errors": error_map(&h.link_errors),
            "frame_errors": error_map(&c.frame_errors),
            "decode_errors": error_map(&c.decode_errors),
        },
        "flows": {
            "active": h.active_flows,
            "capacity": h.flow_capacity,
            "created": c.flows_created,
            "closed": c.flows_closed,
            "expired": c.flows_expired,
            "evicted": c.flows_evicted,
            "chunks_in_use": h.chunks.0,
            "chunks": h.chunks.1,
        },
        "tables": tables_v,
        "latency_path_evictions": h.latency_path_evictions,
        "auths": { "connections": p.auths.len(), "replaced": h.auths_replaced },
    })
}

fn error_map(a: &[u64; 6]) -> Value {
    let m: serde_json::Map<String, Value> = zk_wire::Error::ALL
        .iter()
        .map(|e| (e.name().to_owned(), json!(a[e.index()])))
        .collect();
    Value::Object(m)
}

/// Prometheus histogram bucket bounds for latencies, in seconds.
const LATENCY_BOUNDS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

struct Prom {
    out: String,
}

impl Prom {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn val(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, l)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                for ch in l.chars() {
                    match ch {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {v}");
    }
    fn counter(&mut self, name: &str, help: &str, v: u64) {
        self.head(name, "counter", help);
        self.val(name, &[], v);
    }
    fn gauge(&mut self, name: &str, help: &str, v: impl std::fmt::Display) {
        self.head(name, "gauge", help);
        self.val(name, &[], v);
    }
}

/// `/metrics`: counters since start (monotonic: the totals and the window
/// in progress are published together), latency histograms, capture
/// health. Label sets are bounded: request, reply and event types, error
/// codes, table and error-kind names; never paths or clients.
pub fn prometheus(p: &Published, window_seconds: u64) -> String {
    let parts = p.parts(View::Cumulative);
    let t = totals(&parts);
    let mut m = Prom {
        out: String::with_capacity(64 * 1024),
    };

    m.head(
        "zk_requests_total",
        "counter",
        "Client requests seen, by type.",
    );
    for k in 0..REQUEST_KINDS {
        if t.requests[k] > 0 {
            m.val(
                "zk_requests_total",
                &[("type", tables::request_kind_name(k))],
                t.requests[k],
            );
        }
    }
    m.head(
        "zk_request_bytes_total",
        "counter",
        "Bytes of client requests (frame bodies), by type.",
    );
    for k in 0..REQUEST_KINDS {
        if t.requests[k] > 0 {
            m.val(
                "zk_request_bytes_total",
                &[("type", tables::request_kind_name(k))],
                t.request_bytes[k],
            );
        }
    }
    m.counter(
        "zk_reads_total",
        "Read requests (everything but writes).",
        t.reads,
    );
    m.counter(
        "zk_read_bytes_total",
        "Bytes of read requests.",
        t.read_bytes,
    );
    m.counter(
        "zk_writes_total",
        "Write requests (create, delete, setData, setACL, reconfig, multi with a write).",
        t.writes,
    );
    m.counter(
        "zk_write_bytes_total",
        "Bytes of write requests.",
        t.write_bytes,
    );
    m.counter(
        "zk_watches_total",
        "Requests that leave a watch (watch flag, addWatch, setWatches).",
        t.watches,
    );

    m.head(
        "zk_replies_total",
        "counter",
        "Replies paired with their request, by type and error code.",
    );
    for op in OpCode::ALL {
        for slot in 0..ERROR_SLOTS {
            let n = t.replies[op.index()][slot];
            if n > 0 {
                m.val(
                    "zk_replies_total",
                    &[
                        ("type", op.reply_name()),
                        ("err", tables::error_slot_name(slot)),
                    ],
                    n,
                );
            }
        }
    }
    m.head(
        "zk_reply_bytes_total",
        "counter",
        "Bytes of paired replies (frame bodies), by type.",
    );
    for op in OpCode::ALL {
        if t.replies_of(op) > 0 {
            m.val(
                "zk_reply_bytes_total",
                &[("type", op.reply_name())],
                t.reply_bytes[op.index()],
            );
        }
    }
    m.counter(
        "zk_unpaired_replies_total",
        "Replies whose request was not seen (capture started later, or pending table full).",
        t.unpaired_replies,
    );
    m.head("zk_watch_events_total", "counter", "Watch events, by type.");
    for k in 0..EVENT_KINDS {
        if t.events[k] > 0 {
            m.val(
                "zk_watch_events_total",
                &[("type", tables::event_kind_name(k))],
                t.events[k],
            );
        }
    }
    m.head("zk_sessions_total", "counter", "Session lifecycle events.");
    let s = t.sessions;
    for (ev, n) in [
        ("connect", s.connects),
        ("reconnect", s.reconnects),
        ("established", s.established),
        ("expired", s.expired),
        ("close", s.closes),
    ] {
        m.val("zk_sessions_total", &[("event", ev)], n);
    }
    m.counter(
        "zk_four_letter_words_total",
        "Four-letter-word commands (ruok, stat, ...).",
        t.four_letter_words,
    );

    m.head(
        "zk_request_latency_seconds",
        "histogram",
        "Time from a request to its reply on the capture clock, by request type.",
    );
    for op in OpCode::ALL {
        let mut h = Histogram::new();
        for part in &parts {
            h.merge(&part.latency[op.index()]);
        }
        if h.count() == 0 {
            continue;
        }
        let ty = op.request_name();
        for le in LATENCY_BOUNDS {
            let us = (le * 1e6).round() as u64;
            let n = h.count_at_most(us);
            m.val(
                "zk_request_latency_seconds_bucket",
                &[("type", ty), ("le", &le.to_string())],
                n,
            );
        }
        m.val(
            "zk_request_latency_seconds_bucket",
            &[("type", ty), ("le", "+Inf")],
            h.count(),
        );
        m.val(
            "zk_request_latency_seconds_sum",
            &[("type", ty)],
            h.sum() as f64 / 1e6,
        );
        m.val(
            "zk_request_latency_seconds_count",
            &[("type", ty)],
            h.count(),
        );
    }

    let h = &p.health;
    let c = &h.tracker;
    m.counter(
        "zk_capture_packets_total",
        "Frames read from libpcap.",
        h.capture.frames,
    );
    m.counter(
        "zk_capture_bytes_total",
        "Bytes of the frames read (as captured).",
        h.capture.bytes,
    );
    m.counter(
        "zk_capture_kernel_drops_total",
        "Frames the kernel dropped before zk-stats read them (live capture).",
        h.capture.kernel_drops,
    );
    m.counter(
        "zk_capture_interface_drops_total",
        "Frames the interface dropped (live capture).",
        h.capture.iface_drops,
    );
    m.counter(
        "zk_tcp_segments_total",
        "TCP segments handed to the flow tracker.",
        c.segments,
    );
    m.counter(
        "zk_non_tcp_packets_total",
        "Frames that are not TCP.",
        h.non_tcp,
    );
    m.head(
        "zk_decode_errors_total",
        "counter",
        "Input that did not decode, by stage (link: L2-L4, frame: length prefixes, message: jute records) and kind.",
    );
    for (stage, arr) in [
        ("link", &h.link_errors),
        ("frame", &c.frame_errors),
        ("message", &c.decode_errors),
    ] {
        for e in zk_wire::Error::ALL {
            m.val(
                "zk_decode_errors_total",
                &[("stage", stage), ("kind", e.name())],
                arr[e.index()],
            );
        }
    }
    m.head(
        "zk_flows_total",
        "counter",
        "Client connections, by what happened to them.",
    );
    for (ev, n) in [
        ("created", c.flows_created),
        ("closed", c.flows_closed),
        ("expired", c.flows_expired),
        ("evicted", c.flows_evicted),
    ] {
        m.val("zk_flows_total", &[("event", ev)], n);
    }
    m.gauge(
        "zk_flows_tracked",
        "Client connections tracked now.",
        h.active_flows,
    );
    m.gauge("zk_flows_capacity", "Connection slots.", h.flow_capacity);
    let st = &c.stream;
    m.head(
        "zk_stream_events_total",
        "counter",
        "TCP reassembly events (retransmits, gaps, bytes lost, resyncs, ...).",
    );
    for (k, n) in [
        ("retransmits", st.retransmits),
        ("out_of_order", st.out_of_order),
        ("gaps", st.gaps),
        ("bytes_lost", st.bytes_lost),
        ("bytes_skipped", st.bytes_skipped),
        ("resyncs", st.resyncs),
        ("oversize_frames", st.oversize),
        ("damaged_frames", st.damaged),
        ("pool_exhausted", st.pool_exhausted),
        ("truncated_at_close", st.truncated_at_close),
    ] {
        m.val("zk_stream_events_total", &[("kind", k)], n);
    }
    m.counter(
        "zk_pending_overflow_total",
        "Requests forgotten because a connection had too many in flight.",
        c.pending_overflow,
    );
    m.head(
        "zk_table_evictions_total",
        "counter",
        "Keys that displaced another in a full top-N table (overflow).",
    );
    for s in Scope::ALL {
        m.val(
            "zk_table_evictions_total",
            &[("table", s.name())],
            h.table_evictions[s.index()],
        );
    }
    m.head(
        "zk_table_entries",
        "gauge",
        "Keys held in the window in progress.",
    );
    for s in Scope::ALL {
        m.val(
            "zk_table_entries",
            &[("table", s.name())],
            p.current.table(s).info.len,
        );
    }
    m.head("zk_table_capacity", "gauge", "Counters per top-N table.");
    for s in Scope::ALL {
        m.val(
            "zk_table_capacity",
            &[("table", s.name())],
            p.base
                .table(s)
                .info
                .capacity
                .max(p.current.table(s).info.capacity),
        );
    }
    m.counter(
        "zk_windows_completed_total",
        "Statistics windows completed.",
        p.windows_completed,
    );
    m.gauge(
        "zk_window_seconds",
        "Length of a statistics window.",
        window_seconds,
    );
    let running = matches!(p.state, CaptureState::Running);
    m.gauge(
        "zk_capture_running",
        "1 while the capture runs.",
        u8::from(running),
    );
    m.out
}
