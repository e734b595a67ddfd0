//! Per-second figures of the last minutes of capture time: the rates and
//! latencies behind zk-top's sparklines and the dashboard's charts.
//!
//! Each capture second, the exact totals (requests by type, bytes,
//! replies, errors, events, sessions) and the all-types latency histogram
//! are compared with the second before; the differences are one
//! [`Second`] in a ring of [`HISTORY`]. Nothing here depends on the
//! keyed tables (so nothing here is an estimate), and the cost is a few
//! thousand additions per second of traffic, whatever its rate.

use std::collections::VecDeque;

use zk_wire::client::OpCode;
use zk_wire::stats::tables::{ERROR_SLOTS, REQUEST_KINDS};
use zk_wire::stats::{Histogram, Totals};

/// Seconds kept.
pub const HISTORY: usize = 600;

/// One second of capture time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Second {
    /// Its start (seconds since the epoch, capture clock).
    pub t: i64,
    /// Requests by kind (see `zk_wire::stats::tables::request_kind_name`).
    pub requests: [u32; REQUEST_KINDS],
    /// Bytes of those requests (frame bodies).
    pub request_bytes: u64,
    /// Replies paired with their request.
    pub replies: u32,
    /// Of those, replies with an error code other than `Ok`.
    pub errors: u32,
    /// Bytes of paired replies.
    pub reply_bytes: u64,
    /// Watch events.
    pub events: u32,
    /// Connect requests (new sessions and reconnects).
    pub connects: u32,
    /// Close requests.
    pub closes: u32,
    /// Connect responses saying the session had expired.
    pub expired: u32,
    /// Latency of the second's paired replies, all types: p50, p90, p99
    /// and max, in µs (0 without replies).
    pub latency_us: [u32; 4],
}

impl Second {
    /// A second with nothing in it.
    pub const fn empty(t: i64) -> Second {
        Second {
            t,
            requests: [0; REQUEST_KINDS],
            request_bytes: 0,
            replies: 0,
            errors: 0,
            reply_bytes: 0,
            events: 0,
            connects: 0,
            closes: 0,
            expired: 0,
            latency_us: [0; 4],
        }
    }

    /// Requests of every kind.
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().map(|&n| u64::from(n)).sum()
    }
}

/// The running sums a second is the difference of.
#[derive(Debug, Clone)]
struct Mark {
    requests: [u64; REQUEST_KINDS],
    request_bytes: u64,
    replies: u64,
    errors: u64,
    reply_bytes: u64,
    events: u64,
    connects: u64,
    closes: u64,
    expired: u64,
    latency: Histogram,
}

impl Mark {
    fn of(parts: &[&Totals], latency: &[&Histogram]) -> Mark {
        let mut m = Mark {
            requests: [0; REQUEST_KINDS],
            request_bytes: 0,
            replies: 0,
            errors: 0,
            reply_bytes: 0,
            events: 0,
            connects: 0,
            closes: 0,
            expired: 0,
            latency: Histogram::new(),
        };
        for t in parts {
            for k in 0..REQUEST_KINDS {
                m.requests[k] += t.requests[k];
                m.request_bytes += t.request_bytes[k];
            }
            for op in 0..OpCode::COUNT {
                let r = &t.replies[op];
                m.replies += r.iter().sum::<u64>();
                m.errors += r[1..ERROR_SLOTS].iter().sum::<u64>();
                m.reply_bytes += t.reply_bytes[op];
            }
            m.events += t.events.iter().sum::<u64>();
            m.connects += t.sessions.connects + t.sessions.reconnects;
            m.closes += t.sessions.closes;
            m.expired += t.sessions.expired;
        }
        for h in latency {
            m.latency.merge(h);
        }
        m
    }
}

fn delta(now: u64, then: u64) -> u32 {
    u32::try_from(now.saturating_sub(then)).unwrap_or(u32::MAX)
}

/// The ring of seconds, and where the second in progress started.
#[derive(Debug, Clone)]
pub struct History {
    seconds: VecDeque<Second>,
    /// Start of the second in progress (None before the first frame).
    open: Option<i64>,
    mark: Option<Mark>,
    /// Bumped at every change (readers copy only then).
    pub generation: u64,
}

impl Default for History {
    fn default() -> Self {
        History {
            seconds: VecDeque::with_capacity(HISTORY),
            open: None,
            mark: None,
            generation: 0,
        }
    }
}

