//! One printable record per election or quorum message, shared by the
//! human and the NDJSON printers of `fle-dump` and `zab-dump`.
//!
//! A [`QuorumRecord`] is built from a zk-wire [`QuorumEvent`]; only the
//! fields that apply to a message are set, so the JSON stays small. Field
//! names are the `--json` schema: `ts`, `src`, `dst`, `type`, and for
//! election messages `state`, `leader`, `zxid`, `election_epoch`,
//! `peer_epoch`, `version`, `config`; for quorum packets `zxid` and the
//! decoded data (`session`, `txn_type`, `path`, `sid`, ...).

use std::fmt::Write as _;

use serde::Serialize;
use zk_wire::client::ErrorCode;
use zk_wire::fle::{DynamicConfig, InitialMessage, Notification};
use zk_wire::quorum::{QuorumEvent, QuorumMessage, ZabPacket};
use zk_wire::zab::{ForwardedBody, PacketType, Payload, Txn, TxnBody, txn_type_name};

/// One server of a dynamic config.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ServerRecord {
    /// Server id.
    pub id: u64,
    /// Host of its first address.
    pub host: String,
    /// Quorum port.
    pub quorum_port: u16,
    /// Election port.
    pub election_port: u16,
    /// `participant` or `observer`.
    pub role: &'static str,
    /// Client host, when the line has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_host: Option<String>,
    /// Client port, when the line has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_port: Option<u16>,
}

/// A dynamic config, parsed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConfigRecord {
    /// The `version=` value, hex (`0x100000000`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The servers.
    pub servers: Vec<ServerRecord>,
    /// Why the text did not parse (then `servers` is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

impl ConfigRecord {
    /// Parses config text.
    pub fn from_text(text: &str) -> Self {
        match DynamicConfig::parse(text) {
            Ok(c) => ConfigRecord {
                version: c.version().map(|v| format!("{v:#x}")),
                servers: c
                    .servers()
                    .map(|s| ServerRecord {
                        id: s.id,
                        host: s.host.to_owned(),
                        quorum_port: s.quorum_port,
                        election_port: s.election_port,
                        role: s.role.name(),
                        client_host: s.client.and_then(|c| c.host).map(str::to_owned),
                        client_port: s.client.map(|c| c.port),
                    })
                    .collect(),
                error: None,
            },
            Err(e) => ConfigRecord {
                version: None,
                servers: Vec::new(),
                error: Some(e.name()),
            },
        }
    }
}

/// One sub-transaction of a multi.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SubTxnRecord {
    /// Its type (`create`, `setData`, ...).
    pub txn_type: String,
    /// Its path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A decoded message ready to print. Field names are the `--json` schema.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QuorumRecord {
    /// Capture time, seconds since the epoch.
    pub ts: f64,
    /// `fle` or `zab`.
    pub proto: &'static str,
    /// Sender, `ip:port`.
    pub src: String,
    /// Receiver, `ip:port`.
    pub dst: String,
    /// Sender's server id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_sid: Option<i64>,
    /// Receiver's server id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_sid: Option<i64>,
    /// `Initial`, `Notification`, `PROPOSAL`, ..., `SNAPSHOT`, `Malformed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Bytes on the wire (with the length prefix for election messages).
    pub size: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zxid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub election_epoch: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_epoch: Option<i64>,
    /// Message format version (notifications) or protocol version (initial messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigRecord>,
    /// Server id (initial message, FOLLOWERINFO / OBSERVERINFO).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
    /// Epoch (LEADERINFO, NEWLEADER: of the zxid; ACKEPOCH: the learner's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_version: Option<i64>,
    /// Session, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cxid: Option<i32>,
    /// Forwarded request (`CreateRequest`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn_type: Option<String>,
    /// Leader time of the transaction, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<Vec<SubTxnRecord>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_len: Option<i32>,
    /// Node version a transaction sets or checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<bool>,
    /// Error code of an error transaction, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid: Option<bool>,
    /// Sessions touched (a learner's PING).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<usize>,
    /// Authinfo ids as `scheme:id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Vec<String>>,
    /// Snapshot bytes (SNAPSHOT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Why a frame or its data did not decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// The packet type, for filtering (not printed).
    #[serde(skip)]
    pub packet_type: Option<PacketType>,
}

fn hex_session(s: i64) -> String {
    format!("{s:#x}")
}

impl QuorumRecord {
    /// Builds the record of one event.
    pub fn from_event(ev: &QuorumEvent<'_>) -> Self {
        let ts = ev.ts.total_micros() as f64 / 1e6;
        let mut r = QuorumRecord {
            ts,
            proto: ev.proto.name(),
            src: ev.src.to_string(),
            dst: ev.dst.to_string(),
            src_sid: ev.src_sid,
            dst_sid: ev.dst_sid,
            kind: ev.message.name(),
            size: ev.size,
            ..QuorumRecord::default()
        };
        match &ev.message {
            QuorumMessage::Initial(m) => r.initial(m),
            QuorumMessage::Notification(n) => r.notification(n),
            QuorumMessage::Packet(p) => r.packet(p),
            QuorumMessage::Snapshot { bytes } => r.bytes = Some(*bytes),
            QuorumMessage::Malformed { error } => r.error = Some(error.name()),
        }
        r
    }

