//! Server replies: every frame a server sends after the handshake, other
//! than watch events (see [`super::WatchEvent`]).
//!
//! Wire format: `ReplyHeader { int xid; long zxid; int err }` then, when
//! `err` is 0, the response record for the request's op code; replies do
//! not repeat the op code, so the caller pairs each reply with its request
//! by xid. Records are those of `zookeeper-jute/src/main/resources/zookeeper.jute`;
//! which record answers which op code is decided in ZooKeeper's
//! `server/FinalRequestProcessor.java`:
//!
//! | op code                                   | reply record                                   |
//! |-------------------------------------------|------------------------------------------------|
//! | create                                    | `CreateResponse { path }`                      |
//! | create2, createContainer, createTTL       | `Create2Response { path, Stat }`               |
//! | sync                                      | `SyncResponse { path }`                        |
//! | exists, setData, setACL                   | `ExistsResponse` / `SetDataResponse` / `SetACLResponse { Stat }` |
//! | getData, reconfig                         | `GetDataResponse { buffer data, Stat }`        |
//! | getACL                                    | `GetACLResponse { vector<ACL>, Stat }`         |
//! | getChildren / getChildren2                | `GetChildrenResponse { children }` / `GetChildren2Response { children, Stat }` |
//! | getEphemerals                             | `GetEphemeralsResponse { vector<ustring> }`    |
//! | getAllChildrenNumber                      | `GetAllChildrenNumberResponse { int }`         |
//! | whoAmI                                    | `WhoAmIResponse { vector<ClientInfo { authScheme, user }> }` |
//! | sasl                                      | `SetSASLResponse { buffer token }`             |
//! | multi, multiRead                          | `(MultiHeader, result)*` ending at `done` (`MultiResponse.java`) |
//! | check                                     | none, or a `Stat` (3.9 answers a lone check with `SetDataResponse`) |
//! | addWatch                                  | `ErrorResponse { 0 }`, read as no body         |
//! | delete, ping, auth, setWatches(2), checkWatches, removeWatches, closeSession | none |
//!
//! A reply with a non-zero `err` carries no record (the server sends the
//! header alone), except multi, whose results still follow. Inside a multi
//! reply a result of type -1 is an `ErrorResponse { int err }`.

use super::codes::{ErrorCode, OpCode};
use super::jute::{PathList, Reader};
use super::request::skip_acls;
use super::{XID_AUTH, XID_PING, XID_SET_WATCHES, XID_WATCH_EVENT};
use crate::{Error, Result};
use core::iter::FusedIterator;

/// A node's metadata, the jute `Stat` record (68 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stat {
    /// zxid of the change that created the node.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// Creation time, ms since the epoch.
    pub ctime: i64,
    /// Last data change time, ms since the epoch.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Children version.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Owning session for an ephemeral node, 0 otherwise.
    pub ephemeral_owner: i64,
    /// Length of the node's data.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// zxid of the last children change.
    pub pzxid: i64,
}

impl Stat {
    /// Encoded size of a `Stat`.
    pub const LEN: usize = 68;

    /// Reads a `Stat` record.
    #[inline]
    pub fn read(r: &mut Reader<'_>) -> Result<Stat> {
        // One length check; the field reads below are on a slice of known
        // length, so their checks fold away.
        let mut r = Reader::new(r.take(Self::LEN)?);
        let r = &mut r;
        Ok(Stat {
            czxid: r.i64()?,
            mzxid: r.i64()?,
            ctime: r.i64()?,
            mtime: r.i64()?,
            version: r.i32()?,
            cversion: r.i32()?,
            aversion: r.i32()?,
            ephemeral_owner: r.i64()?,
            data_length: r.i32()?,
            num_children: r.i32()?,
            pzxid: r.i64()?,
        })
    }

    /// True for an ephemeral node (`ephemeral_owner != 0`).
    #[inline]
    pub const fn is_ephemeral(&self) -> bool {
        self.ephemeral_owner != 0
    }
}

/// The header of every server frame after the handshake (`ReplyHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReplyHeader {
    /// The request's xid; -1 watch event, -2 ping, -4 auth, -8 setWatches.
    pub xid: i32,
    /// The server's last processed zxid.
    pub zxid: i64,
    /// Outcome (0 = Ok).
    pub err: ErrorCode,
}

impl ReplyHeader {
    /// Encoded size of a `ReplyHeader`.
    pub const LEN: usize = 16;

