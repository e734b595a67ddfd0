//! The alerting state machine: when to send a firing alert, a repeat, or a
//! resolved notice, and what was sent (the record kept in ZooKeeper).
//!
//! Every agent tracks every path (so a new leader knows how long a path has
//! been out of spec); only the leader calls [`Engine::decide`]. Pure logic,
//! no I/O: the caller (`agent`) loads and writes [`AlertRecord`]s under
//! `<cluster>/alerts/` with writes fenced by the leader lock, and runs the
//! deliveries.
//!
//! Rules, per path with at least one deliverable alerter:
//! - out of spec for longer than `cancel_timeout` and not firing: fire;
//! - back in spec while firing: send a resolved notice;
//! - still out of spec and firing, `repeat_after` elapsed: fire again;
//! - `Unknown` (unreadable, or not re-read since a reconnect) changes
//!   nothing, so a ZooKeeper outage does not flap every path;
//! - a record left `pending` (its leader died mid-delivery) is re-sent, so
//!   an alert is delivered at least once across a failover.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::eval::{Compliance, State};

/// Which kind of notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The path went (or stays) out of spec.
    Firing,
    /// The path is back in spec.
    Resolved,
}

impl Kind {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Firing => "firing",
            Kind::Resolved => "resolved",
        }
    }
}

/// Delivery state of the last notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Decided and being sent; a new leader re-sends it.
    Pending,
    /// Every alerter accepted it.
    Delivered,
    /// At least one alerter failed after all retries.
    Failed,
}

/// What was sent for one path; stored as JSON in ZooKeeper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// The watched znode path.
    pub path: String,
    /// Whether an alert is out (no resolved notice yet).
    pub firing: bool,
    /// The last notification decided.
    pub notification: Kind,
    /// Its delivery state.
    pub delivery: Delivery,
    /// The compliance message it carried.
    pub message: String,
    /// When the current (or last) firing started, ms since the epoch.
    pub started_at_ms: i64,
    /// When the last notification was decided, ms since the epoch.
    pub sent_at_ms: i64,
    /// When the last firing was resolved, ms since the epoch.
    pub ended_at_ms: Option<i64>,
    /// Notifications decided for this path so far.
    pub count: u64,
    /// The agent that decided the last notification.
    pub agent: String,
}

/// A notification to deliver, with the record to store before sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The record, `delivery: pending`.
    pub record: AlertRecord,
    /// Whether this repeats an alert already sent (`repeat_after`, or a
    /// pending one inherited from a previous leader).
    pub repeat: bool,
}

/// Local knowledge of one path.
#[derive(Clone, Debug)]
struct Track {
    current: Compliance,
    error_since: Option<Instant>,
    fresh: bool,
}

/// The per-agent alerting state.
#[derive(Debug, Default)]
pub struct Engine {
    tracks: BTreeMap<String, Track>,
    records: Option<BTreeMap<String, AlertRecord>>,
    inflight: BTreeSet<String>,
}

impl Engine {
    /// An engine with no paths and no records.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in a fresh evaluation of `path`, read at `now`.
    pub fn observe(&mut self, path: &str, compliance: Compliance, now: Instant) {
        let track = self.tracks.entry(path.to_string()).or_insert(Track {
            current: Compliance::not_read(),
            error_since: None,
            fresh: false,
        });
        match compliance.state {
            State::Error if track.current.state != State::Error => track.error_since = Some(now),
            State::Error => {}
            State::Ok => track.error_since = None,
            State::Unknown => {}
        }
        if compliance.state != State::Unknown {
            track.current = compliance;
            track.fresh = true;
        }
    }

    /// Marks every path as not re-read (after a disconnection).
    pub fn mark_stale(&mut self) {
        for t in self.tracks.values_mut() {
            t.fresh = false;
        }
    }

    /// Forgets paths no longer configured.
    pub fn retain_paths(&mut self, config: &Config) {
        self.tracks.retain(|p, _| config.paths.contains_key(p));
    }

    /// The last known (not `Unknown`) evaluation of `path`.
    pub fn last_known(&self, path: &str) -> Option<&Compliance> {
        self.tracks
            .get(path)
            .map(|t| &t.current)
            .filter(|c| c.state != State::Unknown)
    }

    /// Whether records are loaded (this agent is the active leader).
    pub fn is_active(&self) -> bool {
        self.records.is_some()
    }

    /// Installs the records read from ZooKeeper on becoming leader.
    pub fn activate(&mut self, records: BTreeMap<String, AlertRecord>) {
        self.records = Some(records);
        self.inflight.clear();
    }

    /// Drops the records (leadership lost or suspended, or a write failed):
    /// nothing is decided until [`Engine::activate`] again.
    pub fn deactivate(&mut self) {
        self.records = None;
        self.inflight.clear();
    }

