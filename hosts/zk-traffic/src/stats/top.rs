//! Who is hammering what: the top paths, clients and auth identities of a
//! set of snapshots, for zk-top's panes and the dashboard's tables
//! (`/json/top`).
//!
//! Rows are grouped from the keyed tables (through `KeyView`, so a
//! client address is never parsed back out of a text key): per path (cut
//! to an aggregation depth at display time), per client IP, per auth
//! identity, each with its requests, reads, writes, watches, bytes and
//! watch events. Counts are the tables' (Space-Saving upper bounds, exact
//! while nothing was evicted: `/json/info` says which).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use zk_wire::stats::tables::{self, KeyView, REQUEST_KINDS, RowKind, Scope};

use super::snapshot::Snapshot;

/// What a row is ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Requests.
    #[default]
    Requests,
    /// Request bytes.
    Bytes,
    /// Write requests.
    Writes,
    /// Read requests.
    Reads,
    /// Requests that leave a watch.
    Watches,
    /// Watch events delivered.
    Events,
}

impl SortBy {
    /// Every order, in the order `s` cycles through them.
    pub const ALL: [SortBy; 6] = [
        SortBy::Requests,
        SortBy::Bytes,
        SortBy::Writes,
        SortBy::Reads,
        SortBy::Watches,
        SortBy::Events,
    ];

