//! A real 3-node ZooKeeper 3.8 ensemble on 127.0.0.1-3 (ports 2888, 3888
//! and 2181 on each address, inside a network namespace of our own), its
//! quorum, election and client traffic captured with tcpdump on `lo`:
//!
//! 1. start the three servers together; wait for a leader (L1);
//! 2. known writes through a follower (forwarded as REQUESTs) and through
//!    the leader, each session created and closed;
//! 3. kill L1; wait for the new leader (L2) among the survivors;
//! 4. known writes again; restart L1, which rejoins as a follower; a last
//!    session through it.
//!
//! Then `zab-dump` must show exactly the transactions committed (writes
//! plus session creates and closes) as distinct PROPOSAL and COMMIT zxids,
//! `fle-dump --summary` two elections won by L1 and L2 and L1's rejoin as
//! a join, and `zab-dump --summary` L1's sync with its type.
//!
//! Needs root (namespaces, tcpdump), Debian's `zookeeper` and the
//! fle-dump / zab-dump binaries (`cargo build -p zk-traffic`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use zk_traffic_tests::proc::{kill_and_reap, spawn_tied, wait_timeout};
use zk_traffic_tests::server::{ZK_CONF_DIR, ZK_JAR};
use zk_traffic_tests::zkdump::{parse_ndjson, workspace_root};
use zk_traffic_tests::{Capture, CreateMode, Endpoint, Netns, RawZk, Recorder};

const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";
const READY: Duration = Duration::from_secs(45);

/// fle-dump or zab-dump: `$FLE_DUMP_BIN` / `$ZAB_DUMP_BIN`, else next to
/// the zk-dump the harness would use.
mod zk_stats_support;

fn tool(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&var) {
        return PathBuf::from(p);
    }
    let mut dirs = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let t = PathBuf::from(t);
        dirs.push(if t.is_relative() {
            workspace_root().join(t)
        } else {
            t
        });
    }
    dirs.push(workspace_root().join("target"));
    for d in &dirs {
        let p = d.join("debug").join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found: build it first with `cargo build -p zk-traffic` (or set {var})");
}

