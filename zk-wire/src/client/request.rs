//! Client requests: every frame a client sends after the handshake.
//!
//! Wire format: `RequestHeader { int xid; int type }` then the request
//! record for `type` (a `ZooDefs.OpCode`), records of
//! `zookeeper-jute/src/main/resources/zookeeper.jute`:
//!
//! | op code                                  | record                                            |
//! |------------------------------------------|---------------------------------------------------|
//! | create, create2, createContainer         | `CreateRequest { path, data, vector<ACL> acl, flags }` |
//! | createTTL                                | `CreateTTLRequest { path, data, acl, flags, long ttl }` |
//! | delete                                   | `DeleteRequest { path, version }`                 |
//! | exists, getData, getChildren, getChildren2 | `{ path, boolean watch }`                       |
//! | setData                                  | `SetDataRequest { path, data, version }`          |
//! | getACL / setACL                          | `GetACLRequest { path }` / `SetACLRequest { path, acl, version }` |
//! | sync, getAllChildrenNumber               | `{ path }`                                        |
//! | check                                    | `CheckVersionRequest { path, version }`           |
//! | multi, multiRead                         | `(MultiHeader { type, done, err } record)*` ending at `done` (`MultiOperationRecord.java`) |
//! | reconfig                                 | `ReconfigRequest { joining, leaving, newMembers, long curConfigId }` |
//! | checkWatches, removeWatches              | `{ path, int type }` (a `Watcher.WatcherType`)    |
//! | auth (xid -4)                            | `AuthPacket { int type, scheme, buffer auth }`    |
//! | setWatches (xid -8)                      | `SetWatches { long relativeZxid, vector<ustring> data, exist, child }` |
//! | setWatches2 (xid -8)                     | `SetWatches2 { ..., persistent, persistentRecursive }` |
//! | sasl                                     | `GetSASLRequest { buffer token }`                 |
//! | getEphemerals                            | `GetEphemeralsRequest { prefixPath }`             |
//! | addWatch                                 | `AddWatchRequest { path, int mode }`              |
//! | deleteContainer                          | `DeleteContainerRequest`: the path as a `buffer` (same bytes as a ustring) |
//! | ping (xid -2), closeSession, whoAmI      | no record                                         |
//!
//! Inside `multi`, the sub-operations ZooKeeper accepts are create,
//! create2, createContainer, createTTL, delete, setData and check; inside
//! `multiRead`, getData and getChildren (whose records carry a watch byte
//! that the server ignores).
//!
//! Decoding checks the whole record (lengths, counts, UTF-8 of every path)
//! so a parsed [`Request`] never yields an error later; bytes after the
//! record are ignored, as ZooKeeper does.

use super::codes::{CreateMode, OpCode};
use super::jute::{PathList, Reader};
use crate::{Error, Result};
use core::iter::FusedIterator;

/// A decoded client request frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Request<'a> {
    /// Client-chosen id the reply echoes; -2 ping, -4 auth, -8 setWatches.
    pub xid: i32,
    /// The request type.
    pub opcode: OpCode,
    /// The request record.
    pub body: RequestBody<'a>,
}