    fn initial(&mut self, m: &InitialMessage<'_>) {
        self.sid = Some(m.sid());
        self.version = m.protocol_version();
        let addrs: Vec<String> = m.addresses().map(|(h, p)| format!("{h}:{p}")).collect();
        if !addrs.is_empty() {
            self.addresses = Some(addrs);
        }
    }

    fn notification(&mut self, n: &Notification<'_>) {
        self.state = Some(n.state.name());
        self.leader = Some(n.leader);
        self.zxid = Some(n.zxid);
        self.election_epoch = Some(n.election_epoch);
        self.peer_epoch = Some(n.peer_epoch);
        self.version = Some(i64::from(n.version));
        self.config = n.config.map(ConfigRecord::from_text);
    }

    fn txn(&mut self, t: &Txn<'_>) {
        let h = &t.header;
        self.session = Some(hex_session(h.session));
        self.cxid = Some(h.cxid);
        self.time = Some(h.time);
        self.txn_type = Some(txn_name(h.txn_type));
        self.path = t.body.path().map(str::to_owned);
        match t.body {
            TxnBody::Create {
                data_len,
                ephemeral,
                ..
            } => {
                self.data_len = Some(data_len);
                self.ephemeral = ephemeral.then_some(true);
            }
            TxnBody::SetData {
                data_len, version, ..
            } => {
                self.data_len = Some(data_len);
                self.node_version = Some(version);
            }
            TxnBody::SetAcl { version, .. } | TxnBody::Check { version, .. } => {
                self.node_version = Some(version)
            }
            TxnBody::Reconfig {
                config, version, ..
            } => {
                self.node_version = Some(version);
                self.config = Some(ConfigRecord::from_text(config));
            }
            TxnBody::CreateSession { timeout } => self.timeout = Some(timeout),
            TxnBody::Error { err } => self.err = Some(err_name(err)),
            TxnBody::Multi(m) => {
                self.ops = Some(
                    m.iter()
                        .map(|s| SubTxnRecord {
                            txn_type: txn_name(s.txn_type),
                            path: s.body.path().map(str::to_owned),
                        })
                        .collect(),
                )
            }
            TxnBody::Delete { .. } | TxnBody::CloseSession { .. } | TxnBody::Prefix { .. } => {}
        }
    }

    fn packet(&mut self, p: &ZabPacket<'_>) {
        let t = p.packet.packet_type;
        self.packet_type = Some(t);
        self.zxid = Some(p.packet.zxid);
        if p.truncated {
            self.truncated = Some(true);
        }
        if !p.packet.auth.is_empty() {
            self.auth = Some(
                p.packet
                    .auth
                    .iter()
                    .map(|(s, i)| format!("{s}:{i}"))
                    .collect(),
            );
        }
        if matches!(t, PacketType::LeaderInfo | PacketType::NewLeader) {
            self.epoch = Some(p.packet.zxid >> 32);
        }
        let payload = match &p.payload {
            Ok(pl) => pl,
            Err(e) => {
                self.error = Some(e.name());
                return;
            }
        };
        match payload {
            Payload::Empty | Payload::Unexpected(_) => {}
            Payload::Request(req) => {
                self.session = Some(hex_session(req.session));
                self.cxid = Some(req.cxid);
                self.request = Some(req.opcode.request_name());
                self.path = req.body.path().map(str::to_owned);
                if let ForwardedBody::CreateSession { timeout } = req.body {
                    self.timeout = Some(timeout);
                }
            }
            Payload::Txn(t) => self.txn(t),
            Payload::LearnerInfo(li) => {
                self.sid = Some(li.sid);
                self.protocol_version = li.protocol_version;
                self.config_version = li.config_version;
            }
            Payload::LeaderInfo { protocol_version } => {
                self.protocol_version = Some(*protocol_version)
            }
            Payload::AckEpoch { epoch } => self.epoch = Some(i64::from(*epoch)),
            Payload::NewLeader { config } => self.config = Some(ConfigRecord::from_text(config)),
            Payload::Revalidate { session, timeout } => {
                self.session = Some(hex_session(*session));
                self.timeout = Some(*timeout);
            }
            Payload::RevalidateReply { session, valid } => {
                self.session = Some(hex_session(*session));
                self.valid = Some(*valid);
            }
            Payload::Ping(touches) => self.sessions = Some(touches.len()),
            Payload::Activate { leader, txn } => {
                self.leader = Some(*leader);
                if let Some(t) = txn {
                    self.txn(t);
                }
            }
        }
    }

    /// True for quorum PINGs.
    pub fn is_ping(&self) -> bool {
        self.packet_type == Some(PacketType::Ping)
    }

