//! Tests over the fixture captures of the zktraffic project
//! (`<workspace>/../shared/captures/zktraffic`, classic pcap): the quorum
//! and election traffic in `zab_*.pcap` and `omni.pcap` must decode to what
//! the fixtures' README says is on the wire, with no decode error.
//!
//! Test-only: reads files with `std`.

extern crate std;

use crate::fle::ServerState;
use crate::packet::{self, LinkType};
use crate::quorum::{Config, Counters, Link, Proto, QuorumEvent, QuorumMessage, QuorumTracker};
use crate::zab::{PacketType, Payload, TxnBody};
use crate::{ErrorCounts, Instant};
use std::collections::BTreeMap;
use std::format;
use std::path::PathBuf;
use std::string::String;
use std::vec;
use std::vec::Vec;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/captures/zktraffic")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// One pcap record: timestamp, captured bytes, original length.
pub(crate) type Record<'a> = (Instant, &'a [u8], usize);

/// Classic pcap records and the link type.
pub(crate) fn pcap_records(file: &[u8]) -> (LinkType, Vec<Record<'_>>) {
    let pcap = crate::pcapfile::PcapFile::parse(file).expect("classic pcap file");
    let h = pcap.header();
    let link = LinkType::from_linktype(h.linktype).expect("known link type");
    let out = pcap
        .records()
        .map(|r| r.expect("whole pcap record"))
        .map(|r| (r.ts(h.nanos), r.data, r.orig_len as usize))
        .collect();
    (link, out)
}

/// An owned record of one event.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) proto: Proto,
    pub(crate) name: &'static str,
    pub(crate) zxid: Option<i64>,
    pub(crate) text: String,
    pub(crate) ts: Instant,
}

fn record(ev: &QuorumEvent<'_>) -> Seen {
    let (zxid, text) = match &ev.message {
        QuorumMessage::Packet(p) => (
            Some(p.packet.zxid),
            match &p.payload {
                Ok(pl) => format!("{pl:?}"),
                Err(e) => format!("payload error {e}"),
            },
        ),
        QuorumMessage::Notification(n) => (Some(n.zxid), format!("{n:?}")),
        other => (None, format!("{other:?}")),
    };
    Seen {
        proto: ev.proto,
        name: ev.message.name(),
        zxid,
        text: format!(
            "{}({:?})->{}({:?}) {}",
            ev.src, ev.src_sid, ev.dst, ev.dst_sid, text
        ),
        ts: ev.ts,
    }
}