    /// Its name in query strings and headers.
    pub const fn name(self) -> &'static str {
        match self {
            SortBy::Requests => "requests",
            SortBy::Bytes => "bytes",
            SortBy::Writes => "writes",
            SortBy::Reads => "reads",
            SortBy::Watches => "watches",
            SortBy::Events => "events",
        }
    }

    /// The order named `s`.
    pub fn parse(s: &str) -> Option<SortBy> {
        Self::ALL.into_iter().find(|o| o.name() == s)
    }

    /// The next order (wrapping).
    pub fn next(self) -> SortBy {
        let i = Self::ALL.iter().position(|&o| o == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// How rows are picked.
#[derive(Debug, Clone, Default)]
pub struct TopOpts {
    /// Keep the first D path components (0: whole paths).
    pub depth: usize,
    /// Only paths starting with this.
    pub prefix: Option<String>,
    /// Only this client's requests (paths come from the per-client table).
    pub client: Option<IpAddr>,
    /// Ranking.
    pub sort: SortBy,
    /// Rows per list.
    pub limit: usize,
}

/// One ranked row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopRow {
    /// The path, client address or identity.
    pub key: String,
    /// Requests.
    pub requests: u64,
    /// Of which reads.
    pub reads: u64,
    /// Of which writes.
    pub writes: u64,
    /// Requests that left a watch.
    pub watches: u64,
    /// Request bytes (frame bodies).
    pub bytes: u64,
    /// Watch events delivered for it.
    pub events: u64,
    /// The request kind with the most requests (its stats name).
    pub top_type: &'static str,
    by_kind: Vec<u64>,
}

impl TopRow {
    fn add(&mut self, kind: RowKind, count: u64, bytes: u64) {
        match kind {
            RowKind::Request { kind, write, watch } => {
                self.requests += count;
                self.bytes += bytes;
                if write {
                    self.writes += count;
                } else {
                    self.reads += count;
                }
                if watch {
                    self.watches += count;
                }
                if self.by_kind.is_empty() {
                    self.by_kind = vec![0; REQUEST_KINDS];
                }
                if let Some(n) = self.by_kind.get_mut(kind) {
                    *n += count;
                }
            }
            RowKind::Event(_) => self.events += count,
        }
    }

    fn value(&self, by: SortBy) -> u64 {
        match by {
            SortBy::Requests => self.requests,
            SortBy::Bytes => self.bytes,
            SortBy::Writes => self.writes,
            SortBy::Reads => self.reads,
            SortBy::Watches => self.watches,
            SortBy::Events => self.events,
        }
    }
}

/// The three ranked lists.
#[derive(Debug, Clone, Default)]
pub struct Top {
    /// Paths.
    pub paths: Vec<TopRow>,
    /// Client addresses.
    pub clients: Vec<TopRow>,
    /// Auth identities.
    pub auths: Vec<TopRow>,
}

fn rank(map: HashMap<String, TopRow>, o: &TopOpts) -> Vec<TopRow> {
    let mut v: Vec<TopRow> = map
        .into_iter()
        .map(|(key, mut r)| {
            r.key = key;
            r.top_type = r
                .by_kind
                .iter()
                .enumerate()
                .max_by_key(|&(k, &n)| (n, std::cmp::Reverse(k)))
                .filter(|&(_, &n)| n > 0)
                .map_or("", |(k, _)| tables::request_kind_name(k));
            r
        })
        .filter(|r| r.value(o.sort) > 0 || r.requests + r.events > 0)
        .collect();
    v.sort_by(|a, b| {
        b.value(o.sort)
            .cmp(&a.value(o.sort))
            .then_with(|| b.requests.cmp(&a.requests))
            .then_with(|| a.key.cmp(&b.key))
    });
    if o.limit > 0 {
        v.truncate(o.limit);
    }
    v
}

/// The top rows of `parts` (summed) under `o`.
pub fn top(parts: &[Arc<Snapshot>], o: &TopOpts) -> Top {
    let keep_path = |p: &[u8]| -> Option<String> {
        let p = tables::aggregate(p, o.depth);
        let text = String::from_utf8_lossy(p);
        match &o.prefix {
            Some(pre) if !text.starts_with(pre.as_str()) => None,
            _ => Some(text.into_owned()),
        }
    };
    let mut paths: HashMap<String, TopRow> = HashMap::new();
    let mut clients: HashMap<String, TopRow> = HashMap::new();
    let mut auths: HashMap<String, TopRow> = HashMap::new();
    for part in parts {
        // Paths: from the per-client table when a client is pinned.
        let path_scope = if o.client.is_some() {
            Scope::Ips
        } else {
            Scope::Paths
        };
        for (key, r) in part.table(path_scope).iter() {
            let Some(k) = KeyView::decode(path_scope, key) else {
                continue;
            };
            if o.client.is_some() && k.client != o.client {
                continue;
            }
            let Some(p) = keep_path(k.path) else {
                continue;
            };
            paths.entry(p).or_default().add(k.kind, r.count, r.bytes);
        }
        for (key, r) in part.table(Scope::Ips).iter() {
            let Some(k) = KeyView::decode(Scope::Ips, key) else {
                continue;
            };
            let (Some(ip), Some(_)) = (k.client, keep_path(k.path)) else {
                continue;
            };
            if o.client.is_some_and(|c| c != ip) {
                continue;
            }
            clients
                .entry(ip.to_string())
                .or_default()
                .add(k.kind, r.count, r.bytes);
        }
        if o.client.is_none() {
            for (key, r) in part.table(Scope::Auths).iter() {
                let Some(k) = KeyView::decode(Scope::Auths, key) else {
                    continue;
                };
                let (Some(id), Some(_)) = (k.auth, keep_path(k.path)) else {
                    continue;
                };
                auths
                    .entry(String::from_utf8_lossy(id).into_owned())
                    .or_default()
                    .add(k.kind, r.count, r.bytes);
            }
        }
    }
    Top {
        paths: rank(paths, o),
        clients: rank(clients, o),
        auths: rank(auths, o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_wire::client::OpCode;
    use zk_wire::stats::{Options, Slot, Tables};

    #[test]
    fn paths_aggregate_filter_and_rank() {
        let mut t = Tables::new(
            vec![Slot::EMPTY; 64],
            vec![Slot::EMPTY; 64],
            vec![Slot::EMPTY; 64],
            Options::default(),
        );
        // Rows as the tables key them: [kind code][path].
        let gd = RowKind::Request {
            kind: OpCode::GetData.index(),
            write: false,
            watch: true,
        };
        let sd = RowKind::Request {
            kind: OpCode::SetData.index(),
            write: true,
            watch: false,
        };
        t.flush();
        let mut snap = Snapshot::of(&t, 0, 1);
        let mut rows = Vec::new();
        for (kind, path, n, b) in [
            (gd, "/a/x", 5u64, 50u64),
            (gd, "/a/y", 3, 30),
            (sd, "/a/x", 4, 400),
            (sd, "/b", 1, 10),
        ] {
            let mut k = vec![kind.code()];
            k.extend_from_slice(path.as_bytes());
            rows.push((k, n, b));
        }
        snap.tables[Scope::Paths.index()] = super::super::snapshot::TableRows::from_rows(&rows);
        let parts = vec![Arc::new(snap)];
        let o = TopOpts {
            limit: 10,
            ..Default::default()
        };
        let top = top(&parts, &o);
        assert_eq!(top.paths[0].key, "/a/x");
        assert_eq!(
            (
                top.paths[0].requests,
                top.paths[0].writes,
                top.paths[0].watches
            ),
            (9, 4, 5)
        );
        assert_eq!(top.paths[0].top_type, "GetDataRequest");
        let by_depth = super::top(
            &parts,
            &TopOpts {
                depth: 1,
                sort: SortBy::Bytes,
                limit: 10,
                ..Default::default()
            },
        );
        assert_eq!(by_depth.paths[0].key, "/a");
        assert_eq!(by_depth.paths[0].bytes, 480);
        let only_b = super::top(
            &parts,
            &TopOpts {
                prefix: Some("/b".into()),
                limit: 10,
                ..Default::default()
            },
        );
        assert_eq!(only_b.paths.len(), 1);
        assert_eq!(SortBy::Events.next(), SortBy::Requests);
    }
}
