//! `--summary` for `fle-dump` and `zab-dump`: elections with who voted for
//! whom and how long each took; commit-latency percentiles, per-follower
//! ack lag, leaders and learner syncs.
//!
//! zk-wire's [`QuorumAnalysis`] establishes the facts (as [`Finding`]s and
//! tables); this module keeps owned copies, computes exact percentiles from
//! the samples (up to [`MAX_SAMPLES`] per series, then from zk-wire's
//! histogram) and renders them as text or NDJSON records.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use zk_wire::zab::PacketCounts;

use serde::Serialize;
use zk_wire::quorum_analysis::{Election, Finding, QuorumAnalysis, SyncRecord};
use zk_wire::stats::Histogram;

/// Samples kept per latency series for exact percentiles.
pub const MAX_SAMPLES: usize = 1 << 20;

fn secs(i: zk_wire::Instant) -> f64 {
    i.total_micros() as f64 / 1e6
}

/// One vote as announced.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VoteRecord {
    /// When it was first announced.
    pub ts: f64,
    /// Who votes.
    pub voter: i64,
    /// For whom.
    pub leader: i64,
    /// The proposed leader's zxid.
    pub zxid: i64,
    /// The round (election epoch).
    pub round: i64,
}

/// A looking server and its votes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VoterRecord {
    /// Its id.
    pub sid: i64,
    /// Its first vote.
    pub first_vote: i64,
    /// Its last vote.
    pub vote: i64,
    /// The zxid of its last vote.
    pub zxid: i64,
    /// The round of its last vote.
    pub round: i64,
    /// Vote changes.
    pub changes: u32,
    /// LOOKING notifications it sent.
    pub notifications: u32,
}

/// An election or a join, for printing.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ElectionRecord {
    /// `Election` or `Join`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Sequence number.
    pub id: u32,
    /// First LOOKING notification.
    pub start: f64,
    /// When a quorum's votes agreed (elections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided: Option<f64>,
    /// Last notification.
    pub end: f64,
    /// Start to decision (or to the last notification), ms.
    pub duration_ms: f64,
    /// The winner, or the leader a joining server found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winner: Option<i64>,
    /// Highest round.
    pub round: i64,
    /// Quorum size used.
    pub quorum: usize,
    /// The looking servers.
    pub voters: Vec<VoterRecord>,
    /// Every vote announced, in order.
    pub votes: Vec<VoteRecord>,
    /// Notifications in the episode.
    pub notifications: u32,
    /// Answers from servers that were not looking.
    pub answers: u32,
    /// Re-sent votes of an earlier election.
    pub stale: u32,
    /// LOOKING notifications whose sender was unknown.
    pub unattributed: u32,
}

impl ElectionRecord {
    /// Copies an episode.
    pub fn from_election(e: &Election) -> Self {
        ElectionRecord {
            kind: match e.kind {
                zk_wire::quorum_analysis::EpisodeKind::Election => "Election",
                zk_wire::quorum_analysis::EpisodeKind::Join => "Join",
            },
            id: e.id,
            start: secs(e.start),
            decided: e.decided.map(secs),
            end: secs(e.last),
            duration_ms: e.duration().total_micros() as f64 / 1000.0,
            winner: e.winner,
            round: if e.round == i64::MIN { 0 } else { e.round },
            quorum: e.quorum,
            voters: e
                .voters()
                .iter()
                .map(|v| VoterRecord {
                    sid: v.sid,
                    first_vote: v.first.leader,
                    vote: v.last.leader,
                    zxid: v.last.zxid,
                    round: v.last.round,
                    changes: v.changes,
                    notifications: v.notifications,
                })
                .collect(),
            votes: e
                .votes()
                .iter()
                .map(|v| VoteRecord {
                    ts: secs(v.ts),
                    voter: v.voter,
                    leader: v.leader,
                    zxid: v.zxid,
                    round: v.round,
                })
                .collect(),
            notifications: e.notifications,
            answers: e.answers,
            stale: e.stale,
            unattributed: e.unattributed,
        }
    }
}

