//! `Capture`: tcpdump on `lo` (in a namespace or on the host) writing a
//! classic pcap file. `start` returns once tcpdump says it is listening;
//! `stop` lets the last packets land, sends SIGINT, waits for tcpdump to
//! finish the file and fails if the kernel dropped any packet.

use crate::netns::Netns;
use crate::proc::{kill_and_reap, signal, spawn_tied, wait_timeout};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for the last packets to reach tcpdump before it is stopped.
pub const SETTLE: Duration = Duration::from_millis(300);

pub struct Capture {
    child: Option<Child>,
    path: PathBuf,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

/// tcpdump's closing counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub captured: u64,
    pub received_by_filter: u64,
    pub dropped_by_kernel: u64,
}

fn parse_count(lines: &[String], what: &str) -> Option<u64> {
    lines
        .iter()
        .find(|l| l.contains(what))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

impl Capture {
    /// Captures `tcp port <port>` on `lo` into `file`.
    pub fn start(netns: Option<&Netns>, port: u16, file: &Path) -> io::Result<Capture> {
        Self::start_filter(netns, &format!("tcp port {port}"), file)
    }

    pub fn start_filter(netns: Option<&Netns>, filter: &str, file: &Path) -> io::Result<Capture> {
        Self::start_on(netns, "lo", filter, file)
    }

    /// Captures `filter` on interface `iface` into `file`.
    pub fn start_on(
        netns: Option<&Netns>,
        iface: &str,
        filter: &str,
        file: &Path,
    ) -> io::Result<Capture> {
        let mut cmd = match netns {
            Some(ns) => ns.command("tcpdump"),
            None => Command::new("tcpdump"),
        };
        // Immediate mode makes libpcap use fixed-size ring slots of about
        // the snap length: with the 262144-byte default a 32 MB ring holds
        // ~128 packets and drops under load. Inside our namespaces the MTU
        // (and GSO size) is known, so a snap length just above it keeps
        // thousands of slots and still never truncates a packet.
        let (snaplen, ring_kib) = match netns {
            Some(ns) => (ns.mtu() + 128, 65536),
            None => (0, 131072),
        };
        cmd.args(["-i", iface, "-n", "-s"])
            .arg(snaplen.to_string())
            .arg("-B")
            .arg(ring_kib.to_string())
            .args(["-U", "--immediate-mode", "-Z", "root", "-w"])
            .arg(file)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn_tied(&mut cmd).map_err(|e| {
            io::Error::other(format!(
                "cannot run tcpdump (apt-get install -y tcpdump): {e}"
            ))
        })?;
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let l2 = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
                l2.lock().unwrap().push(line);
            }
        });
        let mut cap = Capture {
            child: Some(child),
            path: file.to_path_buf(),
            stderr: lines,
            reader: Some(reader),
        };
        match rx.recv_timeout(LISTEN_TIMEOUT) {
            Ok(()) => Ok(cap),
            Err(_) => {
                let c = cap.child.take().unwrap();
                kill_and_reap(c);
                let _ = cap.reader.take().unwrap().join();
                Err(io::Error::other(format!(
                    "tcpdump did not start listening within {LISTEN_TIMEOUT:?}: {}",
                    cap.stderr.lock().unwrap().join("\n")
                )))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the capture and returns tcpdump's counters; an error if
    /// tcpdump did not exit cleanly or the kernel dropped packets.
    pub fn stop(mut self) -> io::Result<CaptureStats> {
        std::thread::sleep(SETTLE);
        let mut child = self.child.take().unwrap();
        if let Err(e) = signal(&child, libc::SIGINT) {
            kill_and_reap(child);
            return Err(e);
        }
        let status = match wait_timeout(&mut child, STOP_TIMEOUT)? {
            Some(st) => st,
            None => {
                let _ = signal(&child, libc::SIGTERM);
                match wait_timeout(&mut child, Duration::from_secs(2))? {
                    Some(st) => st,
                    None => {
                        kill_and_reap(child);
                        return Err(io::Error::other("tcpdump ignored SIGINT and SIGTERM"));
                    }
                }
            }
        };
        let _ = self.reader.take().unwrap().join();
        let lines = self.stderr.lock().unwrap().clone();
        let stats = CaptureStats {
            captured: parse_count(&lines, "packets captured").unwrap_or(0),
            received_by_filter: parse_count(&lines, "packets received by filter").unwrap_or(0),
            dropped_by_kernel: parse_count(&lines, "packets dropped by kernel").unwrap_or(0),
        };
        if !status.success() {
            return Err(io::Error::other(format!(
                "tcpdump exited with {status}: {}",
                lines.join("\n")
            )));
        }
        if stats.dropped_by_kernel > 0 {
            return Err(io::Error::other(format!(
                "capture {} is incomplete: {} packets dropped by kernel",
                self.path.display(),
                stats.dropped_by_kernel
            )));
        }
        Ok(stats)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            kill_and_reap(c);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}