/// The record of a request, one variant per request record of
/// `zookeeper.jute`; every field borrows from the frame.
///
/// Data payloads are reported by their declared jute length (`-1` for a
/// null buffer), not copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RequestBody<'a> {
    /// create, create2, createContainer (`CreateRequest`) and createTTL
    /// (`CreateTTLRequest`, with `ttl`).
    Create {
        /// Node path.
        path: &'a str,
        /// Length of the initial data (-1 for null).
        data_len: i32,
        /// Number of ACL entries.
        acl_count: i32,
        /// The create mode from `flags`.
        mode: CreateMode,
        /// The TTL in ms, for createTTL only.
        ttl: Option<i64>,
    },
    /// delete (`DeleteRequest`).
    Delete {
        /// Node path.
        path: &'a str,
        /// Expected version (-1 = any).
        version: i32,
    },
    /// exists (`ExistsRequest`).
    Exists {
        /// Node path.
        path: &'a str,
        /// Leave a watch.
        watch: bool,
    },
    /// getData (`GetDataRequest`).
    GetData {
        /// Node path.
        path: &'a str,
        /// Leave a watch.
        watch: bool,
    },
    /// setData (`SetDataRequest`).
    SetData {
        /// Node path.
        path: &'a str,
        /// Length of the new data (-1 for null).
        data_len: i32,
        /// Expected version (-1 = any).
        version: i32,
    },
    /// getACL (`GetACLRequest`).
    GetACL {
        /// Node path.
        path: &'a str,
    },
    /// setACL (`SetACLRequest`).
    SetACL {
        /// Node path.
        path: &'a str,
        /// Number of ACL entries.
        acl_count: i32,
        /// Expected ACL version (-1 = any).
        version: i32,
    },
    /// getChildren (`GetChildrenRequest`).
    GetChildren {
        /// Node path.
        path: &'a str,
        /// Leave a watch.
        watch: bool,
    },
    /// getChildren2 (`GetChildren2Request`).
    GetChildren2 {
        /// Node path.
        path: &'a str,
        /// Leave a watch.
        watch: bool,
    },
    /// sync (`SyncRequest`).
    Sync {
        /// Node path.
        path: &'a str,
    },
    /// ping: no record.
    Ping,
    /// check (`CheckVersionRequest`).
    Check {
        /// Node path.
        path: &'a str,
        /// Expected version.
        version: i32,
    },
    /// multi and multiRead: the sub-operations.
    Multi(MultiOps<'a>),
    /// reconfig (`ReconfigRequest`); null strings read as `""`.
    Reconfig {
        /// Servers to add (`server.N=...` list).
        joining: &'a str,
        /// Server ids to remove.
        leaving: &'a str,
        /// A whole new membership (non-incremental reconfig).
        new_members: &'a str,
        /// Config version the change is based on (-1 = any).
        cur_config_id: i64,
    },
    /// checkWatches (`CheckWatchesRequest`).
    CheckWatches {
        /// Node path.
        path: &'a str,
        /// `Watcher.WatcherType` (see [`crate::client::watcher_type_name`]).
        watch_type: i32,
    },
    /// removeWatches (`RemoveWatchesRequest`).
    RemoveWatches {
        /// Node path.
        path: &'a str,
        /// `Watcher.WatcherType` (see [`crate::client::watcher_type_name`]).
        watch_type: i32,
    },
    /// auth (`AuthPacket`). The credential is a secret (a digest
    /// credential is `user:password` in clear): redact it when printing.
    SetAuth {
        /// Auth type (always 0).
        auth_type: i32,
        /// Scheme (`"digest"`, `"sasl"`, `"x509"`, ...).
        scheme: &'a str,
        /// The credential bytes.
        credential: &'a [u8],
    },
    /// setWatches (`SetWatches`).
    SetWatches {
        /// The last zxid the client saw.
        relative_zxid: i64,
        /// Paths with data watches.
        data: PathList<'a>,
        /// Paths with exist watches.
        exist: PathList<'a>,
        /// Paths with child watches.
        child: PathList<'a>,
    },
    /// setWatches2 (`SetWatches2`, 3.6+).
    SetWatches2 {
        /// The last zxid the client saw.
        relative_zxid: i64,
        /// Paths with data watches.
        data: PathList<'a>,
        /// Paths with exist watches.
        exist: PathList<'a>,
        /// Paths with child watches.
        child: PathList<'a>,
        /// Paths with persistent watches.
        persistent: PathList<'a>,
        /// Paths with persistent recursive watches.
        persistent_recursive: PathList<'a>,
    },
    /// sasl (`GetSASLRequest`).
    Sasl {
        /// Length of the SASL token (-1 for null).
        token_len: i32,
    },
    /// getEphemerals (`GetEphemeralsRequest`).
    GetEphemerals {
        /// Path prefix the ephemerals must start with (`""`/`"/"` = all).
        prefix: &'a str,
    },
    /// getAllChildrenNumber (`GetAllChildrenNumberRequest`).
    GetAllChildrenNumber {
        /// Node path.
        path: &'a str,
    },
    /// addWatch (`AddWatchRequest`).
    AddWatch {
        /// Node path.
        path: &'a str,
        /// 0 persistent, 1 persistent recursive (see [`crate::client::add_watch_mode_name`]).
        mode: i32,
    },
    /// whoAmI: no record.
    WhoAmI,
    /// closeSession: no record.
    Close,
    /// deleteContainer (`DeleteContainerRequest`).
    DeleteContainer {
        /// Node path.
        path: &'a str,
    },
}

/// Skips a `vector<ACL>` (`ACL { int perms; Id { ustring scheme; ustring id } }`)
/// and answers its count.
pub(crate) fn skip_acls(r: &mut Reader<'_>) -> Result<i32> {
    let n = r.vector_len(12)?;
    for _ in 0..n {
        r.i32()?;
        r.skip_ustring()?;
        r.skip_ustring()?;
    }
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

#[inline]
fn read_create<'a>(r: &mut Reader<'a>, with_ttl: bool) -> Result<RequestBody<'a>> {
    let path = r.ustring()?;
    let data_len = r.buffer_len()?;
    let acl_count = skip_acls(r)?;
    let mode = CreateMode::from_flags(r.i32()?);
    let ttl = if with_ttl { Some(r.i64()?) } else { None };
    Ok(RequestBody::Create {
        path,
        data_len,
        acl_count,
        mode,
        ttl,
    })
}

impl<'a> RequestBody<'a> {
    /// Decodes the record of a request of type `opcode` (the bytes after
    /// the `RequestHeader`). Also serves quorum packets that forward a
    /// client request.
    pub fn parse(opcode: OpCode, record: &'a [u8]) -> Result<Self> {
        Self::read(opcode, &mut Reader::new(record))
    }

