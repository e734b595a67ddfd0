//! Text forms of the stats tables, without allocation: the older Python
//! daemon's flat objects (`/json/paths`: `"GetDataRequest/a/b": 3`) and
//! the Prometheus text exposition of the exact counters.
//!
//! Every host that serves statistics (zk-stats over axum, zk-tap over
//! smoltcp) renders through here, so that both say the same thing about
//! the same traffic: the key shapes of zktraffic's `stats_server.py`, the
//! summing of request rows into `reads/…`, `writes/…` and `watches/…`, the
//! top-N cut per opname with its tie order, and the metric names live in
//! one place.
//!
//! The flat object is built in two calls. [`flat_rows`] reads the stored
//! rows (through a closure, so one table or the parts of several), turns
//! each into one [`Entry`] per opname it counts under ([`Entry::expand`])
//! in a scratch of [`Group`]s the host owns, sorts and sums them per
//! (opname, path, client, identity), and hands out each opname's top
//! rows; [`flat_totals`] adds the exact `total/…`, reply and session keys.
//! [`JsonObject`] writes what they hand out as JSON.

use crate::ErrorCounts;
use core::cmp::Ordering;
use core::fmt::{self, Write};
use core::net::IpAddr;

use super::Histogram;
use super::tables::{
    self, Category, ERROR_SLOTS, EVENT_KINDS, KeyView, REQUEST_KINDS, Scope, Totals,
};
use crate::client::OpCode;
use crate::flow::Counters;

/// The key prefix of a scope's flat object: `""`, `"per_ip/"`,
/// `"per_auth/"`.
pub const fn scope_prefix(scope: Scope) -> &'static str {
    match scope {
        Scope::Paths => "",
        Scope::Ips => "per_ip/",
        Scope::Auths => "per_auth/",
    }
}

/// How the flat objects are cut.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlatOptions {
    /// Rows per opname (0: all).
    pub max_results: usize,
    /// Leave the `…Bytes` keys out.
    pub exclude_bytes: bool,
}

/// One key of a flat object, written by its [`fmt::Display`]:
/// `<scope prefix><lead><name><suffix><path>[:<client>][:<identity>]`
/// (`per_ip/GetDataRequestBytes/a:10.0.0.7`, `FailedGetDataReply`,
/// `total/reads`). Paths and identities that are not whole UTF-8 are
/// written as `String::from_utf8_lossy` would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlatKey<'a> {
    /// The scope's prefix ([`scope_prefix`]).
    pub prefix: &'static str,
    /// Written before the name (`"Failed"` for failed replies).
    pub lead: &'static str,
    /// The opname (`"GetDataRequest"`, `"reads"`, `"total/reads"`).
    pub name: &'static str,
    /// Written after the name (`"Bytes"` for byte counts).
    pub suffix: &'static str,
    /// The (aggregated) path.
    pub path: &'a [u8],
    /// The client ([`Scope::Ips`]).
    pub client: Option<IpAddr>,
    /// The auth identity ([`Scope::Auths`]).
    pub auth: Option<&'a [u8]>,
}

impl<'a> FlatKey<'a> {
    /// A key with a name only (`total/reads`, `GetDataReply`).
    pub const fn named(prefix: &'static str, name: &'static str) -> FlatKey<'a> {
        FlatKey {
            prefix,
            lead: "",
            name,
            suffix: "",
            path: b"",
            client: None,
            auth: None,
        }
    }
}

/// Writes bytes as `String::from_utf8_lossy` would turn them into text.
pub fn write_lossy(w: &mut impl Write, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        w.write_str(chunk.valid())?;
        if !chunk.invalid().is_empty() {
            w.write_char(char::REPLACEMENT_CHARACTER)?;
        }
    }
    Ok(())
}

impl fmt::Display for FlatKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix)?;
        f.write_str(self.lead)?;
        f.write_str(self.name)?;
        f.write_str(self.suffix)?;
        write_lossy(f, self.path)?;
        if let Some(ip) = self.client {
            write!(f, ":{ip}")?;
        }
        if let Some(a) = self.auth {
            f.write_char(':')?;
            write_lossy(f, a)?;
        }
        Ok(())
    }
}