    /// The loaded records (for `/status`).
    pub fn records(&self) -> Option<&BTreeMap<String, AlertRecord>> {
        self.records.as_ref()
    }

    /// Stores the outcome of a delivery and allows the next decision.
    pub fn finish(&mut self, record: AlertRecord) {
        self.inflight.remove(&record.path);
        if let Some(records) = &mut self.records {
            records.insert(record.path.clone(), record);
        }
    }

    /// Decides what to send now. Each returned notification's path is in
    /// flight until [`Engine::finish`] (or [`Engine::deactivate`]).
    pub fn decide(
        &mut self,
        config: &Config,
        now: Instant,
        now_ms: i64,
        agent: &str,
    ) -> Vec<Notification> {
        let Some(records) = &mut self.records else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (path, spec) in &config.paths {
            if spec.alerter.is_empty() || self.inflight.contains(path) {
                continue;
            }
            let Some(track) = self.tracks.get(path) else {
                continue;
            };
            let prev = records.get(path);
            let mut next = match prev {
                Some(r) => r.clone(),
                None => AlertRecord {
                    path: path.clone(),
                    firing: false,
                    notification: Kind::Resolved,
                    delivery: Delivery::Delivered,
                    message: String::new(),
                    started_at_ms: 0,
                    sent_at_ms: 0,
                    ended_at_ms: None,
                    count: 0,
                    agent: String::new(),
                },
            };
            let repeat;
            if prev.is_some_and(|r| r.delivery == Delivery::Pending) {
                // Inherited mid-delivery: send it again.
                repeat = true;
            } else {
                if !track.fresh {
                    continue;
                }
                match track.current.state {
                    State::Error if !next.firing => {
                        let since = track.error_since.unwrap_or(now);
                        if now.saturating_duration_since(since) < spec.cancel_timeout {
                            continue;
                        }
                        next.firing = true;
                        next.notification = Kind::Firing;
                        next.started_at_ms = now_ms;
                        next.ended_at_ms = None;
                        repeat = false;
                    }
                    State::Error => {
                        let Some(every) = spec.repeat_after else {
                            continue;
                        };
                        let elapsed = now_ms.saturating_sub(next.sent_at_ms).max(0) as u64;
                        if Duration::from_millis(elapsed) < every {
                            continue;
                        }
                        next.notification = Kind::Firing;
                        repeat = true;
                    }
                    State::Ok if next.firing => {
                        next.firing = false;
                        next.notification = Kind::Resolved;
                        next.ended_at_ms = Some(now_ms);
                        repeat = false;
                    }
                    _ => continue,
                }
                next.message = track.current.message.clone();
                next.sent_at_ms = now_ms;
                next.count += 1;
            }
            next.delivery = Delivery::Pending;
            next.agent = agent.to_string();
            records.insert(path.clone(), next.clone());
            self.inflight.insert(path.clone());
            out.push(Notification {
                record: next,
                repeat,
            });
        }
        out
    }
}