/// A learner's sync, for printing.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncSummary {
    /// Always `Sync`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Learner connection.
    pub learner: String,
    /// Learner id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learner_sid: Option<i64>,
    /// Joined as an observer.
    pub observer: bool,
    /// Leader quorum address.
    pub leader: String,
    /// Leader id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_sid: Option<i64>,
    /// `DIFF`, `TRUNC` or `SNAP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<&'static str>,
    /// Zxid of the DIFF/TRUNC/SNAP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zxid: Option<i64>,
    /// The learner's last zxid (ACKEPOCH).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learner_zxid: Option<i64>,
    /// The new epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
    /// Transactions sent during the sync.
    pub proposals: u32,
    /// Snapshot bytes sent.
    pub snapshot_bytes: u64,
    /// FOLLOWERINFO time.
    pub start: f64,
    /// UPTODATE time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    /// FOLLOWERINFO to UPTODATE, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
}

impl SyncSummary {
    /// Copies a sync record.
    pub fn from_record(s: &SyncRecord) -> Self {
        SyncSummary {
            kind: "Sync",
            learner: s.learner.to_string(),
            learner_sid: s.learner_sid,
            observer: s.observer,
            leader: s.leader.to_string(),
            leader_sid: s.leader_sid,
            sync: s.kind.map(|k| k.name()),
            zxid: s.sync_zxid,
            learner_zxid: s.learner_zxid,
            epoch: s.epoch,
            proposals: s.proposals,
            snapshot_bytes: s.snapshot_bytes,
            start: secs(s.start),
            end: s.end.map(secs),
            duration_ms: s.duration().map(|d| d.total_micros() as f64 / 1000.0),
        }
    }
}

/// Percentiles of a latency series, µs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest.
    pub max_us: u64,
    /// Mean.
    pub mean_us: u64,
}

/// Exact samples, then a histogram once there are too many.
#[derive(Debug, Clone, Default)]
pub struct Series {
    samples: Vec<u64>,
    overflowed: bool,
}

impl Series {
    /// Adds a sample.
    pub fn push(&mut self, us: u64) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(us);
        } else {
            self.overflowed = true;
        }
    }

    /// Percentiles: exact when every sample was kept, else from `fallback`.
    pub fn percentiles(&self, fallback: &Histogram) -> Option<Percentiles> {
        if self.overflowed && fallback.count() > 0 {
            return Some(Percentiles {
                count: fallback.count(),
                p50_us: fallback.quantile(0.5),
                p90_us: fallback.quantile(0.9),
                p99_us: fallback.quantile(0.99),
                max_us: fallback.max(),
                mean_us: fallback.mean() as u64,
            });
        }
        if self.samples.is_empty() {
            return None;
        }
        let mut v = self.samples.clone();
        v.sort_unstable();
        let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(Percentiles {
            count: v.len() as u64,
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
            max_us: *v.last().unwrap_or(&0),
            mean_us: v.iter().sum::<u64>() / v.len() as u64,
        })
    }
}

/// Collects findings as they come.
#[derive(Debug, Default)]
pub struct QuorumSummary {
    /// Closed election episodes.
    pub elections: Vec<ElectionRecord>,
    /// Completed syncs.
    pub syncs: Vec<SyncSummary>,
    /// Commit latencies.
    pub commits: Series,
    /// Ack lags by follower key (`sid N` or the IP).
    pub acks: BTreeMap<String, (Option<i64>, String, Series)>,
}

impl QuorumSummary {
    /// Takes one finding.
    pub fn add(&mut self, f: &Finding<'_>) {
        match f {
            Finding::Election(e) => self.elections.push(ElectionRecord::from_election(e)),
            Finding::Synced(s) => self.syncs.push(SyncSummary::from_record(s)),
            Finding::Committed { latency, .. } => self.commits.push(latency.total_micros()),
            Finding::Acked {
                sid, learner, lag, ..
            } => {
                let key = follower_key(*sid, learner);
                self.acks
                    .entry(key)
                    .or_insert_with(|| (*sid, learner.ip().to_string(), Series::default()))
                    .2
                    .push(lag.total_micros());
            }
        }
    }
}

fn follower_key(sid: Option<i64>, learner: &SocketAddr) -> String {
    match sid {
        Some(s) => format!("sid {s:>4}"),
        None => format!("ip {}", learner.ip()),
    }
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

fn clock(t: f64) -> String {
    let micros = (t * 1e6).round() as i64;
    let day = micros.div_euclid(1_000_000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}:{:06}",
        day / 3600,
        day % 3600 / 60,
        day % 60,
        micros.rem_euclid(1_000_000)
    )
}