/// What one stored row counts under one opname.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The opname.
    pub cat: Category,
    /// The (aggregated) path.
    pub path: &'a [u8],
    /// The client ([`Scope::Ips`]).
    pub client: Option<IpAddr>,
    /// The auth identity ([`Scope::Auths`]).
    pub auth: Option<&'a [u8]>,
    /// Count (an overestimate by at most the table's error bound).
    pub count: u64,
    /// Bytes (0 for opnames without bytes).
    pub bytes: u64,
}

/// A total order over opnames, for grouping.
const fn rank(c: Category) -> usize {
    match c {
        Category::Request(k) => k,
        Category::Reads => REQUEST_KINDS,
        Category::Writes => REQUEST_KINDS + 1,
        Category::Watches => REQUEST_KINDS + 2,
        Category::Event(k) => REQUEST_KINDS + 3 + k,
    }
}

/// Most opnames one stored row counts under ([`Entry::expand`]).
pub const OPNAMES_PER_ROW: usize = 3;

impl<'a> Entry<'a> {
    /// The entries a stored row of a `scope` table counts under (at most
    /// [`OPNAMES_PER_ROW`]; none for a key no table wrote).
    pub fn expand(
        scope: Scope,
        key: &'a [u8],
        count: u64,
        bytes: u64,
    ) -> impl Iterator<Item = Entry<'a>> + 'a {
        KeyView::decode(scope, key).into_iter().flat_map(move |k| {
            k.kind.opnames().map(move |(cat, with_bytes)| Entry {
                cat,
                path: k.path,
                client: k.client,
                auth: k.auth,
                count,
                bytes: if with_bytes { bytes } else { 0 },
            })
        })
    }

    /// Order of rows within an opname: path, then client, then identity.
    fn row_cmp(&self, o: &Entry<'_>) -> Ordering {
        (self.path, self.client, self.auth).cmp(&(o.path, o.client, o.auth))
    }

    fn group_cmp(&self, o: &Entry<'_>) -> Ordering {
        rank(self.cat)
            .cmp(&rank(o.cat))
            .then_with(|| self.row_cmp(o))
    }

    fn key(&self, prefix: &'static str, bytes: bool) -> FlatKey<'a> {
        FlatKey {
            prefix,
            lead: "",
            name: self.cat.name(),
            suffix: if bytes { "Bytes" } else { "" },
            path: self.path,
            client: self.client,
            auth: self.auth,
        }
    }
}

/// Which of the keys the old daemon always had (`reads/`, `writes/`,
/// `readsBytes/`, `writesBytes/`) [`flat_rows`] handed out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen([bool; 4]);

/// One cell of [`flat_rows`]' scratch: an (opname, path, client,
/// identity) and its summed count and bytes. Holds no borrow, so that a
/// host can keep the scratch in its own fixed storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Group {
    row: u32,
    op: u8,
    count: u64,
    bytes: u64,
}

impl Group {
    /// An unused cell: fill storage with it.
    pub const EMPTY: Group = Group {
        row: 0,
        op: 0,
        count: 0,
        bytes: 0,
    };
}

/// What [`flat_rows`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlatStats {
    /// Which always-present keys it handed out.
    pub seen: Seen,
    /// (row, opname) entries that did not fit the scratch and were left
    /// out (0 when the scratch holds [`OPNAMES_PER_ROW`] per row).
    pub dropped: usize,
}

