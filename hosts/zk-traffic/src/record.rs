//! One printable record per decoded message, shared by the human and the
//! NDJSON printers (and the summaries).
//!
//! A [`Record`] is built from a zk-wire [`Event`] with everything resolved
//! that a host can add: names, the request's path for a paired reply (from
//! a bounded hash -> path map), redaction of credentials. Only fields that
//! apply to a message are set, so the JSON stays small.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;
use zk_wire::client::{self, OpCode, ReplyBody, RequestBody, Stat};
use zk_wire::flow::{Event, Message, Pairing};

/// One sub-operation of a multi request (or result of a multi reply).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SubOp {
    /// ZooKeeper name, e.g. `CreateRequest`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The sub-op's path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Error of a multi result, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
}

/// A decoded message ready to print. Field names are the `--json` schema.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Record {
    /// Capture time, seconds since the epoch.
    pub ts: f64,
    /// Client address, `ip:port`.
    pub client: String,
    /// Server address, `ip:port`.
    pub server: String,
    /// `request`, `reply`, `event`, `4lw` or `malformed`.
    pub kind: &'static str,
    /// ZooKeeper name of the message.
    #[serde(rename = "type")]
    pub kind_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zxid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opcode: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<bool>,
    /// The path a create (or sync) reply returns: for sequential nodes the
    /// name the server chose (`path` stays the request's path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_path: Option<String>,
    /// Frame length on the wire including the length prefix.
    pub size: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub word: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<Vec<SubOp>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_zxid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_len: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl_count: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_children: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relative_zxid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_watches: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exist_watches: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_watches: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_watches: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_recursive_watches: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joining: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaving: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_members: Option<String>,
    /// First bytes of a four-letter-word answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Only the frame's first bytes were decoded (larger than the
    /// reassembly chunk, or damaged by lost segments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// Opcode of the request, for filtering (not printed).
    #[serde(skip)]
    pub op: Option<OpCode>,
    /// The request was a write (create, delete, setData, ...).
    #[serde(skip)]
    pub is_write: bool,
}

/// Remembers the paths of recent requests by hash, so that a paired reply
/// can show its request's path. Bounded: cleared when it grows past its cap.
#[derive(Debug, Default)]
pub struct PathMap {
    map: HashMap<u64, Box<str>>,
    cap: usize,
}

impl PathMap {
    /// A map holding at most `cap` paths.
    pub fn new(cap: usize) -> Self {
        PathMap {
            map: HashMap::new(),
            cap,
        }
    }

    fn note(&mut self, path: &str) {
        let h = client::path_hash(path);
        if self.map.contains_key(&h) {
            return;
        }
        if self.map.len() >= self.cap {
            self.map.clear();
        }
        self.map.insert(h, path.into());
    }

    fn get(&self, hash: u64) -> Option<&str> {
        self.map.get(&hash).map(|s| &**s)
    }
}

/// Options that change what a record shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordOptions {
    /// Show SetAuth credentials in full (else `user:<redacted>`).
    pub show_secrets: bool,
}

fn paths(list: client::PathList<'_>) -> Vec<String> {
    list.iter().map(str::to_owned).collect()
}

/// Redacts the secret part of a credential (`user:password` keeps `user`).
pub fn redact(cred: &[u8], show: bool) -> String {
    let text = String::from_utf8_lossy(cred);
    if show {
        return text.into_owned();
    }
    match text.split_once(':') {
        Some((user, _)) => format!("{user}:<redacted>"),
        None if text.is_empty() => String::new(),
        None => "<redacted>".to_owned(),
    }
}

fn apply_stat(r: &mut Record, s: &Stat) {
    r.version = Some(s.version);
    r.num_children = Some(s.num_children);
}

