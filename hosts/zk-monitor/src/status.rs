//! What the agent knows, shared between the agent loop (the only writer)
//! and the HTTP handlers: the `/status` JSON and the `/metrics` text.
//!
//! The agent replaces the [`Snapshot`] under a short lock; counters are
//! atomics bumped by the delivery tasks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::alert::AlertRecord;
use crate::eval::{Compliance, State};

/// The alerter kinds, in counter order.
pub const ALERTER_KINDS: [&str; 3] = ["email", "slack", "webhook"];

/// One watched path as shown.
#[derive(Clone, Debug)]
pub struct PathStatus {
    /// Compliance as shown (`Unknown` while disconnected).
    pub compliance: Compliance,
    /// Whether the znode exists, when known.
    pub exists: Option<bool>,
    /// Number of children, when read.
    pub children: Option<u64>,
    /// Configured minimum children.
    pub min: Option<u64>,
    /// Configured maximum children.
    pub max: Option<u64>,
}

/// The agent's state at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Connected to ZooKeeper.
    pub connected: bool,
    /// The current session id, hex.
    pub session_id: Option<String>,
    /// Holds the leader lock.
    pub leader: bool,
    /// Leader, connected and with alert records loaded: sends alerts.
    pub alerting: bool,
    /// `persistent` or `oneshot`.
    pub watch_mode: &'static str,
    /// Alerter kinds used by the config.
    pub alerters: Vec<&'static str>,
    /// Per-path state.
    pub paths: BTreeMap<String, PathStatus>,
    /// Alert records (only while alerting).
    pub alerts: BTreeMap<String, AlertRecord>,
}

/// Monotonic counters.
#[derive(Debug, Default)]
pub struct Counters {
    sent: [AtomicU64; 3],
    failed: [AtomicU64; 3],
    retries: [AtomicU64; 3],
    /// Successful config reloads.
    pub reloads_ok: AtomicU64,
    /// Rejected config reloads.
    pub reloads_failed: AtomicU64,
    /// ZooKeeper sessions established.
    pub sessions: AtomicU64,
}

