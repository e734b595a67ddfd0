//! Jute encoding (big-endian ints/longs, length-prefixed buffers and
//! strings, vectors) and the ZooKeeper constants the harness needs: opcodes
//! (`ZooDefs.OpCode`), error codes (`KeeperException.Code`), watch event
//! types and states, create-mode flags, special xids.
//!
//! Facts from apache/zookeeper `zookeeper.jute`, `ZooDefs.java`,
//! `KeeperException.java`, `Watcher.java` and `ClientCnxn.java`.

use std::fmt;

/// Opcodes (`ZooDefs.OpCode`).
pub mod op {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const CREATE_TTL: i32 = 21;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
    /// Not a real opcode: the harness uses it for the handshake.
    pub const CONNECT: i32 = i32::MIN;
}

/// Special xids (`ClientCnxn`).
pub mod xid {
    pub const WATCH_EVENT: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// `ZooDefs.Perms.ALL`.
pub const PERMS_ALL: i32 = 31;

/// `CreateMode` flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateMode {
    Persistent = 0,
    Ephemeral = 1,
    PersistentSequential = 2,
    EphemeralSequential = 3,
    Container = 4,
}

/// ZooKeeper's request name for an opcode, as the decoder reports it.
pub fn request_name(opcode: i32) -> &'static str {
    match opcode {
        op::CONNECT => "ConnectRequest",
        op::CREATE => "CreateRequest",
        op::DELETE => "DeleteRequest",
        op::EXISTS => "ExistsRequest",
        op::GET_DATA => "GetDataRequest",
        op::SET_DATA => "SetDataRequest",
        op::GET_ACL => "GetACLRequest",
        op::SET_ACL => "SetACLRequest",
        op::GET_CHILDREN => "GetChildrenRequest",
        op::SYNC => "SyncRequest",
        op::PING => "PingRequest",
        op::GET_CHILDREN2 => "GetChildren2Request",
        op::CHECK => "CheckVersionRequest",
        op::MULTI => "MultiRequest",
        op::CREATE2 => "Create2Request",
        op::RECONFIG => "ReconfigRequest",
        op::CREATE_CONTAINER => "CreateContainerRequest",
        op::CREATE_TTL => "CreateTTLRequest",
        op::AUTH => "SetAuthRequest",
        op::SET_WATCHES => "SetWatchesRequest",
        op::CLOSE_SESSION => "CloseRequest",
        _ => "UnknownRequest",
    }
}

/// The reply name paired with a request opcode (`ConnectResponse` for the
/// handshake, `...Reply` otherwise).
pub fn reply_name(opcode: i32) -> String {
    if opcode == op::CONNECT {
        return "ConnectResponse".to_string();
    }
    let req = request_name(opcode);
    format!("{}Reply", req.strip_suffix("Request").unwrap_or(req))
}

/// `KeeperException.Code` names (the exception class names without
/// `Exception`), `Ok` for 0.
pub fn err_name(code: i32) -> String {
    let s = match code {
        0 => "Ok",
        -1 => "SystemError",
        -2 => "RuntimeInconsistency",
        -3 => "DataInconsistency",
        -4 => "ConnectionLoss",
        -5 => "MarshallingError",
        -6 => "Unimplemented",
        -7 => "OperationTimeout",
        -8 => "BadArguments",
        -12 => "UnknownSession",
        -13 => "NewConfigNoQuorum",
        -14 => "ReconfigInProgress",
        -100 => "APIError",
        -101 => "NoNode",
        -102 => "NoAuth",
        -103 => "BadVersion",
        -108 => "NoChildrenForEphemerals",
        -110 => "NodeExists",
        -111 => "NotEmpty",
        -112 => "SessionExpired",
        -113 => "InvalidCallback",
        -114 => "InvalidACL",
        -115 => "AuthFailed",
        -118 => "SessionMoved",
        -119 => "NotReadOnly",
        -120 => "EphemeralOnLocalSession",
        -121 => "NoWatcher",
        -122 => "RequestTimeout",
        -123 => "ReconfigDisabled",
        -124 => "SessionClosedRequireSaslAuth",
        -125 => "QuotaExceeded",
        -127 => "Throttled",
        other => return format!("Err{other}"),
    };
    s.to_string()
}

/// `Watcher.Event.EventType` names.
pub fn event_type_name(t: i32) -> String {
    let s = match t {
        -1 => "None",
        1 => "NodeCreated",
        2 => "NodeDeleted",
        3 => "NodeDataChanged",
        4 => "NodeChildrenChanged",
        5 => "DataWatchRemoved",
        6 => "ChildWatchRemoved",
        7 => "PersistentWatchRemoved",
        other => return format!("EventType{other}"),
    };
    s.to_string()
}