fn request_fields(r: &mut Record, body: &RequestBody<'_>, opts: RecordOptions) {
    match *body {
        RequestBody::Create {
            data_len,
            acl_count,
            mode,
            ttl,
            ..
        } => {
            r.data_len = Some(data_len);
            r.acl_count = Some(acl_count);
            r.mode = Some(mode.name());
            r.ttl = ttl;
        }
        RequestBody::Delete { version, .. } | RequestBody::Check { version, .. } => {
            r.version = Some(version)
        }
        RequestBody::SetData {
            data_len, version, ..
        } => {
            r.data_len = Some(data_len);
            r.version = Some(version);
        }
        RequestBody::SetACL {
            acl_count, version, ..
        } => {
            r.acl_count = Some(acl_count);
            r.version = Some(version);
        }
        RequestBody::Multi(ops) => {
            r.ops = Some(
                ops.iter()
                    .map(|op| match op {
                        Ok(op) => SubOp {
                            kind: op.opcode.request_name(),
                            path: op.body_path().map(str::to_owned),
                            err: None,
                        },
                        Err(e) => SubOp {
                            kind: "Malformed",
                            path: None,
                            err: Some(e.name().to_owned()),
                        },
                    })
                    .collect(),
            );
        }
        RequestBody::Reconfig {
            joining,
            leaving,
            new_members,
            ..
        } => {
            r.joining = Some(joining.to_owned());
            r.leaving = Some(leaving.to_owned());
            r.new_members = Some(new_members.to_owned());
        }
        RequestBody::SetAuth {
            scheme, credential, ..
        } => {
            r.scheme = Some(scheme.to_owned());
            r.credential = Some(redact(credential, opts.show_secrets));
        }
        RequestBody::SetWatches {
            relative_zxid,
            data,
            exist,
            child,
        } => {
            r.relative_zxid = Some(relative_zxid);
            r.data_watches = Some(paths(data));
            r.exist_watches = Some(paths(exist));
            r.child_watches = Some(paths(child));
        }
        RequestBody::SetWatches2 {
            relative_zxid,
            data,
            exist,
            child,
            persistent,
            persistent_recursive,
        } => {
            r.relative_zxid = Some(relative_zxid);
            r.data_watches = Some(paths(data));
            r.exist_watches = Some(paths(exist));
            r.child_watches = Some(paths(child));
            r.persistent_watches = Some(paths(persistent));
            r.persistent_recursive_watches = Some(paths(persistent_recursive));
        }
        _ => {}
    }
}

fn reply_fields(r: &mut Record, body: &ReplyBody<'_>) {
    match *body {
        ReplyBody::Path(p) => r.created_path = Some(p.to_owned()),
        ReplyBody::PathStat { path, ref stat } => {
            r.created_path = Some(path.to_owned());
            apply_stat(r, stat);
        }
        ReplyBody::Stat(ref s) => apply_stat(r, s),
        ReplyBody::Data { data_len, ref stat } => {
            r.data_len = Some(data_len);
            apply_stat(r, stat);
        }
        ReplyBody::ACL {
            acl_count,
            ref stat,
        } => {
            r.acl_count = Some(acl_count);
            apply_stat(r, stat);
        }
        ReplyBody::Children(list) | ReplyBody::Ephemerals(list) => r.children = Some(list.len()),
        ReplyBody::Children2 { children, ref stat } => {
            r.children = Some(children.len());
            apply_stat(r, stat);
        }
        ReplyBody::ChildrenNumber(n) => r.num_children = Some(n),
        ReplyBody::Multi(results) => {
            r.ops = Some(
                results
                    .iter()
                    .map(|res| match res {
                        Ok(res) => SubOp {
                            kind: res.reply_name(),
                            path: res.path().map(str::to_owned),
                            err: (!res.err().is_ok()).then(|| err_name(res.err())),
                        },
                        Err(e) => SubOp {
                            kind: "Malformed",
                            path: None,
                            err: Some(e.name().to_owned()),
                        },
                    })
                    .collect(),
            );
        }
        _ => {}
    }
}

fn err_name(e: client::ErrorCode) -> String {
    match e.name() {
        Some(n) => n.to_owned(),
        None => format!("Unknown({})", e.0),
    }
}

fn pairing_fields(r: &mut Record, p: &Pairing, paths: &PathMap) {
    r.kind_name = p.opcode.reply_name();
    r.op = Some(p.opcode);
    r.is_write = p.opcode.is_write() || p.opcode == OpCode::Multi;
    r.latency_us = p.latency.map(|d| d.total_micros() as i64);
    if p.path_hash != 0 {
        r.path = paths.get(p.path_hash).map(str::to_owned);
    }
    if r.created_path.is_some() && r.created_path == r.path {
        r.created_path = None;
    }
}

