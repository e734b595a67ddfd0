//! zk-top in a real terminal: tmux runs `zk-top --offline` on a capture
//! of a real ZooKeeper 3.8 workload; the test sends keys (sort, filter,
//! depth, pause, help, quit) and reads the screen back with
//! `tmux capture-pane`, checking the top paths and their counts against
//! `zk-stats --offline` on the same capture.
//!
//! Needs root (namespaces), tmux, tcpdump and Debian's zookeeper.

mod zk_stats_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use zk_stats_support::{Tally, json_out, requests_per_path, workload};
use zk_traffic_tests::{Scenario, workspace_root};

fn zk_top_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ZK_TOP_BIN") {
        return p.into();
    }
    let p = workspace_root().join("target/debug/zk-top");
    assert!(
        p.is_file(),
        "{} is missing: cargo build --workspace --bins",
        p.display()
    );
    p
}

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Tmux {
        let t = Tmux {
            socket: format!("zkt-{name}-{}", std::process::id()),
        };
        let _ = t.cmd(&["kill-server"]);
        t
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux (apt-get install -y tmux)")
    }

    fn start(&self, cols: u16, rows: u16, command: &str) {
        let o = self.cmd(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            command,
        ]);
        assert!(
            o.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let o = self.cmd(&["send-keys", "-t", "top", k]);
            assert!(o.status.success());
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    /// The screen once `pred` holds (panics with it after 10 s).
    #[track_caller]
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// (path, requests) rows of the "top paths" pane, in screen order.
fn path_rows(screen: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in screen.lines() {
        if line.contains("top paths by") {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        if line.starts_with('└') {
            break;
        }
        // The pane is the first box on the line.
        let cell = line.trim_start_matches('│');
        let cell = cell.split('│').next().unwrap_or("");
        let mut words = cell.split_whitespace();
        let (Some(path), Some(n)) = (words.next(), words.next()) else {
            continue;
        };
        if path == "path" {
            continue;
        }
        let path = if path == "(no" {
            "".to_string()
        } else {
            path.to_string()
        };
        let n = if path.is_empty() {
            words.next().unwrap_or(n)
        } else {
            n
        };
        if let Ok(n) = n.parse() {
            out.push((path, n));
        }
    }
    out
}

/// The top `n` of `m` by count, ties by path.
fn ranked(m: &BTreeMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

fn capture() -> (Scenario, PathBuf, String) {
    let mut s = Scenario::start("zk_top_source");
    let mut t = Tally::default();
    workload(&s, &mut t);
    s.stop_capture();
    let port = s.port().to_string();
    let pcap = s.pcap.clone();
    (s, pcap, port)
}

fn command(pcap: &Path, port: &str, extra: &str) -> String {
    format!(
        "{} --offline {} --port {port} {extra}; echo zk-top-exited-$?; sleep 60",
        zk_top_bin().display(),
        pcap.display()
    )
}

#[test]
fn zk_top_shows_the_top_paths_and_follows_sort_filter_depth_pause_help_and_quit() {
    let (_s, pcap, port) = capture();
    let (full, _) = json_out(&pcap, &["--port", &port, "--max-results", "0"]);
    let per_path = requests_per_path(&full);

    let tmux = Tmux::new("top");
    tmux.start(100, 30, &command(&pcap, &port, "--no-wait"));
    let screen = tmux.wait("the replay to finish", |s| s.contains("finished"));
    let rows = path_rows(&screen);
    assert!(rows.len() >= 5, "too few path rows:\n{screen}");
    assert_eq!(
        rows,
        ranked(&per_path, rows.len()),
        "top paths; screen:\n{screen}"
    );
    // The workload's skew: the first children were read the most.
    assert!(rows.iter().any(|(p, _)| p == "/app/kids/k0"), "{screen}");
    assert!(
        screen.contains("GetData"),
        "latency and rates panes: {screen}"
    );
    assert!(screen.contains("NoNode"), "errors pane: {screen}");
    assert!(
        screen.contains("NodeDataChanged") || screen.contains("NodeDataChange"),
        "{screen}"
    );

    // s: sort by bytes: the 1,000,000-byte znode's create leads.
    tmux.keys(&["s"]);
    let screen = tmux.wait("sort by bytes", |s| s.contains("sort:bytes"));
    let rows = path_rows(&screen);
    assert_eq!(
        rows.first().map(|r| r.0.as_str()),
        Some("/app/big"),
        "{screen}"
    );
    tmux.keys(&["S"]);
    tmux.wait("sort back to requests", |s| s.contains("sort:requests"));

    // /: filter by prefix.
    tmux.keys(&["/", "/app/kids", "Enter"]);
    let screen = tmux.wait("the filter", |s| s.contains("filter:/app/kids"));
    let rows = path_rows(&screen);
    assert!(
        !rows.is_empty() && rows.iter().all(|(p, _)| p.starts_with("/app/kids")),
        "{screen}"
    );
    let kids: BTreeMap<String, u64> = per_path
        .iter()
        .filter(|(p, _)| p.starts_with("/app/kids"))
        .map(|(p, n)| (p.clone(), *n))
        .collect();
    assert_eq!(rows, ranked(&kids, rows.len()), "{screen}");

    // x clears; D aggregates to depth 1: /app holds every /app/... request.
    tmux.keys(&["x", "D"]);
    let screen = tmux.wait("depth 1", |s| {
        s.contains("depth:1") && !s.contains("filter:")
    });
    let rows = path_rows(&screen);
    let app: u64 = per_path
        .iter()
        .filter(|(p, _)| p.as_str() == "/app" || p.starts_with("/app/"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(rows.first(), Some(&("/app".to_string(), app)), "{screen}");
    tmux.keys(&["d"]);
    tmux.wait("depth 0", |s| s.contains("depth:0"));

    // p pauses and resumes; ? shows the help, any key closes it.
    tmux.keys(&["p"]);
    tmux.wait("pause", |s| s.contains("PAUSED"));
    tmux.keys(&["p"]);
    tmux.wait("resume", |s| !s.contains("PAUSED"));
    tmux.keys(&["?"]);
    tmux.wait("help", |s| s.contains("zk-top keys"));
    tmux.keys(&["Space"]);
    tmux.wait("help closed", |s| !s.contains("zk-top keys"));

    // q quits, with exit code 0, and gives the terminal back.
    tmux.keys(&["q"]);
    tmux.wait("exit", |s| s.contains("zk-top-exited-0"));
}

#[test]
fn zk_top_fits_80x24_and_replays_at_the_recorded_pace() {
    let (_s, pcap, port) = capture();
    let file = zk_traffic_tests::pcap::PcapFile::read(&pcap).unwrap();
    // Microsecond timestamps (tcpdump's default).
    let ts =
        |r: &zk_traffic_tests::pcap::Record| i64::from(r.ts_sec) * 1_000_000 + i64::from(r.ts_frac);
    let (first, last) = (
        ts(file.records.first().unwrap()),
        ts(file.records.last().unwrap()),
    );
    let span = Duration::from_micros((last - first) as u64);
    let tmux = Tmux::new("small");
    let t0 = Instant::now();
    tmux.start(80, 24, &command(&pcap, &port, "--speed 2"));
    let screen = tmux.wait("running", |s| s.contains("zk-top"));
    assert!(screen.lines().count() <= 24);
    for pane in [
        "requests/s by type",
        "latency by type",
        "top paths",
        "top clients",
        "errors",
        "sessions",
    ] {
        assert!(screen.contains(pane), "{pane} missing at 80x24:\n{screen}");
    }
    // Every line fits the width.
    assert!(screen.lines().all(|l| l.chars().count() <= 80), "{screen}");
    let t = Instant::now();
    loop {
        if tmux.screen().contains("finished") {
            break;
        }
        assert!(
            t.elapsed() < span + Duration::from_secs(20),
            "replay did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // At speed 2 the replay takes about half the capture's span.
    let took = t0.elapsed();
    assert!(
        took + Duration::from_millis(300) >= span / 2,
        "{took:?} for a {span:?} capture at x2"
    );
    tmux.keys(&["q"]);
    tmux.wait("exit", |s| s.contains("zk-top-exited-0"));
}