/// Runs a tool on a capture; returns its NDJSON and stderr.
fn run_tool(name: &str, pcap: &Path, args: &[&str]) -> (Vec<Value>, String) {
    let bin = tool(name);
    let mut child = Command::new(&bin)
        .arg("--offline")
        .arg(pcap)
        .arg("--json")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let te = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let status = wait_timeout(&mut child, Duration::from_secs(60))
        .expect("wait")
        .unwrap_or_else(|| panic!("{name} ran longer than 60 s"));
    let (stdout, stderr) = (to.join().unwrap(), te.join().unwrap());
    assert!(
        status.success(),
        "{name} {args:?} failed ({status}):\n{stderr}"
    );
    (parse_ndjson(&stdout), stderr)
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn int_field(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

/// One server of the ensemble.
struct Member {
    dir: PathBuf,
    child: Option<Child>,
}

struct Ensemble {
    ns: Netns,
    members: Vec<Member>,
    _root: tempfile::TempDir,
}

impl Ensemble {
    fn new(ns: &Netns) -> Ensemble {
        let root = tempfile::Builder::new()
            .prefix("zkt-ensemble-")
            .tempdir()
            .expect("temp dir");
        let servers: String = (1..=3)
            .map(|i| format!("server.{i}=127.0.0.{i}:2888:3888\n"))
            .collect();
        let members = (1..=3u8)
            .map(|id| {
                let dir = root.path().join(format!("zk{id}"));
                let data = dir.join("data");
                fs::create_dir_all(&data).unwrap();
                fs::write(data.join("myid"), format!("{id}\n")).unwrap();
                let conf = format!(
                    "tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort=2181\n\
                     clientPortAddress=127.0.0.{id}\nadmin.enableServer=false\n\
                     4lw.commands.whitelist=*\nforceSync=no\nmaxClientCnxns=0\n{servers}",
                    data.display()
                );
                fs::write(dir.join("zoo.cfg"), conf).unwrap();
                Member { dir, child: None }
            })
            .collect();
        Ensemble {
            ns: ns.clone(),
            members,
            _root: root,
        }
    }

    fn member(&mut self, id: u8) -> &mut Member {
        &mut self.members[id as usize - 1]
    }

    fn start(&mut self, id: u8) {
        let ns = self.ns.clone();
        let m = self.member(id);
        assert!(m.child.is_none(), "server {id} already running");
        let mut cp = format!("{ZK_CONF_DIR}:{ZK_JAR}");
        if Path::new(SLF4J_SIMPLE).exists() {
            cp.push(':');
            cp.push_str(SLF4J_SIMPLE);
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(m.dir.join("server.log"))
            .unwrap();
        let mut cmd = ns.command("java");
        cmd.args([
            "-Xmx128m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.net.preferIPv4Stack=true",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-cp",
            &cp,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        ])
        .arg(m.dir.join("zoo.cfg"))
        .current_dir(&m.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log));
        m.child = Some(spawn_tied(&mut cmd).expect("start java"));
    }

    fn kill(&mut self, id: u8) {
        if let Some(c) = self.member(id).child.take() {
            kill_and_reap(c);
        }
    }

    fn endpoint(&self, id: u8) -> Endpoint {
        Endpoint {
            addr: SocketAddr::from((Ipv4Addr::new(127, 0, 0, id), 2181)),
            netns: Some(self.ns.clone()),
        }
    }

    /// `srvr` of one server: its mode and last zxid, if it is serving.
    fn srvr(&self, id: u8) -> Option<(String, i64)> {
        let text = self.endpoint(id).four_letter("srvr", None).ok()?;
        let mode = text.lines().find_map(|l| l.strip_prefix("Mode: "))?.trim();
        let zxid = text
            .lines()
            .find_map(|l| l.strip_prefix("Zxid: "))
            .and_then(|z| i64::from_str_radix(z.trim().trim_start_matches("0x"), 16).ok())?;
        Some((mode.to_owned(), zxid))
    }

    /// Waits until the running servers `ids` serve with exactly one leader;
    /// returns the leader.
    fn wait_leader(&self, ids: &[u8]) -> u8 {
        let start = Instant::now();
        let mut last = BTreeMap::new();
        while start.elapsed() < READY {
            last = ids.iter().map(|&i| (i, self.srvr(i))).collect();
            let modes: Vec<&str> = last
                .values()
                .filter_map(|s| s.as_ref().map(|(m, _)| m.as_str()))
                .collect();
            if modes.len() == ids.len()
                && modes.iter().filter(|m| **m == "leader").count() == 1
                && modes.iter().all(|m| *m == "leader" || *m == "follower")
            {
                return *last
                    .iter()
                    .find(|(_, s)| s.as_ref().is_some_and(|(m, _)| m == "leader"))
                    .unwrap()
                    .0;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let logs: String = ids
            .iter()
            .map(|&i| {
                let log = fs::read_to_string(self.members[i as usize - 1].dir.join("server.log"))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                format!(
                    "--- server {i}:\n{}\n",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect();
        panic!("no single leader among {ids:?} after {READY:?}: {last:?}\n{logs}");
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(c) = m.child.take() {
                kill_and_reap(c);
            }
        }
    }
}

/// A session that writes `paths` (creates, then a setData on the first)
/// and closes: 1 + writes + 1 transactions. Returns the count.
fn session(ens: &Ensemble, via: u8, rec: &Recorder, prefix: &str, n: usize) -> usize {
    // A server that has just joined or won an election may refuse sessions
    // for a moment ("not currently serving requests"): retry, bounded.
    let mut tries = 0;
    let mut zk = loop {
        match RawZk::connect(&ens.endpoint(via), rec) {
            Ok(zk) => break zk,
            Err(e) if tries < 40 => {
                tries += 1;
                eprintln!("connect to server {via} failed ({e}); retrying");
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            Err(e) => panic!("connect to server {via}: {e}"),
        }
    };
    zk.create(prefix, b"root", CreateMode::Persistent)
        .unwrap()
        .ok();
    for i in 0..n {
        zk.create(&format!("{prefix}/{i}"), b"v", CreateMode::Persistent)
            .unwrap()
            .ok();
    }
    zk.set_data(prefix, b"updated", -1).unwrap().ok();
    zk.close().expect("close");
    // createSession + create prefix + n creates + setData + closeSession
    1 + 1 + n + 1 + 1
}

#[test]
fn ensemble_failover_elections_commits_and_rejoin_sync() {
    let t0 = Instant::now();
    let ns = Netns::new().expect("network namespace (needs root)");
    let dir = tempfile::tempdir().unwrap();
    let pcap = match std::env::var_os("ZKT_ARTIFACTS") {
        Some(d) => {
            let d = PathBuf::from(d);
            fs::create_dir_all(&d).unwrap();
            d.join("ensemble.pcap")
        }
        None => dir.path().join("ensemble.pcap"),
    };
    let capture = Capture::start_filter(
        Some(&ns),
        "tcp port 2888 or tcp port 3888 or tcp port 2181",
        &pcap,
    )
    .expect("tcpdump");
    let mut ens = Ensemble::new(&ns);
    for id in 1..=3 {
        ens.start(id);
    }
    let l1 = ens.wait_leader(&[1, 2, 3]);
    let f1 = (1..=3u8).find(|&i| i != l1).unwrap();
    let rec = Recorder::new();

    // Phase 1: a session through a follower (forwarded), one through L1.
    let mut txns1 = session(&ens, f1, &rec, "/phase1", 4);
    txns1 += session(&ens, l1, &rec, "/phase1b", 1);
    let (_, zxid1) = ens.srvr(l1).expect("srvr on L1");
    assert_eq!(
        zxid1 & 0xffff_ffff,
        txns1 as i64,
        "L1's last zxid {zxid1:#x} vs {txns1} transactions"
    );
    let epoch1 = zxid1 >> 32;

    // Phase 2: kill L1, a new leader among the survivors, writes.
    ens.kill(l1);
    let survivors: Vec<u8> = (1..=3).filter(|&i| i != l1).collect();
    let l2 = ens.wait_leader(&survivors);
    let f2 = *survivors.iter().find(|&&i| i != l2).unwrap();
    let mut txns2 = session(&ens, f2, &rec, "/phase2", 3);

    // Phase 3: L1 comes back and rejoins; a session through it.
    ens.start(l1);
    assert_eq!(
        ens.wait_leader(&[1, 2, 3]),
        l2,
        "the leader changed when L1 rejoined"
    );
    txns2 += session(&ens, l1, &rec, "/phase3", 0);
    let (_, zxid2) = ens.srvr(l2).expect("srvr on L2");
    let epoch2 = zxid2 >> 32;
    assert_eq!(
        zxid2 & 0xffff_ffff,
        txns2 as i64,
        "L2's last zxid {zxid2:#x}"
    );
    assert!(epoch2 > epoch1);
    let st = capture.stop().expect("stop capture");
    assert!(st.captured > 0);
    let workload = t0.elapsed();

    // Every transaction, and nothing else, was proposed and committed.
    let expected: BTreeSet<i64> = (1..=txns1 as i64)
        .map(|c| (epoch1 << 32) | c)
        .chain((1..=txns2 as i64).map(|c| (epoch2 << 32) | c))
        .collect();
    let (zab, zab_err) = run_tool("zab-dump", &pcap, &[]);
    let zxids = |ty: &str| -> BTreeSet<i64> {
        zab.iter()
            .filter(|e| str_field(e, "type") == Some(ty))
            .filter_map(|e| int_field(e, "zxid"))
            .collect()
    };
    let hex = |s: &BTreeSet<i64>| s.iter().map(|z| format!("{z:#x}")).collect::<Vec<_>>();
    assert_eq!(
        hex(&zxids("PROPOSAL")),
        hex(&expected),
        "distinct PROPOSAL zxids vs transactions committed; zab-dump stderr:\n{zab_err}"
    );
    assert_eq!(
        hex(&zxids("COMMIT")),
        hex(&expected),
        "distinct COMMIT zxids"
    );
    assert!(
        zab_err.contains("framing[] decode[]"),
        "decode errors:\n{zab_err}"
    );
    // Session creates and closes are among them, four of each.
    let mut by_type: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for e in zab
        .iter()
        .filter(|e| str_field(e, "type") == Some("PROPOSAL"))
    {
        by_type
            .entry(str_field(e, "txn_type").unwrap_or("?").to_owned())
            .or_default()
            .insert(int_field(e, "zxid").unwrap());
    }
    let n = |t: &str| by_type.get(t).map_or(0, BTreeSet::len);
    assert_eq!(
        (n("createSession"), n("closeSession")),
        (4, 4),
        "{by_type:?}"
    );
    assert_eq!(n("create") + n("setData"), txns1 + txns2 - 8, "{by_type:?}");
    // Writes through followers were forwarded.
    assert!(
        zab.iter().any(|e| str_field(e, "type") == Some("REQUEST")
            && str_field(e, "request") == Some("CreateRequest")),
        "no forwarded CreateRequest"
    );

    // Two elections, won by L1 and L2; L1's return is a join.
    let (fle, fle_err) = run_tool("fle-dump", &pcap, &["--summary"]);
    let kinds: Vec<(String, Option<i64>, Vec<i64>)> = fle
        .iter()
        .map(|e| {
            (
                str_field(e, "type").unwrap_or("?").to_owned(),
                int_field(e, "winner"),
                e["voters"]
                    .as_array()
                    .map(|v| v.iter().filter_map(|x| int_field(x, "sid")).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let elections: Vec<Option<i64>> = kinds
        .iter()
        .filter(|k| k.0 == "Election")
        .map(|k| k.1)
        .collect();
    assert_eq!(
        elections,
        [Some(i64::from(l1)), Some(i64::from(l2))],
        "elections and winners: {kinds:?}\n{fle_err}"
    );
    let rejoin = kinds.iter().rev().find(|k| k.0 == "Join");
    assert_eq!(
        rejoin.map(|k| (k.1, k.2.clone())),
        Some((Some(i64::from(l2)), vec![i64::from(l1)])),
        "L1's rejoin: {kinds:?}"
    );
    let second = fle
        .iter()
        .filter(|e| str_field(e, "type") == Some("Election"))
        .nth(1)
        .unwrap();
    let took = second["duration_ms"].as_f64().unwrap();
    assert!(
        took > 0.0 && took < 10_000.0,
        "second election took {took} ms"
    );

    // L1's rejoin: how it synchronised with L2.
    let (summary, _) = run_tool("zab-dump", &pcap, &["--summary"]);
    let syncs: Vec<&Value> = summary
        .iter()
        .filter(|e| str_field(e, "type") == Some("Sync"))
        .filter(|e| int_field(e, "learner_sid") == Some(i64::from(l1)))
        .filter(|e| int_field(e, "leader_sid") == Some(i64::from(l2)))
        .collect();
    assert_eq!(syncs.len(), 1, "L1's sync with L2: {summary:?}");
    let sync = syncs[0];
    assert_eq!(str_field(sync, "sync"), Some("DIFF"), "{sync}");
    // The DIFF carried the transactions L1 missed (phase 2 before it came back).
    let missed = session_txns_before_rejoin(&zab, l1, epoch2);
    assert_eq!(int_field(sync, "proposals"), Some(missed), "{sync}");
    let latency = summary
        .iter()
        .find(|e| str_field(e, "type") == Some("CommitLatency"))
        .expect("commit latency");
    assert_eq!(
        int_field(latency, "count"),
        Some(expected.len() as i64),
        "every transaction's commit timed: {latency}"
    );
    let lags: BTreeSet<i64> = summary
        .iter()
        .filter(|e| str_field(e, "type") == Some("AckLag"))
        .filter_map(|e| int_field(e, "sid"))
        .collect();
    assert_eq!(lags, (1..=3).collect(), "ack lag for every follower");
    // The omni mode sees the same elections and transactions in one pass.
    let (omni, omni_err) = run_tool("zk-omni-dump", &pcap, &["--summary"]);
    let omni_elections: Vec<Option<i64>> = omni
        .iter()
        .filter(|e| str_field(e, "type") == Some("Election"))
        .map(|e| int_field(e, "winner"))
        .collect();
    assert_eq!(omni_elections, elections, "zk-omni-dump:\n{omni_err}");
    let omni_latency = omni
        .iter()
        .find(|e| str_field(e, "type") == Some("CommitLatency"))
        .and_then(|e| int_field(e, "count"));
    assert_eq!(omni_latency, Some(expected.len() as i64));

    // zk-stats exports the same figures on /metrics.
    let mut cmd = std::process::Command::new(zk_stats_support::zk_stats_bin());
    cmd.arg("--offline").arg(&pcap).args(["--http-port", "0"]);
    let d = zk_stats_support::Daemon::start(cmd, None);
    d.wait_finished();
    let (status, body) = zk_stats_support::http_get(d.addr, "/metrics");
    assert_eq!(status, 200);
    let m = zk_stats_support::prometheus_samples(&body);
    assert_eq!(m["zk_elections_total{kind=\"election\"}"], 2.0, "{body}");
    assert!(m["zk_elections_total{kind=\"join\"}"] >= 1.0, "{body}");
    assert_eq!(m["zk_election_last_winner"], f64::from(l2), "{body}");
    assert!(m["zk_election_last_duration_seconds"] * 1e3 > 0.0);
    assert_eq!(
        m["zk_quorum_commit_latency_seconds_count"],
        expected.len() as f64,
        "every transaction's commit timed: {body}"
    );
    // Four learner syncs (two followers joining L1, the survivor joining
    // L2, L1 rejoining L2), of the kinds zab-dump reported. ZooKeeper picks
    // the kind: a fresh follower joining L1 gets a DIFF or a SNAP.
    for kind in ["DIFF", "TRUNC", "SNAP"] {
        let dumped = summary
            .iter()
            .filter(|e| str_field(e, "type") == Some("Sync"))
            .filter(|e| str_field(e, "sync") == Some(kind))
            .count();
        assert_eq!(
            m[&format!("zk_learner_syncs_total{{type=\"{kind}\"}}")],
            dumped as f64,
            "{kind} syncs: {body}"
        );
    }
    let syncs_total: f64 = ["DIFF", "TRUNC", "SNAP"]
        .iter()
        .map(|k| m[&format!("zk_learner_syncs_total{{type=\"{k}\"}}")])
        .sum();
    assert_eq!(syncs_total, 4.0, "{body}");
    for sid in 1..=3 {
        assert!(
            m[&format!("zk_follower_ack_lag_seconds_count{{follower=\"{sid}\"}}")] > 0.0,
            "ack lag of {sid}: {body}"
        );
    }
    eprintln!(
        "ensemble: L1={l1} L2={l2}, {} transactions, workload {workload:?}, total {:?}",
        expected.len(),
        t0.elapsed()
    );
}

/// Transactions of epoch `epoch` proposed before `learner` first sent
/// FOLLOWERINFO in that epoch's leader's connection (what a DIFF owes it).
fn session_txns_before_rejoin(zab: &[Value], learner: u8, epoch: i64) -> i64 {
    let joined = zab
        .iter()
        .filter(|e| str_field(e, "type") == Some("FOLLOWERINFO"))
        .filter(|e| int_field(e, "sid") == Some(i64::from(learner)))
        .filter_map(|e| e["ts"].as_f64())
        .fold(f64::MIN, f64::max);
    zab.iter()
        .filter(|e| str_field(e, "type") == Some("PROPOSAL"))
        .filter(|e| e["ts"].as_f64().is_some_and(|t| t < joined))
        .filter_map(|e| int_field(e, "zxid"))
        .filter(|z| z >> 32 == epoch)
        .collect::<BTreeSet<_>>()
        .len() as i64
}