    /// Reads a `ReplyHeader`.
    #[inline]
    pub fn read(r: &mut Reader<'_>) -> Result<ReplyHeader> {
        Ok(ReplyHeader {
            xid: r.i32()?,
            zxid: r.i64()?,
            err: ErrorCode(r.i32()?),
        })
    }

    /// True for a watch notification (xid -1).
    #[inline]
    pub const fn is_watch_event(&self) -> bool {
        self.xid == XID_WATCH_EVENT
    }

    /// True for a ping reply (xid -2).
    #[inline]
    pub const fn is_ping(&self) -> bool {
        self.xid == XID_PING
    }

    /// True for an auth reply (xid -4).
    #[inline]
    pub const fn is_auth(&self) -> bool {
        self.xid == XID_AUTH
    }

    /// True for a setWatches reply (xid -8).
    #[inline]
    pub const fn is_set_watches(&self) -> bool {
        self.xid == XID_SET_WATCHES
    }
}

/// Decodes the reply header from the first bytes of a server frame body
/// (for frames cut at the reassembly buffer and replies with no request
/// to pair with).
#[inline]
pub fn parse_reply_header(prefix: &[u8]) -> Result<ReplyHeader> {
    ReplyHeader::read(&mut Reader::new(prefix))
}

/// A decoded server reply frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reply<'a> {
    /// The reply header.
    pub header: ReplyHeader,
    /// The response record.
    pub body: ReplyBody<'a>,
}