impl Record {
    /// Builds the record of an event, noting request paths in `paths` and
    /// resolving reply paths from it.
    pub fn from_event(ev: &Event<'_>, paths: &mut PathMap, opts: RecordOptions) -> Record {
        let micros = ev.ts.total_micros();
        let mut r = Record {
            ts: micros as f64 / 1e6,
            client: ev.client.to_string(),
            server: ev.server.to_string(),
            size: ev.size,
            session: (ev.session != 0).then(|| format!("0x{:x}", ev.session)),
            ..Record::default()
        };
        match &ev.message {
            Message::ConnectRequest(c) => {
                r.kind = "request";
                r.kind_name = "ConnectRequest";
                r.protocol_version = Some(c.protocol_version);
                r.last_zxid = Some(c.last_zxid_seen);
                r.timeout = Some(c.timeout);
                r.reconnect = Some(c.is_reconnect());
                r.readonly = c.read_only;
                if c.session_id != 0 {
                    r.session = Some(format!("0x{:x}", c.session_id));
                }
            }
            Message::ConnectResponse(c) => {
                r.kind = "reply";
                r.kind_name = "ConnectResponse";
                r.protocol_version = Some(c.protocol_version);
                r.timeout = Some(c.timeout);
                r.readonly = c.read_only;
                r.session = Some(format!("0x{:x}", c.session_id));
            }
            Message::Request(req) => {
                r.kind = "request";
                r.kind_name = req.opcode.request_name();
                r.op = Some(req.opcode);
                r.xid = Some(req.xid);
                r.opcode = Some(req.opcode.code());
                r.path = req.path().map(str::to_owned);
                r.watch = req.watch();
                r.is_write = match &req.body {
                    RequestBody::Multi(ops) => ops.has_write(),
                    _ => req.opcode.is_write(),
                };
                if let Some(p) = req.path() {
                    paths.note(p);
                }
                request_fields(&mut r, &req.body, opts);
            }
            Message::RequestPrefix(req) => {
                r.kind = "request";
                r.kind_name = req.opcode.request_name();
                r.op = Some(req.opcode);
                r.xid = Some(req.xid);
                r.opcode = Some(req.opcode.code());
                r.path = req.path.map(str::to_owned);
                r.is_write = req.opcode.is_write() || req.opcode == OpCode::Multi;
                r.truncated = Some(true);
                if let Some(p) = req.path {
                    paths.note(p);
                }
            }
            Message::Reply(reply, pairing) => {
                r.kind = "reply";
                r.xid = Some(reply.header.xid);
                r.zxid = Some(reply.header.zxid);
                r.err = Some(err_name(reply.header.err));
                r.opcode = Some(pairing.opcode.code());
                reply_fields(&mut r, &reply.body);
                pairing_fields(&mut r, pairing, paths);
            }
            Message::ReplyHeader(h, pairing) => {
                r.kind = "reply";
                r.kind_name = "Reply";
                r.xid = Some(h.xid);
                r.zxid = Some(h.zxid);
                r.err = Some(err_name(h.err));
                if let Some(p) = pairing {
                    r.opcode = Some(p.opcode.code());
                    pairing_fields(&mut r, p, paths);
                    r.truncated = Some(true);
                }
            }
            Message::WatchEvent(w) => {
                r.kind = "event";
                r.kind_name = "WatchEvent";
                r.xid = Some(client::XID_WATCH_EVENT);
                r.path = Some(w.path.to_owned());
                r.event_type = Some(w.event_type.name().to_owned());
                r.state = Some(w.state.name().to_owned());
            }
            Message::FourLetterWord(w) => {
                r.kind = "4lw";
                r.kind_name = "FourLetterWord";
                r.word = Some(w.as_str());
            }
            Message::FourLetterReply(w, text) => {
                r.kind = "4lw";
                r.kind_name = "FourLetterReply";
                r.word = Some(w.as_str());
                r.text = Some(String::from_utf8_lossy(text).into_owned());
            }
            Message::Malformed { error, from_client } => {
                r.kind = "malformed";
                r.kind_name = if *from_client {
                    "MalformedRequest"
                } else {
                    "MalformedReply"
                };
                r.err = Some(error.name().to_owned());
            }
        }
        r
    }

