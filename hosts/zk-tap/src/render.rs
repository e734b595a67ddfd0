//! The appliance's endpoints, written into the response buffer.
//!
//! - `GET /metrics`: Prometheus text, the same metric names as zk-stats
//!   (through `zk_wire::stats::export`), plus the appliance's own
//!   (`zk_tap_*`);
//! - `GET /json/paths`: the older daemon's flat object, as zk-stats'
//!   `/json/paths?window=cumulative` (the appliance keeps totals since
//!   start; Prometheus does the rates); `?top=N` rows per opname;
//! - `GET /json/info`: what the box is and how its capture is doing;
//! - anything else: 404.

use core::fmt::{self, Write};
use zk_wire::ErrorCounts;

use smoltcp::time::Instant;
use zk_wire::stats::export::{
    self, FlatOptions, Group, JsonObject, Prom, write_decoder_metrics, write_table_metrics,
    write_traffic_metrics,
};
use zk_wire::stats::tables::{Scope, TableInfo};

use crate::decoder::Decoder;
use crate::http::{Cursor, Handler, HttpStats, Request, Status, query_pairs};

/// What `/json/info` says about the box.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'s> {
    /// The appliance's address (`198.18.1.2/24`).
    pub ip: smoltcp::wire::IpCidr,
    /// Its MAC address.
    pub mac: smoltcp::wire::EthernetAddress,
    /// ZooKeeper ports decoded.
    pub ports: &'s [u16],
    /// Rows per opname by default.
    pub max_results: usize,
    /// Path aggregation depth.
    pub aggregation_depth: usize,
    /// Bytes of the appliance's state (memory and core).
    pub state_bytes: usize,
}

/// Everything the endpoints read.
pub struct Context<'c, 'a> {
    /// The decoder.
    pub decoder: &'c mut Decoder<'a>,
    /// Scratch for `/json/paths`.
    pub scratch: &'c mut [Group],
    /// The HTTP server's figures.
    pub http: HttpStats,
    /// The host device's counters.
    pub host: crate::appliance::HostCounters,
    /// The box.
    pub identity: Identity<'c>,
    /// When the appliance started (its clock).
    pub started: Instant,
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";
const PATHS_HELP: &str = "allowed: window=cumulative (the appliance keeps totals since start), top=N (rows per opname, 0 = all)";

impl Handler for Context<'_, '_> {
    fn respond(&mut self, now: Instant, req: &Request<'_>, body: &mut Cursor<'_>) -> Status {
        match req.path {
            "/metrics" => {
                if !req.query.is_empty() {
                    let _ = body.write_str("this endpoint takes no parameters\n");
                    return Status::error(400);
                }
                let _ = self.metrics(now, body);
                Status::ok(PROMETHEUS)
            }
            "/json/paths" => {
                let mut o = FlatOptions {
                    max_results: self.identity.max_results,
                    exclude_bytes: false,
                };
                for (k, v) in query_pairs(req.query) {
                    match (k, v.parse::<usize>()) {
                        ("top", Ok(n)) => o.max_results = n,
                        ("window", _) if v == "cumulative" => {}
                        _ => {
                            let _ = writeln!(body, "bad parameter {k}={v}: {PATHS_HELP}");
                            return Status::error(400);
                        }
                    }
                }
                let _ = self.paths(o, body);
                Status::ok(JSON)
            }
            "/json/info" => {
                let _ = self.info(now, body);
                Status::ok(JSON)
            }
            "/healthz" => {
                let _ = body.write_str("ok\n");
                Status::ok(TEXT)
            }
            _ => {
                let _ = body.write_str("not found: try /metrics, /json/paths, /json/info\n");
                Status::error(404)
            }
        }
    }
}

fn error_object(w: &mut impl Write, counts: &ErrorCounts) -> fmt::Result {
    let mut o = JsonObject::begin(w)?;
    for e in zk_wire::Error::ALL {
        o.number(e.name(), counts.get(e))?;
    }
    o.end()
}

fn table_object(w: &mut impl Write, i: &TableInfo) -> fmt::Result {
    let mut o = JsonObject::begin(w)?;
    o.number("capacity", i.capacity)?;
    o.number("entries", i.len)?;
    o.number("total", i.total)?;
    o.number("evictions", i.evictions)?;
    o.number("error_bound", i.error_bound)?;
    o.end()
}

impl Context<'_, '_> {
    /// `/json/paths`: the flat object of the per-path table and totals.
    pub fn paths(&mut self, o: FlatOptions, w: &mut impl Write) -> fmt::Result {
        let tables = self.decoder.tables();
        let mut obj = JsonObject::begin(w)?;
        let mut res = Ok(());
        let rows = tables.table_info(Scope::Paths).len as u32;
        let stats = export::flat_rows(
            |r| {
                tables
                    .row_at(Scope::Paths, r as usize)
                    .map(|c| (c.key, c.count, c.bytes))
            },
            rows,
            Scope::Paths,
            o,
            self.scratch,
            &mut |k, v| {
                if res.is_ok() {
                    res = obj.number(k, v);
                }
            },
        );
        res?;
        export::flat_totals(&tables.totals, Scope::Paths, o, stats.seen, &mut |k, v| {
            if res.is_ok() {
                res = obj.number(k, v);
            }
        });
        res?;
        obj.end()
    }

