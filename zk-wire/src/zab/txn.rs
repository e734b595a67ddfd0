//! Transactions as the leader proposes them: a `TxnHeader` and the
//! transaction record of its type.
//!
//! Wire format: the records of module `org.apache.zookeeper.txn` in
//! `zookeeper-jute/src/main/resources/zookeeper.jute`, written back to back
//! by `SerializeUtils.serializeRequest` (the `data` of `PROPOSAL`, `INFORM`
//! and, after an 8-byte leader id, `INFORMANDACTIVATE`):
//!
//! | `TxnHeader.type` (a `ZooDefs.OpCode`)     | record                                                        |
//! |-------------------------------------------|---------------------------------------------------------------|
//! | create (1), create2 (15)                  | `CreateTxn { path, buffer data, vector<ACL> acl, boolean ephemeral, int parentCVersion }` |
//! | createContainer (19)                      | `CreateContainerTxn { path, data, acl, int parentCVersion }`  |
//! | createTTL (21)                            | `CreateTTLTxn { path, data, acl, int parentCVersion, long ttl }` |
//! | delete (2), deleteContainer (20)          | `DeleteTxn { path }`                                          |
//! | setData (5), reconfig (16)                | `SetDataTxn { path, buffer data, int version }` (reconfig: `/zookeeper/config` and the new config text) |
//! | setACL (7)                                | `SetACLTxn { path, vector<ACL> acl, int version }`            |
//! | check (13)                                | `CheckVersionTxn { path, int version }`                       |
//! | multi (14)                                | `MultiTxn { vector<Txn { int type, buffer data }> }`, each `data` one of these records |
//! | createSession (-10)                       | `CreateSessionTxn { int timeOut }`                            |
//! | closeSession (-11)                        | `CloseSessionTxn { vector<ustring> paths2Delete }` (3.6+; nothing before) |
//! | error (-1)                                | `ErrorTxn { int err }`                                        |
//!
//! From 3.6 a `TxnDigest { int version, long treeDigest }` may follow the
//! record; like every trailing byte it is ignored.

use crate::client::{ErrorCode, PathList, Reader};
use crate::{Error, Result};
use core::iter::FusedIterator;

/// Encoded size of a `TxnHeader`.
pub const TXN_HEADER_LEN: usize = 32;

/// `ZooDefs.OpCode` values used as transaction types.
pub mod txn_type {
    /// `create`.
    pub const CREATE: i32 = 1;
    /// `delete`.
    pub const DELETE: i32 = 2;
    /// `setData`.
    pub const SET_DATA: i32 = 5;
    /// `setACL`.
    pub const SET_ACL: i32 = 7;
    /// `check`.
    pub const CHECK: i32 = 13;
    /// `multi`.
    pub const MULTI: i32 = 14;
    /// `create2`.
    pub const CREATE2: i32 = 15;
    /// `reconfig`.
    pub const RECONFIG: i32 = 16;
    /// `createContainer`.
    pub const CREATE_CONTAINER: i32 = 19;
    /// `deleteContainer`.
    pub const DELETE_CONTAINER: i32 = 20;
    /// `createTTL`.
    pub const CREATE_TTL: i32 = 21;
    /// `createSession`.
    pub const CREATE_SESSION: i32 = -10;
    /// `closeSession`.
    pub const CLOSE_SESSION: i32 = -11;
    /// `error`.
    pub const ERROR: i32 = -1;
}

/// ZooKeeper's name of a transaction type (the `ZooDefs.OpCode` field
/// name: `create`, `setData`, `createSession`, ...), if it is one.
pub const fn txn_type_name(t: i32) -> Option<&'static str> {
    use txn_type::*;
    Some(match t {
        CREATE => "create",
        DELETE => "delete",
        SET_DATA => "setData",
        SET_ACL => "setACL",
        CHECK => "check",
        MULTI => "multi",
        CREATE2 => "create2",
        RECONFIG => "reconfig",
        CREATE_CONTAINER => "createContainer",
        DELETE_CONTAINER => "deleteContainer",
        CREATE_TTL => "createTTL",
        CREATE_SESSION => "createSession",
        CLOSE_SESSION => "closeSession",
        ERROR => "error",
        _ => return None,
    })
}

