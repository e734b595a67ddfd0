//! Summary tables for `zk-dump --count-requests` / `--measure-latency`.

use std::collections::HashMap;
use std::fmt::Write as _;

use clap::ValueEnum;

/// What summary rows are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupBy {
    /// The request's path (cut to `--aggregation-depth`).
    Path,
    /// The request type.
    Type,
    /// The client address.
    Client,
}

/// Latency table order (descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortBy {
    /// Mean latency.
    Avg,
    /// Median.
    P50,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// Largest.
    Max,
}

/// Keeps the first `depth` components of `path` (0 keeps it whole).
pub fn aggregate_path(path: &str, depth: usize) -> String {
    if depth == 0 {
        return path.to_owned();
    }
    let mut end = path.len();
    let mut seen = 0;
    for (i, b) in path.bytes().enumerate().skip(1) {
        if b == b'/' {
            seen += 1;
            if seen == depth {
                end = i;
                break;
            }
        }
    }
    path[..end].to_owned()
}

/// Counts and latencies collected between two tables.
#[derive(Debug, Default)]
pub struct Summary {
    /// Requests counted.
    pub requests: u64,
    /// Paired replies measured.
    pub replies: u64,
    counts: HashMap<String, u64>,
    latencies: HashMap<String, Vec<i64>>,
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// Counts one request under `key`.
    pub fn count(&mut self, key: String) {
        self.requests += 1;
        *self.counts.entry(key).or_default() += 1;
    }

    /// Records one latency (microseconds) under `key`.
    pub fn latency(&mut self, key: String, us: i64) {
        self.replies += 1;
        self.latencies.entry(key).or_default().push(us);
    }

    /// Renders the table: counts, or latencies sorted by `sort`.
    pub fn table(&mut self, latency: bool, sort: SortBy, top: usize) -> String {
        let mut s = String::new();
        if !latency {
            let mut rows: Vec<_> = self.counts.iter().collect();
            rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let _ = writeln!(s, "{:<60} {:>10}", "KEY", "REQUESTS");
            for (k, n) in rows.into_iter().take(top) {
                let _ = writeln!(s, "{k:<60} {n:>10}");
            }
            let _ = writeln!(s, "{:<60} {:>10}\n", "(total)", self.requests);
            return s;
        }
        let mut rows: Vec<(String, usize, f64, i64, i64, i64, i64)> = self
            .latencies
            .iter_mut()
            .map(|(k, v)| {
                v.sort_unstable();
                let avg = v.iter().sum::<i64>() as f64 / v.len() as f64;
                (
                    k.clone(),
                    v.len(),
                    avg,
                    percentile(v, 50.0),
                    percentile(v, 95.0),
                    percentile(v, 99.0),
                    *v.last().unwrap_or(&0),
                )
            })
            .collect();
        rows.sort_by(|a, b| {
            let key = |r: &(String, usize, f64, i64, i64, i64, i64)| match sort {
                SortBy::Avg => r.2,
                SortBy::P50 => r.3 as f64,
                SortBy::P95 => r.4 as f64,
                SortBy::P99 => r.5 as f64,
                SortBy::Max => r.6 as f64,
            };
            key(b).total_cmp(&key(a)).then(a.0.cmp(&b.0))
        });
        let _ = writeln!(
            s,
            "{:<50} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "KEY", "COUNT", "AVG_MS", "P50_MS", "P95_MS", "P99_MS", "MAX_MS"
        );
        let ms = |us: f64| us / 1000.0;
        for r in rows.into_iter().take(top) {
            let _ = writeln!(
                s,
                "{:<50} {:>8} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
                r.0,
                r.1,
                ms(r.2),
                ms(r.3 as f64),
                ms(r.4 as f64),
                ms(r.5 as f64),
                ms(r.6 as f64)
            );
        }
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregation_depth_keeps_leading_components() {
        assert_eq!(aggregate_path("/a/b/c", 0), "/a/b/c");
        assert_eq!(aggregate_path("/a/b/c", 1), "/a");
        assert_eq!(aggregate_path("/a/b/c", 2), "/a/b");
        assert_eq!(aggregate_path("/a/b/c", 5), "/a/b/c");
        assert_eq!(aggregate_path("/", 1), "/");
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 95.0), 7);
    }
}
