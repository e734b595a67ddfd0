//! Prometheus text for the election and quorum figures, for `zk-stats`'
//! `/metrics` when it follows election and quorum ports.
//!
//! Renders from zk-wire's [`QuorumAnalysis`] and the tracker's
//! [`Counters`]; label sets are bounded (packet types, episode kinds, sync
//! types, follower ids — at most `MAX_FOLLOWERS`). Lines go through
//! `zk_wire::stats::export::Prom`, histograms use its `LATENCY_BOUNDS`
//! (the request-latency histogram's).

use std::fmt::Display;

use zk_wire::quorum::Counters;
use zk_wire::quorum_analysis::{EpisodeKind, QuorumAnalysis, SyncKind};
use zk_wire::stats::Histogram;
use zk_wire::stats::export::{LATENCY_BOUNDS, Prom};
use zk_wire::zab::PacketType;

// Thin wrappers over zk-wire's Prometheus writer (the one zk-stats' and
// zk-tap's other metrics go through). Writing into a String cannot fail.

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = Prom::new(out).head(name, kind, help);
}

fn val(out: &mut String, name: &str, labels: &[(&str, &str)], v: impl Display) {
    let labels: Vec<(&str, &dyn Display)> = labels
        .iter()
        .map(|(k, v)| (*k, v as &dyn Display))
        .collect();
    let _ = Prom::new(out).val(name, &labels, v);
}

fn histogram(out: &mut String, name: &str, labels: &[(&str, &str)], h: &Histogram) {
    let bucket = format!("{name}_bucket");
    for (us, le) in LATENCY_BOUNDS {
        let mut l = labels.to_vec();
        l.push(("le", le));
        val(out, &bucket, &l, h.count_at_most(us));
    }
    let mut l = labels.to_vec();
    l.push(("le", "+Inf"));
    val(out, &bucket, &l, h.count());
    val(out, &format!("{name}_sum"), labels, h.sum() as f64 / 1e6);
    val(out, &format!("{name}_count"), labels, h.count());
}