/// `TxnHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TxnHeader {
    /// The session that asked for it (`clientId`).
    pub session: i64,
    /// The client's xid.
    pub cxid: i32,
    /// The transaction's zxid.
    pub zxid: i64,
    /// Leader time when proposed, in ms since the epoch.
    pub time: i64,
    /// The transaction type (see [`txn_type_name`]).
    pub txn_type: i32,
}

impl TxnHeader {
    /// Reads a `TxnHeader`.
    pub fn read(r: &mut Reader<'_>) -> Result<TxnHeader> {
        Ok(TxnHeader {
            session: r.i64()?,
            cxid: r.i32()?,
            zxid: r.i64()?,
            time: r.i64()?,
            txn_type: r.i32()?,
        })
    }

    /// [`txn_type_name`] of this header's type.
    pub const fn type_name(&self) -> Option<&'static str> {
        txn_type_name(self.txn_type)
    }
}

/// The transaction record after a [`TxnHeader`], one variant per record;
/// data payloads are reported by their length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TxnBody<'a> {
    /// `CreateTxn`, `CreateContainerTxn`, `CreateTTLTxn`.
    Create {
        /// Node path.
        path: &'a str,
        /// Length of the data (-1 for null).
        data_len: i32,
        /// Number of ACL entries.
        acl_count: i32,
        /// Ephemeral node (`CreateTxn` only).
        ephemeral: bool,
        /// The parent's cversion after the create.
        parent_cversion: i32,
        /// TTL in ms (`CreateTTLTxn` only).
        ttl: Option<i64>,
    },
    /// `DeleteTxn`.
    Delete {
        /// Node path.
        path: &'a str,
    },
    /// `SetDataTxn`.
    SetData {
        /// Node path.
        path: &'a str,
        /// Length of the data (-1 for null).
        data_len: i32,
        /// The node's new version.
        version: i32,
    },
    /// `SetDataTxn` of a reconfig: the new configuration.
    Reconfig {
        /// `/zookeeper/config`.
        path: &'a str,
        /// The new dynamic configuration text.
        config: &'a str,
        /// The config node's new version.
        version: i32,
    },
    /// `SetACLTxn`.
    SetAcl {
        /// Node path.
        path: &'a str,
        /// Number of ACL entries.
        acl_count: i32,
        /// The ACL's new version.
        version: i32,
    },
    /// `CheckVersionTxn`.
    Check {
        /// Node path.
        path: &'a str,
        /// The version checked.
        version: i32,
    },
    /// `CreateSessionTxn`.
    CreateSession {
        /// Negotiated session timeout, ms.
        timeout: i32,
    },
    /// closeSession, with the `CloseSessionTxn` of 3.6+ when present.
    CloseSession {
        /// Ephemeral nodes to delete (empty before 3.6).
        paths: PathList<'a>,
    },
    /// `ErrorTxn`.
    Error {
        /// The error.
        err: ErrorCode,
    },
    /// `MultiTxn`.
    Multi(MultiTxn<'a>),
    /// The first bytes of a record whose transaction was larger than the
    /// reassembly chunk: the path, when the record starts with one.
    Prefix {
        /// Node path, when the type has one and it fits.
        path: Option<&'a str>,
    },
}