/// Decodes a fixture with the given quorum and election ports.
pub(crate) fn decode(
    name: &str,
    zab: &[u16],
    fle: &[u16],
    learn: bool,
    mut each: impl FnMut(&QuorumEvent<'_>),
) -> (Vec<Seen>, Counters) {
    let file = fixture(name);
    let (link, records) = pcap_records(&file);
    let mut config = Config::without_ports();
    config.learn_ports = learn;
    for &p in zab {
        config.add_zab_port(p);
    }
    for &p in fle {
        config.add_fle_port(p);
    }
    let mut t = QuorumTracker::new(vec![Link::EMPTY; 256], vec![0u8; 65536 * 8], 65536, config);
    let mut seen = Vec::new();
    for (ts, frame, _) in records {
        if let Ok(Some(seg)) = packet::parse(link, frame) {
            t.process(ts, &seg, &mut |ev| {
                each(ev);
                seen.push(record(ev));
            });
        }
    }
    t.finish();
    (seen, t.counters)
}

fn counts(seen: &[Seen]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for s in seen {
        *m.entry(s.name).or_default() += 1;
    }
    m
}

fn assert_clean(name: &str, c: &Counters) {
    assert_eq!(
        c.frame_errors,
        ErrorCounts::ZERO,
        "{name}: framing errors {c:?}"
    );
    assert_eq!(
        c.decode_errors,
        ErrorCounts::ZERO,
        "{name}: decode errors {c:?}"
    );
}

#[test]
fn zab_request_has_requests_proposals_commits_acks_and_pings() {
    let (seen, c) = decode("zab_request.pcap", &[20022], &[], false, |_| {});
    assert_clean("zab_request", &c);
    let n = counts(&seen);
    let expect = [
        ("REQUEST", 3),
        ("PROPOSAL", 6),
        ("COMMIT", 6),
        ("ACK", 6),
        ("PING", 57),
    ];
    for (name, k) in expect {
        assert_eq!(n.get(name).copied().unwrap_or(0), k, "{name}: {n:?}");
    }
    assert_eq!(n.len(), expect.len(), "{n:?}");
    // One PROPOSAL per follower: 3 distinct transactions, createSession first.
    let mut proposals: Vec<(i64, String)> = seen
        .iter()
        .filter(|s| s.name == "PROPOSAL")
        .map(|s| (s.zxid.unwrap(), s.text.clone()))
        .collect();
    proposals.dedup_by_key(|p| p.0);
    let zxids: Vec<i64> = proposals.iter().map(|p| p.0).collect();
    assert_eq!(zxids, [0x1_0000_0001, 0x1_0000_0002, 0x1_0000_0003]);
    assert!(
        proposals[0].1.contains("txn_type: -10"),
        "{}",
        proposals[0].1
    );
    assert!(
        proposals[1].1.contains("path: \"/foo\""),
        "{}",
        proposals[1].1
    );
    // The capture missed one segment (38382 -> 20022): the leader's ACK of
    // the bytes after it releases them, so nothing else is lost.
    assert_eq!((c.stream.gaps, c.stream.bytes_lost), (1, 20));
}

#[test]
fn zab_revalidate_has_the_session_and_timeout() {
    let mut sessions = Vec::new();
    let (seen, c) = decode("zab_revalidate.pcap", &[20022], &[], false, |ev| {
        if let QuorumMessage::Packet(p) = &ev.message {
            match p.payload {
                Ok(Payload::Revalidate { session, timeout }) => {
                    sessions.push((session, Some(timeout)))
                }
                Ok(Payload::RevalidateReply { session, .. }) => sessions.push((session, None)),
                _ => {}
            }
        }
    });
    assert_clean("zab_revalidate", &c);
    assert_eq!(counts(&seen).get("REVALIDATE"), Some(&2));
    assert!(
        sessions.contains(&(0x3001df405ba0000, Some(10000))),
        "{sessions:?}"
    );
    assert!(
        sessions.iter().all(|s| s.0 == 0x3001df405ba0000),
        "{sessions:?}"
    );
}

#[test]
fn zab_commitandactivate_names_leader_3() {
    let mut found = Vec::new();
    let (seen, c) = decode("zab_commitandactivate.pcap", &[20022], &[], false, |ev| {
        if let QuorumMessage::Packet(p) = &ev.message
            && let Ok(Payload::Activate { leader, txn: None }) = p.payload
        {
            found.push((p.packet.zxid, leader));
        }
    });
    assert_clean("zab_commitandactivate", &c);
    // Two reconfigs (add server.100, then remove it), each committed to two
    // followers: the README's zxid is the first one's.
    assert_eq!(counts(&seen).get("COMMITANDACTIVATE"), Some(&4));
    assert_eq!(
        found,
        [
            (0x1_0000_000d, 3),
            (0x1_0000_000d, 3),
            (0x1_0000_000e, 3),
            (0x1_0000_000e, 3)
        ]
    );
}

#[test]
fn zab_followerinfo_and_the_newleader_sharing_a_segment_with_a_diff() {
    let mut infos = Vec::new();
    let (seen, c) = decode("zab_followerinfo.pcap", &[20022], &[], false, |ev| {
        if let QuorumMessage::Packet(p) = &ev.message
            && let Ok(Payload::LearnerInfo(li)) = p.payload
        {
            infos.push((
                p.packet.packet_type,
                li.sid,
                li.protocol_version,
                li.config_version,
            ));
        }
    });
    assert_clean("zab_followerinfo", &c);
    // The README names sid 2 (the first); the second follower on the wire is sid 1.
    assert_eq!(
        infos,
        [
            (PacketType::FollowerInfo, 2, Some(0x10000), Some(0)),
            (PacketType::FollowerInfo, 1, Some(0x10000), Some(0))
        ]
    );
    let n = counts(&seen);
    assert!(
        n.contains_key("NEWLEADER") && n.contains_key("DIFF"),
        "{n:?}"
    );
    // The NEWLEADER and DIFF that share a segment share a timestamp.
    let diffs: Vec<Instant> = seen
        .iter()
        .filter(|s| s.name == "DIFF")
        .map(|s| s.ts)
        .collect();
    assert!(
        seen.iter()
            .any(|s| s.name == "NEWLEADER" && diffs.contains(&s.ts)),
        "no NEWLEADER in a DIFF's segment"
    );
}

#[test]
fn zab_informandactivate_carries_the_reconfig_txn() {
    let mut found = Vec::new();
    let (seen, c) = decode("zab_informandactivate.pcap", &[20022], &[], false, |ev| {
        if let QuorumMessage::Packet(p) = &ev.message
            && let Ok(Payload::Activate {
                leader,
                txn: Some(t),
            }) = p.payload
        {
            let reconfig = matches!(t.body, TxnBody::Reconfig { .. });
            found.push((
                leader,
                t.header.session,
                t.header.type_name(),
                p.packet.zxid,
                reconfig,
            ));
        }
    });
    assert_clean("zab_informandactivate", &c);
    assert_eq!(counts(&seen).get("INFORMANDACTIVATE"), Some(&2));
    assert_eq!(
        found,
        vec![(3, 0x34e8105a7540000, Some("reconfig"), 0x1_0000_0006, true); 2]
    );
}

#[test]
fn omni_election_and_quorum_traffic_decode_cleanly() {
    let mut states = BTreeMap::new();
    let mut config_servers = 0;
    let (seen, c) = decode("omni.pcap", &[2781], &[2783, 2784, 2785], false, |ev| {
        if let QuorumMessage::Notification(n) = &ev.message {
            *states.entry(n.state).or_insert(0) += 1;
            if let Some(Ok(cfg)) = n.dynamic_config() {
                config_servers = cfg.len();
            }
        }
    });
    assert_clean("omni", &c);
    let n = counts(&seen);
    assert!(n["Initial"] >= 2, "{n:?}");
    assert!(n["Notification"] >= 4, "{n:?}");
    assert!(states.contains_key(&ServerState::Looking), "{states:?}");
    assert_eq!(config_servers, 3);
    for t in [
        "FOLLOWERINFO",
        "LEADERINFO",
        "ACKEPOCH",
        "NEWLEADER",
        "UPTODATE",
        "SNAP",
    ] {
        assert!(n.contains_key(t), "{t} missing: {n:?}");
    }
    assert_eq!(
        n.get("SNAPSHOT"),
        Some(&1),
        "the snapshot after SNAP ends at its signature"
    );
    assert!(
        seen.iter()
            .all(|s| s.proto == Proto::Election || s.proto == Proto::Quorum)
    );
}

#[test]
fn omni_ports_are_learnt_from_the_traffic() {
    // No port given: election connections are known by their first bytes,
    // the quorum port from the configs they carry.
    let (seen_learnt, c) = decode("omni.pcap", &[], &[], true, |_| {});
    assert_clean("omni learnt", &c);
    let (seen_given, _) = decode("omni.pcap", &[2781], &[2783, 2784, 2785], false, |_| {});
    assert_eq!(counts(&seen_learnt), counts(&seen_given));
    assert!(c.ports_learnt >= 4, "{c:?}");
}

#[test]
fn omni_analysis_finds_the_election_the_syncs_and_the_commits() {
    use crate::quorum_analysis::{EpisodeKind, Finding, QuorumAnalysis, SyncKind};
    let mut a = std::boxed::Box::new(QuorumAnalysis::default());
    let mut commits = Vec::new();
    let (_, _) = decode("omni.pcap", &[2781], &[2783, 2784, 2785], false, |ev| {
        a.observe(ev, &mut |f| {
            if let Finding::Committed { zxid, .. } = f {
                commits.push(zxid)
            }
        })
    });
    a.finish(&mut |_| {});
    let episodes: Vec<String> = a
        .elections()
        .map(|e| {
            let votes: Vec<String> = e
                .voters()
                .iter()
                .map(|v| format!("{}->{}", v.sid, v.last.leader))
                .collect();
            format!("{} {:?} [{}]", e.kind.name(), e.winner, votes.join(" "))
        })
        .collect();
    // 1 and 2 elect 2; 3 starts later and finds leader 2 (1 and 2 re-send
    // their last LOOKING vote on the new connections: stale, not votes).
    assert_eq!(
        episodes,
        ["election Some(2) [2->2 1->2]", "join Some(2) [3->3]"]
    );
    let kinds: Vec<EpisodeKind> = a.elections().map(|e| e.kind).collect();
    assert_eq!(kinds, [EpisodeKind::Election, EpisodeKind::Join]);
    assert_eq!(a.elections().nth(1).unwrap().stale, 2);
    assert_eq!(a.quorum(), 2);
    let syncs: Vec<(Option<i64>, Option<SyncKind>)> =
        a.syncs().iter().map(|s| (s.learner_sid, s.kind)).collect();
    assert_eq!(
        syncs,
        [
            (Some(1), Some(SyncKind::Diff)),
            (Some(3), Some(SyncKind::Snap))
        ]
    );
    assert_eq!(a.syncs()[1].snapshot_bytes, 553);
    assert_eq!(commits, [0x1_0000_0001, 0x1_0000_0002]);
    assert_eq!(a.counters.acks, 4);
}
