//! What a workload put on the wire (`Expected`, filled by the raw client's
//! `Recorder` or written by hand for fixtures) and what zk-dump decoded
//! (`decoded_counts`), in one comparable shape.
//!
//! Counting rules, identical on both sides:
//! - `messages[(type, key)]`: one per message; `key` is the path for
//!   requests, replies (the paired request's path) and watch events, the
//!   word for `FourLetterWord`, and "" otherwise.
//! - `events[(event_type, path)]`: watch events.
//! - `errors[(reply type, err name, path)]`: replies whose `err` is not `Ok`.
//! - `multi_ops["T1 p1; T2 p2; ..."]`: the sub-ops of each `MultiRequest`.
//! - `bytes[(type, key)]`: sum of `size` (frame length incl. the 4-byte
//!   prefix) over requests, replies and events; `sizes_missing` counts those
//!   messages that had no `size`. Fixture expectations that do not know the
//!   sizes compare with `without_bytes()`.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub messages: BTreeMap<(String, String), u64>,
    pub events: BTreeMap<(String, String), u64>,
    pub errors: BTreeMap<(String, String, String), u64>,
    pub multi_ops: BTreeMap<String, u64>,
    pub bytes: BTreeMap<(String, String), u64>,
    pub sizes_missing: u64,
}

/// What a workload did. Same shape as the decoded counts.
pub type Expected = Counts;

fn bump<K: Ord>(m: &mut BTreeMap<K, u64>, k: K, n: u64) {
    if n == 0 {
        return;
    }
    *m.entry(k).or_insert(0) += n;
}

impl Counts {
    pub fn new() -> Counts {
        Counts::default()
    }

    /// `n` messages of `ty` keyed by `key` (path, word or "").
    pub fn add(&mut self, ty: &str, key: &str, n: u64) -> &mut Self {
        bump(&mut self.messages, (ty.to_string(), key.to_string()), n);
        self
    }

    /// `n` watch events: adds both the `WatchEvent` message and the event.
    pub fn add_event(&mut self, event_type: &str, path: &str, n: u64) -> &mut Self {
        bump(
            &mut self.messages,
            ("WatchEvent".to_string(), path.to_string()),
            n,
        );
        bump(
            &mut self.events,
            (event_type.to_string(), path.to_string()),
            n,
        );
        self
    }

    /// `n` error replies (the reply messages themselves are added with `add`).
    pub fn add_error(&mut self, reply_ty: &str, err: &str, path: &str, n: u64) -> &mut Self {
        bump(
            &mut self.errors,
            (reply_ty.to_string(), err.to_string(), path.to_string()),
            n,
        );
        self
    }

    pub fn add_multi(&mut self, ops: &[(&str, &str)], n: u64) -> &mut Self {
        bump(
            &mut self.multi_ops,
            multi_key(ops.iter().map(|(t, p)| (*t, *p))),
            n,
        );
        self
    }

    pub fn add_bytes(&mut self, ty: &str, key: &str, size: u64) -> &mut Self {
        *self
            .bytes
            .entry((ty.to_string(), key.to_string()))
            .or_insert(0) += size;
        self
    }

    /// A four-letter word and its text answer.
    pub fn add_four_letter(&mut self, word: &str) -> &mut Self {
        self.add("FourLetterWord", word, 1);
        self.add("FourLetterReply", "", 1);
        self
    }

    pub fn merge(&mut self, other: &Counts) {
        for (k, v) in &other.messages {
            bump(&mut self.messages, k.clone(), *v);
        }
        for (k, v) in &other.events {
            bump(&mut self.events, k.clone(), *v);
        }
        for (k, v) in &other.errors {
            bump(&mut self.errors, k.clone(), *v);
        }
        for (k, v) in &other.multi_ops {
            bump(&mut self.multi_ops, k.clone(), *v);
        }
        for (k, v) in &other.bytes {
            *self.bytes.entry(k.clone()).or_insert(0) += *v;
        }
        self.sizes_missing += other.sizes_missing;
    }

    /// The same counts without the byte sums (for expectations that do not
    /// know sizes).
    pub fn without_bytes(&self) -> Counts {
        Counts {
            bytes: BTreeMap::new(),
            sizes_missing: 0,
            ..self.clone()
        }
    }

    /// Number of messages of `ty`, all keys.
    pub fn total(&self, ty: &str) -> u64 {
        self.messages
            .iter()
            .filter(|((t, _), _)| t == ty)
            .map(|(_, v)| *v)
            .sum()
    }