/// Hands out the top rows of one keyed table (or of several, numbered
/// one after the other), the old daemon's way: each stored row `r` in
/// `0..rows` (`row(r)`: its key, count and bytes; `None` to skip) counts
/// under the opnames [`Entry::expand`] gives; entries of the same
/// (opname, path, client, identity) are summed; each opname keeps its top
/// `max_results` by count (ties: path, client, identity ascending), and
/// an opname with bytes also its top rows by bytes, as `…Bytes` keys.
/// Every key handed out is distinct. `scratch` is sorted in place; it
/// needs [`OPNAMES_PER_ROW`] cells per row to leave nothing out.
pub fn flat_rows<'a>(
    row: impl Fn(u32) -> Option<(&'a [u8], u64, u64)>,
    rows: u32,
    scope: Scope,
    o: FlatOptions,
    scratch: &mut [Group],
    emit: &mut impl FnMut(&FlatKey<'a>, u64),
) -> FlatStats {
    let prefix = scope_prefix(scope);
    let mut stats = FlatStats::default();
    let mut n = 0;
    for r in 0..rows {
        let Some((key, count, bytes)) = row(r) else {
            continue;
        };
        for (op, e) in Entry::expand(scope, key, count, bytes).enumerate() {
            match scratch.get_mut(n) {
                Some(cell) => {
                    *cell = Group {
                        row: r,
                        op: op as u8,
                        count: e.count,
                        bytes: e.bytes,
                    };
                    n += 1;
                }
                None => stats.dropped += 1,
            }
        }
    }
    let entry = |g: &Group| {
        row(g.row).and_then(|(key, count, bytes)| {
            Entry::expand(scope, key, count, bytes).nth(g.op as usize)
        })
    };
    let cmp_group = |a: &Group, b: &Group| match (entry(a), entry(b)) {
        (Some(x), Some(y)) => x.group_cmp(&y),
        _ => Ordering::Equal,
    };
    let cmp_row = |a: &Group, b: &Group| match (entry(a), entry(b)) {
        (Some(x), Some(y)) => x.row_cmp(&y),
        _ => Ordering::Equal,
    };
    let cells = &mut scratch[..n];
    cells.sort_unstable_by(cmp_group);
    let mut m = 0;
    for i in 0..cells.len() {
        if m > 0 && cmp_group(&cells[m - 1], &cells[i]) == Ordering::Equal {
            cells[m - 1].count += cells[i].count;
            cells[m - 1].bytes += cells[i].bytes;
        } else {
            cells[m] = cells[i];
            m += 1;
        }
    }
    let mut emit_one = |g: &Group, bytes: bool| {
        let Some(e) = entry(g) else {
            return;
        };
        let k = e.key(prefix, bytes);
        if k.path == b"/" && k.client.is_none() && k.auth.is_none() {
            let i = match (k.name, bytes) {
                ("reads", false) => Some(0),
                ("writes", false) => Some(1),
                ("reads", true) => Some(2),
                ("writes", true) => Some(3),
                _ => None,
            };
            if let Some(i) = i {
                stats.seen.0[i] = true;
            }
        }
        emit(&k, if bytes { g.bytes } else { g.count });
    };
    let groups = &mut cells[..m];
    let mut start = 0;
    while start < groups.len() {
        let cat = entry(&groups[start]).map(|e| e.cat);
        let len = groups[start..]
            .iter()
            .position(|g| entry(g).map(|e| e.cat) != cat)
            .unwrap_or(groups.len() - start);
        let g = &mut groups[start..start + len];
        let top = if o.max_results == 0 {
            len
        } else {
            o.max_results.min(len)
        };
        g.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| cmp_row(a, b)));
        for x in &g[..top] {
            emit_one(x, false);
        }
        if cat.is_some_and(Category::has_bytes) && !o.exclude_bytes {
            g.sort_unstable_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| cmp_row(a, b)));
            for x in &g[..top] {
                emit_one(x, true);
            }
        }
        start += len;
    }
    stats
}