fn skip_acls(r: &mut Reader<'_>) -> Result<i32> {
    let n = r.vector_len(12)?;
    for _ in 0..n {
        r.i32()?;
        r.skip_ustring()?;
        r.skip_ustring()?;
    }
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

impl<'a> TxnBody<'a> {
    /// Reads the record of a transaction of type `txn_type`; `nested` is
    /// true inside a multi (where a multi is [`Error::Malformed`]).
    fn read(txn_type: i32, r: &mut Reader<'a>, nested: bool) -> Result<Self> {
        use txn_type::*;
        Ok(match txn_type {
            CREATE | CREATE2 => TxnBody::Create {
                path: r.ustring()?,
                data_len: r.buffer_len()?,
                acl_count: skip_acls(r)?,
                ephemeral: r.bool()?,
                parent_cversion: r.i32()?,
                ttl: None,
            },
            CREATE_CONTAINER | CREATE_TTL => {
                let path = r.ustring()?;
                let data_len = r.buffer_len()?;
                let acl_count = skip_acls(r)?;
                let parent_cversion = r.i32()?;
                let ttl = if txn_type == CREATE_TTL {
                    Some(r.i64()?)
                } else {
                    None
                };
                TxnBody::Create {
                    path,
                    data_len,
                    acl_count,
                    ephemeral: false,
                    parent_cversion,
                    ttl,
                }
            }
            DELETE | DELETE_CONTAINER => TxnBody::Delete { path: r.ustring()? },
            SET_DATA => TxnBody::SetData {
                path: r.ustring()?,
                data_len: r.buffer_len()?,
                version: r.i32()?,
            },
            RECONFIG => {
                let path = r.ustring()?;
                let config = core::str::from_utf8(r.buffer()?).map_err(|_| Error::BadUtf8)?;
                TxnBody::Reconfig {
                    path,
                    config,
                    version: r.i32()?,
                }
            }
            SET_ACL => TxnBody::SetAcl {
                path: r.ustring()?,
                acl_count: skip_acls(r)?,
                version: r.i32()?,
            },
            CHECK => TxnBody::Check {
                path: r.ustring()?,
                version: r.i32()?,
            },
            CREATE_SESSION => TxnBody::CreateSession { timeout: r.i32()? },
            CLOSE_SESSION => {
                // Absent before 3.6 (and with closeSessionTxn disabled):
                // then what follows, if anything, is a digest.
                let mut probe = *r;
                match PathList::read(&mut probe) {
                    Ok(paths) => {
                        *r = probe;
                        TxnBody::CloseSession { paths }
                    }
                    Err(_) => TxnBody::CloseSession {
                        paths: PathList::EMPTY,
                    },
                }
            }
            ERROR => TxnBody::Error {
                err: ErrorCode(r.i32()?),
            },
            MULTI if !nested => TxnBody::Multi(MultiTxn::read(r)?),
            MULTI => return Err(Error::Malformed),
            _ => return Err(Error::UnknownOpcode),
        })
    }

    /// The path the transaction is about, if it has one (the first
    /// sub-transaction's for a multi).
    pub fn path(&self) -> Option<&'a str> {
        match *self {
            TxnBody::Create { path, .. }
            | TxnBody::Delete { path }
            | TxnBody::SetData { path, .. }
            | TxnBody::Reconfig { path, .. }
            | TxnBody::SetAcl { path, .. }
            | TxnBody::Check { path, .. } => Some(path),
            TxnBody::Multi(m) => m.iter().find_map(|t| t.body.path()),
            TxnBody::Prefix { path } => path,
            TxnBody::CreateSession { .. }
            | TxnBody::CloseSession { .. }
            | TxnBody::Error { .. } => None,
        }
    }
}

/// A `MultiTxn`: checked once, iterated lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MultiTxn<'a> {
    raw: &'a [u8],
    len: usize,
}

/// One transaction inside a [`MultiTxn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubTxn<'a> {
    /// Its type ([`txn_type_name`]).
    pub txn_type: i32,
    /// Its record.
    pub body: TxnBody<'a>,
}

impl<'a> MultiTxn<'a> {
    /// Reads and checks a `vector<Txn>` (each sub-record decoded once).
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        let len = r.vector_len(8)?;
        let start = r.rest();
        for _ in 0..len {
            let t = r.i32()?;
            let data = r.buffer()?;
            TxnBody::read(t, &mut Reader::new(data), true)?;
        }
        let used = start.len() - r.remaining();
        Ok(MultiTxn {
            raw: &start[..used],
            len,
        })
    }

    /// Number of sub-transactions.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True when there are none.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sub-transactions in order.
    pub fn iter(&self) -> SubTxns<'a> {
        SubTxns {
            r: Reader::new(self.raw),
            left: self.len,
        }
    }
}