/// Appends the election and quorum metric families to `out`.
pub fn prometheus(a: &QuorumAnalysis, c: &Counters, out: &mut String) {
    head(
        out,
        "zk_quorum_packets_total",
        "counter",
        "Quorum (ZAB) packets seen, by type.",
    );
    for t in PacketType::ALL {
        if c.packets.get(t) > 0 {
            val(
                out,
                "zk_quorum_packets_total",
                &[("type", t.name())],
                c.packets.get(t),
            );
        }
    }
    head(
        out,
        "zk_election_notifications_total",
        "counter",
        "Leader-election notifications seen.",
    );
    val(out, "zk_election_notifications_total", &[], c.notifications);

    head(
        out,
        "zk_elections_total",
        "counter",
        "Election episodes closed: elections (a quorum looked) and joins (a server found the established leader).",
    );
    val(
        out,
        "zk_elections_total",
        &[("kind", "election")],
        a.counters.elections,
    );
    val(
        out,
        "zk_elections_total",
        &[("kind", "join")],
        a.counters.joins,
    );
    let last = a
        .elections()
        .filter(|e| e.kind == EpisodeKind::Election)
        .last();
    if let Some(e) = last {
        head(
            out,
            "zk_election_last_duration_seconds",
            "gauge",
            "Time the last election took, from the first LOOKING notification to a quorum agreeing.",
        );
        val(
            out,
            "zk_election_last_duration_seconds",
            &[],
            e.duration().total_micros() as f64 / 1e6,
        );
        if let Some(w) = e.winner {
            head(
                out,
                "zk_election_last_winner",
                "gauge",
                "Server id that won the last election.",
            );
            val(out, "zk_election_last_winner", &[], w);
        }
    }
    head(
        out,
        "zk_election_in_progress",
        "gauge",
        "1 while servers are looking for a leader.",
    );
    val(
        out,
        "zk_election_in_progress",
        &[],
        u8::from(a.current_election().is_some()),
    );

    head(
        out,
        "zk_quorum_proposals_total",
        "counter",
        "Distinct transactions proposed (outside learner syncs).",
    );
    val(out, "zk_quorum_proposals_total", &[], a.counters.proposals);
    head(
        out,
        "zk_quorum_commit_latency_seconds",
        "histogram",
        "Time from a transaction's first PROPOSAL to its first COMMIT, on the capture clock.",
    );
    histogram(
        out,
        "zk_quorum_commit_latency_seconds",
        &[],
        &a.commit_latency,
    );
    head(
        out,
        "zk_follower_ack_lag_seconds",
        "histogram",
        "Time from a PROPOSAL to a follower's ACK on its connection, by follower id.",
    );
    for f in a.followers() {
        let id = f.sid.map_or_else(|| f.ip.to_string(), |s| s.to_string());
        histogram(
            out,
            "zk_follower_ack_lag_seconds",
            &[("follower", &id)],
            &f.lag,
        );
    }
    head(
        out,
        "zk_learner_syncs_total",
        "counter",
        "Learners synchronised with a leader (FOLLOWERINFO to UPTODATE), by sync type (of the syncs kept).",
    );
    for k in [SyncKind::Diff, SyncKind::Trunc, SyncKind::Snap] {
        let n = a.syncs().iter().filter(|s| s.kind == Some(k)).count();
        val(out, "zk_learner_syncs_total", &[("type", k.name())], n);
    }
    head(
        out,
        "zk_quorum_decode_errors_total",
        "counter",
        "Election and quorum frames or data that did not decode, by kind.",
    );
    for e in zk_wire::Error::ALL {
        let n = c.frame_errors.get(e) + c.decode_errors.get(e);
        if n > 0 {
            val(
                out,
                "zk_quorum_decode_errors_total",
                &[("kind", e.name())],
                n,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omni_fixture_renders_elections_commits_and_ack_lag() {
        use crate::capture::{Capturer, FrameSink, Source, Stop};
        use zk_wire::quorum::{Config, Link, QuorumTracker};
        struct Sink(
            QuorumTracker<Vec<Link>, Vec<u8>>,
            Box<QuorumAnalysis>,
            zk_wire::packet::LinkType,
        );
        impl FrameSink for Sink {
            fn frame(&mut self, ts: zk_wire::Instant, data: &[u8], _: u32) -> bool {
                if let Ok(Some(seg)) = zk_wire::packet::parse(self.2, data) {
                    let a = &mut self.1;
                    self.0
                        .process(ts, &seg, &mut |ev| a.observe(ev, &mut |_| {}));
                }
                true
            }
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/captures/zktraffic/omni.pcap");
        let mut cap = Capturer::open(&Source::Offline(path), None).unwrap();
        let mut config = Config::without_ports();
        config.add_zab_port(2781);
        for p in [2783, 2784, 2785] {
            config.add_fle_port(p);
        }
        let t = QuorumTracker::new(vec![Link::EMPTY; 64], vec![0u8; 1 << 20], 1 << 16, config);
        let mut sink = Sink(t, Box::default(), cap.link_type());
        cap.run(&Stop::default(), &mut sink).unwrap();
        sink.1.finish(&mut |_| {});
        let mut out = String::new();
        prometheus(&sink.1, &sink.0.counters, &mut out);
        assert!(
            out.contains("zk_quorum_commit_latency_seconds_count 2"),
            "{out}"
        );
        assert!(
            out.contains("zk_elections_total{kind=\"election\"} 1"),
            "{out}"
        );
        assert!(out.contains("zk_elections_total{kind=\"join\"} 1"), "{out}");
        assert!(out.contains("zk_election_last_winner 2"), "{out}");
        assert!(
            out.contains("zk_follower_ack_lag_seconds_count{follower=\"3\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("zk_learner_syncs_total{type=\"SNAP\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("zk_quorum_packets_total{type=\"PROPOSAL\"} 4"),
            "{out}"
        );
    }

    #[test]
    fn empty_analysis_renders_every_family_without_samples() {
        let a = QuorumAnalysis::default();
        let mut out = String::new();
        prometheus(&a, &Counters::default(), &mut out);
        assert!(out.contains("# TYPE zk_quorum_commit_latency_seconds histogram"));
        assert!(out.contains("zk_quorum_commit_latency_seconds_bucket{le=\"+Inf\"} 0"));
        assert!(out.contains("zk_elections_total{kind=\"election\"} 0"));
        assert!(out.contains("zk_election_in_progress 0"));
        assert!(!out.contains("zk_election_last_winner"));
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').unwrap();
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
    }
}
