//! Running the `zk-dump` binary on a capture and reading its NDJSON.
//!
//! The binary is the one `cargo build --workspace --bins` (or
//! `cargo build -p zk-traffic`) leaves in `<target>/debug/zk-dump`; env
//! `ZK_DUMP_BIN` overrides the path.

use crate::proc::{kill_and_reap, wait_timeout};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate has a parent")
        .to_path_buf()
}

/// `<workspace>/../shared/captures/zktraffic`.
pub fn shared_captures_dir() -> PathBuf {
    workspace_root().join("../shared/captures/zktraffic")
}

/// Where the zk-dump binary is: `$ZK_DUMP_BIN`, else
/// `$CARGO_TARGET_DIR/debug/zk-dump`, else `<workspace>/target/debug/zk-dump`.
/// Panics with instructions when it is missing.
pub fn zk_dump_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ZK_DUMP_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "ZK_DUMP_BIN={} does not exist", p.display());
        return p;
    }
    let mut candidates = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let t = PathBuf::from(t);
        let t = if t.is_relative() {
            workspace_root().join(t)
        } else {
            t
        };
        candidates.push(t.join("debug/zk-dump"));
    }
    candidates.push(workspace_root().join("target/debug/zk-dump"));
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "zk-dump binary not found (looked at {}). Build it first: `cargo build --workspace --bins` \
         (or `cargo build -p zk-traffic`), or point ZK_DUMP_BIN at it.",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// One zk-dump run.
#[derive(Debug)]
pub struct ZkDumpRun {
    pub events: Vec<Value>,
    pub stdout: String,
    /// Counters and diagnostics.
    pub stderr: String,
    pub status: ExitStatus,
}

impl ZkDumpRun {
    /// True when the process ended by a Rust panic (exit 101) or a signal.
    pub fn crashed(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        self.status.code() == Some(101) || self.status.signal().is_some()
    }
}

/// Parses NDJSON; panics on a line that is not a JSON object.
pub fn parse_ndjson(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("zk-dump stdout line {} is not JSON ({e}): {l}", i + 1));
            assert!(
                v.is_object(),
                "zk-dump stdout line {} is not an object: {l}",
                i + 1
            );
            v
        })
        .collect()
}

/// Runs `zk-dump --offline FILE --json --include-pings EXTRA...` and returns
/// whatever happened (no assertion on the exit status). Bounded in time.
pub fn zk_dump(pcap: &Path, extra_args: &[&str]) -> ZkDumpRun {
    let bin = zk_dump_bin();
    let mut cmd = Command::new(&bin);
    cmd.arg("--offline")
        .arg(pcap)
        .args(["--json", "--include-pings"])
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let te = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let status = match wait_timeout(&mut child, RUN_TIMEOUT).expect("wait zk-dump") {
        Some(st) => st,
        None => {
            kill_and_reap(child);
            panic!(
                "zk-dump on {} ran longer than {RUN_TIMEOUT:?}",
                pcap.display()
            );
        }
    };
    let stdout = String::from_utf8_lossy(&to.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&te.join().unwrap()).into_owned();
    let events = parse_ndjson(&stdout);
    ZkDumpRun {
        events,
        stdout,
        stderr,
        status,
    }
}

/// `zk_dump`, asserting a successful exit; returns the NDJSON objects.
pub fn zk_dump_json(pcap: &Path, extra_args: &[&str]) -> Vec<Value> {
    zk_dump_checked(pcap, extra_args).events
}

/// `zk_dump`, asserting a successful exit; returns the whole run (stderr
/// holds the counters).
pub fn zk_dump_checked(pcap: &Path, extra_args: &[&str]) -> ZkDumpRun {
    let run = zk_dump(pcap, extra_args);
    assert!(
        run.status.success(),
        "zk-dump --offline {} {:?} failed ({}); stderr:\n{}",
        pcap.display(),
        extra_args,
        run.status,
        run.stderr
    );
    run
}

/// The string field `k` of an NDJSON object.
pub fn field<'a>(ev: &'a Value, k: &str) -> Option<&'a str> {
    ev.get(k).and_then(Value::as_str)
}

/// Objects with `type == ty`.
pub fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| field(e, "type") == Some(ty))
        .collect()
}
