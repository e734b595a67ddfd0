//! Frozen copies of zk-wire's stats tables, shared between the capture
//! thread and the HTTP server.
//!
//! The capture thread owns the live tables; it never lets a reader touch
//! them. Instead it copies their rows into a [`Snapshot`] (a flat byte arena
//! plus fixed rows: a memcpy-like pass, well under a millisecond for the
//! default capacities) and swaps an `Arc` under a mutex held for a pointer
//! write. Readers clone the `Arc` and format at leisure: capture never
//! waits for HTTP.

use std::sync::{Arc, Mutex};
use zk_wire::ErrorCounts;

use zk_wire::client::OpCode;
use zk_wire::flow::Counters;
use zk_wire::stats::tables::{Scope, TableInfo};
use zk_wire::stats::{Histogram, Slot, Tables, Totals};

use crate::capture::CaptureStats;

/// One row of a keyed table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    off: u32,
    len: u32,
    /// Count (an overestimate by at most `error`).
    pub count: u64,
    /// The row's own error bound.
    pub error: u64,
    /// Bytes (overestimated like the count).
    pub bytes: u64,
}

/// The rows of one keyed table.
#[derive(Debug, Clone, Default)]
pub struct TableRows {
    keys: Vec<u8>,
    rows: Vec<Row>,
    /// The table's figures when copied.
    pub info: TableInfo,
}

impl TableRows {
    fn of<S: AsRef<[Slot]> + AsMut<[Slot]>>(t: &Tables<S>, scope: Scope) -> TableRows {
        let info = t.table_info(scope);
        let mut out = TableRows {
            keys: Vec::with_capacity(info.len * 32),
            rows: Vec::with_capacity(info.len),
            info,
        };
        for r in t.rows(scope) {
            let off = out.keys.len() as u32;
            out.keys.extend_from_slice(r.key);
            out.rows.push(Row {
                off,
                len: r.key.len() as u32,
                count: r.count,
                error: r.error,
                bytes: r.bytes,
            });
        }
        out
    }

    /// Rows from (key, count, bytes) triples (tests).
    #[cfg(test)]
    pub fn from_rows(rows: &[(Vec<u8>, u64, u64)]) -> TableRows {
        let mut out = TableRows::default();
        for (k, count, bytes) in rows {
            let off = out.keys.len() as u32;
            out.keys.extend_from_slice(k);
            out.rows.push(Row {
                off,
                len: k.len() as u32,
                count: *count,
                error: 0,
                bytes: *bytes,
            });
        }
        out.info.len = out.rows.len();
        out
    }

    /// Every row with its key.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Row)> + '_ {
        self.rows
            .iter()
            .map(|r| (&self.keys[r.off as usize..(r.off + r.len) as usize], r))
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One (type, path) latency row.
#[derive(Debug, Clone)]
pub struct LatencyPath {
    /// Request type.
    pub opcode: OpCode,
    /// The (aggregated) path.
    pub path: Vec<u8>,
    /// Requests counted for the pair.
    pub requests: u64,
    /// Latencies in microseconds.
    pub histogram: Histogram,
}

/// A copy of one set of tables (a window, or the totals so far).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Keyed rows by [`Scope::index`].
    pub tables: [TableRows; 3],
    /// Exact counters.
    pub totals: Totals,
    /// Latency by request [`OpCode::index`].
    pub latency: Box<[Histogram; OpCode::COUNT]>,
    /// Latency of the busiest (type, path) pairs.
    pub latency_paths: Vec<LatencyPath>,
    /// Capture time (µs since the epoch) the stretch starts at.
    pub start_us: i64,
    /// Capture time it ends at (exclusive; "now" for one in progress).
    pub end_us: i64,
}

impl Snapshot {
    /// Nothing counted over `[start_us, end_us)`.
    pub fn empty(start_us: i64, end_us: i64) -> Snapshot {
        Snapshot {
            tables: Default::default(),
            totals: Totals::ZERO,
            latency: Box::new([const { Histogram::new() }; OpCode::COUNT]),
            latency_paths: Vec::new(),
            start_us,
            end_us,
        }
    }

    /// Copies `t` (flushed: see `Tables::flush`).
    pub fn of<S: AsRef<[Slot]> + AsMut<[Slot]>>(
        t: &Tables<S>,
        start_us: i64,
        end_us: i64,
    ) -> Snapshot {
        Snapshot {
            tables: Scope::ALL.map(|s| TableRows::of(t, s)),
            totals: t.totals,
            latency: Box::new(t.latency().clone()),
            latency_paths: t
                .latency_paths()
                .map(|l| LatencyPath {
                    opcode: l.opcode,
                    path: l.path.to_vec(),
                    requests: l.requests,
                    histogram: l.histogram.clone(),
                })
                .collect(),
            start_us,
            end_us,
        }
    }