    /// `/metrics`.
    pub fn metrics(&mut self, now: Instant, w: &mut impl Write) -> fmt::Result {
        let health = self.decoder.health;
        let tables = self.decoder.tables();
        let mut m = Prom::new(w);
        write_traffic_metrics(&mut m, &tables.totals, tables.latency())?;
        m.counter(
            "zk_capture_packets_total",
            "Frames received on the mirror port.",
            health.frames,
        )?;
        m.counter(
            "zk_capture_bytes_total",
            "Bytes of the frames received.",
            health.bytes,
        )?;
        m.counter(
            "zk_non_tcp_packets_total",
            "Frames that are not TCP.",
            health.non_tcp,
        )?;
        let host = self.host;
        m.counter(
            "zk_capture_kernel_drops_total",
            "Frames the host's capture dropped before the appliance read them.",
            host.kernel_drops,
        )?;
        m.head(
            "zk_tap_device_errors_total",
            "counter",
            "Device trouble: frames cut to the receive buffer, receive and send errors.",
        )?;
        for (k, n) in [
            ("truncated", host.truncated),
            ("rx", host.rx_errors),
            ("tx", host.tx_errors),
        ] {
            m.val("zk_tap_device_errors_total", &[("kind", &k)], n)?;
        }
        let infos = Scope::ALL.map(|s| tables.table_info(s));
        let t = self.decoder.tracker();
        write_decoder_metrics(
            &mut m,
            &t.counters,
            &health.link_errors,
            t.active_flows(),
            t.flow_capacity(),
        )?;
        write_table_metrics(
            &mut m,
            infos.map(|i| i.evictions),
            infos.map(|i| i.len),
            infos.map(|i| i.capacity),
        )?;
        let h = &self.http;
        m.head(
            "zk_tap_http_responses_total",
            "counter",
            "HTTP responses by status class.",
        )?;
        for (class, n) in [
            ("2xx", h.responses[0]),
            ("4xx", h.responses[1]),
            ("5xx", h.responses[2]),
        ] {
            m.val("zk_tap_http_responses_total", &[("class", &class)], n)?;
        }
        m.head(
            "zk_tap_http_connections_total",
            "counter",
            "HTTP connections by what happened to them.",
        )?;
        for (ev, n) in [
            ("accepted", h.accepted),
            ("handshake_timeout", h.handshake_timeouts),
            ("handshake_evicted", h.handshakes_evicted),
            ("syn_dropped", h.syns_dropped),
            ("request_timeout", h.request_timeouts),
            ("too_large", h.too_large),
            ("response_timeout", h.response_timeouts),
            ("response_overflow", h.overflows),
        ] {
            m.val("zk_tap_http_connections_total", &[("event", &ev)], n)?;
        }
        m.gauge(
            "zk_tap_state_bytes",
            "Bytes of the appliance's statically sized state.",
            self.identity.state_bytes,
        )?;
        m.gauge(
            "zk_tap_uptime_seconds",
            "Seconds since the appliance started.",
            (now - self.started).secs(),
        )
    }