/// The znode name under `<cluster>/alerts/` for a watched path.
pub fn record_name(path: &str) -> String {
    path.replace('%', "%25").replace('/', "%2F")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    const CFG: &str = "/a:\n  children: 1\n  cancel_timeout: 2\n  alerter: {email: x@y.org}\n\
                       /quiet:\n  children: 1\n\
                       /r:\n  children: 1\n  repeat_after: 10s\n  alerter: {email: x@y.org}\n";

    fn err() -> Compliance {
        Compliance::new(State::Error, "0 children is less than minimum 1")
    }

    fn ok() -> Compliance {
        Compliance::new(State::Ok, "All checks pass.")
    }

    fn active() -> (Engine, Config, Instant) {
        let mut e = Engine::new();
        e.activate(BTreeMap::new());
        (e, parse(CFG, "t").unwrap(), Instant::now())
    }

    fn settle(e: &mut Engine, out: &[Notification]) {
        for n in out {
            let mut r = n.record.clone();
            r.delivery = Delivery::Delivered;
            e.finish(r);
        }
    }

    #[test]
    fn fires_once_after_the_grace_period() {
        let (mut e, c, t0) = active();
        e.observe("/a", err(), t0);
        assert!(
            e.decide(&c, t0 + Duration::from_secs(1), 1000, "me")
                .is_empty()
        );
        let out = e.decide(&c, t0 + Duration::from_secs(2), 2000, "me");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].record.notification, Kind::Firing);
        assert_eq!(out[0].record.delivery, Delivery::Pending);
        // In flight: nothing more for that path.
        assert!(
            e.decide(&c, t0 + Duration::from_secs(3), 3000, "me")
                .is_empty()
        );
        settle(&mut e, &out);
        e.observe("/a", err(), t0 + Duration::from_secs(4));
        assert!(
            e.decide(&c, t0 + Duration::from_secs(9), 9000, "me")
                .is_empty()
        );
    }

    #[test]
    fn recovering_within_the_grace_period_sends_nothing() {
        let (mut e, c, t0) = active();
        e.observe("/a", err(), t0);
        e.observe("/a", ok(), t0 + Duration::from_secs(1));
        assert!(
            e.decide(&c, t0 + Duration::from_secs(5), 5000, "me")
                .is_empty()
        );
    }

    #[test]
    fn recovering_after_firing_sends_a_resolved_notice() {
        let (mut e, c, t0) = active();
        e.observe("/a", err(), t0);
        let out = e.decide(&c, t0 + Duration::from_secs(2), 2000, "me");
        settle(&mut e, &out);
        e.observe("/a", ok(), t0 + Duration::from_secs(3));
        let out = e.decide(&c, t0 + Duration::from_secs(3), 3000, "me");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].record.notification, Kind::Resolved);
        assert!(!out[0].record.firing);
        assert_eq!(out[0].record.started_at_ms, 2000);
        assert_eq!(out[0].record.ended_at_ms, Some(3000));
    }

    #[test]
    fn paths_without_alerters_never_alert() {
        let (mut e, c, t0) = active();
        e.observe("/quiet", err(), t0);
        assert!(
            e.decide(&c, t0 + Duration::from_secs(60), 60_000, "me")
                .is_empty()
        );
    }

    #[test]
    fn repeat_after_re_sends_while_out_of_spec() {
        let (mut e, c, t0) = active();
        e.observe("/r", err(), t0);
        let out = e.decide(&c, t0, 0, "me");
        assert_eq!(out.len(), 1);
        settle(&mut e, &out);
        assert!(
            e.decide(&c, t0 + Duration::from_secs(5), 5000, "me")
                .is_empty()
        );
        let out = e.decide(&c, t0 + Duration::from_secs(10), 10_000, "me");
        assert_eq!(out.len(), 1);
        assert!(out[0].repeat);
        assert_eq!(out[0].record.started_at_ms, 0);
    }

    #[test]
    fn unknown_and_stale_change_nothing() {
        let (mut e, c, t0) = active();
        e.observe("/a", err(), t0);
        let out = e.decide(&c, t0 + Duration::from_secs(2), 2000, "me");
        settle(&mut e, &out);
        e.observe("/a", Compliance::new(State::Unknown, "disconnected"), t0);
        e.mark_stale();
        assert!(
            e.decide(&c, t0 + Duration::from_secs(9), 9000, "me")
                .is_empty()
        );
        // Not re-read yet after reconnecting: an old OK must not resolve.
        e.observe("/a", ok(), t0 + Duration::from_secs(10));
        assert_eq!(
            e.decide(&c, t0 + Duration::from_secs(10), 10_000, "me")
                .len(),
            1
        );
    }

    #[test]
    fn a_new_leader_neither_resends_nor_drops() {
        let (_, c, t0) = active();
        // The old leader fired /a; the new one inherits that record.
        let fired = AlertRecord {
            path: "/a".into(),
            firing: true,
            notification: Kind::Firing,
            delivery: Delivery::Delivered,
            message: "m".into(),
            started_at_ms: 1,
            sent_at_ms: 1,
            ended_at_ms: None,
            count: 1,
            agent: "old".into(),
        };
        let mut e = Engine::new();
        e.observe("/a", err(), t0);
        e.activate(BTreeMap::from([("/a".to_string(), fired.clone())]));
        assert!(
            e.decide(&c, t0 + Duration::from_secs(9), 9000, "new")
                .is_empty()
        );
        e.observe("/a", ok(), t0 + Duration::from_secs(9));
        let out = e.decide(&c, t0 + Duration::from_secs(9), 9000, "new");
        assert_eq!(out[0].record.notification, Kind::Resolved);
        // A record left pending by a dead leader is sent again.
        let mut e = Engine::new();
        e.observe("/a", err(), t0);
        let mut pending = fired;
        pending.delivery = Delivery::Pending;
        e.activate(BTreeMap::from([("/a".to_string(), pending)]));
        let out = e.decide(&c, t0, 0, "new");
        assert_eq!(out.len(), 1);
        assert!(out[0].repeat);
        assert_eq!(out[0].record.count, 1);
        assert_eq!(out[0].record.agent, "new");
    }

    #[test]
    fn inactive_engines_decide_nothing() {
        let (mut e, c, t0) = active();
        e.deactivate();
        e.observe("/a", err(), t0);
        assert!(
            e.decide(&c, t0 + Duration::from_secs(9), 9000, "me")
                .is_empty()
        );
    }

    #[test]
    fn record_names_are_single_znodes() {
        assert_eq!(record_name("/a/b%c"), "%2Fa%2Fb%25c");
    }
}