/// The exact keys of a flat object: `total/reads`, `total/writes` (and
/// their bytes), the always-present `reads/` and `writes/` when
/// [`flat_rows`] did not hand them out, and for [`Scope::Paths`] the
/// replies by type (`GetDataReply`, `FailedGetDataReply`),
/// `ConnectReply` and `SessionExpiration`.
pub fn flat_totals(
    t: &Totals,
    scope: Scope,
    o: FlatOptions,
    seen: Seen,
    emit: &mut impl FnMut(&FlatKey<'_>, u64),
) {
    let prefix = scope_prefix(scope);
    emit(&FlatKey::named(prefix, "total/reads"), t.reads);
    emit(&FlatKey::named(prefix, "total/writes"), t.writes);
    if !o.exclude_bytes {
        emit(&FlatKey::named(prefix, "total/readBytes"), t.read_bytes);
        emit(&FlatKey::named(prefix, "total/writeBytes"), t.write_bytes);
    }
    for (i, (name, suffix)) in [
        ("reads", ""),
        ("writes", ""),
        ("reads", "Bytes"),
        ("writes", "Bytes"),
    ]
    .into_iter()
    .enumerate()
    {
        if seen.0[i] || (o.exclude_bytes && !suffix.is_empty()) {
            continue;
        }
        let k = FlatKey {
            suffix,
            path: b"/",
            ..FlatKey::named(prefix, name)
        };
        emit(&k, 0);
    }
    if scope != Scope::Paths {
        return;
    }
    for op in OpCode::ALL {
        let ok = t.replies[op.index()][0];
        let failed = t.failed_replies_of(op);
        if ok > 0 {
            emit(&FlatKey::named(prefix, op.reply_name()), ok);
        }
        if failed > 0 {
            let k = FlatKey {
                lead: "Failed",
                ..FlatKey::named(prefix, op.reply_name())
            };
            emit(&k, failed);
        }
    }
    if t.sessions.established > 0 {
        emit(
            &FlatKey::named(prefix, "ConnectReply"),
            t.sessions.established,
        );
    }
    if t.sessions.expired > 0 {
        emit(
            &FlatKey::named(prefix, "SessionExpiration"),
            t.sessions.expired,
        );
    }
}

/// A writer adapter that escapes what goes through it for a JSON string.
struct JsonEscape<'w, W: Write>(&'w mut W);

impl<W: Write> Write for JsonEscape<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut from = 0;
        for (i, b) in s.bytes().enumerate() {
            let esc: Option<&str> = match b {
                b'"' => Some("\\\""),
                b'\\' => Some("\\\\"),
                b'\n' => Some("\\n"),
                b'\r' => Some("\\r"),
                b'\t' => Some("\\t"),
                0x08 => Some("\\b"),
                0x0c => Some("\\f"),
                0..=0x1f => None,
                _ => continue,
            };
            self.0.write_str(&s[from..i])?;
            match esc {
                Some(e) => self.0.write_str(e)?,
                None => write!(self.0, "\\u{:04x}", b)?,
            }
            from = i + 1;
        }
        self.0.write_str(&s[from..])
    }
}

/// Writes one JSON object member by member: `{"k":v,...}`.
pub struct JsonObject<'w, W: Write> {
    w: &'w mut W,
    first: bool,
}

impl<'w, W: Write> JsonObject<'w, W> {
    /// Writes the opening brace.
    pub fn begin(w: &'w mut W) -> Result<Self, fmt::Error> {
        w.write_char('{')?;
        Ok(JsonObject { w, first: true })
    }

    /// Writes `"key":` (the key escaped) and returns the writer for the
    /// value, which the caller writes as JSON.
    pub fn key(&mut self, key: impl fmt::Display) -> Result<&mut W, fmt::Error> {
        if !self.first {
            self.w.write_char(',')?;
        }
        self.first = false;
        self.w.write_char('"')?;
        write!(JsonEscape(self.w), "{key}")?;
        self.w.write_str("\":")?;
        Ok(self.w)
    }

    /// A member with a number value.
    pub fn number(&mut self, key: impl fmt::Display, v: impl fmt::Display) -> fmt::Result {
        let w = self.key(key)?;
        write!(w, "{v}")
    }

    /// A member with a string value (escaped).
    pub fn string(&mut self, key: impl fmt::Display, v: impl fmt::Display) -> fmt::Result {
        let w = self.key(key)?;
        w.write_char('"')?;
        write!(JsonEscape(w), "{v}")?;
        w.write_char('"')
    }

    /// Writes the closing brace.
    pub fn end(self) -> fmt::Result {
        self.w.write_char('}')
    }
}

/// A writer adapter that escapes a Prometheus label value.
struct LabelEscape<'w, W: Write>(&'w mut W);

impl<W: Write> Write for LabelEscape<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for ch in s.chars() {
            match ch {
                '\\' => self.0.write_str("\\\\")?,
                '"' => self.0.write_str("\\\"")?,
                '\n' => self.0.write_str("\\n")?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// The Prometheus text exposition format (version 0.0.4), line by line.
pub struct Prom<'w, W: Write> {
    w: &'w mut W,
}

impl<'w, W: Write> Prom<'w, W> {
    /// Writes into `w`.
    pub fn new(w: &'w mut W) -> Self {
        Prom { w }
    }