    /// Decodes the record of a request of type `opcode` from a cursor.
    pub fn read(opcode: OpCode, r: &mut Reader<'a>) -> Result<Self> {
        Ok(match opcode {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => read_create(r, false)?,
            OpCode::CreateTTL => read_create(r, true)?,
            OpCode::Delete => RequestBody::Delete {
                path: r.ustring()?,
                version: r.i32()?,
            },
            OpCode::Exists => RequestBody::Exists {
                path: r.ustring()?,
                watch: r.bool()?,
            },
            OpCode::GetData => RequestBody::GetData {
                path: r.ustring()?,
                watch: r.bool()?,
            },
            OpCode::SetData => RequestBody::SetData {
                path: r.ustring()?,
                data_len: r.buffer_len()?,
                version: r.i32()?,
            },
            OpCode::GetACL => RequestBody::GetACL { path: r.ustring()? },
            OpCode::SetACL => RequestBody::SetACL {
                path: r.ustring()?,
                acl_count: skip_acls(r)?,
                version: r.i32()?,
            },
            OpCode::GetChildren => RequestBody::GetChildren {
                path: r.ustring()?,
                watch: r.bool()?,
            },
            OpCode::GetChildren2 => RequestBody::GetChildren2 {
                path: r.ustring()?,
                watch: r.bool()?,
            },
            OpCode::Sync => RequestBody::Sync { path: r.ustring()? },
            OpCode::Ping => RequestBody::Ping,
            OpCode::Check => RequestBody::Check {
                path: r.ustring()?,
                version: r.i32()?,
            },
            OpCode::Multi | OpCode::MultiRead => RequestBody::Multi(MultiOps::read(r)?),
            OpCode::Reconfig => RequestBody::Reconfig {
                joining: r.ustring()?,
                leaving: r.ustring()?,
                new_members: r.ustring()?,
                cur_config_id: r.i64()?,
            },
            OpCode::CheckWatches => RequestBody::CheckWatches {
                path: r.ustring()?,
                watch_type: r.i32()?,
            },
            OpCode::RemoveWatches => RequestBody::RemoveWatches {
                path: r.ustring()?,
                watch_type: r.i32()?,
            },
            OpCode::Auth => RequestBody::SetAuth {
                auth_type: r.i32()?,
                scheme: r.ustring()?,
                credential: r.buffer()?,
            },
            OpCode::SetWatches => RequestBody::SetWatches {
                relative_zxid: r.i64()?,
                data: r.path_list()?,
                exist: r.path_list()?,
                child: r.path_list()?,
            },
            OpCode::SetWatches2 => RequestBody::SetWatches2 {
                relative_zxid: r.i64()?,
                data: r.path_list()?,
                exist: r.path_list()?,
                child: r.path_list()?,
                persistent: r.path_list()?,
                persistent_recursive: r.path_list()?,
            },
            OpCode::Sasl => RequestBody::Sasl {
                token_len: r.buffer_len()?,
            },
            OpCode::GetEphemerals => RequestBody::GetEphemerals {
                prefix: r.ustring()?,
            },
            OpCode::GetAllChildrenNumber => {
                RequestBody::GetAllChildrenNumber { path: r.ustring()? }
            }
            OpCode::AddWatch => RequestBody::AddWatch {
                path: r.ustring()?,
                mode: r.i32()?,
            },
            OpCode::WhoAmI => RequestBody::WhoAmI,
            OpCode::CloseSession => RequestBody::Close,
            OpCode::DeleteContainer => RequestBody::DeleteContainer { path: r.ustring()? },
            OpCode::Notification | OpCode::Error | OpCode::CreateSession => {
                return Err(Error::Malformed);
            }
        })
    }

    /// The path the record is about (the prefix for getEphemerals); `None`
    /// for records without one (ping, auth, setWatches, multi, reconfig, ...).
    #[inline]
    pub const fn path(&self) -> Option<&'a str> {
        match *self {
            RequestBody::Create { path, .. }
            | RequestBody::Delete { path, .. }
            | RequestBody::Exists { path, .. }
            | RequestBody::GetData { path, .. }
            | RequestBody::SetData { path, .. }
            | RequestBody::GetACL { path }
            | RequestBody::SetACL { path, .. }
            | RequestBody::GetChildren { path, .. }
            | RequestBody::GetChildren2 { path, .. }
            | RequestBody::Sync { path }
            | RequestBody::Check { path, .. }
            | RequestBody::CheckWatches { path, .. }
            | RequestBody::RemoveWatches { path, .. }
            | RequestBody::GetEphemerals { prefix: path }
            | RequestBody::GetAllChildrenNumber { path }
            | RequestBody::AddWatch { path, .. }
            | RequestBody::DeleteContainer { path } => Some(path),
            RequestBody::Ping
            | RequestBody::Multi(_)
            | RequestBody::Reconfig { .. }
            | RequestBody::SetAuth { .. }
            | RequestBody::SetWatches { .. }
            | RequestBody::SetWatches2 { .. }
            | RequestBody::Sasl { .. }
            | RequestBody::WhoAmI
            | RequestBody::Close => None,
        }
    }

    /// The watch flag, for the records that carry one (exists, getData,
    /// getChildren, getChildren2).
    #[inline]
    pub const fn watch(&self) -> Option<bool> {
        match *self {
            RequestBody::Exists { watch, .. }
            | RequestBody::GetData { watch, .. }
            | RequestBody::GetChildren { watch, .. }
            | RequestBody::GetChildren2 { watch, .. } => Some(watch),
            _ => None,
        }
    }
}

impl<'a> Request<'a> {
    /// Decodes a whole request frame body: the header, then the record.
    #[inline]
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let xid = r.i32()?;
        let opcode = OpCode::from_i32(r.i32()?).ok_or(Error::UnknownOpcode)?;
        let body = RequestBody::read(opcode, &mut r)?;
        Ok(Request { xid, opcode, body })
    }

    /// The path the request is about; `None` for multi (see
    /// [`MultiOps::iter`]) and for requests without a path.
    #[inline]
    pub const fn path(&self) -> Option<&'a str> {
        self.body.path()
    }

    /// The watch flag of exists / getData / getChildren / getChildren2.
    #[inline]
    pub const fn watch(&self) -> Option<bool> {
        self.body.watch()
    }

    /// The request message name (`"GetDataRequest"`, ...).
    #[inline]
    pub const fn name(&self) -> &'static str {
        self.opcode.request_name()
    }

    /// The older daemon's stats key for this request: [`Self::name`],
    /// except that ephemeral creates count as `"CreateEphemeralRequest"`.
    #[inline]
    pub const fn stats_name(&self) -> &'static str {
        match self.body {
            RequestBody::Create { mode, .. } if mode.is_ephemeral() => "CreateEphemeralRequest",
            _ => self.opcode.request_name(),
        }
    }

    /// True when the request changes the tree: a write op code, or a multi
    /// with at least one write sub-operation.
    #[inline]
    pub const fn is_write(&self) -> bool {
        match self.body {
            RequestBody::Multi(ops) => ops.has_write(),
            _ => self.opcode.is_write(),
        }
    }

    /// The header fields and path, as [`parse_request_prefix`] would give
    /// (with an empty `record`: a parsed request keeps no raw bytes).
    #[inline]
    pub const fn prefix(&self) -> RequestPrefix<'a> {
        RequestPrefix {
            xid: self.xid,
            opcode: self.opcode,
            path: self.path(),
            record: &[],
        }
    }
}