    pub fn get(&self, ty: &str, key: &str) -> u64 {
        self.messages
            .get(&(ty.to_string(), key.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Human-readable differences, empty when equal.
    pub fn diff(&self, expected: &Counts) -> Vec<String> {
        let mut out = Vec::new();
        diff_map("message", &self.messages, &expected.messages, &mut out);
        diff_map("event", &self.events, &expected.events, &mut out);
        diff_map("error", &self.errors, &expected.errors, &mut out);
        diff_map("multi", &self.multi_ops, &expected.multi_ops, &mut out);
        diff_map("bytes", &self.bytes, &expected.bytes, &mut out);
        if self.sizes_missing != expected.sizes_missing {
            out.push(format!(
                "sizes_missing: decoded {} expected {}",
                self.sizes_missing, expected.sizes_missing
            ));
        }
        out
    }

    /// A markdown table of the message counts (and events, errors, multi).
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("| type | path / word | count | bytes |\n|---|---|---:|---:|\n");
        for ((t, k), v) in &self.messages {
            let b = self
                .bytes
                .get(&(t.clone(), k.clone()))
                .map(|b| b.to_string())
                .unwrap_or_default();
            let k = if k.is_empty() { "-" } else { k.as_str() };
            let _ = writeln!(s, "| {t} | `{k}` | {v} | {b} |");
        }
        if !self.events.is_empty() {
            s.push_str("\n| watch event | path | count |\n|---|---|---:|\n");
            for ((t, p), v) in &self.events {
                let _ = writeln!(s, "| {t} | `{p}` | {v} |");
            }
        }
        if !self.errors.is_empty() {
            s.push_str("\n| reply | err | path | count |\n|---|---|---|---:|\n");
            for ((t, e, p), v) in &self.errors {
                let p = if p.is_empty() { "-" } else { p.as_str() };
                let _ = writeln!(s, "| {t} | {e} | `{p}` | {v} |");
            }
        }
        if !self.multi_ops.is_empty() {
            s.push_str("\n| multi sub-ops | count |\n|---|---:|\n");
            for (k, v) in &self.multi_ops {
                let _ = writeln!(s, "| {k} | {v} |");
            }
        }
        s
    }

    pub fn to_json(&self) -> Value {
        json!({
            "messages": self.messages.iter().map(|((t, k), v)| json!({"type": t, "key": k, "count": v})).collect::<Vec<_>>(),
            "events": self.events.iter().map(|((t, p), v)| json!({"event_type": t, "path": p, "count": v})).collect::<Vec<_>>(),
            "errors": self.errors.iter().map(|((t, e, p), v)| json!({"type": t, "err": e, "path": p, "count": v})).collect::<Vec<_>>(),
            "multi_ops": self.multi_ops.iter().map(|(k, v)| json!({"ops": k, "count": v})).collect::<Vec<_>>(),
            "bytes": self.bytes.iter().map(|((t, k), v)| json!({"type": t, "key": k, "bytes": v})).collect::<Vec<_>>(),
            "sizes_missing": self.sizes_missing,
        })
    }

    pub fn from_json(v: &Value) -> Result<Counts, String> {
        fn s(v: &Value, k: &str) -> Result<String, String> {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("missing string {k} in {v}"))
        }
        fn n(v: &Value, k: &str) -> Result<u64, String> {
            v.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("missing number {k} in {v}"))
        }
        fn arr<'a>(v: &'a Value, k: &str) -> Result<&'a Vec<Value>, String> {
            v.get(k)
                .and_then(Value::as_array)
                .ok_or_else(|| format!("missing array {k}"))
        }
        let mut c = Counts::new();
        for m in arr(v, "messages")? {
            c.messages
                .insert((s(m, "type")?, s(m, "key")?), n(m, "count")?);
        }
        for m in arr(v, "events")? {
            c.events
                .insert((s(m, "event_type")?, s(m, "path")?), n(m, "count")?);
        }
        for m in arr(v, "errors")? {
            c.errors
                .insert((s(m, "type")?, s(m, "err")?, s(m, "path")?), n(m, "count")?);
        }
        for m in arr(v, "multi_ops")? {
            c.multi_ops.insert(s(m, "ops")?, n(m, "count")?);
        }
        for m in arr(v, "bytes")? {
            c.bytes
                .insert((s(m, "type")?, s(m, "key")?), n(m, "bytes")?);
        }
        c.sizes_missing = n(v, "sizes_missing")?;
        Ok(c)
    }
}

fn diff_map<K: Ord + std::fmt::Debug>(
    what: &str,
    decoded: &BTreeMap<K, u64>,
    expected: &BTreeMap<K, u64>,
    out: &mut Vec<String>,
) {
    for (k, e) in expected {
        let d = decoded.get(k).copied().unwrap_or(0);
        if d != *e {
            out.push(format!("{what} {k:?}: decoded {d}, expected {e}"));
        }
    }
    for (k, d) in decoded {
        if !expected.contains_key(k) {
            out.push(format!("{what} {k:?}: decoded {d}, expected 0"));
        }
    }
}

/// Panics with a readable diff unless `decoded == expected`.
#[track_caller]
pub fn assert_counts_eq(label: &str, decoded: &Counts, expected: &Counts) {
    let d = decoded.diff(expected);
    if !d.is_empty() {
        panic!(
            "{label}: decoded counts differ from expected ({} differences):\n  {}\n\nexpected:\n{}",
            d.len(),
            d.join("\n  "),
            expected.to_markdown()
        );
    }
}