    /// `# HELP` and `# TYPE` lines.
    pub fn head(&mut self, name: &str, kind: &str, help: &str) -> fmt::Result {
        writeln!(self.w, "# HELP {name} {help}\n# TYPE {name} {kind}")
    }

    /// One sample: `name{k="v",...} value`.
    pub fn val(
        &mut self,
        name: &str,
        labels: &[(&str, &dyn fmt::Display)],
        v: impl fmt::Display,
    ) -> fmt::Result {
        self.w.write_str(name)?;
        if !labels.is_empty() {
            self.w.write_char('{')?;
            for (i, (k, l)) in labels.iter().enumerate() {
                if i > 0 {
                    self.w.write_char(',')?;
                }
                write!(self.w, "{k}=\"")?;
                write!(LabelEscape(self.w), "{l}")?;
                self.w.write_char('"')?;
            }
            self.w.write_char('}')?;
        }
        writeln!(self.w, " {v}")
    }

    /// A counter without labels.
    pub fn counter(&mut self, name: &str, help: &str, v: u64) -> fmt::Result {
        self.head(name, "counter", help)?;
        self.val(name, &[], v)
    }

    /// A gauge without labels.
    pub fn gauge(&mut self, name: &str, help: &str, v: impl fmt::Display) -> fmt::Result {
        self.head(name, "gauge", help)?;
        self.val(name, &[], v)
    }
}

/// Prometheus histogram bucket bounds for latencies: microseconds, and
/// the `le` label (seconds).
pub const LATENCY_BOUNDS: [(u64, &str); 17] = [
    (100, "0.0001"),
    (250, "0.00025"),
    (500, "0.0005"),
    (1_000, "0.001"),
    (2_500, "0.0025"),
    (5_000, "0.005"),
    (10_000, "0.01"),
    (25_000, "0.025"),
    (50_000, "0.05"),
    (100_000, "0.1"),
    (250_000, "0.25"),
    (500_000, "0.5"),
    (1_000_000, "1"),
    (2_500_000, "2.5"),
    (5_000_000, "5"),
    (10_000_000, "10"),
    (30_000_000, "30"),
];

/// The traffic metrics of a set of totals: requests and bytes by type,
/// reads, writes, watches, replies by type and error code, watch events,
/// sessions, four-letter words, and the latency histograms by request
/// type (`latency`, by [`OpCode::index`]). Label sets are bounded: types,
/// error codes, event names; never paths or clients.
pub fn write_traffic_metrics<W: Write>(
    m: &mut Prom<'_, W>,
    t: &Totals,
    latency: &[Histogram; OpCode::COUNT],
) -> fmt::Result {
    m.head(
        "zk_requests_total",
        "counter",
        "Client requests seen, by type.",
    )?;
    for k in 0..REQUEST_KINDS {
        if t.requests[k] > 0 {
            let ty = tables::request_kind_name(k);
            m.val("zk_requests_total", &[("type", &ty)], t.requests[k])?;
        }
    }
    m.head(
        "zk_request_bytes_total",
        "counter",
        "Bytes of client requests (frame bodies), by type.",
    )?;
    for k in 0..REQUEST_KINDS {
        if t.requests[k] > 0 {
            let ty = tables::request_kind_name(k);
            m.val(
                "zk_request_bytes_total",
                &[("type", &ty)],
                t.request_bytes[k],
            )?;
        }
    }
    m.counter(
        "zk_reads_total",
        "Read requests (everything but writes).",
        t.reads,
    )?;
    m.counter(
        "zk_read_bytes_total",
        "Bytes of read requests.",
        t.read_bytes,
    )?;
    m.counter(
        "zk_writes_total",
        "Write requests (create, delete, setData, setACL, reconfig, multi with a write).",
        t.writes,
    )?;
    m.counter(
        "zk_write_bytes_total",
        "Bytes of write requests.",
        t.write_bytes,
    )?;
    m.counter(
        "zk_watches_total",
        "Requests that leave a watch (watch flag, addWatch, setWatches).",
        t.watches,
    )?;
    m.head(
        "zk_replies_total",
        "counter",
        "Replies paired with their request, by type and error code.",
    )?;
    for op in OpCode::ALL {
        for slot in 0..ERROR_SLOTS {
            let n = t.replies[op.index()][slot];
            if n > 0 {
                let (ty, err) = (op.reply_name(), tables::error_slot_name(slot));
                m.val("zk_replies_total", &[("type", &ty), ("err", &err)], n)?;
            }
        }
    }
    m.head(
        "zk_reply_bytes_total",
        "counter",
        "Bytes of paired replies (frame bodies), by type.",
    )?;
    for op in OpCode::ALL {
        if t.replies_of(op) > 0 {
            let ty = op.reply_name();
            m.val(
                "zk_reply_bytes_total",
                &[("type", &ty)],
                t.reply_bytes[op.index()],
            )?;
        }
    }
    m.counter(
        "zk_unpaired_replies_total",
        "Replies whose request was not seen (capture started later, or pending table full).",
        t.unpaired_replies,
    )?;
    m.head("zk_watch_events_total", "counter", "Watch events, by type.")?;
    for k in 0..EVENT_KINDS {
        if t.events[k] > 0 {
            let ty = tables::event_kind_name(k);
            m.val("zk_watch_events_total", &[("type", &ty)], t.events[k])?;
        }
    }
    m.head("zk_sessions_total", "counter", "Session lifecycle events.")?;
    let s = t.sessions;
    for (ev, n) in [
        ("connect", s.connects),
        ("reconnect", s.reconnects),
        ("established", s.established),
        ("expired", s.expired),
        ("close", s.closes),
    ] {
        m.val("zk_sessions_total", &[("event", &ev)], n)?;
    }
    m.counter(
        "zk_four_letter_words_total",
        "Four-letter-word commands (ruok, stat, ...).",
        t.four_letter_words,
    )?;
    m.head(
        "zk_request_latency_seconds",
        "histogram",
        "Time from a request to its reply on the capture clock, by request type.",
    )?;
    for op in OpCode::ALL {
        let h = &latency[op.index()];
        if h.count() == 0 {
            continue;
        }
        let ty = op.request_name();
        for (us, le) in LATENCY_BOUNDS {
            m.val(
                "zk_request_latency_seconds_bucket",
                &[("type", &ty), ("le", &le)],
                h.count_at_most(us),
            )?;
        }
        m.val(
            "zk_request_latency_seconds_bucket",
            &[("type", &ty), ("le", &"+Inf")],
            h.count(),
        )?;
        m.val(
            "zk_request_latency_seconds_sum",
            &[("type", &ty)],
            h.sum() as f64 / 1e6,
        )?;
        m.val(
            "zk_request_latency_seconds_count",
            &[("type", &ty)],
            h.count(),
        )?;
    }
    Ok(())
}

/// The keyed tables' figures, by [`Scope::index`]: keys that displaced
/// another (overflow), keys held, counters.
pub fn write_table_metrics<W: Write>(
    m: &mut Prom<'_, W>,
    evictions: [u64; 3],
    entries: [usize; 3],
    capacity: [usize; 3],
) -> fmt::Result {
    m.head(
        "zk_table_evictions_total",
        "counter",
        "Keys that displaced another in a full top-N table (overflow).",
    )?;
    for s in Scope::ALL {
        let name = s.name();
        m.val(
            "zk_table_evictions_total",
            &[("table", &name)],
            evictions[s.index()],
        )?;
    }
    m.head(
        "zk_table_entries",
        "gauge",
        "Keys held (zk-stats: in the window in progress).",
    )?;
    for s in Scope::ALL {
        let name = s.name();
        m.val("zk_table_entries", &[("table", &name)], entries[s.index()])?;
    }
    m.head("zk_table_capacity", "gauge", "Counters per top-N table.")?;
    for s in Scope::ALL {
        let name = s.name();
        m.val(
            "zk_table_capacity",
            &[("table", &name)],
            capacity[s.index()],
        )?;
    }
    Ok(())
}

/// The decoder's health metrics: TCP segments, frames that did not
/// decode by stage and kind (`link_errors` from [`crate::packet::parse`],
/// by [`crate::Error::index`]), connections, reassembly events and
/// pending-table overflow.
pub fn write_decoder_metrics<W: Write>(
    m: &mut Prom<'_, W>,
    c: &Counters,
    link_errors: &ErrorCounts,
    active_flows: usize,
    flow_capacity: usize,
) -> fmt::Result {
    m.counter(
        "zk_tcp_segments_total",
        "TCP segments handed to the flow tracker.",
        c.segments,
    )?;
    m.head(
        "zk_decode_errors_total",
        "counter",
        "Input that did not decode, by stage (link: L2-L4, frame: length prefixes, message: jute records) and kind.",
    )?;
    for (stage, arr) in [
        ("link", link_errors),
        ("frame", &c.frame_errors),
        ("message", &c.decode_errors),
    ] {
        for (e, n) in arr.iter() {
            let kind = e.name();
            m.val(
                "zk_decode_errors_total",
                &[("stage", &stage), ("kind", &kind)],
                n,
            )?;
        }
    }
    m.head(
        "zk_flows_total",
        "counter",
        "Client connections, by what happened to them.",
    )?;
    for (ev, n) in [
        ("created", c.flows_created),
        ("closed", c.flows_closed),
        ("expired", c.flows_expired),
        ("evicted", c.flows_evicted),
    ] {
        m.val("zk_flows_total", &[("event", &ev)], n)?;
    }
    m.gauge(
        "zk_flows_tracked",
        "Client connections tracked now.",
        active_flows,
    )?;
    m.gauge("zk_flows_capacity", "Connection slots.", flow_capacity)?;
    let st = &c.stream;
    m.head(
        "zk_stream_events_total",
        "counter",
        "TCP reassembly events (retransmits, gaps, bytes lost, resyncs, ...).",
    )?;
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
        m.val("zk_stream_events_total", &[("kind", &k)], n)?;
    }
    m.counter(
        "zk_pending_overflow_total",
        "Requests forgotten because a connection had too many in flight.",
        c.pending_overflow,
    )
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::stats::tables::RowKind;
    use std::string::{String, ToString};
    use std::vec;
    use std::vec::Vec;