/// Iterator over a [`MultiTxn`].
#[derive(Debug, Clone)]
pub struct SubTxns<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for SubTxns<'a> {
    type Item = SubTxn<'a>;

    fn next(&mut self) -> Option<SubTxn<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = (|| {
            let txn_type = self.r.i32()?;
            let data = self.r.buffer()?;
            let body = TxnBody::read(txn_type, &mut Reader::new(data), true)?;
            Ok::<_, Error>(SubTxn { txn_type, body })
        })();
        match item {
            Ok(t) => Some(t),
            Err(_) => {
                // Unreachable for a list checked by `MultiTxn::read`.
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

impl FusedIterator for SubTxns<'_> {}

/// A transaction: header and record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Txn<'a> {
    /// The `TxnHeader`.
    pub header: TxnHeader,
    /// The record.
    pub body: TxnBody<'a>,
}

impl<'a> Txn<'a> {
    /// Decodes a serialized transaction (header, record, ignored digest).
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let header = TxnHeader::read(&mut r)?;
        let body = TxnBody::read(header.txn_type, &mut r, false)?;
        Ok(Txn { header, body })
    }

    /// Decodes the first bytes of a transaction too large for the
    /// reassembly chunk: the header and, when it fits, the path.
    pub fn parse_prefix(data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let header = TxnHeader::read(&mut r)?;
        let has_path = matches!(
            header.txn_type,
            txn_type::CREATE
                | txn_type::CREATE2
                | txn_type::CREATE_CONTAINER
                | txn_type::CREATE_TTL
                | txn_type::DELETE
                | txn_type::DELETE_CONTAINER
                | txn_type::SET_DATA
                | txn_type::RECONFIG
                | txn_type::SET_ACL
                | txn_type::CHECK
        );
        let path = if has_path { r.ustring().ok() } else { None };
        Ok(Txn {
            header,
            body: TxnBody::Prefix { path },
        })
    }
}

#[cfg(test)]
pub(crate) mod test_txn {
    //! Builders for transactions.
    extern crate std;
    use crate::client::test_enc::Enc;

    /// A TxnHeader.
    pub(crate) fn header(e: Enc, session: i64, cxid: i32, zxid: i64, ty: i32) -> Enc {
        e.i64(session)
            .i32(cxid)
            .i64(zxid)
            .i64(1_700_000_000_000)
            .i32(ty)
    }

    /// A create transaction as ZooKeeper 3.8 proposes it (with a digest).
    pub(crate) fn create(session: i64, zxid: i64, path: &str, data: &[u8]) -> Enc {
        header(Enc::new(), session, 1, zxid, 1)
            .s(path)
            .buf(data)
            .acls(&[(31, "world", "anyone")])
            .bool(false)
            .i32(1)
            .i32(2)
            .i64(0x1234)
    }
}

#[cfg(test)]
mod tests {
    use super::test_txn::*;
    use super::*;
    use crate::client::test_enc::Enc;

    #[test]
    fn create_with_digest_and_prefix() {
        let b = create(0x100, 0x1_0000_0002, "/a", b"xyz").done();
        let t = Txn::parse(&b).unwrap();
        assert_eq!(t.header.session, 0x100);
        assert_eq!(t.header.zxid, 0x1_0000_0002);
        assert_eq!(t.header.type_name(), Some("create"));
        assert_eq!(
            t.body,
            TxnBody::Create {
                path: "/a",
                data_len: 3,
                acl_count: 1,
                ephemeral: false,
                parent_cversion: 1,
                ttl: None
            }
        );
        assert_eq!(t.body.path(), Some("/a"));
        let p = Txn::parse_prefix(&b[..TXN_HEADER_LEN + 6]).unwrap();
        assert_eq!(p.body, TxnBody::Prefix { path: Some("/a") });
        let p = Txn::parse_prefix(&b[..TXN_HEADER_LEN + 3]).unwrap();
        assert_eq!(p.body, TxnBody::Prefix { path: None });
        assert_eq!(Txn::parse_prefix(&b[..20]), Err(Error::Truncated));
    }