/// `Watcher.Event.KeeperState` names.
pub fn state_name(s: i32) -> String {
    let n = match s {
        -1 => "Unknown",
        0 => "Disconnected",
        3 => "SyncConnected",
        4 => "AuthFailed",
        5 => "ConnectedReadOnly",
        6 => "SaslAuthenticated",
        -112 => "Expired",
        7 => "Closed",
        other => return format!("State{other}"),
    };
    n.to_string()
}

/// A jute record writer.
#[derive(Default, Clone)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer { buf: Vec::new() }
    }
    pub fn int(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn long(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.buf.push(v as u8);
        self
    }
    pub fn buffer(&mut self, v: &[u8]) -> &mut Self {
        self.int(v.len() as i32);
        self.buf.extend_from_slice(v);
        self
    }
    /// A null buffer (length -1).
    pub fn null_buffer(&mut self) -> &mut Self {
        self.int(-1)
    }
    pub fn ustring(&mut self, v: &str) -> &mut Self {
        self.buffer(v.as_bytes())
    }
    pub fn vec_ustring(&mut self, v: &[&str]) -> &mut Self {
        self.int(v.len() as i32);
        for s in v {
            self.ustring(s);
        }
        self
    }
    /// `vector<ACL>` with one entry.
    pub fn acl(&mut self, perms: i32, scheme: &str, id: &str) -> &mut Self {
        self.int(1).int(perms).ustring(scheme).ustring(id)
    }
    /// The open ACL: world:anyone, all permissions.
    pub fn open_acl(&mut self) -> &mut Self {
        self.acl(PERMS_ALL, "world", "anyone")
    }
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// The record with its 4-byte length prefix.
    pub fn framed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buf.len() + 4);
        out.extend_from_slice(&(self.buf.len() as i32).to_be_bytes());
        out.extend_from_slice(&self.buf);
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JuteError(pub String);

impl fmt::Display for JuteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "jute: {}", self.0)
    }
}

impl std::error::Error for JuteError {}

/// A jute record reader over a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], JuteError> {
        if self.remaining() < n {
            return Err(JuteError(format!(
                "truncated: need {n} bytes at {}, have {}",
                self.pos,
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn int(&mut self) -> Result<i32, JuteError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub fn long(&mut self) -> Result<i64, JuteError> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub fn boolean(&mut self) -> Result<bool, JuteError> {
        Ok(self.take(1)?[0] != 0)
    }
    /// A buffer; `None` for the null buffer (length -1).
    pub fn buffer(&mut self) -> Result<Option<&'a [u8]>, JuteError> {
        let n = self.int()?;
        if n < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(n as usize)?))
    }
    pub fn ustring(&mut self) -> Result<String, JuteError> {
        match self.buffer()? {
            None => Ok(String::new()),
            Some(b) => String::from_utf8(b.to_vec()).map_err(|e| JuteError(format!("utf-8: {e}"))),
        }
    }
    pub fn vec_ustring(&mut self) -> Result<Vec<String>, JuteError> {
        let n = self.int()?;
        let mut v = Vec::new();
        for _ in 0..n.max(0) {
            v.push(self.ustring()?);
        }
        Ok(v)
    }
    pub fn stat(&mut self) -> Result<Stat, JuteError> {
        Ok(Stat {
            czxid: self.long()?,
            mzxid: self.long()?,
            ctime: self.long()?,
            mtime: self.long()?,
            version: self.int()?,
            cversion: self.int()?,
            aversion: self.int()?,
            ephemeral_owner: self.long()?,
            data_length: self.int()?,
            num_children: self.int()?,
            pzxid: self.long()?,
        })
    }
}

/// `org.apache.zookeeper.data.Stat` (68 bytes on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

pub const STAT_LEN: usize = 68;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(request_name(op::GET_DATA), "GetDataRequest");
        assert_eq!(reply_name(op::GET_DATA), "GetDataReply");
        assert_eq!(reply_name(op::CONNECT), "ConnectResponse");
        assert_eq!(reply_name(op::CLOSE_SESSION), "CloseReply");
        assert_eq!(reply_name(op::AUTH), "SetAuthReply");
        assert_eq!(err_name(-101), "NoNode");
        assert_eq!(err_name(-110), "NodeExists");
        assert_eq!(event_type_name(3), "NodeDataChanged");
    }

    #[test]
    fn roundtrip() {
        let mut w = Writer::new();
        w.int(-2)
            .long(0x730)
            .boolean(true)
            .ustring("/a")
            .vec_ustring(&["/x", "/y"]);
        let f = w.framed();
        assert_eq!(&f[..4], &(w.buf.len() as i32).to_be_bytes());
        let mut r = Reader::new(&f[4..]);
        assert_eq!(r.int().unwrap(), -2);
        assert_eq!(r.long().unwrap(), 0x730);
        assert!(r.boolean().unwrap());
        assert_eq!(r.ustring().unwrap(), "/a");
        assert_eq!(r.vec_ustring().unwrap(), vec!["/x", "/y"]);
        assert_eq!(r.remaining(), 0);
        assert!(r.int().is_err());
    }
}