/// The record of a reply, by shape; every field borrows from the frame.
/// Data payloads are reported by their declared jute length (-1 for null).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReplyBody<'a> {
    /// No record: errors, ping, auth, close, setWatches, delete, addWatch, ...
    Empty,
    /// create (`CreateResponse`) and sync (`SyncResponse`): a path.
    Path(&'a str),
    /// create2, createContainer, createTTL (`Create2Response`).
    PathStat {
        /// The created node's path (with the sequence suffix, if any).
        path: &'a str,
        /// The created node's Stat.
        stat: Stat,
    },
    /// exists, setData, setACL (and a lone check on 3.9): a Stat.
    Stat(Stat),
    /// getData and reconfig (`GetDataResponse`).
    Data {
        /// Length of the data (-1 for null).
        data_len: i32,
        /// The node's Stat.
        stat: Stat,
    },
    /// getACL (`GetACLResponse`).
    #[allow(clippy::upper_case_acronyms)]
    ACL {
        /// Number of ACL entries.
        acl_count: i32,
        /// The node's Stat.
        stat: Stat,
    },
    /// getChildren (`GetChildrenResponse`).
    Children(PathList<'a>),
    /// getChildren2 (`GetChildren2Response`).
    Children2 {
        /// Child names.
        children: PathList<'a>,
        /// The parent's Stat.
        stat: Stat,
    },
    /// multi and multiRead (`MultiResponse`).
    Multi(MultiResults<'a>),
    /// getEphemerals (`GetEphemeralsResponse`).
    Ephemerals(PathList<'a>),
    /// getAllChildrenNumber (`GetAllChildrenNumberResponse`).
    ChildrenNumber(i32),
    /// whoAmI (`WhoAmIResponse`).
    WhoAmI {
        /// Number of `ClientInfo` entries (one per authenticated identity).
        count: i32,
    },
    /// sasl (`SetSASLResponse`).
    Sasl {
        /// Length of the SASL token (-1 for null).
        token_len: i32,
    },
}

impl<'a> ReplyBody<'a> {
    /// Decodes the record of a reply to an `opcode` request whose header
    /// said `err` (the bytes after the `ReplyHeader`).
    pub fn parse(opcode: OpCode, err: ErrorCode, record: &'a [u8]) -> Result<Self> {
        Self::read(opcode, err, &mut Reader::new(record))
    }

    /// Decodes the record of a reply from a cursor; see [`Self::parse`].
    pub fn read(opcode: OpCode, err: ErrorCode, r: &mut Reader<'a>) -> Result<Self> {
        if let OpCode::Multi | OpCode::MultiRead = opcode {
            if !err.is_ok() && r.is_empty() {
                return Ok(ReplyBody::Empty);
            }
            return Ok(ReplyBody::Multi(MultiResults::read(r)?));
        }
        if !err.is_ok() {
            return Ok(ReplyBody::Empty);
        }
        Ok(match opcode {
            OpCode::Create | OpCode::Sync => ReplyBody::Path(r.ustring()?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTTL => ReplyBody::PathStat {
                path: r.ustring()?,
                stat: Stat::read(r)?,
            },
            OpCode::Exists | OpCode::SetData | OpCode::SetACL => ReplyBody::Stat(Stat::read(r)?),
            OpCode::Check => {
                if r.is_empty() {
                    ReplyBody::Empty
                } else {
                    ReplyBody::Stat(Stat::read(r)?)
                }
            }
            OpCode::GetData | OpCode::Reconfig => ReplyBody::Data {
                data_len: r.buffer_len()?,
                stat: Stat::read(r)?,
            },
            OpCode::GetACL => ReplyBody::ACL {
                acl_count: skip_acls(r)?,
                stat: Stat::read(r)?,
            },
            OpCode::GetChildren => ReplyBody::Children(r.path_list()?),
            OpCode::GetChildren2 => ReplyBody::Children2 {
                children: r.path_list()?,
                stat: Stat::read(r)?,
            },
            OpCode::GetEphemerals => ReplyBody::Ephemerals(r.path_list()?),
            OpCode::GetAllChildrenNumber => ReplyBody::ChildrenNumber(r.i32()?),
            OpCode::WhoAmI => ReplyBody::WhoAmI {
                count: skip_client_infos(r)?,
            },
            OpCode::Sasl => ReplyBody::Sasl {
                token_len: r.buffer_len()?,
            },
            OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::Ping
            | OpCode::Auth
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::AddWatch
            | OpCode::CloseSession
            | OpCode::CreateSession
            | OpCode::Notification
            | OpCode::Error
            | OpCode::Multi
            | OpCode::MultiRead => ReplyBody::Empty,
        })
    }

    /// The Stat the reply carries, if any.
    #[inline]
    pub const fn stat(&self) -> Option<&Stat> {
        match self {
            ReplyBody::PathStat { stat, .. }
            | ReplyBody::Stat(stat)
            | ReplyBody::Data { stat, .. }
            | ReplyBody::ACL { stat, .. }
            | ReplyBody::Children2 { stat, .. } => Some(stat),
            _ => None,
        }
    }

    /// The path the reply carries (create, create2, sync), if any.
    #[inline]
    pub const fn path(&self) -> Option<&'a str> {
        match *self {
            ReplyBody::Path(path) | ReplyBody::PathStat { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// Skips a `vector<ClientInfo { ustring authScheme; ustring user }>` and
/// answers its count.
fn skip_client_infos(r: &mut Reader<'_>) -> Result<i32> {
    let n = r.vector_len(8)?;
    for _ in 0..n {
        r.skip_ustring()?;
        r.skip_ustring()?;
    }
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

impl<'a> Reply<'a> {
    /// Decodes a whole reply frame body; `opcode` is the type of the
    /// request the caller paired it with by xid.
    #[inline]
    pub fn parse(body: &'a [u8], opcode: OpCode) -> Result<Self> {
        let mut r = Reader::new(body);
        let header = ReplyHeader::read(&mut r)?;
        let body = ReplyBody::read(opcode, header.err, &mut r)?;
        Ok(Reply { header, body })
    }

    /// True when the header's error code is Ok.
    #[inline]
    pub const fn is_ok(&self) -> bool {
        self.header.err.is_ok()
    }
}

/// The results of a multi or multiRead reply: a sequence of
/// (`MultiHeader { type, done, err }`, result record) ending at a header
/// with `done` set. Checked once when read; iterated lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MultiResults<'a> {
    raw: &'a [u8],
    len: usize,
    first_error: ErrorCode,
}

/// One result of a multi reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MultiResult<'a> {
    /// The sub-operation's type; [`OpCode::Error`] for an error result.
    pub opcode: OpCode,
    /// The result's error code: the `ErrorResponse` value for an error
    /// result (0 for the sub-ops of a failed multi that would have
    /// succeeded, -2 RuntimeInconsistency for those after the failure).
    pub err: ErrorCode,
    /// The result record (`Empty` for errors, delete and check).
    pub body: ReplyBody<'a>,
}

impl<'a> MultiResult<'a> {
    /// The result's error code (same as the `err` field).
    #[inline]
    pub const fn err(&self) -> ErrorCode {
        self.err
    }

    /// True for a successful result (not an error result, or an error
    /// result with code 0).
    #[inline]
    pub const fn is_ok(&self) -> bool {
        self.err.is_ok()
    }

    /// The path the result carries (create, create2), if any.
    #[inline]
    pub const fn path(&self) -> Option<&'a str> {
        self.body.path()
    }

    /// The result's reply name (`"CreateReply"`; `"ErrorReply"` for an
    /// error result).
    #[inline]
    pub const fn reply_name(&self) -> &'static str {
        self.opcode.reply_name()
    }
}

/// Reads one (header, result) pair; `Ok(None)` at the closing header.
#[inline]
fn next_result<'a>(r: &mut Reader<'a>) -> Result<Option<MultiResult<'a>>> {
    let ty = r.i32()?;
    let done = r.bool()?;
    let header_err = ErrorCode(r.i32()?);
    if done {
        return Ok(None);
    }
    let opcode = OpCode::from_i32(ty).ok_or(Error::UnknownOpcode)?;
    let (err, body) = match opcode {
        OpCode::Error => (ErrorCode(r.i32()?), ReplyBody::Empty),
        OpCode::Create => (header_err, ReplyBody::Path(r.ustring()?)),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTTL => (
            header_err,
            ReplyBody::PathStat {
                path: r.ustring()?,
                stat: Stat::read(r)?,
            },
        ),
        OpCode::Delete | OpCode::DeleteContainer | OpCode::Check => (header_err, ReplyBody::Empty),
        OpCode::SetData => (header_err, ReplyBody::Stat(Stat::read(r)?)),
        OpCode::GetData => (
            header_err,
            ReplyBody::Data {
                data_len: r.buffer_len()?,
                stat: Stat::read(r)?,
            },
        ),
        OpCode::GetChildren => (header_err, ReplyBody::Children(r.path_list()?)),
        _ => return Err(Error::Malformed),
    };
    Ok(Some(MultiResult { opcode, err, body }))
}

impl<'a> MultiResults<'a> {
    /// Reads and checks a multi reply record up to and including its
    /// closing header. Each step consumes at least 9 bytes, so a record
    /// without a closing header ends in [`Error::Truncated`].
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        let start = *r;
        let mut len = 0usize;
        let mut first_error = ErrorCode::OK;
        while let Some(res) = next_result(r)? {
            len = len.saturating_add(1);
            if first_error.is_ok() && !res.err.is_ok() {
                first_error = res.err;
            }
        }
        Ok(MultiResults {
            raw: r.consumed_since(start),
            len,
            first_error,
        })
    }

    /// Number of results.
    #[inline]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True when there are no results.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first non-Ok result code, the one that failed the transaction.
    #[inline]
    pub const fn first_error(&self) -> Option<ErrorCode> {
        if self.first_error.is_ok() {
            None
        } else {
            Some(self.first_error)
        }
    }

    /// The encoded record, closing header included.
    #[inline]
    pub const fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Iterates the results in wire order.
    #[inline]
    pub fn iter(&self) -> MultiResultIter<'a> {
        MultiResultIter::new(self.raw)
    }
}