    /// `/json/info`.
    pub fn info(&mut self, now: Instant, w: &mut impl Write) -> fmt::Result {
        let health = self.decoder.health;
        let id = self.identity;
        let http = self.http;
        let started = self.started;
        let tables = self.decoder.tables();
        let infos = Scope::ALL.map(|s| tables.table_info(s));
        let t = self.decoder.tracker();
        let c = &t.counters;
        let mut o = JsonObject::begin(w)?;
        o.string("version", env!("CARGO_PKG_VERSION"))?;
        o.string("source", "mirror")?;
        o.number("uptime", (now - started).secs())?;
        o.string("ip", id.ip)?;
        o.string("mac", id.mac)?;
        {
            let w = o.key("ports")?;
            w.write_char('[')?;
            for (i, p) in id.ports.iter().enumerate() {
                if i > 0 {
                    w.write_char(',')?;
                }
                write!(w, "{p}")?;
            }
            w.write_char(']')?;
        }
        o.string("window", "cumulative")?;
        o.number("aggregation_depth", id.aggregation_depth)?;
        o.number("max_results", id.max_results)?;
        o.number("state_bytes", id.state_bytes)?;
        {
            let w = o.key("capture")?;
            let mut c2 = JsonObject::begin(w)?;
            c2.number("packets", health.frames)?;
            c2.number("bytes", health.bytes)?;
            c2.number("non_tcp", health.non_tcp)?;
            c2.number("tcp_segments", c.segments)?;
            c2.number("other_ports", c.foreign)?;
            c2.number("last_packet_us", health.last_frame_us)?;
            c2.number("kernel_drops", self.host.kernel_drops)?;
            c2.number("truncated", self.host.truncated)?;
            c2.end()?;
        }
        {
            let w = o.key("decoder")?;
            let mut d = JsonObject::begin(w)?;
            d.number("requests", c.requests)?;
            d.number("replies", c.replies)?;
            d.number("events", c.events)?;
            d.number("unpaired_replies", c.unpaired_replies)?;
            d.number("pending_overflow", c.pending_overflow)?;
            error_object(d.key("link_errors")?, &health.link_errors)?;
            error_object(d.key("frame_errors")?, &c.frame_errors)?;
            error_object(d.key("decode_errors")?, &c.decode_errors)?;
            d.end()?;
        }
        {
            let w = o.key("flows")?;
            let mut f = JsonObject::begin(w)?;
            f.number("active", t.active_flows())?;
            f.number("capacity", t.flow_capacity())?;
            f.number("created", c.flows_created)?;
            f.number("closed", c.flows_closed)?;
            f.number("expired", c.flows_expired)?;
            f.number("evicted", c.flows_evicted)?;
            let (used, all) = t.chunks_in_use();
            f.number("chunks_in_use", used)?;
            f.number("chunks", all)?;
            f.end()?;
        }
        {
            let w = o.key("tables")?;
            let mut tj = JsonObject::begin(w)?;
            for s in Scope::ALL {
                table_object(tj.key(s.name())?, &infos[s.index()])?;
            }
            tj.end()?;
        }
        {
            let w = o.key("http")?;
            let mut h = JsonObject::begin(w)?;
            h.number("accepted", http.accepted)?;
            h.number("responses_2xx", http.responses[0])?;
            h.number("responses_4xx", http.responses[1])?;
            h.number("responses_5xx", http.responses[2])?;
            h.number("handshake_timeouts", http.handshake_timeouts)?;
            h.number("handshakes_evicted", http.handshakes_evicted)?;
            h.number("syns_dropped", http.syns_dropped)?;
            h.number("request_timeouts", http.request_timeouts)?;
            h.number("too_large", http.too_large)?;
            h.number("response_timeouts", http.response_timeouts)?;
            h.number("response_overflows", http.overflows)?;
            h.end()?;
        }
        o.end()
    }
}