/// Header (and path when present in the prefix) of a request frame whose
/// body was cut at the reassembly buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RequestPrefix<'a> {
    /// The request's xid.
    pub xid: i32,
    /// The request type.
    pub opcode: OpCode,
    /// The path, when the op code's record starts with one and it is
    /// wholly inside the prefix (`None` for multi).
    pub path: Option<&'a str>,
    /// The record bytes the prefix holds (after the 8-byte header), e.g.
    /// for [`MultiOpIter::new`] over the first sub-operations of a cut multi.
    pub record: &'a [u8],
}

/// Decodes the header, and the path if it fits, from the first bytes of a
/// request frame body. A path cut by the end of the prefix gives
/// `path: None`; a path that is present but malformed is an error.
pub fn parse_request_prefix(prefix: &[u8]) -> Result<RequestPrefix<'_>> {
    let mut r = Reader::new(prefix);
    let xid = r.i32()?;
    let opcode = OpCode::from_i32(r.i32()?).ok_or(Error::UnknownOpcode)?;
    if !opcode.is_client_request() {
        return Err(Error::Malformed);
    }
    let record = r.rest();
    let path = if opcode.has_path() {
        prefix_path(&mut r)?
    } else {
        None
    };
    Ok(RequestPrefix {
        xid,
        opcode,
        path,
        record,
    })
}

#[inline]
fn prefix_path<'a>(r: &mut Reader<'a>) -> Result<Option<&'a str>> {
    let Ok(n) = r.i32() else {
        return Ok(None);
    };
    if n == -1 {
        return Ok(Some(""));
    }
    let n = usize::try_from(n).map_err(|_| Error::BadLength)?;
    let Ok(bytes) = r.take(n) else {
        return Ok(None);
    };
    core::str::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::BadUtf8)
}

/// The sub-operations of a multi or multiRead request: a sequence of
/// (`MultiHeader { type, done, err }`, sub-op record) ending at a header
/// with `done` set. Checked once when read; iterated lazily, never
/// allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MultiOps<'a> {
    raw: &'a [u8],
    len: usize,
    has_write: bool,
}

/// One sub-operation of a multi request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MultiOp<'a> {
    /// The sub-operation's type (create, create2, createTTL,
    /// createContainer, delete, setData, check; getData, getChildren in
    /// multiRead).
    pub opcode: OpCode,
    /// Its record.
    pub body: RequestBody<'a>,
}

impl<'a> MultiOp<'a> {
    /// The path the sub-operation is about.
    #[inline]
    pub const fn path(&self) -> Option<&'a str> {
        self.body.path()
    }

    /// Same as [`Self::path`] (the name host code uses).
    #[inline]
    pub const fn body_path(&self) -> Option<&'a str> {
        self.body.path()
    }

    /// The sub-operation's request name (`"CreateRequest"`, ...).
    #[inline]
    pub const fn request_name(&self) -> &'static str {
        self.opcode.request_name()
    }
}

/// Reads one (header, record) pair; `Ok(None)` at the closing header.
#[inline]
fn next_op<'a>(r: &mut Reader<'a>) -> Result<Option<MultiOp<'a>>> {
    let ty = r.i32()?;
    let done = r.bool()?;
    let _err = r.i32()?;
    if done {
        return Ok(None);
    }
    let opcode = OpCode::from_i32(ty).ok_or(Error::UnknownOpcode)?;
    match opcode {
        OpCode::Create
        | OpCode::Create2
        | OpCode::CreateContainer
        | OpCode::CreateTTL
        | OpCode::Delete
        | OpCode::SetData
        | OpCode::Check
        | OpCode::GetData
        | OpCode::GetChildren => {}
        _ => return Err(Error::Malformed),
    }
    let body = RequestBody::read(opcode, r)?;
    Ok(Some(MultiOp { opcode, body }))
}

impl<'a> MultiOps<'a> {
    /// Reads and checks a multi record up to and including its closing
    /// header. Each step consumes at least 9 bytes, so a record without a
    /// closing header ends in [`Error::Truncated`], never a loop.
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        let start = *r;
        let mut len = 0usize;
        let mut has_write = false;
        while let Some(op) = next_op(r)? {
            len = len.saturating_add(1);
            has_write |= op.opcode.is_write();
        }
        Ok(MultiOps {
            raw: r.consumed_since(start),
            len,
            has_write,
        })
    }

    /// Number of sub-operations.
    #[inline]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True when the multi has no sub-operations.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when any sub-operation writes (create*, delete, setData).
    #[inline]
    pub const fn has_write(&self) -> bool {
        self.has_write
    }

    /// The encoded record, closing header included.
    #[inline]
    pub const fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Iterates the sub-operations in wire order.
    #[inline]
    pub fn iter(&self) -> MultiOpIter<'a> {
        MultiOpIter::new(self.raw)
    }

    /// The first sub-operation, if any.
    #[inline]
    pub fn first(&self) -> Option<MultiOp<'a>> {
        self.iter().next().and_then(|r| r.ok())
    }
}

impl<'a> IntoIterator for MultiOps<'a> {
    type Item = Result<MultiOp<'a>>;
    type IntoIter = MultiOpIter<'a>;
    fn into_iter(self) -> MultiOpIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &MultiOps<'a> {
    type Item = Result<MultiOp<'a>>;
    type IntoIter = MultiOpIter<'a>;
    fn into_iter(self) -> MultiOpIter<'a> {
        self.iter()
    }
}