impl<'a> IntoIterator for MultiResults<'a> {
    type Item = Result<MultiResult<'a>>;
    type IntoIter = MultiResultIter<'a>;
    fn into_iter(self) -> MultiResultIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &MultiResults<'a> {
    type Item = Result<MultiResult<'a>>;
    type IntoIter = MultiResultIter<'a>;
    fn into_iter(self) -> MultiResultIter<'a> {
        self.iter()
    }
}

/// Lazy iterator over multi results. It stops after the closing header,
/// or after yielding the first error.
#[derive(Debug, Clone)]
pub struct MultiResultIter<'a> {
    r: Reader<'a>,
    finished: bool,
}

impl<'a> MultiResultIter<'a> {
    /// Iterates an unchecked multi reply record (the bytes after the reply
    /// header), for example the part of a cut frame.
    #[inline]
    pub const fn new(record: &'a [u8]) -> Self {
        MultiResultIter {
            r: Reader::new(record),
            finished: false,
        }
    }
}

impl<'a> Iterator for MultiResultIter<'a> {
    type Item = Result<MultiResult<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match next_result(&mut self.r) {
            Ok(Some(res)) => Some(Ok(res)),
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

impl FusedIterator for MultiResultIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::test_enc::{Enc, Noise, sample_stat};
    extern crate std;
    use std::vec::Vec;

    const Z: i64 = 0x0000_0003_0000_0010;

    fn ok(xid: i32) -> Enc {
        Enc::new().rep(xid, Z, 0)
    }

    /// Asserts every strict prefix fails, except the lengths in `ok_at`.
    fn all_cuts_err(frame: &[u8], op: OpCode, ok_at: &[usize]) {
        for n in 0..frame.len() {
            let r = Reply::parse(&frame[..n], op);
            if ok_at.contains(&n) {
                assert!(r.is_ok(), "{op:?} cut at {n}");
            } else {
                assert!(r.is_err(), "{op:?} cut at {n} of {}", frame.len());
            }
        }
        assert!(Reply::parse(frame, op).is_ok());
    }

    #[test]
    fn header_round_trips() {
        let b = Enc::new().rep(42, Z, -101).done();
        let h = parse_reply_header(&b).unwrap();
        assert_eq!(
            h,
            ReplyHeader {
                xid: 42,
                zxid: Z,
                err: ErrorCode::NO_NODE
            }
        );
        for n in 0..16 {
            assert_eq!(parse_reply_header(&b[..n]), Err(Error::Truncated));
        }
        assert!(
            parse_reply_header(&Enc::new().rep(-1, -1, 0).done())
                .unwrap()
                .is_watch_event()
        );
        assert!(
            parse_reply_header(&Enc::new().rep(-2, 0, 0).done())
                .unwrap()
                .is_ping()
        );
        assert!(
            parse_reply_header(&Enc::new().rep(-4, 0, 0).done())
                .unwrap()
                .is_auth()
        );
        assert!(
            parse_reply_header(&Enc::new().rep(-8, 0, 0).done())
                .unwrap()
                .is_set_watches()
        );
    }

    #[test]
    fn stat_round_trips_field_by_field() {
        let s = sample_stat();
        let b = Enc::new().stat(&s).done();
        assert_eq!(b.len(), Stat::LEN);
        assert_eq!(Stat::read(&mut Reader::new(&b)), Ok(s));
        assert!(s.is_ephemeral());
        assert!(!Stat::default().is_ephemeral());
        for n in 0..Stat::LEN {
            assert_eq!(Stat::read(&mut Reader::new(&b[..n])), Err(Error::Truncated));
        }
    }

    #[test]
    fn every_reply_shape_round_trips() {
        let s = sample_stat();
        let cases: Vec<(OpCode, Vec<u8>, ReplyBody<'static>)> = std::vec![
            (
                OpCode::Create,
                ok(1).s("/a0000000001").done(),
                ReplyBody::Path("/a0000000001")
            ),
            (OpCode::Sync, ok(1).s("/a").done(), ReplyBody::Path("/a")),
            (
                OpCode::Create2,
                ok(1).s("/b").stat(&s).done(),
                ReplyBody::PathStat {
                    path: "/b",
                    stat: s
                }
            ),
            (
                OpCode::CreateContainer,
                ok(1).s("/c").stat(&s).done(),
                ReplyBody::PathStat {
                    path: "/c",
                    stat: s
                }
            ),
            (
                OpCode::CreateTTL,
                ok(1).s("/t").stat(&s).done(),
                ReplyBody::PathStat {
                    path: "/t",
                    stat: s
                }
            ),
            (OpCode::Exists, ok(1).stat(&s).done(), ReplyBody::Stat(s)),
            (OpCode::SetData, ok(1).stat(&s).done(), ReplyBody::Stat(s)),
            (OpCode::SetACL, ok(1).stat(&s).done(), ReplyBody::Stat(s)),
            (OpCode::Check, ok(1).stat(&s).done(), ReplyBody::Stat(s)),
            (
                OpCode::GetData,
                ok(1).buf(b"payload").stat(&s).done(),
                ReplyBody::Data {
                    data_len: 7,
                    stat: s
                }
            ),
            (
                OpCode::GetData,
                ok(1).null().stat(&s).done(),
                ReplyBody::Data {
                    data_len: -1,
                    stat: s
                }
            ),
            (
                OpCode::Reconfig,
                ok(1)
                    .buf(b"server.1=a:2888:3888\nversion=100000000")
                    .stat(&s)
                    .done(),
                ReplyBody::Data {
                    data_len: 38,
                    stat: s
                }
            ),
            (
                OpCode::GetACL,
                ok(1)
                    .acls(&[(31, "world", "anyone"), (1, "ip", "10.0.0.1")])
                    .stat(&s)
                    .done(),
                ReplyBody::ACL {
                    acl_count: 2,
                    stat: s
                }
            ),
            (
                OpCode::GetAllChildrenNumber,
                ok(1).i32(12345).done(),
                ReplyBody::ChildrenNumber(12345)
            ),
            (
                OpCode::WhoAmI,
                ok(1)
                    .i32(2)
                    .s("ip")
                    .s("127.0.0.1")
                    .s("digest")
                    .s("bob")
                    .done(),
                ReplyBody::WhoAmI { count: 2 }
            ),
            (
                OpCode::Sasl,
                ok(1).buf(&[9; 32]).done(),
                ReplyBody::Sasl { token_len: 32 }
            ),
        ];
        for (op, frame, want) in &cases {
            let r = Reply::parse(frame, *op).unwrap();
            assert_eq!(
                r.header,
                ReplyHeader {
                    xid: 1,
                    zxid: Z,
                    err: ErrorCode::OK
                }
            );
            assert_eq!(&r.body, want, "{op:?}");
            assert!(r.is_ok());
            let ok_at: &[usize] = if *op == OpCode::Check { &[16] } else { &[] };
            all_cuts_err(frame, *op, ok_at);
        }
        let r = Reply::parse(&cases[2].1, OpCode::Create2).unwrap();
        assert_eq!((r.body.path(), r.body.stat()), (Some("/b"), Some(&s)));
        assert_eq!(ReplyBody::Empty.stat(), None);
    }

    #[test]
    fn children_and_ephemerals() {
        let s = sample_stat();
        let b = ok(3).strs(&["a", "b", "c"]).done();
        let ReplyBody::Children(c) = Reply::parse(&b, OpCode::GetChildren).unwrap().body else {
            panic!()
        };
        assert_eq!(c.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        all_cuts_err(&b, OpCode::GetChildren, &[]);

        let b = ok(3).strs(&["x"]).stat(&s).done();
        let r = Reply::parse(&b, OpCode::GetChildren2).unwrap();
        let ReplyBody::Children2 { children, stat } = r.body else {
            panic!()
        };
        assert_eq!(
            (children.len(), children.iter().next(), stat),
            (1, Some("x"), s)
        );
        all_cuts_err(&b, OpCode::GetChildren2, &[]);

        let b = ok(3).strs(&["/e/1", "/e/2"]).done();
        let ReplyBody::Ephemerals(e) = Reply::parse(&b, OpCode::GetEphemerals).unwrap().body else {
            panic!()
        };
        assert_eq!(e.iter().collect::<Vec<_>>(), ["/e/1", "/e/2"]);
        all_cuts_err(&b, OpCode::GetEphemerals, &[]);
    }

    #[test]
    fn header_only_replies_are_empty() {
        for op in [
            OpCode::Delete,
            OpCode::DeleteContainer,
            OpCode::Ping,
            OpCode::Auth,
            OpCode::SetWatches,
            OpCode::SetWatches2,
            OpCode::CheckWatches,
            OpCode::RemoveWatches,
            OpCode::CloseSession,
            OpCode::Check,
        ] {
            let b = ok(-2).done();
            assert_eq!(
                Reply::parse(&b, op).unwrap().body,
                ReplyBody::Empty,
                "{op:?}"
            );
            all_cuts_err(&b, op, &[]);
        }
        // addWatch answers ErrorResponse(0): read as no body.
        let b = ok(5).i32(0).done();
        assert_eq!(
            Reply::parse(&b, OpCode::AddWatch).unwrap().body,
            ReplyBody::Empty
        );
    }

    #[test]
    fn errors_carry_no_body() {
        for op in OpCode::ALL {
            if matches!(op, OpCode::Multi | OpCode::MultiRead) {
                continue;
            }
            let b = Enc::new().rep(9, Z, -101).done();
            let r = Reply::parse(&b, op).unwrap();
            assert_eq!(r.body, ReplyBody::Empty, "{op:?}");
            assert!(!r.is_ok());
            assert_eq!(r.header.err.name(), Some("NoNode"));
        }
        let b = Enc::new().rep(9, Z, -127).done();
        assert_eq!(
            Reply::parse(&b, OpCode::Multi).unwrap().body,
            ReplyBody::Empty
        );
    }

    fn multi_reply(err: i32) -> Vec<u8> {
        let s = sample_stat();
        Enc::new()
            .rep(11, Z, err)
            .mh(1, false, 0)
            .s("/m/a")
            .mh(15, false, 0)
            .s("/m/b0000000001")
            .stat(&s)
            .mh(2, false, 0)
            .mh(13, false, 0)
            .mh(5, false, 0)
            .stat(&s)
            .mdone()
            .done()
    }

    #[test]
    fn multi_results_round_trip() {
        let s = sample_stat();
        let b = multi_reply(0);
        let r = Reply::parse(&b, OpCode::Multi).unwrap();
        let ReplyBody::Multi(res) = r.body else {
            panic!()
        };
        assert_eq!(res.len(), 5);
        assert_eq!(res.first_error(), None);
        let got: Vec<MultiResult<'_>> = res.iter().map(|x| x.unwrap()).collect();
        assert_eq!(
            got,
            [
                MultiResult {
                    opcode: OpCode::Create,
                    err: ErrorCode::OK,
                    body: ReplyBody::Path("/m/a")
                },
                MultiResult {
                    opcode: OpCode::Create2,
                    err: ErrorCode::OK,
                    body: ReplyBody::PathStat {
                        path: "/m/b0000000001",
                        stat: s
                    }
                },
                MultiResult {
                    opcode: OpCode::Delete,
                    err: ErrorCode::OK,
                    body: ReplyBody::Empty
                },
                MultiResult {
                    opcode: OpCode::Check,
                    err: ErrorCode::OK,
                    body: ReplyBody::Empty
                },
                MultiResult {
                    opcode: OpCode::SetData,
                    err: ErrorCode::OK,
                    body: ReplyBody::Stat(s)
                },
            ]
        );
        assert_eq!(got[1].path(), Some("/m/b0000000001"));
        assert_eq!(got[1].reply_name(), "Create2Reply");
        assert!(got[1].is_ok() && got[1].err().is_ok());
        all_cuts_err(&b, OpCode::Multi, &[]);
        // A non-zero header err still carries results.
        let b = multi_reply(-2);
        let ReplyBody::Multi(res) = Reply::parse(&b, OpCode::Multi).unwrap().body else {
            panic!()
        };
        assert_eq!(res.len(), 5);
    }

    #[test]
    fn failed_multi_has_error_results() {
        let b = Enc::new()
            .rep(4, Z, 0)
            .mh(-1, false, 0)
            .i32(0)
            .mh(-1, false, -101)
            .i32(-101)
            .mh(-1, false, -2)
            .i32(-2)
            .mdone()
            .done();
        let ReplyBody::Multi(res) = Reply::parse(&b, OpCode::Multi).unwrap().body else {
            panic!()
        };
        assert_eq!(res.len(), 3);
        assert_eq!(res.first_error(), Some(ErrorCode::NO_NODE));
        let errs: Vec<ErrorCode> = res.iter().map(|x| x.unwrap().err).collect();
        assert_eq!(
            errs,
            [
                ErrorCode::OK,
                ErrorCode::NO_NODE,
                ErrorCode::RUNTIME_INCONSISTENCY
            ]
        );
        assert!(res.iter().all(|x| x.unwrap().opcode == OpCode::Error));
        let second = res.iter().nth(1).unwrap().unwrap();
        assert_eq!((second.err(), second.is_ok()), (ErrorCode::NO_NODE, false));
        assert_eq!((second.reply_name(), second.path()), ("ErrorReply", None));
        all_cuts_err(&b, OpCode::Multi, &[]);
    }

    #[test]
    fn multi_read_results() {
        let s = sample_stat();
        let b = Enc::new()
            .rep(4, Z, 0)
            .mh(4, false, 0)
            .buf(b"v")
            .stat(&s)
            .mh(8, false, 0)
            .strs(&["k1", "k2"])
            .mh(-1, false, -102)
            .i32(-102)
            .mdone()
            .done();
        let ReplyBody::Multi(res) = Reply::parse(&b, OpCode::MultiRead).unwrap().body else {
            panic!()
        };
        let got: Vec<_> = res.iter().map(|x| x.unwrap()).collect();
        assert_eq!(
            got[0].body,
            ReplyBody::Data {
                data_len: 1,
                stat: s
            }
        );
        let ReplyBody::Children(c) = got[1].body else {
            panic!()
        };
        assert_eq!(c.iter().collect::<Vec<_>>(), ["k1", "k2"]);
        assert_eq!(
            (got[2].opcode, got[2].err),
            (OpCode::Error, ErrorCode::NO_AUTH)
        );
        assert_eq!(res.first_error(), Some(ErrorCode::NO_AUTH));
        all_cuts_err(&b, OpCode::MultiRead, &[]);
    }

    #[test]
    fn multi_reply_rejects_bad_results() {
        let b = Enc::new().rep(4, Z, 0).mh(55, false, 0).mdone().done();
        assert_eq!(Reply::parse(&b, OpCode::Multi), Err(Error::UnknownOpcode));
        let b = Enc::new().rep(4, Z, 0).mh(3, false, 0).mdone().done();
        assert_eq!(Reply::parse(&b, OpCode::Multi), Err(Error::Malformed));
        let b = Enc::new()
            .rep(4, Z, 0)
            .mh(8, false, 0)
            .i32(i32::MAX)
            .mdone()
            .done();
        assert_eq!(Reply::parse(&b, OpCode::Multi), Err(Error::Truncated));
        // Unchecked iteration over a cut record yields one error, then stops.
        let full = multi_reply(0);
        for n in 16..full.len() {
            let items: Vec<_> = MultiResultIter::new(&full[16..n]).collect();
            assert!(items.len() <= 6);
            assert_eq!(items.iter().filter(|x| x.is_err()).count(), 1, "cut at {n}");
            assert!(items.last().unwrap().is_err());
        }
    }

    #[test]
    fn lying_lengths() {
        let b = ok(1).i32(-2).done();
        assert_eq!(Reply::parse(&b, OpCode::Create), Err(Error::BadLength));
        let b = ok(1).i32(i32::MAX).stat(&sample_stat()).done();
        assert_eq!(Reply::parse(&b, OpCode::GetData), Err(Error::Truncated));
        let b = ok(1).i32(i32::MAX).done();
        assert_eq!(Reply::parse(&b, OpCode::GetChildren), Err(Error::Truncated));
        let b = ok(1).i32(-3).done();
        assert_eq!(
            Reply::parse(&b, OpCode::GetEphemerals),
            Err(Error::BadLength)
        );
        let b = ok(1).i32(i32::MAX).done();
        assert_eq!(Reply::parse(&b, OpCode::WhoAmI), Err(Error::Truncated));
        let b = ok(1).i32(1_000_000).stat(&sample_stat()).done();
        assert_eq!(Reply::parse(&b, OpCode::GetACL), Err(Error::Truncated));
        let b = ok(1).buf(&[b'/', 0xff]).done();
        assert_eq!(Reply::parse(&b, OpCode::Sync), Err(Error::BadUtf8));
        let b = ok(1).i32(1).buf(&[0xed, 0xa0, 0x80]).done();
        assert_eq!(Reply::parse(&b, OpCode::GetChildren), Err(Error::BadUtf8));
    }

    #[test]
    fn noise_never_panics() {
        let s = sample_stat();
        let bases: [(OpCode, Vec<u8>); 5] = [
            (OpCode::Multi, multi_reply(0)),
            (
                OpCode::GetChildren2,
                ok(1).strs(&["a", "bb"]).stat(&s).done(),
            ),
            (OpCode::GetACL, ok(1).acls(&[(1, "a", "b")]).stat(&s).done()),
            (OpCode::WhoAmI, ok(1).i32(1).s("ip").s("x").done()),
            (OpCode::Create2, ok(1).s("/x").stat(&s).done()),
        ];
        let mut n = Noise::new(0xbeef);
        for _ in 0..40_000 {
            let (op, base) = &bases[n.below(bases.len())];
            let mut b = base.clone();
            n.mutate(&mut b);
            let cut = n.below(b.len() + 1);
            let b = b.get(..cut).unwrap_or(&b);
            let op = if n.below(4) == 0 {
                OpCode::ALL[n.below(OpCode::COUNT)]
            } else {
                *op
            };
            if let Ok(Reply {
                body: ReplyBody::Multi(res),
                ..
            }) = Reply::parse(b, op)
            {
                assert_eq!(res.iter().count(), res.len());
                assert!(res.iter().all(|x| x.is_ok()));
            }
            let _ = parse_reply_header(b);
            if let Some(rest) = b.get(16..) {
                assert!(MultiResultIter::new(rest).take(10_000).count() < 10_000);
            }
        }
    }
}