/// `"T1 p1; T2 p2"`, the key of a multi's sub-op list.
pub fn multi_key<'a>(ops: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    ops.map(|(t, p)| format!("{t} {p}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The key the counting rules give one NDJSON message.
fn message_key(ev: &Value) -> String {
    if let Some(p) = ev.get("path").and_then(Value::as_str) {
        return p.to_string();
    }
    if ev.get("type").and_then(Value::as_str) == Some("FourLetterWord")
        && let Some(w) = ev.get("word").and_then(Value::as_str)
    {
        return w.to_string();
    }
    String::new()
}

/// Counts over zk-dump's NDJSON objects.
pub fn decoded_counts(events: &[Value]) -> Counts {
    decoded_counts_where(events, |_| true)
}

/// Counts over the objects for which `keep` is true.
pub fn decoded_counts_where(events: &[Value], keep: impl Fn(&Value) -> bool) -> Counts {
    let mut c = Counts::new();
    for ev in events.iter().filter(|e| keep(e)) {
        let ty = ev
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("<no type>");
        let kind = ev
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("<no kind>");
        let key = if ty == "FourLetterReply" {
            String::new()
        } else {
            message_key(ev)
        };
        bump(&mut c.messages, (ty.to_string(), key.clone()), 1);
        if kind == "event" {
            let et = ev
                .get("event_type")
                .and_then(Value::as_str)
                .unwrap_or("<no event_type>");
            bump(&mut c.events, (et.to_string(), key.clone()), 1);
        }
        if kind == "reply"
            && let Some(err) = ev.get("err").and_then(Value::as_str)
            && err != "Ok"
        {
            bump(
                &mut c.errors,
                (ty.to_string(), err.to_string(), key.clone()),
                1,
            );
        }
        if kind == "request" && ty == "MultiRequest" {
            let ops = ev.get("ops").and_then(Value::as_array);
            let k = match ops {
                Some(ops) => multi_key(ops.iter().map(|o| {
                    (
                        o.get("type").and_then(Value::as_str).unwrap_or("?"),
                        o.get("path").and_then(Value::as_str).unwrap_or(""),
                    )
                })),
                None => "<no ops>".to_string(),
            };
            bump(&mut c.multi_ops, k, 1);
        }
        if matches!(kind, "request" | "reply" | "event") {
            match ev.get("size").and_then(Value::as_u64) {
                Some(sz) => *c.bytes.entry((ty.to_string(), key)).or_insert(0) += sz,
                None => c.sizes_missing += 1,
            }
        }
    }
    c
}

/// Collects what raw clients put on the wire and read from it, per client
/// address ("ip:port", as zk-dump's `client` field), so a test can compare
/// all of a capture or only some connections.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<BTreeMap<String, Counts>>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    pub fn with<R>(&self, client: &str, f: impl FnOnce(&mut Counts) -> R) -> R {
        let mut g = self.inner.lock().unwrap();
        f(g.entry(client.to_string()).or_default())
    }

    /// Everything recorded, all clients.
    pub fn expected(&self) -> Expected {
        let g = self.inner.lock().unwrap();
        let mut c = Counts::new();
        for v in g.values() {
            c.merge(v);
        }
        c
    }

    /// What one client connection did.
    pub fn expected_for(&self, client: &str) -> Expected {
        self.inner
            .lock()
            .unwrap()
            .get(client)
            .cloned()
            .unwrap_or_default()
    }

    pub fn clients(&self) -> Vec<String> {
        self.inner.lock().unwrap().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_counting_rules() {
        let evs: Vec<Value> = vec![
            json!({"kind":"request","type":"GetDataRequest","path":"/a","size":20}),
            json!({"kind":"reply","type":"GetDataReply","path":"/a","err":"NoNode","size":20}),
            json!({"kind":"event","type":"WatchEvent","path":"/a","event_type":"NodeDeleted","size":30}),
            json!({"kind":"4lw","type":"FourLetterWord","word":"ruok"}),
            json!({"kind":"4lw","type":"FourLetterReply","word":"ruok"}),
            json!({"kind":"request","type":"MultiRequest","size":50,"ops":[{"type":"CreateRequest","path":"/m"},{"type":"DeleteRequest","path":"/n"}]}),
            json!({"kind":"request","type":"PingRequest"}),
        ];
        let c = decoded_counts(&evs);
        let mut e = Counts::new();
        e.add("GetDataRequest", "/a", 1)
            .add("GetDataReply", "/a", 1)
            .add_error("GetDataReply", "NoNode", "/a", 1)
            .add_event("NodeDeleted", "/a", 1)
            .add_four_letter("ruok")
            .add("MultiRequest", "", 1)
            .add_multi(&[("CreateRequest", "/m"), ("DeleteRequest", "/n")], 1)
            .add("PingRequest", "", 1)
            .add_bytes("GetDataRequest", "/a", 20)
            .add_bytes("GetDataReply", "/a", 20)
            .add_bytes("WatchEvent", "/a", 30)
            .add_bytes("MultiRequest", "", 50);
        e.sizes_missing = 1;
        assert_eq!(c.diff(&e), Vec::<String>::new());
        let back = Counts::from_json(&c.to_json()).unwrap();
        assert_eq!(back, c);
        e.add("PingRequest", "", 1);
        assert_eq!(c.diff(&e).len(), 1);
    }
}