fn kind_index(kind: &str) -> usize {
    ALERTER_KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

impl Counters {
    /// Counts one delivered notification.
    pub fn sent(&self, kind: &str) {
        self.sent[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
    }
    /// Counts one notification that failed after all retries.
    pub fn failed(&self, kind: &str) {
        self.failed[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
    }
    /// Counts one retry.
    pub fn retried(&self, kind: &str) {
        self.retries[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
    }
    fn get(a: &[AtomicU64; 3], kind: &str) -> u64 {
        a[kind_index(kind)].load(Ordering::Relaxed)
    }
}

/// State shared by the agent and the HTTP server.
#[derive(Debug)]
pub struct Shared {
    /// This build's version.
    pub version: &'static str,
    /// This agent's name.
    pub agent: String,
    /// `<cluster_prefix>/<cluster_name>`.
    pub cluster_path: String,
    /// Counters.
    pub counters: Counters,
    snapshot: RwLock<Snapshot>,
}

impl Shared {
    /// Empty state for agent `agent` in cluster `cluster_path`.
    pub fn new(agent: String, cluster_path: String) -> Self {
        Shared {
            version: env!("CARGO_PKG_VERSION"),
            agent,
            cluster_path,
            counters: Counters::default(),
            snapshot: RwLock::new(Snapshot {
                watch_mode: "persistent",
                ..Snapshot::default()
            }),
        }
    }

    /// Replaces the snapshot.
    pub fn publish(&self, snapshot: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = snapshot;
    }

    /// A copy of the snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The `/status` document (the older monitor's shape, extended).
    pub fn status_json(&self) -> Value {
        let s = self.snapshot();
        let compliance: serde_json::Map<String, Value> = s
            .paths
            .iter()
            .map(|(p, st)| {
                (
                    p.clone(),
                    json!({"state": st.compliance.state, "message": st.compliance.message}),
                )
            })
            .collect();
        let sent: serde_json::Map<String, Value> = ALERTER_KINDS
            .iter()
            .map(|k| (k.to_string(), json!(Counters::get(&self.counters.sent, k))))
            .collect();
        let failed: serde_json::Map<String, Value> = ALERTER_KINDS
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    json!(Counters::get(&self.counters.failed, k)),
                )
            })
            .collect();
        json!({
            "version": self.version,
            "zookeeper": {
                "connected": s.connected,
                "session_id": s.session_id,
                "watch_mode": s.watch_mode,
            },
            "dispatcher": {
                "name": self.agent,
                "cluster": self.cluster_path,
                "leader": s.leader,
                "alerting": s.alerting,
                "alerters": s.alerters,
                "alerts_sent": sent,
                "alerts_failed": failed,
                "alerts": s.alerts,
            },
            "monitor": {
                "compliance": compliance,
            },
        })
    }

    /// The `/metrics` text (Prometheus exposition format 0.0.4).
    pub fn metrics_text(&self) -> String {
        let s = self.snapshot();
        let mut o = String::new();
        let b = |v: bool| if v { 1 } else { 0 };
        gauge(
            &mut o,
            "zk_monitor_info",
            "Build and identity of this agent.",
            &[(
                format!(
                    "version=\"{}\",agent=\"{}\",cluster=\"{}\"",
                    esc(self.version),
                    esc(&self.agent),
                    esc(&self.cluster_path)
                ),
                1,
            )],
        );
        gauge(
            &mut o,
            "zk_monitor_zookeeper_connected",
            "1 when connected to ZooKeeper.",
            &[(String::new(), b(s.connected))],
        );
        gauge(
            &mut o,
            "zk_monitor_leader",
            "1 when this agent is the alerting leader.",
            &[(String::new(), b(s.alerting))],
        );
        let per_path = |f: &dyn Fn(&PathStatus) -> Option<u64>| -> Vec<(String, u64)> {
            s.paths
                .iter()
                .filter_map(|(p, st)| f(st).map(|v| (format!("path=\"{}\"", esc(p)), v)))
                .collect()
        };
        gauge(
            &mut o,
            "zk_monitor_path_compliance",
            "1 when the path is in spec, 0 when out of spec (absent when unknown).",
            &per_path(&|st| match st.compliance.state {
                State::Ok => Some(1),
                State::Error => Some(0),
                State::Unknown => None,
            }),
        );
        let mut states = Vec::new();
        for (p, st) in &s.paths {
            for state in [State::Ok, State::Error, State::Unknown] {
                states.push((
                    format!("path=\"{}\",state=\"{}\"", esc(p), state.as_str()),
                    b(st.compliance.state == state),
                ));
            }
        }
        gauge(
            &mut o,
            "zk_monitor_path_state",
            "Compliance state of the path (one series per state).",
            &states,
        );
        gauge(
            &mut o,
            "zk_monitor_path_exists",
            "1 when the znode exists.",
            &per_path(&|st| st.exists.map(b)),
        );
        gauge(
            &mut o,
            "zk_monitor_path_children",
            "Number of children of the znode.",
            &per_path(&|st| st.children),
        );
        gauge(
            &mut o,
            "zk_monitor_path_children_min",
            "Configured minimum number of children.",
            &per_path(&|st| st.min),
        );
        gauge(
            &mut o,
            "zk_monitor_path_children_max",
            "Configured maximum number of children.",
            &per_path(&|st| st.max),
        );
        let per_kind = |a: &[AtomicU64; 3]| -> Vec<(String, u64)> {
            ALERTER_KINDS
                .iter()
                .map(|k| (format!("alerter=\"{k}\""), Counters::get(a, k)))
                .collect()
        };
        counter(
            &mut o,
            "zk_monitor_alerts_sent_total",
            "Notifications delivered by this agent.",
            &per_kind(&self.counters.sent),
        );
        counter(
            &mut o,
            "zk_monitor_alerts_failed_total",
            "Notifications that failed after all retries.",
            &per_kind(&self.counters.failed),
        );
        counter(
            &mut o,
            "zk_monitor_alert_retries_total",
            "Delivery retries.",
            &per_kind(&self.counters.retries),
        );
        gauge(
            &mut o,
            "zk_monitor_alerts_firing",
            "Paths with an alert out (known to the leader only).",
            &if s.alerting {
                vec![(
                    String::new(),
                    s.alerts.values().filter(|r| r.firing).count() as u64,
                )]
            } else {
                Vec::new()
            },
        );
        counter(
            &mut o,
            "zk_monitor_config_reloads_total",
            "Configuration reloads (SIGHUP) by result.",
            &[
                (
                    "result=\"ok\"".into(),
                    self.counters.reloads_ok.load(Ordering::Relaxed),
                ),
                (
                    "result=\"error\"".into(),
                    self.counters.reloads_failed.load(Ordering::Relaxed),
                ),
            ],
        );
        counter(
            &mut o,
            "zk_monitor_zookeeper_sessions_total",
            "ZooKeeper sessions established.",
            &[(
                String::new(),
                self.counters.sessions.load(Ordering::Relaxed),
            )],
        );
        o
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(o: &mut String, name: &str, kind: &str, help: &str, series: &[(String, u64)]) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
    for (labels, v) in series {
        if labels.is_empty() {
            let _ = writeln!(o, "{name} {v}");
        } else {
            let _ = writeln!(o, "{name}{{{labels}}} {v}");
        }
    }
}

fn gauge(o: &mut String, name: &str, help: &str, series: &[(String, u64)]) {
    family(o, name, "gauge", help, series);
}

fn counter(o: &mut String, name: &str, help: &str, series: &[(String, u64)]) {
    family(o, name, "counter", help, series);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_name_paths_and_escape_labels() {
        let shared = Shared::new("a1".into(), "/zk_monitor/c".into());
        let mut snap = Snapshot {
            connected: true,
            ..Snapshot::default()
        };
        snap.paths.insert(
            "/x\"y".into(),
            PathStatus {
                compliance: Compliance::new(State::Error, "m"),
                exists: Some(true),
                children: Some(2),
                min: Some(3),
                max: None,
            },
        );
        shared.publish(snap);
        shared.counters.sent("email");
        let m = shared.metrics_text();
        assert!(
            m.contains("zk_monitor_path_children{path=\"/x\\\"y\"} 2\n"),
            "{m}"
        );
        assert!(m.contains("zk_monitor_path_compliance{path=\"/x\\\"y\"} 0\n"));
        assert!(m.contains("zk_monitor_path_children_min{path=\"/x\\\"y\"} 3\n"));
        assert!(m.contains("zk_monitor_zookeeper_connected 1\n"));
        assert!(m.contains("zk_monitor_alerts_sent_total{alerter=\"email\"} 1\n"));
        let j = shared.status_json();
        assert_eq!(j["monitor"]["compliance"]["/x\"y"]["state"], "Error");
        assert_eq!(j["zookeeper"]["connected"], true);
    }
}