/// Lazy iterator over multi sub-operations. It stops after the closing
/// header, or after yielding the first error.
#[derive(Debug, Clone)]
pub struct MultiOpIter<'a> {
    r: Reader<'a>,
    finished: bool,
}

impl<'a> MultiOpIter<'a> {
    /// Iterates an unchecked multi record (for example the part of a cut
    /// frame that [`RequestPrefix::record`] holds): yields sub-operations
    /// until the closing header, or one error where the bytes stop making
    /// sense or run out.
    #[inline]
    pub const fn new(record: &'a [u8]) -> Self {
        MultiOpIter {
            r: Reader::new(record),
            finished: false,
        }
    }
}

impl<'a> Iterator for MultiOpIter<'a> {
    type Item = Result<MultiOp<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match next_op(&mut self.r) {
            Ok(Some(op)) => Some(Ok(op)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.finished {
            (0, Some(0))
        } else {
            (0, Some((self.r.remaining() / 9).saturating_add(1)))
        }
    }
}

impl FusedIterator for MultiOpIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::test_enc::{Enc, Noise};
    extern crate std;
    use std::vec::Vec;

    fn parse(b: &[u8]) -> Request<'_> {
        Request::parse(b).unwrap()
    }

    /// Asserts that every strict prefix of `frame` fails to parse.
    fn all_cuts_err(frame: &[u8]) {
        for n in 0..frame.len() {
            assert!(
                Request::parse(&frame[..n]).is_err(),
                "cut at {n} of {}",
                frame.len()
            );
        }
        assert!(Request::parse(frame).is_ok());
    }

    fn create_frame(op: i32, flags: i32, ttl: Option<i64>) -> Vec<u8> {
        let e = Enc::new()
            .req(7, op)
            .s("/locks/lock-")
            .buf(b"hello")
            .acls(&[(31, "world", "anyone"), (1, "digest", "u:hash")])
            .i32(flags);
        match ttl {
            Some(t) => e.i64(t).done(),
            None => e.done(),
        }
    }

    #[test]
    fn create_family_round_trips() {
        for op in [1, 15, 19] {
            let b = create_frame(op, 3, None);
            let r = parse(&b);
            assert_eq!(r.xid, 7);
            assert_eq!(r.opcode.code(), op);
            assert_eq!(
                r.body,
                RequestBody::Create {
                    path: "/locks/lock-",
                    data_len: 5,
                    acl_count: 2,
                    mode: CreateMode::EphemeralSequential,
                    ttl: None,
                }
            );
            assert_eq!(r.path(), Some("/locks/lock-"));
            assert_eq!(r.watch(), None);
            assert!(r.is_write());
            assert_eq!(r.stats_name(), "CreateEphemeralRequest");
            all_cuts_err(&b);
        }
        let b = create_frame(21, 5, Some(60_000));
        let r = parse(&b);
        assert_eq!(r.opcode, OpCode::CreateTTL);
        assert!(matches!(
            r.body,
            RequestBody::Create {
                mode: CreateMode::PersistentWithTtl,
                ttl: Some(60_000),
                ..
            }
        ));
        assert_eq!(r.stats_name(), "CreateTTLRequest");
        all_cuts_err(&b);
    }

    #[test]
    fn create_with_null_data_and_acl() {
        let b = Enc::new().req(1, 1).s("/n").null().null().i32(0).done();
        assert_eq!(
            parse(&b).body,
            RequestBody::Create {
                path: "/n",
                data_len: -1,
                acl_count: 0,
                mode: CreateMode::Persistent,
                ttl: None
            }
        );
    }

    #[test]
    fn simple_records_round_trip() {
        let cases: Vec<(Vec<u8>, RequestBody<'static>)> = std::vec![
            (
                Enc::new().req(1, 2).s("/a").i32(4).done(),
                RequestBody::Delete {
                    path: "/a",
                    version: 4
                },
            ),
            (
                Enc::new().req(1, 3).s("/a").bool(true).done(),
                RequestBody::Exists {
                    path: "/a",
                    watch: true
                },
            ),
            (
                Enc::new().req(1, 4).s("/a").bool(false).done(),
                RequestBody::GetData {
                    path: "/a",
                    watch: false
                },
            ),
            (
                Enc::new().req(1, 5).s("/a").buf(&[1, 2, 3]).i32(-1).done(),
                RequestBody::SetData {
                    path: "/a",
                    data_len: 3,
                    version: -1
                },
            ),
            (
                Enc::new().req(1, 6).s("/a").done(),
                RequestBody::GetACL { path: "/a" }
            ),
            (
                Enc::new()
                    .req(1, 7)
                    .s("/a")
                    .acls(&[(31, "world", "anyone")])
                    .i32(2)
                    .done(),
                RequestBody::SetACL {
                    path: "/a",
                    acl_count: 1,
                    version: 2
                },
            ),
            (
                Enc::new().req(1, 8).s("/a").bool(true).done(),
                RequestBody::GetChildren {
                    path: "/a",
                    watch: true
                },
            ),
            (
                Enc::new().req(1, 12).s("/a").bool(true).done(),
                RequestBody::GetChildren2 {
                    path: "/a",
                    watch: true
                },
            ),
            (
                Enc::new().req(1, 9).s("/a").done(),
                RequestBody::Sync { path: "/a" }
            ),
            (Enc::new().req(-2, 11).done(), RequestBody::Ping),
            (
                Enc::new().req(1, 13).s("/a").i32(9).done(),
                RequestBody::Check {
                    path: "/a",
                    version: 9
                },
            ),
            (
                Enc::new()
                    .req(1, 16)
                    .s("server.4=h:2888:3888")
                    .null()
                    .s("")
                    .i64(-1)
                    .done(),
                RequestBody::Reconfig {
                    joining: "server.4=h:2888:3888",
                    leaving: "",
                    new_members: "",
                    cur_config_id: -1,
                },
            ),
            (
                Enc::new().req(1, 17).s("/a").i32(3).done(),
                RequestBody::CheckWatches {
                    path: "/a",
                    watch_type: 3
                },
            ),
            (
                Enc::new().req(1, 18).s("/a").i32(1).done(),
                RequestBody::RemoveWatches {
                    path: "/a",
                    watch_type: 1
                },
            ),
            (
                Enc::new()
                    .req(-4, 100)
                    .i32(0)
                    .s("digest")
                    .buf(b"u:p")
                    .done(),
                RequestBody::SetAuth {
                    auth_type: 0,
                    scheme: "digest",
                    credential: b"u:p"
                },
            ),
            (
                Enc::new().req(1, 102).buf(&[0; 40]).done(),
                RequestBody::Sasl { token_len: 40 }
            ),
            (
                Enc::new().req(1, 103).s("/e").done(),
                RequestBody::GetEphemerals { prefix: "/e" },
            ),
            (
                Enc::new().req(1, 104).s("/a").done(),
                RequestBody::GetAllChildrenNumber { path: "/a" },
            ),
            (
                Enc::new().req(1, 106).s("/a").i32(1).done(),
                RequestBody::AddWatch {
                    path: "/a",
                    mode: 1
                },
            ),
            (Enc::new().req(1, 107).done(), RequestBody::WhoAmI),
            (Enc::new().req(9, -11).done(), RequestBody::Close),
            (
                Enc::new().req(1, 20).s("/c").done(),
                RequestBody::DeleteContainer { path: "/c" }
            ),
        ];
        for (frame, want) in &cases {
            let r = parse(frame);
            assert_eq!(&r.body, want);
            all_cuts_err(frame);
        }
    }

    #[test]
    fn path_and_watch_accessors() {
        let b = Enc::new().req(3, 4).s("/x/y").bool(true).done();
        let r = parse(&b);
        assert_eq!((r.path(), r.watch()), (Some("/x/y"), Some(true)));
        assert_eq!(r.name(), "GetDataRequest");
        assert!(!r.is_write());
        let p = r.prefix();
        assert_eq!(
            (p.xid, p.opcode, p.path),
            (3, OpCode::GetData, Some("/x/y"))
        );
        let b = Enc::new().req(1, 103).s("/e").done();
        assert_eq!(parse(&b).path(), Some("/e"));
        let b = Enc::new().req(-2, 11).done();
        assert_eq!((parse(&b).path(), parse(&b).watch()), (None, None));
    }

    #[test]
    fn set_watches_round_trip() {
        let b = Enc::new()
            .req(-8, 101)
            .i64(0x42)
            .strs(&["/d1", "/d2"])
            .strs(&[])
            .strs(&["/c"])
            .done();
        let r = parse(&b);
        let RequestBody::SetWatches {
            relative_zxid,
            data,
            exist,
            child,
        } = r.body
        else {
            panic!("{r:?}");
        };
        assert_eq!(relative_zxid, 0x42);
        assert_eq!(data.iter().collect::<Vec<_>>(), ["/d1", "/d2"]);
        assert!(exist.is_empty());
        assert_eq!(child.iter().collect::<Vec<_>>(), ["/c"]);
        all_cuts_err(&b);

        let b = Enc::new()
            .req(-8, 105)
            .i64(7)
            .strs(&["/d"])
            .strs(&["/e"])
            .strs(&["/c"])
            .strs(&["/p1", "/p2"])
            .strs(&["/r"])
            .done();
        let r = parse(&b);
        let RequestBody::SetWatches2 {
            relative_zxid,
            data,
            exist,
            child,
            persistent,
            persistent_recursive,
        } = r.body
        else {
            panic!("{r:?}");
        };
        assert_eq!(relative_zxid, 7);
        assert_eq!(data.iter().next(), Some("/d"));
        assert_eq!(exist.iter().next(), Some("/e"));
        assert_eq!(child.iter().next(), Some("/c"));
        assert_eq!(persistent.iter().collect::<Vec<_>>(), ["/p1", "/p2"]);
        assert_eq!(persistent_recursive.iter().collect::<Vec<_>>(), ["/r"]);
        all_cuts_err(&b);
    }

    fn multi_frame() -> Vec<u8> {
        Enc::new()
            .req(11, 14)
            .mh(1, false, -1)
            .s("/m/a")
            .buf(b"x")
            .acls(&[(31, "world", "anyone")])
            .i32(0)
            .mh(21, false, -1)
            .s("/m/t")
            .null()
            .acls(&[])
            .i32(5)
            .i64(1000)
            .mh(13, false, -1)
            .s("/m")
            .i32(3)
            .mh(5, false, -1)
            .s("/m/b")
            .buf(b"yz")
            .i32(-1)
            .mh(2, false, -1)
            .s("/m/c")
            .i32(0)
            .mdone()
            .done()
    }

    #[test]
    fn multi_round_trips() {
        let b = multi_frame();
        let r = parse(&b);
        assert_eq!(r.opcode, OpCode::Multi);
        assert_eq!(r.path(), None);
        assert!(r.is_write());
        let RequestBody::Multi(ops) = r.body else {
            panic!()
        };
        assert_eq!(ops.len(), 5);
        assert!(ops.has_write());
        let got: Vec<MultiOp<'_>> = ops.iter().map(|o| o.unwrap()).collect();
        assert_eq!(got.len(), 5);
        assert_eq!(got[0].opcode, OpCode::Create);
        assert_eq!(
            got[0].body,
            RequestBody::Create {
                path: "/m/a",
                data_len: 1,
                acl_count: 1,
                mode: CreateMode::Persistent,
                ttl: None
            }
        );
        assert_eq!(got[1].opcode, OpCode::CreateTTL);
        assert!(matches!(
            got[1].body,
            RequestBody::Create {
                ttl: Some(1000),
                ..
            }
        ));
        assert_eq!(
            got[2].body,
            RequestBody::Check {
                path: "/m",
                version: 3
            }
        );
        assert_eq!(
            got[3].body,
            RequestBody::SetData {
                path: "/m/b",
                data_len: 2,
                version: -1
            }
        );
        assert_eq!(
            got[4].body,
            RequestBody::Delete {
                path: "/m/c",
                version: 0
            }
        );
        assert_eq!(got[4].path(), Some("/m/c"));
        assert_eq!(got[4].body_path(), Some("/m/c"));
        assert_eq!(got[4].request_name(), "DeleteRequest");
        assert_eq!(ops.first().map(|o| o.opcode), Some(OpCode::Create));
        assert_eq!((&ops).into_iter().count(), 5);
        all_cuts_err(&b);
    }

    #[test]
    fn multi_read_and_empty_multi() {
        let b = Enc::new()
            .req(12, 22)
            .mh(4, false, -1)
            .s("/r/a")
            .bool(false)
            .mh(8, false, -1)
            .s("/r")
            .bool(false)
            .mdone()
            .done();
        let r = parse(&b);
        assert_eq!(r.opcode, OpCode::MultiRead);
        assert!(!r.is_write());
        let RequestBody::Multi(ops) = r.body else {
            panic!()
        };
        assert_eq!(ops.len(), 2);
        assert!(!ops.has_write());
        let ops: Vec<_> = ops.iter().map(|o| o.unwrap().body).collect();
        assert_eq!(
            ops[0],
            RequestBody::GetData {
                path: "/r/a",
                watch: false
            }
        );
        assert_eq!(
            ops[1],
            RequestBody::GetChildren {
                path: "/r",
                watch: false
            }
        );
        all_cuts_err(&b);

        let b = Enc::new().req(1, 14).mdone().done();
        let RequestBody::Multi(ops) = parse(&b).body else {
            panic!()
        };
        assert!(ops.is_empty());
        assert_eq!(ops.iter().next(), None);
        assert!(!parse(&b).is_write());
    }

    #[test]
    fn multi_rejects_bad_sub_ops() {
        // A sub-op type that is no op code.
        let b = Enc::new()
            .req(1, 14)
            .mh(77, false, -1)
            .s("/a")
            .mdone()
            .done();
        assert_eq!(Request::parse(&b), Err(Error::UnknownOpcode));
        // A real op code ZooKeeper refuses inside multi.
        let b = Enc::new()
            .req(1, 14)
            .mh(3, false, -1)
            .s("/a")
            .bool(true)
            .mdone()
            .done();
        assert_eq!(Request::parse(&b), Err(Error::Malformed));
        // No closing header.
        let b = Enc::new().req(1, 14).mh(2, false, -1).s("/a").i32(0).done();
        assert_eq!(Request::parse(&b), Err(Error::Truncated));
        // A lying path length inside a sub-op.
        let b = Enc::new()
            .req(1, 14)
            .mh(2, false, -1)
            .i32(i32::MAX)
            .mdone()
            .done();
        assert_eq!(Request::parse(&b), Err(Error::Truncated));
        let b = Enc::new()
            .req(1, 14)
            .mh(2, false, -1)
            .i32(-3)
            .mdone()
            .done();
        assert_eq!(Request::parse(&b), Err(Error::BadLength));
        // An ACL count that cannot fit.
        let b = Enc::new()
            .req(1, 14)
            .mh(1, false, -1)
            .s("/a")
            .null()
            .i32(i32::MAX)
            .i32(0)
            .mdone()
            .done();
        assert_eq!(Request::parse(&b), Err(Error::Truncated));
    }

    #[test]
    fn multi_iterator_over_lying_bytes_stops_with_one_error() {
        // Unchecked iteration over the first ops of a cut multi.
        let full = multi_frame();
        for n in 8..full.len() {
            let mut it = MultiOpIter::new(&full[8..n]);
            let mut steps = 0;
            let mut errs = 0;
            for item in &mut it {
                steps += 1;
                if item.is_err() {
                    errs += 1;
                }
                assert!(steps <= 6, "runaway iterator at cut {n}");
            }
            assert_eq!(errs, 1, "cut at {n}");
            assert_eq!(it.next(), None, "fused");
        }
        // Garbage that repeats a plausible header forever still ends.
        let mut junk = Vec::new();
        for _ in 0..1000 {
            junk.extend_from_slice(&Enc::new().mh(2, false, 0).s("/").i32(0).done());
        }
        assert_eq!(MultiOpIter::new(&junk).count(), 1001);
        assert!(MultiOpIter::new(&junk).last().unwrap().is_err());
    }

    #[test]
    fn unknown_and_invalid_opcodes() {
        for op in [10, 23, 99, 108, -2, 1000, i32::MIN] {
            let b = Enc::new().req(1, op).s("/a").done();
            assert_eq!(Request::parse(&b), Err(Error::UnknownOpcode), "{op}");
            assert_eq!(parse_request_prefix(&b), Err(Error::UnknownOpcode), "{op}");
        }
        for op in [0, -1, -10] {
            let b = Enc::new().req(1, op).s("/a").done();
            assert_eq!(Request::parse(&b), Err(Error::Malformed), "{op}");
            assert_eq!(parse_request_prefix(&b), Err(Error::Malformed), "{op}");
        }
    }

    #[test]
    fn bad_lengths_and_utf8() {
        let b = Enc::new().req(1, 4).i32(-2).bool(true).done();
        assert_eq!(Request::parse(&b), Err(Error::BadLength));
        let b = Enc::new().req(1, 4).i32(100).raw(b"/a").bool(true).done();
        assert_eq!(Request::parse(&b), Err(Error::Truncated));
        let b = Enc::new()
            .req(1, 4)
            .buf(&[b'/', 0xc0, 0x80])
            .bool(true)
            .done();
        assert_eq!(Request::parse(&b), Err(Error::BadUtf8));
        let b = Enc::new().req(1, 5).s("/a").i32(-2).i32(0).done();
        assert_eq!(Request::parse(&b), Err(Error::BadLength));
        let b = Enc::new().req(1, 101).i64(0).i32(i32::MAX).s("/a").done();
        assert_eq!(Request::parse(&b), Err(Error::Truncated));
        let b = Enc::new().req(1, 101).i64(0).i32(-5).done();
        assert_eq!(Request::parse(&b), Err(Error::BadLength));
        let b = Enc::new()
            .req(1, 7)
            .s("/a")
            .i32(1)
            .i32(31)
            .s("world")
            .i32(-9)
            .i32(0)
            .done();
        assert_eq!(Request::parse(&b), Err(Error::BadLength));
        let b = Enc::new().req(-4, 100).i32(0).buf(&[0xff]).buf(b"x").done();
        assert_eq!(Request::parse(&b), Err(Error::BadUtf8));
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        let b = Enc::new().req(1, 9).s("/a").raw(&[1, 2, 3]).done();
        assert_eq!(parse(&b).body, RequestBody::Sync { path: "/a" });
    }

    #[test]
    fn prefix_gives_header_and_path_when_it_fits() {
        let full = create_frame(1, 0, None);
        // 8 header bytes + 4 length + 12 path bytes.
        for n in 0..full.len() {
            let got = parse_request_prefix(&full[..n]);
            match n {
                0..=7 => assert_eq!(got, Err(Error::Truncated), "cut at {n}"),
                8..=23 => {
                    let p = got.unwrap();
                    assert_eq!(
                        (p.xid, p.opcode, p.path),
                        (7, OpCode::Create, None),
                        "cut at {n}"
                    );
                }
                _ => assert_eq!(got.unwrap().path, Some("/locks/lock-"), "cut at {n}"),
            }
        }
        let p = parse_request_prefix(&full).unwrap();
        assert_eq!(p.record, &full[8..]);
        // Records without a path, and multi.
        let b = Enc::new().req(-2, 11).done();
        let p = parse_request_prefix(&b).unwrap();
        assert_eq!((p.xid, p.opcode, p.path), (-2, OpCode::Ping, None));
        let m = multi_frame();
        let p = parse_request_prefix(&m[..30]).unwrap();
        assert_eq!((p.opcode, p.path), (OpCode::Multi, None));
        let first = MultiOpIter::new(p.record).next().unwrap();
        assert!(first.is_err(), "the first create is cut");
        let p = parse_request_prefix(&m[..70]).unwrap();
        assert_eq!(
            MultiOpIter::new(p.record).next().unwrap().unwrap().path(),
            Some("/m/a")
        );
        // A null path, a malformed path.
        let b = Enc::new().req(1, 9).null().done();
        let p = parse_request_prefix(&b).unwrap();
        assert_eq!(p.path, Some(""));
        let b = Enc::new().req(1, 9).i32(-2).done();
        assert_eq!(parse_request_prefix(&b), Err(Error::BadLength));
        let b = Enc::new().req(1, 9).buf(&[0xfe, 0xfe]).done();
        assert_eq!(parse_request_prefix(&b), Err(Error::BadUtf8));
        // Equal to a full parse for a whole frame.
        let full = Enc::new().req(5, 8).s("/k").bool(true).done();
        let mut want = parse(&full).prefix();
        want.record = &full[8..];
        assert_eq!(parse_request_prefix(&full), Ok(want));
    }

    #[test]
    fn noise_never_panics() {
        let bases = [
            multi_frame(),
            create_frame(21, 6, Some(5)),
            Enc::new()
                .req(-8, 105)
                .i64(7)
                .strs(&["/d"])
                .strs(&["/e"])
                .strs(&[])
                .strs(&["/p"])
                .strs(&["/r"])
                .done(),
            Enc::new()
                .req(-4, 100)
                .i32(0)
                .s("digest")
                .buf(b"u:p")
                .done(),
            Enc::new().req(1, 16).s("a").s("b").s("c").i64(1).done(),
        ];
        let mut n = Noise::new(0x5eed);
        for _ in 0..40_000 {
            let mut b = bases[n.below(bases.len())].clone();
            n.mutate(&mut b);
            let cut = n.below(b.len() + 1);
            let b = b.get(..cut).unwrap_or(&b);
            if let Ok(r) = Request::parse(b) {
                let _ = (r.path(), r.watch(), r.is_write(), r.stats_name());
                if let RequestBody::Multi(ops) = r.body {
                    assert_eq!(ops.iter().count(), ops.len());
                    assert!(ops.iter().all(|o| o.is_ok()));
                }
            }
            if let Ok(p) = parse_request_prefix(b) {
                assert!(MultiOpIter::new(p.record).take(10_000).count() < 10_000);
            }
        }
        // Pure noise too.
        let mut buf = [0u8; 64];
        for _ in 0..40_000 {
            for x in buf.iter_mut() {
                *x = u8::try_from(n.next_u64() & 0xff).unwrap();
            }
            let cut = n.below(buf.len() + 1);
            let _ = Request::parse(&buf[..cut]);
            let _ = parse_request_prefix(&buf[..cut]);
        }
    }
}