    #[test]
    fn every_record_type() {
        let cases: [(i32, Enc, Option<&str>); 11] = [
            (2, Enc::new().s("/d"), Some("/d")),
            (5, Enc::new().s("/s").buf(b"v").i32(3), Some("/s")),
            (7, Enc::new().s("/acl").acls(&[]).i32(1), Some("/acl")),
            (13, Enc::new().s("/c").i32(4), Some("/c")),
            (-10, Enc::new().i32(30000), None),
            (-11, Enc::new().strs(&["/e1", "/e2"]), None),
            (-11, Enc::new(), None),
            (-1, Enc::new().i32(-101), None),
            (
                19,
                Enc::new().s("/ctr").buf(b"").acls(&[]).i32(0),
                Some("/ctr"),
            ),
            (
                21,
                Enc::new().s("/ttl").buf(b"").acls(&[]).i32(0).i64(5000),
                Some("/ttl"),
            ),
            (
                16,
                Enc::new()
                    .s("/zookeeper/config")
                    .buf(b"server.1=h:1:2\nversion=100000006")
                    .i32(1),
                Some("/zookeeper/config"),
            ),
        ];
        for (ty, rec, path) in cases {
            let b = header(Enc::new(), 1, 2, 3, ty).raw(&rec.done()).done();
            let t = Txn::parse(&b).unwrap_or_else(|e| panic!("type {ty}: {e}"));
            assert_eq!(t.body.path(), path, "type {ty}");
            assert!(t.header.type_name().is_some());
        }
        let b = header(Enc::new(), 1, 2, 3, -11)
            .strs(&["/e1", "/e2"])
            .done();
        match Txn::parse(&b).unwrap().body {
            TxnBody::CloseSession { paths } => assert_eq!(paths.len(), 2),
            other => panic!("{other:?}"),
        }
        let b = header(Enc::new(), 1, 2, 3, 16)
            .s("/zookeeper/config")
            .buf(b"version=1")
            .i32(1)
            .done();
        assert!(matches!(
            Txn::parse(&b).unwrap().body,
            TxnBody::Reconfig {
                config: "version=1",
                ..
            }
        ));
    }

    #[test]
    fn multi_iterates_its_sub_transactions() {
        let sub1 = Enc::new()
            .s("/m/a")
            .buf(b"1")
            .acls(&[])
            .bool(false)
            .i32(0)
            .done();
        let sub2 = Enc::new().s("/m/b").buf(b"2").i32(1).done();
        let b = header(Enc::new(), 1, 2, 3, 14)
            .i32(2)
            .i32(1)
            .buf(&sub1)
            .i32(5)
            .buf(&sub2)
            .done();
        let t = Txn::parse(&b).unwrap();
        let TxnBody::Multi(m) = t.body else {
            panic!("not a multi")
        };
        assert_eq!(m.len(), 2);
        let subs: [(i32, Option<&str>); 2] = {
            let mut it = m.iter();
            core::array::from_fn(|_| {
                let s = it.next().unwrap();
                (s.txn_type, s.body.path())
            })
        };
        assert_eq!(subs, [(1, Some("/m/a")), (5, Some("/m/b"))]);
        assert_eq!(m.iter().count(), 2);
        assert_eq!(t.body.path(), Some("/m/a"));
        // A nested multi is malformed, a bad sub-record is its error.
        let nested = header(Enc::new(), 1, 2, 3, 14)
            .i32(1)
            .i32(14)
            .buf(&Enc::new().i32(0).done())
            .done();
        assert_eq!(Txn::parse(&nested), Err(Error::Malformed));
        let bad = header(Enc::new(), 1, 2, 3, 14)
            .i32(1)
            .i32(5)
            .buf(&Enc::new().s("/x").done())
            .done();
        assert_eq!(Txn::parse(&bad), Err(Error::Truncated));
    }

    #[test]
    fn unknown_type_and_truncations() {
        let b = header(Enc::new(), 1, 2, 3, 99).done();
        assert_eq!(Txn::parse(&b), Err(Error::UnknownOpcode));
        let full = create(1, 2, "/abc", b"data").done();
        for cut in 0..full.len() - 12 {
            // The digest (last 12 bytes) is optional.
            assert!(Txn::parse(&full[..cut]).is_err(), "cut {cut}");
        }
    }
}