    /// The human one-line form, e.g.
    /// `21:08:07:432361 ExistsRequest(xid=1, path=/, watch=false, size=14, client=127.0.0.1:50049)`.
    pub fn human(&self, colors: bool) -> String {
        let mut s = String::with_capacity(160);
        let micros = (self.ts * 1e6).round() as i64;
        let secs = micros.div_euclid(1_000_000);
        let day = secs.rem_euclid(86_400);
        let _ = write!(
            s,
            "{:02}:{:02}:{:02}:{:06} ",
            day / 3600,
            day % 3600 / 60,
            day % 60,
            micros.rem_euclid(1_000_000)
        );
        let color = match self.kind {
            _ if !colors => "",
            "request" if self.is_write => "\x1b[33m",
            "request" => "\x1b[32m",
            "reply" if self.err.as_deref().is_some_and(|e| e != "Ok") => "\x1b[31m",
            "reply" => "\x1b[36m",
            "event" => "\x1b[35m",
            "malformed" => "\x1b[31;1m",
            _ => "\x1b[34m",
        };
        s.push_str(color);
        s.push_str(self.kind_name);
        if !color.is_empty() {
            s.push_str("\x1b[0m");
        }
        s.push('(');
        let mut first = true;
        let mut field = |s: &mut String, k: &str, v: &dyn std::fmt::Display| {
            if !first {
                s.push_str(", ");
            }
            first = false;
            let _ = write!(s, "{k}={v}");
        };
        if let Some(w) = self.word {
            field(&mut s, "word", &w);
        }
        if let Some(v) = self.xid {
            field(&mut s, "xid", &v);
        }
        if let Some(v) = self.zxid {
            field(&mut s, "zxid", &format_args!("0x{v:x}"));
        }
        if let Some(v) = &self.err {
            field(&mut s, "err", v);
        }
        if let Some(v) = &self.path {
            field(&mut s, "path", v);
        }
        if let Some(v) = self.watch {
            field(&mut s, "watch", &v);
        }
        if let Some(v) = &self.created_path {
            field(&mut s, "created", v);
        }
        if let Some(v) = &self.event_type {
            field(&mut s, "type", v);
        }
        if let Some(v) = &self.state {
            field(&mut s, "state", v);
        }
        if let Some(v) = self.mode {
            field(&mut s, "mode", &v);
        }
        if let Some(v) = self.ttl {
            field(&mut s, "ttl", &v);
        }
        if let Some(v) = self.version {
            field(&mut s, "version", &v);
        }
        if let Some(v) = self.data_len {
            field(&mut s, "data_len", &v);
        }
        if let Some(v) = self.children {
            field(&mut s, "children", &v);
        }
        if let Some(v) = self.num_children {
            field(&mut s, "num_children", &v);
        }
        if let Some(v) = &self.scheme {
            field(&mut s, "scheme", v);
        }
        if let Some(v) = &self.credential {
            field(&mut s, "credential", v);
        }
        if let Some(v) = self.relative_zxid {
            field(&mut s, "rel_zxid", &format_args!("0x{v:x}"));
        }
        for (k, v) in [
            ("data_watches", &self.data_watches),
            ("exist_watches", &self.exist_watches),
            ("child_watches", &self.child_watches),
            ("persistent_watches", &self.persistent_watches),
            (
                "persistent_recursive_watches",
                &self.persistent_recursive_watches,
            ),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                field(&mut s, k, &format_args!("[{}]", v.join(",")));
            }
        }
        if let Some(ops) = &self.ops {
            let list = ops
                .iter()
                .map(|o| match (&o.path, &o.err) {
                    (Some(p), Some(e)) => format!("{}({p}, err={e})", o.kind),
                    (Some(p), None) => format!("{}({p})", o.kind),
                    (None, Some(e)) => format!("{}(err={e})", o.kind),
                    (None, None) => o.kind.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            field(&mut s, "ops", &format_args!("[{list}]"));
        }
        for (k, v) in [
            ("joining", &self.joining),
            ("leaving", &self.leaving),
            ("new_members", &self.new_members),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                field(&mut s, k, v);
            }
        }
        if let Some(v) = self.protocol_version {
            field(&mut s, "protocol", &v);
        }
        if let Some(v) = self.timeout {
            field(&mut s, "timeout", &v);
        }
        if let Some(v) = self.last_zxid {
            field(&mut s, "last_zxid", &format_args!("0x{v:x}"));
        }
        if let Some(v) = self.reconnect {
            field(&mut s, "reconnect", &v);
        }
        if let Some(v) = self.readonly {
            field(&mut s, "readonly", &v);
        }
        if let Some(v) = &self.session {
            field(&mut s, "session", v);
        }
        field(&mut s, "size", &self.size);
        if self.truncated == Some(true) {
            field(&mut s, "truncated", &true);
        }
        if let Some(v) = self.latency_us {
            field(
                &mut s,
                "latency",
                &format_args!("{:.3}ms", v as f64 / 1000.0),
            );
        }
        field(&mut s, "client", &self.client);
        s.push(')');
        if let Some(t) = &self.text {
            let first_line = t.lines().next().unwrap_or("");
            let _ = write!(s, " {first_line:?}");
        }
        s
    }
}