    /// The keyed rows of one scope.
    pub fn table(&self, scope: Scope) -> &TableRows {
        &self.tables[scope.index()]
    }
}

/// One connection's last SetAuth, copied out of the auth log.
#[derive(Debug, Clone)]
pub struct AuthRow {
    /// `ip:port`.
    pub client: String,
    /// Scheme.
    pub scheme: String,
    /// The credential (a secret: redact before showing).
    pub credential: Vec<u8>,
    /// SetAuth requests seen.
    pub count: u64,
    /// Capture time of the last one (µs since the epoch).
    pub ts_us: i64,
}

/// Where the capture stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureState {
    /// Capturing (or reading the file).
    Running,
    /// The file was read to its end (or the capture was stopped).
    Finished,
    /// The capture failed.
    Failed(String),
}

/// Capture and decoder health.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// libpcap's figures (kernel drops are refreshed about once a second).
    pub capture: CaptureStats,
    /// Frames handed to the decoder.
    pub packets: u64,
    /// Frames that are not TCP.
    pub non_tcp: u64,
    /// Link-layer (L2-L4) errors by [`zk_wire::Error::index`].
    pub link_errors: ErrorCounts,
    /// The flow tracker's counters.
    pub tracker: Counters,
    /// Flows tracked now.
    pub active_flows: usize,
    /// Flow slots.
    pub flow_capacity: usize,
    /// Reassembly chunks lent out now, and in all.
    pub chunks: (usize, usize),
    /// Keyed-table evictions since start, by [`Scope::index`].
    pub table_evictions: [u64; 3],
    /// Latency-path slots taken over since start.
    pub latency_path_evictions: u64,
    /// Auth-log entries replaced because it was full.
    pub auths_replaced: u64,
    /// Last capture timestamp seen (µs since the epoch).
    pub last_ts_us: i64,
}

/// Everything the HTTP side can read, swapped in one piece.
#[derive(Debug, Clone)]
pub struct Published {
    /// Increases with every publication (cache key).
    pub generation: u64,
    /// The last complete window (`None` before the first one ends).
    pub last_window: Option<Arc<Snapshot>>,
    /// Totals up to the start of the window in progress.
    pub base: Arc<Snapshot>,
    /// The window in progress, as of the publication.
    pub current: Arc<Snapshot>,
    /// Windows completed.
    pub windows_completed: u64,
    /// Capture health.
    pub health: Health,
    /// SetAuths seen, by connection.
    pub auths: Arc<Vec<AuthRow>>,
    /// Where the capture stands.
    pub state: CaptureState,
    /// The last seconds of capture time, oldest first.
    pub history: Arc<Vec<super::history::Second>>,
    /// Election and quorum metrics (Prometheus text), empty until such
    /// traffic is seen.
    pub quorum_metrics: Arc<String>,
}

impl Published {
    /// Before the first packet.
    pub fn initial(now_us: i64) -> Published {
        Published {
            generation: 0,
            last_window: None,
            base: Arc::new(Snapshot::empty(now_us, now_us)),
            current: Arc::new(Snapshot::empty(now_us, now_us)),
            windows_completed: 0,
            health: Health::default(),
            auths: Arc::new(Vec::new()),
            state: CaptureState::Running,
            history: Arc::new(Vec::new()),
            quorum_metrics: Arc::new(String::new()),
        }
    }

    /// The snapshots a view merges: the last window alone, or the totals
    /// (base + the window in progress).
    pub fn parts(&self, view: View) -> Vec<Arc<Snapshot>> {
        match view {
            View::Window => match &self.last_window {
                Some(w) => vec![w.clone()],
                None => vec![Arc::new(Snapshot::empty(
                    self.current.start_us,
                    self.current.start_us,
                ))],
            },
            View::Cumulative => vec![self.base.clone(), self.current.clone()],
        }
    }
}

/// Which stretch of traffic an endpoint reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// The last complete window.
    Window,
    /// Everything since start.
    Cumulative,
}

/// The slot readers and the capture thread share.
#[derive(Debug)]
pub struct Shared {
    slot: Mutex<Arc<Published>>,
}

impl Shared {
    /// A slot holding `p`.
    pub fn new(p: Published) -> Shared {
        Shared {
            slot: Mutex::new(Arc::new(p)),
        }
    }

    /// The latest publication.
    pub fn get(&self) -> Arc<Published> {
        match self.slot.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the publication (a pointer swap under the lock).
    pub fn set(&self, p: Published) {
        let p = Arc::new(p);
        let old = match self.slot.lock() {
            Ok(mut g) => std::mem::replace(&mut *g, p),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), p),
        };
        // The old publication is freed here, outside the lock.
        drop(old);
    }
}
