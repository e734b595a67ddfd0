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

use std::collections::BTreeMap;
use std::sync::Arc;
use zk_wire::ErrorCounts;

use serde_json::{Value, json};
use zk_wire::client::OpCode;
use zk_wire::stats::export::{
    self, FlatOptions, Prom, write_decoder_metrics, write_table_metrics, write_traffic_metrics,
};
use zk_wire::stats::tables::{Scope, TableInfo};
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

/// A path as text (keys may be cut inside a UTF-8 character).
fn path_text(p: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(p)
}

/// The flat object of `/json/paths`, `/json/ips` or `/json/auths`: the
/// stored rows of every part expanded into the old daemon's opnames,
/// summed and cut to each opname's top rows, then the exact totals (all
/// by `zk_wire::stats::export`, which zk-tap renders through too).
pub fn keyed_json(parts: &[Arc<Snapshot>], scope: Scope, o: &RenderOpts) -> BTreeMap<String, u64> {
    let rows: Vec<(&[u8], u64, u64)> = parts
        .iter()
        .flat_map(|p| p.table(scope).iter())
        .map(|(key, r)| (key, r.count, r.bytes))
        .collect();
    let mut scratch = vec![export::Group::EMPTY; rows.len() * export::OPNAMES_PER_ROW];
    let fo = FlatOptions {
        max_results: o.max_results,
        exclude_bytes: o.exclude_bytes,
    };
    let mut out = BTreeMap::new();
    let stats = export::flat_rows(
        |r| rows.get(r as usize).copied(),
        rows.len() as u32,
        scope,
        fo,
        &mut scratch,
        &mut |k, v| {
            out.insert(k.to_string(), v);
        },
    );
    export::flat_totals(&totals(parts), scope, fo, stats.seen, &mut |k, v| {
        out.insert(k.to_string(), v);
    });
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

fn error_map(a: &ErrorCounts) -> Value {
    let m: serde_json::Map<String, Value> = zk_wire::Error::ALL
        .iter()
        .map(|e| (e.name().to_owned(), json!(a.get(*e))))
        .collect();
    Value::Object(m)
}

/// `/metrics`: counters since start (monotonic: the totals and the window
/// in progress are published together), latency histograms, capture
/// health. Label sets are bounded: request, reply and event types, error
/// codes, table and error-kind names; never paths or clients.
pub fn prometheus(p: &Published, window_seconds: u64) -> String {
    let mut out = String::with_capacity(64 * 1024);
    // Writing into a String cannot fail.
    let _ = write_prometheus(&mut out, p, window_seconds);
    // Election and quorum figures, once that traffic was seen.
    out.push_str(&p.quorum_metrics);
    out
}

fn write_prometheus(out: &mut String, p: &Published, window_seconds: u64) -> std::fmt::Result {
    let parts = p.parts(View::Cumulative);
    let t = totals(&parts);
    let mut latency = Box::new([const { Histogram::new() }; OpCode::COUNT]);
    for op in OpCode::ALL {
        for part in &parts {
            latency[op.index()].merge(&part.latency[op.index()]);
        }
    }
    let mut m = Prom::new(out);
    write_traffic_metrics(&mut m, &t, &latency)?;
    let h = &p.health;
    let c = &h.tracker;
    m.counter(
        "zk_capture_packets_total",
        "Frames read from libpcap.",
        h.capture.frames,
    )?;
    m.counter(
        "zk_capture_bytes_total",
        "Bytes of the frames read (as captured).",
        h.capture.bytes,
    )?;
    m.counter(
        "zk_capture_kernel_drops_total",
        "Frames the kernel dropped before zk-stats read them (live capture).",
        h.capture.kernel_drops,
    )?;
    m.counter(
        "zk_capture_interface_drops_total",
        "Frames the interface dropped (live capture).",
        h.capture.iface_drops,
    )?;
    m.counter(
        "zk_non_tcp_packets_total",
        "Frames that are not TCP.",
        h.non_tcp,
    )?;
    write_decoder_metrics(&mut m, c, &h.link_errors, h.active_flows, h.flow_capacity)?;
    write_table_metrics(
        &mut m,
        h.table_evictions,
        Scope::ALL.map(|s| p.current.table(s).info.len),
        Scope::ALL.map(|s| {
            let (b, c) = (p.base.table(s).info, p.current.table(s).info);
            b.capacity.max(c.capacity)
        }),
    )?;
    m.counter(
        "zk_windows_completed_total",
        "Statistics windows completed.",
        p.windows_completed,
    )?;
    m.gauge(
        "zk_window_seconds",
        "Length of a statistics window.",
        window_seconds,
    )?;
    let running = matches!(p.state, CaptureState::Running);
    m.gauge(
        "zk_capture_running",
        "1 while the capture runs.",
        u8::from(running),
    )?;
    Ok(())
}

/// `/json/history`: the last `last` seconds of capture time (all kept
/// without a limit), oldest first.
pub fn history_json(p: &Published, last: Option<usize>) -> Value {
    use zk_wire::stats::tables::{REQUEST_KINDS, request_kind_name};
    let h = &p.history;
    let skip = last.map_or(0, |n| h.len().saturating_sub(n));
    let seconds: Vec<Value> = h[skip..]
        .iter()
        .map(|s| {
            let mut req = serde_json::Map::new();
            for k in 0..REQUEST_KINDS {
                if s.requests[k] > 0 {
                    req.insert(request_kind_name(k).to_owned(), json!(s.requests[k]));
                }
            }
            json!({
                "t": s.t,
                "requests": req,
                "total": s.total_requests(),
                "request_bytes": s.request_bytes,
                "replies": s.replies,
                "errors": s.errors,
                "reply_bytes": s.reply_bytes,
                "events": s.events,
                "connects": s.connects,
                "closes": s.closes,
                "expired": s.expired,
                "p50_us": s.latency_us[0],
                "p90_us": s.latency_us[1],
                "p99_us": s.latency_us[2],
                "max_us": s.latency_us[3],
            })
        })
        .collect();
    json!({
        "seconds": seconds,
        "kept": super::history::HISTORY,
    })
}

fn top_rows_json(rows: &[super::top::TopRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "key": r.key,
                    "requests": r.requests,
                    "reads": r.reads,
                    "writes": r.writes,
                    "watches": r.watches,
                    "bytes": r.bytes,
                    "events": r.events,
                    "top_type": r.top_type,
                })
            })
            .collect(),
    )
}

/// `/json/top`: the top paths, clients and auth identities.
pub fn top_json(parts: &[Arc<Snapshot>], view: View, o: &super::top::TopOpts) -> Value {
    let t = super::top::top(parts, o);
    let (start, end) = span(parts);
    json!({
        "window": view_name(view),
        "start_us": start,
        "end_us": end,
        "sort": o.sort.name(),
        "depth": o.depth,
        "paths": top_rows_json(&t.paths),
        "clients": top_rows_json(&t.clients),
        "auths": top_rows_json(&t.auths),
    })
}
