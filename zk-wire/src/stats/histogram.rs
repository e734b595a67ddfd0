//! A fixed log-linear latency histogram (microseconds).
//!
//! Values are bucketed like HdrHistogram with [`SUB_BUCKETS`] linear
//! sub-buckets per power of two: every recorded value lands in a bucket
//! whose width is at most 1/[`SUB_BUCKETS`] of its lower bound, so a
//! reported percentile is within 6.25% of the true value (and exact below
//! [`SUB_BUCKETS`] µs). The exact maximum, sum and count are kept too.
//! Memory is fixed ([`BUCKETS`] counters); recording is a few instructions.

/// Linear sub-buckets per power of two (2^4: at most 6.25% relative error).
pub const SUB_BUCKETS: usize = 16;
const SUB_BITS: u32 = 4;
/// Powers of two covered above the first linear range (values up to 2^40 µs,
/// about 12.7 days; larger values count in the last bucket).
const RANGES: usize = 37;
/// Buckets in a histogram.
pub const BUCKETS: usize = SUB_BUCKETS * (RANGES + 1);

/// A latency histogram with fixed memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: [u64; BUCKETS],
    count: u64,
    sum: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Bucket index of a value.
const fn index_of(v: u64) -> usize {
    if v < SUB_BUCKETS as u64 {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros(); // >= SUB_BITS
    let range = (msb - SUB_BITS + 1) as usize;
    let sub = ((v >> (msb - SUB_BITS)) as usize) & (SUB_BUCKETS - 1);
    let idx = range * SUB_BUCKETS + sub;
    if idx >= BUCKETS { BUCKETS - 1 } else { idx }
}

/// Smallest value that lands in bucket `i`.
const fn lower_bound(i: usize) -> u64 {
    if i < SUB_BUCKETS {
        return i as u64;
    }
    let range = (i / SUB_BUCKETS) as u32;
    let sub = (i % SUB_BUCKETS) as u64;
    (SUB_BUCKETS as u64 + sub) << (range - 1)
}

/// Largest value that lands in bucket `i`.
const fn upper_bound(i: usize) -> u64 {
    if i + 1 >= BUCKETS {
        u64::MAX
    } else {
        lower_bound(i + 1) - 1
    }
}

impl Histogram {
    /// An empty histogram.
    pub const fn new() -> Self {
        Histogram {
            counts: [0; BUCKETS],
            count: 0,
            sum: 0,
            max: 0,
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[index_of(v)] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(v);
        if v > self.max {
            self.max = v;
        }
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the values recorded (saturating).
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// Largest value recorded (exact).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean of the values recorded (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0.0..=1.0), nearest-rank: the upper bound
    /// of the bucket holding the rank, capped at the exact maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        let rank = {
            let r = q * self.count as f64;
            let c = r as u64;
            let c = if (c as f64) < r { c + 1 } else { c };
            c.clamp(1, self.count)
        };
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return upper_bound(i).min(self.max);
            }
        }
        self.max
    }

    /// Values recorded that are at most `le` (exact when `le + 1` is a
    /// bucket boundary, else counted up to the boundary below it).
    pub fn count_at_most(&self, le: u64) -> u64 {
        let mut n = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            if upper_bound(i) > le {
                break;
            }
            n += c;
        }
        n
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
        self.max = self.max.max(other.max);
    }

    /// What was recorded after `earlier`, a past copy of this histogram
    /// (bucket by bucket; the maximum is the exact one when the newest
    /// value is the largest, else bounded by its bucket).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let mut d = Histogram::new();
        let mut top = None;
        for (i, (a, b)) in self.counts.iter().zip(earlier.counts.iter()).enumerate() {
            let n = a.saturating_sub(*b);
            d.counts[i] = n;
            if n > 0 {
                top = Some(i);
            }
        }
        d.count = self.count.saturating_sub(earlier.count);
        d.sum = self.sum.saturating_sub(earlier.sum);
        d.max = match top {
            Some(i) => upper_bound(i).min(self.max),
            None => 0,
        };
        d
    }

    /// Forgets everything recorded.
    pub fn clear(&mut self) {
        *self = Histogram::new();
    }

    /// Non-empty buckets as (lower bound, upper bound, count).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (lower_bound(i), upper_bound(i), *c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_what_was_recorded_after_a_copy() {
        let mut h = Histogram::new();
        for v in [10, 200, 3000] {
            h.record(v);
        }
        let then = h.clone();
        for v in [50, 60, 70, 9000] {
            h.record(v);
        }
        let d = h.since(&then);
        assert_eq!(d.count(), 4);
        assert_eq!(d.sum(), 50 + 60 + 70 + 9000);
        assert_eq!(d.max(), 9000);
        assert!(d.quantile(0.5) >= 60 && d.quantile(0.5) < 64);
        assert_eq!(h.since(&h).count(), 0);
    }

    #[test]
    fn buckets_tile_the_value_range_without_gaps() {
        for i in 0..BUCKETS - 1 {
            assert_eq!(upper_bound(i) + 1, lower_bound(i + 1), "bucket {i}");
            assert_eq!(index_of(lower_bound(i)), i);
            assert_eq!(index_of(upper_bound(i)), i);
        }
        assert_eq!(index_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn relative_error_is_bounded() {
        let mut v = 1u64;
        while v < 1 << 40 {
            let i = index_of(v);
            let width = upper_bound(i) - lower_bound(i) + 1;
            assert!(
                width * SUB_BUCKETS as u64 <= lower_bound(i).max(SUB_BUCKETS as u64),
                "{v}"
            );
            v = v * 3 / 2 + 1;
        }
    }

    #[test]
    fn quantiles_are_within_the_bucket_of_the_true_value() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!(h.max(), 10_000);
        for (q, truth) in [(0.5, 5000u64), (0.9, 9000), (0.99, 9900), (0.999, 9990)] {
            let got = h.quantile(q);
            assert!(
                got >= truth && got as f64 <= truth as f64 * 1.0625 + 1.0,
                "q{q}: {got}"
            );
        }
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.quantile(0.0), 1);
    }

    #[test]
    fn small_values_are_exact_and_merge_adds() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(3);
        b.record(7);
        b.record(7);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.quantile(0.34), 7);
        assert_eq!(a.quantile(0.33), 3);
        assert_eq!(a.count_at_most(3), 1);
        assert_eq!(a.count_at_most(7), 3);
        assert_eq!(a.sum(), 17);
    }
}