/// Text of the election summary.
pub fn elections_text(s: &QuorumSummary, a: &QuorumAnalysis) -> String {
    let mut out = String::new();
    let n_el = s.elections.iter().filter(|e| e.kind == "Election").count();
    let _ = writeln!(
        out,
        "Elections: {n_el}, joins: {} (quorum {} of {})",
        s.elections.len() - n_el,
        a.quorum(),
        a.ensemble_size()
    );
    for e in &s.elections {
        let winner = e.winner.map_or("none".to_owned(), |w| w.to_string());
        let what = if e.kind == "Election" {
            format!("winner {winner}")
        } else {
            let who: Vec<String> = e.voters.iter().map(|v| v.sid.to_string()).collect();
            format!("server {} found leader {winner}", who.join(","))
        };
        let _ = writeln!(
            out,
            "  #{} {:<8} {}  {what}  round {:#x}  took {:.3} ms  ({} notifications{}{})",
            e.id,
            e.kind.to_lowercase(),
            clock(e.start),
            e.round,
            e.duration_ms,
            e.notifications,
            if e.answers > 0 {
                format!(", {} answers", e.answers)
            } else {
                String::new()
            },
            if e.stale > 0 {
                format!(", {} re-sent", e.stale)
            } else {
                String::new()
            },
        );
        let mut rounds: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for v in &e.votes {
            rounds
                .entry(v.round)
                .or_default()
                .push(format!("{}->{}", v.voter, v.leader));
        }
        for (r, votes) in rounds {
            let _ = writeln!(out, "      round {r:#x} votes: {}", votes.join(", "));
        }
        let finals: Vec<String> = e
            .voters
            .iter()
            .map(|v| format!("{}->{} (zxid {:#x})", v.sid, v.vote, v.zxid))
            .collect();
        let _ = writeln!(out, "      final: {}", finals.join(", "));
    }
    out
}