impl History {
    /// The end (µs, capture clock) of the second in progress, if any.
    pub fn due_us(&self) -> Option<i64> {
        self.open.map(|t| (t + 1) * 1_000_000)
    }

    /// Closes every second that ended by `now_us`, given the running
    /// totals (`parts` summed) and latency histograms as of now.
    pub fn tick(&mut self, now_us: i64, parts: &[&Totals], latency: &[&Histogram]) {
        let now_s = now_us.div_euclid(1_000_000);
        let Some(open) = self.open else {
            self.open = Some(now_s);
            self.mark = Some(Mark::of(parts, latency));
            return;
        };
        if now_s <= open {
            return;
        }
        let m = Mark::of(parts, latency);
        let then = self.mark.take().unwrap_or_else(|| m.clone());
        let lat = m.latency.since(&then.latency);
        let q = |x: f64| u32::try_from(lat.quantile(x)).unwrap_or(u32::MAX);
        let mut s = Second::empty(open);
        for k in 0..REQUEST_KINDS {
            s.requests[k] = delta(m.requests[k], then.requests[k]);
        }
        s.request_bytes = m.request_bytes.saturating_sub(then.request_bytes);
        s.replies = delta(m.replies, then.replies);
        s.errors = delta(m.errors, then.errors);
        s.reply_bytes = m.reply_bytes.saturating_sub(then.reply_bytes);
        s.events = delta(m.events, then.events);
        s.connects = delta(m.connects, then.connects);
        s.closes = delta(m.closes, then.closes);
        s.expired = delta(m.expired, then.expired);
        if lat.count() > 0 {
            s.latency_us = [
                q(0.5),
                q(0.9),
                q(0.99),
                u32::try_from(lat.max()).unwrap_or(u32::MAX),
            ];
        }
        self.push(s);
        // Quiet seconds in between (at most a ring's worth).
        let quiet = (now_s - open - 1).min(HISTORY as i64);
        for t in (now_s - quiet)..now_s {
            self.push(Second::empty(t));
        }
        self.open = Some(now_s);
        self.mark = Some(m);
        self.generation += 1;
    }

    fn push(&mut self, s: Second) {
        if self.seconds.len() == HISTORY {
            self.seconds.pop_front();
        }
        self.seconds.push_back(s);
    }

    /// The seconds closed so far, oldest first.
    pub fn seconds(&self) -> impl ExactSizeIterator<Item = &Second> + DoubleEndedIterator {
        self.seconds.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_differences_and_quiet_seconds_are_empty() {
        let mut h = History::default();
        let mut t = Totals::ZERO;
        let mut lat = Histogram::new();
        h.tick(10_000_000, &[&t], &[&lat]);
        t.requests[3] = 5;
        t.request_bytes[3] = 50;
        t.replies[3][0] = 4;
        t.replies[3][13] = 1;
        lat.record(100);
        lat.record(200);
        h.tick(10_500_000, &[&t], &[&lat]);
        assert_eq!(h.seconds().len(), 0);
        h.tick(11_000_000, &[&t], &[&lat]);
        let s: Vec<Second> = h.seconds().copied().collect();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].t, s[0].requests[3], s[0].request_bytes), (10, 5, 50));
        assert_eq!((s[0].replies, s[0].errors), (5, 1));
        assert_eq!(s[0].latency_us[3], 200);
        t.requests[3] = 7;
        h.tick(14_200_000, &[&t], &[&lat]);
        let s: Vec<Second> = h.seconds().copied().collect();
        assert_eq!(s.iter().map(|x| x.t).collect::<Vec<_>>(), [10, 11, 12, 13]);
        assert_eq!(s[1].requests[3], 2);
        assert_eq!(s[2], Second::empty(12));
        assert_eq!(s[3].latency_us, [0; 4]);
    }

    #[test]
    fn the_ring_keeps_the_last_seconds_only() {
        let mut h = History::default();
        let t = Totals::ZERO;
        let lat = Histogram::new();
        for s in 0..(HISTORY as i64 + 50) {
            h.tick(s * 1_000_000, &[&t], &[&lat]);
        }
        assert_eq!(h.seconds().len(), HISTORY);
        assert_eq!(h.seconds().next().unwrap().t, 49);
    }
}
