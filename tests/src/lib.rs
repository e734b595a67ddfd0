//! Integration-test harness for zk-traffic.
//!
//! - [`ZkServer`]: a real ZooKeeper 3.8 (Debian's package), optionally in a
//!   [`Netns`] whose loopback has a 1500-byte MTU.
//! - [`Capture`]: tcpdump on that loopback into a pcap file.
//! - [`RawZk`]: a raw jute client that controls every byte and write();
//!   what it does is recorded in a [`Recorder`] as [`Expected`] counts.
//! - [`zk_dump_json`] / [`decoded_counts`]: run zk-dump on the capture and
//!   count what it decoded, to compare exactly with the workload.
//! - [`Scenario`]: the usual bundle (namespace + server + capture).
//!
//! Needs root (namespaces, tcpdump), `ip`, `tcpdump` and `java` with
//! Debian's `zookeeper`. Only loopback traffic inside namespaces this
//! harness creates (or the host's 127.0.0.1).
//!
//! Set `ZKT_ARTIFACTS=DIR` to keep every capture in DIR.

pub mod capture;
pub mod checks;
pub mod client;
pub mod counts;
pub mod jute;
pub mod netns;
pub mod pcap;
pub mod proc;
pub mod server;
pub mod zkdump;

pub use capture::{Capture, CaptureStats};
pub use client::{ConnectOpts, Endpoint, Event, Frame, MultiOp, RawZk, Reply};
pub use counts::{
    Counts, Expected, Recorder, assert_counts_eq, decoded_counts, decoded_counts_where,
};
pub use jute::CreateMode;
pub use netns::Netns;
pub use server::{ZkServer, ZkServerConfig};
pub use zkdump::{
    ZkDumpRun, field, of_type, shared_captures_dir, workspace_root, zk_dump, zk_dump_bin,
    zk_dump_checked, zk_dump_json,
};

use std::path::{Path, PathBuf};

/// A namespace, a server in it, a recorder and (while running) a capture
/// of the server's port.
pub struct Scenario {
    pub name: String,
    pub rec: Recorder,
    capture: Option<Capture>,
    pub pcap: PathBuf,
    pub server: ZkServer,
    pub ns: Netns,
    _dir: tempfile::TempDir,
}

impl Scenario {
    /// Namespace + server, no capture yet.
    pub fn new(name: &str) -> Scenario {
        let ns = Netns::new().expect("network namespace");
        let server = ZkServer::start_in(&ns).expect("ZooKeeper server");
        let dir = tempfile::Builder::new()
            .prefix("zkt-capture-")
            .tempdir()
            .expect("temp dir");
        let pcap = match std::env::var_os("ZKT_ARTIFACTS") {
            Some(d) => {
                let d = PathBuf::from(d);
                std::fs::create_dir_all(&d).expect("ZKT_ARTIFACTS dir");
                d.join(format!("{name}.pcap"))
            }
            None => dir.path().join(format!("{name}.pcap")),
        };
        Scenario {
            name: name.to_string(),
            rec: Recorder::new(),
            capture: None,
            pcap,
            server,
            ns,
            _dir: dir,
        }
    }

    /// Namespace + server + capture running.
    pub fn start(name: &str) -> Scenario {
        let mut s = Self::new(name);
        s.start_capture();
        s
    }

    pub fn start_capture(&mut self) {
        assert!(self.capture.is_none(), "capture already running");
        self.capture =
            Some(Capture::start(Some(&self.ns), self.server.port(), &self.pcap).expect("tcpdump"));
    }

    /// Stops the capture (after a settle delay); panics if packets were lost.
    pub fn stop_capture(&mut self) -> CaptureStats {
        let c = self.capture.take().expect("capture not running");
        let st = c.stop().expect("stop capture");
        assert!(st.captured > 0, "{}: the capture is empty", self.name);
        let file = pcap::PcapFile::read(&self.pcap).expect("read capture");
        assert_eq!(
            file.records.len() as u64,
            st.captured,
            "{}: file records vs tcpdump's count",
            self.name
        );
        let cut = file
            .records
            .iter()
            .filter(|r| (r.orig_len as usize) > r.data.len())
            .count();
        assert_eq!(
            cut, 0,
            "{}: {cut} packets truncated by the snap length",
            self.name
        );
        st
    }

    pub fn endpoint(&self) -> Endpoint {
        self.server.endpoint()
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// A new session, recorded.
    pub fn connect(&self) -> RawZk {
        RawZk::connect(&self.endpoint(), &self.rec).expect("connect")
    }

    pub fn pcap_path(&self) -> &Path {
        &self.pcap
    }

    /// `zk-dump --offline PCAP --json --include-pings --port PORT`.
    pub fn decode(&self) -> Vec<serde_json::Value> {
        let port = self.port().to_string();
        zk_dump_json(&self.pcap, &["--port", &port])
    }

    /// The whole zk-dump run (stderr counters included).
    pub fn decode_run(&self) -> ZkDumpRun {
        let port = self.port().to_string();
        zk_dump_checked(&self.pcap, &["--port", &port])
    }
}

/// Panics with a readable diff unless zk-dump's decode of the scenario's
/// capture equals the recorded workload exactly.
#[track_caller]
pub fn assert_decodes_to_expected(s: &Scenario, events: &[serde_json::Value]) {
    assert_counts_eq(&s.name, &decoded_counts(events), &s.rec.expected());
}