/// Text of the quorum summary.
pub fn quorum_text(s: &QuorumSummary, a: &QuorumAnalysis, packets: &PacketCounts) -> String {
    let mut out = String::new();
    let counts: Vec<String> = packets
        .nonzero()
        .map(|(t, n)| format!("{} {n}", t.name()))
        .collect();
    let _ = writeln!(out, "Packets: {}", counts.join(", "));
    let c = &a.counters;
    match s.commits.percentiles(&a.commit_latency) {
        Some(p) => {
            let _ = writeln!(
                out,
                "Commit latency (first PROPOSAL to first COMMIT), {} transactions: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms, mean {} ms",
                p.count,
                ms(p.p50_us),
                ms(p.p90_us),
                ms(p.p99_us),
                ms(p.max_us),
                ms(p.mean_us)
            );
        }
        None => {
            let _ = writeln!(out, "Commit latency: no PROPOSAL/COMMIT pair seen");
        }
    }
    let _ = writeln!(
        out,
        "  distinct proposals {}, commits timed {}, commits without their proposal {}, proposals sent in syncs {}",
        c.proposals, c.commits, c.commits_unmatched, c.sync_proposals
    );
    if !s.acks.is_empty() {
        let _ = writeln!(
            out,
            "Ack lag by follower (ACK minus PROPOSAL on its connection):"
        );
        let _ = writeln!(
            out,
            "  {:<16} {:>8} {:>10} {:>10} {:>10} {:>10}",
            "follower", "acks", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for (key, (_, ip, series)) in &s.acks {
            if let Some(p) = series.percentiles(&Histogram::new()) {
                let _ = writeln!(
                    out,
                    "  {:<16} {:>8} {:>10} {:>10} {:>10} {:>10}",
                    format!("{} ({ip})", key.trim_start_matches("sid ").trim()),
                    p.count,
                    ms(p.p50_us),
                    ms(p.p90_us),
                    ms(p.p99_us),
                    ms(p.max_us)
                );
            }
        }
    }
    let leaders: Vec<_> = a.leaders().collect();
    if !leaders.is_empty() {
        let _ = writeln!(out, "Leaders:");
        for l in leaders {
            let _ = writeln!(
                out,
                "  {} at {}  epoch {:#x}  {} proposals, {} commits timed  ({} to {})",
                l.sid.map_or("?".to_owned(), |s| s.to_string()),
                l.addr,
                l.epoch,
                l.proposals,
                l.commits,
                clock(secs(l.first_seen)),
                clock(secs(l.last_seen))
            );
        }
    }
    let pending: Vec<SyncSummary> = a
        .syncs_in_progress()
        .map(SyncSummary::from_record)
        .collect();
    if !s.syncs.is_empty() || !pending.is_empty() {
        let _ = writeln!(out, "Syncs (learner joins):");
        for y in s.syncs.iter().chain(pending.iter()) {
            let sid = |v: Option<i64>| v.map_or("?".to_owned(), |s| s.to_string());
            let _ = writeln!(
                out,
                "  {}  learner {} ({}) -> leader {}  {} zxid={}  {} txns{}  {}",
                clock(y.start),
                sid(y.learner_sid),
                y.learner,
                sid(y.leader_sid),
                y.sync.unwrap_or("?"),
                y.zxid.map_or("?".to_owned(), |z| format!("{z:#x}")),
                y.proposals,
                if y.snapshot_bytes > 0 {
                    format!(", snapshot {} bytes", y.snapshot_bytes)
                } else {
                    String::new()
                },
                y.duration_ms
                    .map_or("not finished".to_owned(), |d| format!("took {d:.3} ms")),
            );
        }
    }
    out
}

/// An NDJSON record of the quorum summary.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type")]
pub enum SummaryRecord {
    /// Commit latency percentiles.
    CommitLatency {
        /// Percentiles.
        #[serde(flatten)]
        p: Percentiles,
        /// Distinct proposals.
        proposals: u64,
        /// Commits whose proposal was not seen.
        commits_unmatched: u64,
    },
    /// One follower's ack lag.
    AckLag {
        /// Its id.
        #[serde(skip_serializing_if = "Option::is_none")]
        sid: Option<i64>,
        /// Its IP.
        follower: String,
        /// Percentiles.
        #[serde(flatten)]
        p: Percentiles,
    },
    /// A leader (one per epoch).
    Leader {
        /// Its id.
        #[serde(skip_serializing_if = "Option::is_none")]
        sid: Option<i64>,
        /// Its quorum address.
        addr: String,
        /// The epoch.
        epoch: i64,
        /// Distinct transactions proposed.
        proposals: u64,
        /// Commits timed.
        commits: u64,
    },
    /// Packet counts by type.
    Packets {
        /// Count per packet type name.
        counts: BTreeMap<&'static str, u64>,
    },
}

/// The quorum summary as NDJSON records (syncs as [`SyncSummary`]).
pub fn quorum_records(
    s: &QuorumSummary,
    a: &QuorumAnalysis,
    packets: &PacketCounts,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut push = |v: serde_json::Result<serde_json::Value>| {
        if let Ok(v) = v {
            out.push(v)
        }
    };
    let counts = packets.nonzero().map(|(t, n)| (t.name(), n)).collect();
    push(serde_json::to_value(SummaryRecord::Packets { counts }));
    if let Some(p) = s.commits.percentiles(&a.commit_latency) {
        push(serde_json::to_value(SummaryRecord::CommitLatency {
            p,
            proposals: a.counters.proposals,
            commits_unmatched: a.counters.commits_unmatched,
        }));
    }
    for (sid, ip, series) in s.acks.values() {
        if let Some(p) = series.percentiles(&Histogram::new()) {
            push(serde_json::to_value(SummaryRecord::AckLag {
                sid: *sid,
                follower: ip.clone(),
                p,
            }));
        }
    }
    for l in a.leaders() {
        push(serde_json::to_value(SummaryRecord::Leader {
            sid: l.sid,
            addr: l.addr.to_string(),
            epoch: l.epoch,
            proposals: l.proposals,
            commits: l.commits,
        }));
    }
    for y in &s.syncs {
        push(serde_json::to_value(y));
    }
    for y in a.syncs_in_progress() {
        push(serde_json::to_value(SyncSummary::from_record(y)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_percentiles_use_nearest_rank() {
        let mut s = Series::default();
        for us in 1..=100 {
            s.push(us);
        }
        let p = s.percentiles(&Histogram::new()).unwrap();
        assert_eq!(
            (p.count, p.p50_us, p.p90_us, p.p99_us, p.max_us),
            (100, 50, 90, 99, 100)
        );
        assert_eq!(p.mean_us, 50);
        assert!(Series::default().percentiles(&Histogram::new()).is_none());
    }

    #[test]
    fn clock_prints_time_of_day() {
        assert_eq!(clock(3661.5), "01:01:01:500000");
    }
}
