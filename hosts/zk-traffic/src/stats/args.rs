//! `zk-stats` command-line flags (clap derive), documented for `-h` and
//! `--help`.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

pub use crate::capture::CaptureArgs;

/// Capture ZooKeeper client traffic and serve request statistics over HTTP.
///
/// Counts requests per type and path (with bytes), reads, writes, watches,
/// replies by type and error, watch events, sessions and latencies, per
/// path, per client IP and per auth identity, in fixed memory (top-N
/// heavy-hitter tables). Serves the last complete window (--window) and
/// the totals since start as JSON compatible with the older zktraffic
/// stats daemon (/json/paths, /json/ips, /json/auths, /json/auths-dump,
/// /json/info), plus /json/latencies, Prometheus /metrics and /healthz.
///
/// With --offline FILE --json-out OUT it reads a capture, writes the final
/// totals (the object /json/paths?window=cumulative would serve) and exits.
#[derive(Debug, Clone, Parser)]
#[command(name = "zk-stats", version, about, long_about)]
pub struct Args {
    /// What to capture.
    #[command(flatten)]
    pub capture: CaptureArgs,

    /// Leader-election port to follow for the election figures on /metrics
    /// (repeat for several; these and --quorum-port are captured too).
    #[arg(long = "election-port", value_name = "PORT", default_values_t = [3888u16])]
    pub election_ports: Vec<u16>,

    /// Quorum (ZAB) port to follow for the commit-latency and follower
    /// figures on /metrics (repeat for several).
    #[arg(long = "quorum-port", value_name = "PORT", default_values_t = [2888u16])]
    pub quorum_ports: Vec<u16>,

    /// Follow client traffic only (no election or quorum figures).
    #[arg(long)]
    pub no_quorum: bool,

    /// Kernel capture buffer in MiB (live capture; a large ring rides out bursts).
    #[arg(long, value_name = "MIB", default_value_t = 128)]
    pub buffer_mb: u32,

    /// Address the HTTP server listens on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub http_address: IpAddr,

    /// Port the HTTP server listens on (0: any free port, printed at start).
    #[arg(long, value_name = "PORT", default_value_t = 7070)]
    pub http_port: u16,

    /// Keep the first D components of every path (0 keeps full paths).
    #[arg(long, value_name = "D", default_value_t = 0)]
    pub aggregation_depth: usize,

    /// Rows per opname in the JSON endpoints (0: every row the tables hold).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_results: usize,

    /// Window length in seconds: /json/* serve the last complete window.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub window: u64,

    /// Leave the *Bytes keys out of the JSON endpoints.
    #[arg(long)]
    pub exclude_bytes: bool,

    /// Table and connection capacities.
    #[command(flatten)]
    pub sizes: TableSizes,

    /// Reassembly chunk size in bytes: frames larger than this are counted from their first bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub chunk_size: usize,

    /// Reassembly chunks (memory = chunks x chunk size, touched only when used).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub chunks: usize,

    /// Largest frame accepted, in bytes (ZooKeeper's jute.maxbuffer plus slack).
    #[arg(long, value_name = "BYTES", default_value_t = zk_wire::stream::LengthPrefixed::DEFAULT_MAX_LEN)]
    pub max_frame: u32,

    /// Show SetAuth credentials in full in /json/auths-dump (redacted to user:<redacted> by default).
    #[arg(long)]
    pub show_secrets: bool,

    /// With --offline: write the final totals as JSON to FILE and exit (no HTTP server).
    #[arg(long, value_name = "FILE", requires = "offline")]
    pub json_out: Option<PathBuf>,

    /// With --offline: also write the final per-client-IP totals (/json/ips?window=cumulative) to FILE.
    #[arg(long, value_name = "FILE", requires = "json_out")]
    pub json_out_ips: Option<PathBuf>,

    /// With --offline: also write the final per-auth totals (/json/auths?window=cumulative) to FILE.
    #[arg(long, value_name = "FILE", requires = "json_out")]
    pub json_out_auths: Option<PathBuf>,

    /// Benchmark aid, with --offline: only read every packet through the
    /// same libpcap reader (no decoding, no tables), print the count and the
    /// time, and exit: the I/O floor zk-stats' own time is compared with.
    #[arg(long, requires = "offline")]
    pub io_floor: bool,

    /// With --offline: read the file on the decoding thread instead of a
    /// reader thread of its own (one core for everything).
    #[arg(long, requires = "offline")]
    pub no_read_ahead: bool,

    /// Seconds between refreshes of the in-progress figures (totals, /metrics).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub refresh: f64,

    /// Most HTTP requests served at once (more get 503).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_http_requests: usize,
}

/// The fixed capacities of the stats tables and the connection table
/// (zk-stats' and zk-top's flags).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct TableSizes {
    /// Counters of the per-path table (memory: about 180 bytes each, twice).
    #[arg(long, value_name = "N", default_value_t = 8192)]
    pub max_paths: usize,

    /// Counters of the per-client-IP table.
    #[arg(long, value_name = "N", default_value_t = 8192)]
    pub max_clients: usize,

    /// Counters of the per-auth-identity table.
    #[arg(long, value_name = "N", default_value_t = 2048)]
    pub max_auths: usize,

    /// Connections tracked at once (rounded down to a multiple of 8; about 8.5 KiB each).
    #[arg(long, value_name = "N", default_value_t = 2048)]
    pub max_flows: usize,
}