    /// One line: `HH:MM:SS:micros TYPE(field=value, ..., 3@ip:port -> 1@ip:port)`.
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
        let color = match self.packet_type {
            _ if !colors => "",
            _ if self.kind == "Malformed" || self.error.is_some() => "\x1b[31;1m",
            None if self.state == Some("LOOKING") => "\x1b[33m",
            None => "\x1b[35m",
            Some(PacketType::Proposal | PacketType::Request) => "\x1b[32m",
            Some(PacketType::Commit | PacketType::CommitAndActivate) => "\x1b[36m",
            Some(PacketType::Ack) => "\x1b[34m",
            Some(PacketType::Ping) => "\x1b[2m",
            Some(_) => "\x1b[35m",
        };
        s.push_str(color);
        s.push_str(self.kind);
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
        let hex = |v: i64| format!("{v:#x}");
        if let Some(v) = self.state {
            field(&mut s, "state", &v);
        }
        if let Some(v) = self.sid {
            field(&mut s, "sid", &v);
        }
        if let Some(v) = self.leader {
            field(&mut s, "leader", &v);
        }
        if let Some(v) = self.zxid {
            field(&mut s, "zxid", &hex(v));
        }
        if let Some(v) = self.election_epoch {
            field(&mut s, "election_epoch", &hex(v));
        }
        if let Some(v) = self.peer_epoch {
            field(&mut s, "peer_epoch", &hex(v));
        }
        if let Some(v) = self.epoch {
            field(&mut s, "epoch", &hex(v));
        }
        if let Some(v) = self.version {
            field(&mut s, "version", &v);
        }
        if let Some(v) = &self.addresses {
            field(&mut s, "addresses", &v.join("|"));
        }
        if let Some(v) = self.request {
            field(&mut s, "request", &v);
        }
        if let Some(v) = &self.txn_type {
            field(&mut s, "txn", v);
        }
        if let Some(v) = &self.path {
            field(&mut s, "path", v);
        }
        if let Some(ops) = &self.ops {
            let list: Vec<String> = ops
                .iter()
                .map(|o| match &o.path {
                    Some(p) => format!("{}({p})", o.txn_type),
                    None => o.txn_type.clone(),
                })
                .collect();
            field(&mut s, "ops", &format_args!("[{}]", list.join(", ")));
        }
        if let Some(v) = &self.err {
            field(&mut s, "err", v);
        }
        if let Some(v) = &self.session {
            field(&mut s, "session", v);
        }
        if let Some(v) = self.cxid {
            field(&mut s, "cxid", &v);
        }
        if let Some(v) = self.data_len {
            field(&mut s, "data_len", &v);
        }
        if let Some(v) = self.node_version {
            field(&mut s, "node_version", &v);
        }
        if let Some(v) = self.timeout {
            field(&mut s, "timeout", &v);
        }
        if let Some(v) = self.valid {
            field(&mut s, "valid", &v);
        }
        if let Some(v) = self.protocol_version {
            field(&mut s, "protocol", &format_args!("{v:#x}"));
        }
        if let Some(v) = self.config_version {
            field(&mut s, "config_version", &hex(v));
        }
        if let Some(c) = &self.config {
            let servers: Vec<String> = c
                .servers
                .iter()
                .map(|sv| {
                    format!(
                        "{}={}:{}:{}",
                        sv.id, sv.host, sv.quorum_port, sv.election_port
                    )
                })
                .collect();
            field(
                &mut s,
                "config",
                &format_args!(
                    "[{}]{}",
                    servers.join(" "),
                    c.version
                        .as_deref()
                        .map(|v| format!(" version={v}"))
                        .unwrap_or_default()
                ),
            );
        }
        if let Some(v) = self.sessions {
            field(&mut s, "sessions", &v);
        }
        if let Some(v) = &self.auth {
            field(&mut s, "auth", &v.join(","));
        }
        if let Some(v) = self.bytes {
            field(&mut s, "bytes", &v);
        }
        if let Some(v) = self.error {
            field(&mut s, "error", &v);
        }
        field(&mut s, "size", &self.size);
        if self.truncated == Some(true) {
            field(&mut s, "truncated", &true);
        }
        let end = |sid: Option<i64>, addr: &str| match sid {
            Some(id) => format!("{id}@{addr}"),
            None => addr.to_owned(),
        };
        let route = format!(
            "{} -> {}",
            end(self.src_sid, &self.src),
            end(self.dst_sid, &self.dst)
        );
        if !first {
            s.push_str(", ");
        }
        s.push_str(&route);
        s.push(')');
        s
    }
}

/// ZooKeeper's name of a transaction type, or its number.
pub fn txn_name(t: i32) -> String {
    txn_type_name(t).map_or_else(|| t.to_string(), str::to_owned)
}

fn err_name(e: ErrorCode) -> String {
    e.name().map_or_else(|| e.0.to_string(), str::to_owned)
}