    fn key(kind: RowKind, path: &str) -> Vec<u8> {
        let mut k = vec![kind.code()];
        k.extend_from_slice(path.as_bytes());
        k
    }

    fn req(kind: usize, write: bool, watch: bool) -> RowKind {
        RowKind::Request { kind, write, watch }
    }

    fn render(rows: &[(Vec<u8>, u64, u64)], o: FlatOptions) -> Vec<(String, u64)> {
        let mut scratch = vec![Group::EMPTY; rows.len() * OPNAMES_PER_ROW];
        let mut out = Vec::new();
        let st = flat_rows(
            |r| rows.get(r as usize).map(|(k, c, b)| (&k[..], *c, *b)),
            rows.len() as u32,
            Scope::Paths,
            o,
            &mut scratch,
            &mut |k, v| out.push((k.to_string(), v)),
        );
        assert_eq!(st.dropped, 0);
        flat_totals(&Totals::ZERO, Scope::Paths, o, st.seen, &mut |k, v| {
            out.push((k.to_string(), v))
        });
        out
    }

    fn get(out: &[(String, u64)], k: &str) -> Option<u64> {
        out.iter().find(|(n, _)| n == k).map(|(_, v)| *v)
    }

    #[test]
    fn request_rows_sum_into_reads_writes_and_watches_per_path() {
        let gd = OpCode::GetData.index();
        let sd = OpCode::SetData.index();
        let rows = vec![
            (key(req(gd, false, false), "/a"), 3, 30),
            (key(req(gd, false, true), "/a"), 2, 20),
            (key(req(sd, true, false), "/a"), 4, 400),
            (key(RowKind::Event(3), "/a"), 1, 16),
        ];
        let out = render(&rows, FlatOptions::default());
        assert_eq!(get(&out, "GetDataRequest/a"), Some(5));
        assert_eq!(get(&out, "GetDataRequestBytes/a"), Some(50));
        assert_eq!(get(&out, "reads/a"), Some(5));
        assert_eq!(get(&out, "readsBytes/a"), Some(50));
        assert_eq!(get(&out, "writes/a"), Some(4));
        assert_eq!(get(&out, "writesBytes/a"), Some(400));
        assert_eq!(get(&out, "watches/a"), Some(2));
        assert_eq!(get(&out, "watchesBytes/a"), None);
        assert_eq!(get(&out, "NodeDataChanged/a"), Some(1));
        // The always-present keys, at 0.
        assert_eq!(get(&out, "reads/"), Some(0));
        assert_eq!(get(&out, "writesBytes/"), Some(0));
        let mut names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), out.len(), "a key was handed out twice");
    }

    #[test]
    fn the_top_n_cut_keeps_the_heaviest_with_ties_by_path() {
        let gd = OpCode::GetData.index();
        let rows: Vec<_> = [("/b", 5), ("/a", 5), ("/c", 9), ("/d", 1)]
            .iter()
            .map(|(p, c)| (key(req(gd, false, false), p), *c, 100 - *c))
            .collect();
        let o = FlatOptions {
            max_results: 2,
            exclude_bytes: false,
        };
        let out = render(&rows, o);
        let counts: Vec<&str> = out
            .iter()
            .filter(|(n, _)| n.starts_with("GetDataRequest/"))
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(counts, ["GetDataRequest/c", "GetDataRequest/a"]);
        // By bytes, the lightest counts are the heaviest bytes.
        let bytes: Vec<&str> = out
            .iter()
            .filter(|(n, _)| n.starts_with("GetDataRequestBytes/"))
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(bytes, ["GetDataRequestBytes/d", "GetDataRequestBytes/a"]);
        let no_bytes = render(
            &rows,
            FlatOptions {
                max_results: 0,
                exclude_bytes: true,
            },
        );
        assert!(no_bytes.iter().all(|(n, _)| !n.contains("Bytes")));
        assert_eq!(
            no_bytes
                .iter()
                .filter(|(n, _)| n.starts_with("Get"))
                .count(),
            4
        );
    }

    #[test]
    fn a_scratch_too_small_drops_entries_and_says_so() {
        let gd = OpCode::GetData.index();
        let rows = [(key(req(gd, false, true), "/a"), 1u64, 1u64)];
        let mut scratch = [Group::EMPTY; 2];
        let st = flat_rows(
            |r| rows.get(r as usize).map(|(k, c, b)| (&k[..], *c, *b)),
            1,
            Scope::Paths,
            FlatOptions::default(),
            &mut scratch,
            &mut |_, _| {},
        );
        assert_eq!(st.dropped, 1);
    }

    #[test]
    fn keys_escape_as_json_and_bad_utf8_as_replacement() {
        let mut s = String::new();
        let mut o = JsonObject::begin(&mut s).unwrap();
        let k = FlatKey {
            path: b"/q\"\\\n\x01\xff",
            ..FlatKey::named("", "reads")
        };
        o.number(k, 1).unwrap();
        o.string("s", "a\tb").unwrap();
        o.end().unwrap();
        assert_eq!(
            s,
            "{\"reads/q\\\"\\\\\\n\\u0001\u{fffd}\":1,\"s\":\"a\\tb\"}"
        );
    }

    #[test]
    fn prometheus_labels_escape_and_latency_buckets_are_cumulative() {
        let mut s = String::new();
        let mut m = Prom::new(&mut s);
        m.val("x", &[("l", &"a\"b\\c\nd")], 1).unwrap();
        assert_eq!(s, "x{l=\"a\\\"b\\\\c\\nd\"} 1\n");
        let mut lat = [const { Histogram::new() }; OpCode::COUNT];
        lat[OpCode::GetData.index()].record(300);
        lat[OpCode::GetData.index()].record(2_000_000);
        let mut s = String::new();
        write_traffic_metrics(&mut Prom::new(&mut s), &Totals::ZERO, &lat).unwrap();
        assert!(s.contains(
            "zk_request_latency_seconds_bucket{type=\"GetDataRequest\",le=\"0.00025\"} 0\n"
        ));
        assert!(s.contains(
            "zk_request_latency_seconds_bucket{type=\"GetDataRequest\",le=\"0.0005\"} 1\n"
        ));
        assert!(
            s.contains("zk_request_latency_seconds_bucket{type=\"GetDataRequest\",le=\"2.5\"} 2\n")
        );
        assert!(s.contains("zk_request_latency_seconds_count{type=\"GetDataRequest\"} 2\n"));
    }
}
